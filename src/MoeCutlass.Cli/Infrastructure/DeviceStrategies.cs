namespace MoeCutlass.Cli.Infrastructure;

/// <summary>The grouped-GEMM strategies a CUDA device runs with this library, as <c>moecutlass info</c> lists them.</summary>
internal static class DeviceStrategies
{
    /// <summary>
    /// The strategies <paramref name="device"/> runs, in report order. The registry's kernels are sm_90a code, so a
    /// device without SM90a runs only cublas (auto chooses it there), and the text says why; cublas needs a cuBLAS
    /// 12.5 or later that the library loads at run time.
    /// </summary>
    public static string Describe(DeviceInfo device) => device.HasSm90a
        ? "single, expert_specialized, persistent, auto, cublas (the baseline; needs cuBLAS 12.5+ at run time)"
        : $"cublas only (auto resolves to it; needs cuBLAS 12.5+ at run time): single, expert_specialized and "
          + $"persistent need SM90a (compute capability 9.0; this GPU has {device.ComputeCapability})";
}
