namespace MoeCutlass.Cli.Infrastructure;

/// <summary>The grouped-GEMM strategies a CUDA device runs with this library, as <c>moecutlass info</c> lists them.</summary>
internal static class DeviceStrategies
{
    /// <summary>
    /// The strategies <paramref name="device"/> runs, in report order. The registry's kernels are sm_90a code, so a
    /// device without SM90a runs only cublas (auto chooses it there), whose CUDA path is not built yet (issue 15,
    /// slice 2): such a device runs none today, and the text says why.
    /// </summary>
    public static string Describe(DeviceInfo device) => device.HasSm90a
        ? "single, expert_specialized, persistent, auto (cublas: its CUDA path is not built yet)"
        : $"none yet: single, expert_specialized and persistent need SM90a (compute capability 9.0; this GPU has "
          + $"{device.ComputeCapability}), and auto resolves to cublas, whose CUDA path is not built yet";
}
