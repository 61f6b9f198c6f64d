namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// The one place that decides whether GPU tests run: without a CUDA device they are ignored with the reason, unless
/// MOECUTLASS_REQUIRE_GPU=1 (how a GPU runner runs them), in which case a missing device fails them.
/// </summary>
internal static class GpuRequirement
{
    public const string RequireVariable = "MOECUTLASS_REQUIRE_GPU";

    public static bool Required => Environment.GetEnvironmentVariable(RequireVariable) == "1";

    /// <summary>Returns normally when device 0 is usable; otherwise ignores (or, when required, fails) the calling fixture.</summary>
    public static void EnsureDevice()
    {
        string? reason = null;
        try
        {
            MoeCutlassLibrary.Initialize();
            if (MoeCutlassLibrary.DeviceCount == 0)
            {
                reason = MoeCutlassLibrary.BuildInfo.HasCuda
                    ? "the library has CUDA support but mc_get_device_count found no device (no driver or no GPU)"
                    : "the native library was built without CUDA (MOECUTLASS_CUDA=OFF or no nvcc)";
            }
        }
        catch (MoeCutlassException ex)
        {
            reason = "the native library could not be used: " + ex.Message;
        }

        if (reason is null)
        {
            return;
        }

        if (Required)
        {
            Assert.Fail($"no CUDA device: {reason}; {RequireVariable}=1 requires one");
        }

        Assert.Ignore($"no CUDA device: {reason} (set {RequireVariable}=1 to make this a failure)");
    }
}
