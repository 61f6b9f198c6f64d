using Microsoft.Extensions.Logging;

namespace MoeCutlass.Cli.Infrastructure;

/// <summary>The <c>--backend</c> values.</summary>
internal enum BackendRequest
{
    /// <summary>CUDA when the library has CUDA compiled in and a device exists, else the CPU reference.</summary>
    Auto,

    /// <summary>The CPU reference backend.</summary>
    Cpu,

    /// <summary>The CUDA backend (fails when no device is usable).</summary>
    Cuda,
}

/// <summary>Parses <c>--backend</c>, resolves <c>auto</c>, and opens the context.</summary>
internal static class BackendSelection
{
    public const string OptionValues = "auto, cpu, cuda";

    public static BackendRequest Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => BackendRequest.Auto,
        "cpu" => BackendRequest.Cpu,
        "cuda" or "gpu" => BackendRequest.Cuda,
        _ => throw new UsageException($"unknown backend '{value}' (valid: {OptionValues})"),
    };

    /// <summary>The backend <paramref name="request"/> stands for on this machine, and why.</summary>
    public static (Backend Backend, string Reason) Resolve(BackendRequest request)
    {
        switch (request)
        {
            case BackendRequest.Cpu:
                return (Backend.Cpu, "requested with --backend cpu");
            case BackendRequest.Cuda:
                return (Backend.Cuda, "requested with --backend cuda");
            default:
                if (!MoeCutlassLibrary.BuildInfo.HasCuda)
                {
                    return (Backend.Cpu, "the native library was built without CUDA");
                }

                int devices = MoeCutlassLibrary.DeviceCount;
                return devices > 0
                    ? (Backend.Cuda, $"{devices} CUDA device(s) found")
                    : (Backend.Cpu, "no CUDA device found");
        }
    }

    /// <summary>Opens a context for <paramref name="backend"/>.</summary>
    public static MoeContext CreateContext(Backend backend, int device, int cpuThreads, ILoggerFactory loggerFactory)
    {
        if (backend == Backend.Cuda)
        {
            int count = MoeCutlassLibrary.DeviceCount;
            if (count > 0 && device >= count)
            {
                throw new UsageException($"--device {device} does not exist (this machine has {count} CUDA device(s))");
            }

            return MoeContext.CreateCuda(device, loggerFactory);
        }

        // --device selects a CUDA device; silently ignoring it would let a run on the wrong backend look intended.
        if (device != 0)
        {
            throw new UsageException($"--device {device} selects a CUDA device, but this run uses the CPU backend; "
                + "drop --device, or use --backend cuda on a machine with CUDA devices");
        }

        return MoeContext.CreateCpu(cpuThreads, loggerFactory);
    }

    /// <summary>A short description of a context's backend and device for report headers.</summary>
    public static string Describe(MoeContext context) => context.Backend == Backend.Cuda
        ? $"cuda (device {context.Device}: {context.DeviceInfo?.Name ?? "unknown"})"
        : "cpu (reference backend)";

    /// <summary>The device name recorded in result files.</summary>
    public static string DeviceName(MoeContext context) => context.Backend == Backend.Cuda
        ? context.DeviceInfo?.Name ?? $"cuda:{context.Device}"
        : $"cpu ({Environment.ProcessorCount} logical cores)";
}
