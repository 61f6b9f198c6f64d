using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>What the loaded native library was built from and with.</summary>
/// <param name="Version">The full version string, e.g. "0.1.0+abc1234".</param>
/// <param name="GitCommit">The git commit the library was built from (may be empty).</param>
/// <param name="AbiVersion">The library's ABI version (equals the one this assembly was generated against).</param>
/// <param name="HasCuda">Whether the CUDA backend was compiled in.</param>
/// <param name="CudaArchitectures">
/// The CUDA architectures compiled for, e.g. "80;89;90a;100" (the grouped-GEMM kernels are sm_90a only); empty without
/// CUDA.
/// </param>
/// <param name="Compiler">The compiler(s) that built the library.</param>
public sealed record BuildInfo(string Version, string GitCommit, int AbiVersion, bool HasCuda, string CudaArchitectures, string Compiler);

/// <summary>Properties of a CUDA device.</summary>
/// <param name="Index">The CUDA device index.</param>
/// <param name="Name">The device name, e.g. "NVIDIA H100 80GB HBM3".</param>
/// <param name="ComputeMajor">Compute capability, major part (9 for Hopper).</param>
/// <param name="ComputeMinor">Compute capability, minor part.</param>
/// <param name="Multiprocessors">Number of streaming multiprocessors.</param>
/// <param name="TotalMemoryBytes">Global memory in bytes.</param>
/// <param name="L2CacheBytes">L2 cache size in bytes.</param>
/// <param name="SharedMemoryPerBlockOptin">Largest opt-in shared memory per block, in bytes.</param>
/// <param name="MemoryBusWidthBits">Memory bus width in bits.</param>
/// <param name="MemoryClockKhz">Peak memory clock in kHz.</param>
/// <param name="PeakMemoryBandwidthGBps">Theoretical peak memory bandwidth in GB/s (from bus width and memory clock).</param>
/// <param name="GpuClass">
/// The GPU class the library's kernel-selection tables know the device as, e.g. "H200 (132 SMs, HBM3e)",
/// "H100 SXM (132 SMs, HBM3)", or "other GPU (tile-width thresholds)" for a device no table was tuned for.
/// </param>
/// <param name="PeakFp8DenseTflops">
/// The class's datasheet dense FP8 tensor-core peak (without sparsity) in TFLOP/s; 0 when the class has no known
/// ceilings (see <see cref="DeviceInfo.HasCeilings"/>).
/// </param>
/// <param name="DatasheetBandwidthGBps">
/// The class's datasheet HBM bandwidth in GB/s (10^9 bytes per second); 0 when the class has no known ceilings.
/// Unlike <paramref name="PeakMemoryBandwidthGBps"/>, this is NVIDIA's published figure, not one computed from clocks.
/// </param>
/// <param name="HasSm90a">
/// Whether the device runs the library's SM90a grouped-GEMM kernels: compute capability 9.0 exactly (sm_90a code runs
/// nowhere else) and a library whose grouped-GEMM kernels are built for sm_90a. <see cref="GemmStrategy.Single"/>,
/// <see cref="GemmStrategy.ExpertSpecialized"/> and <see cref="GemmStrategy.Persistent"/> need it; without it plans of
/// those strategies throw <see cref="MoeCutlassUnsupportedException"/> naming the compute capability, and
/// <see cref="GemmStrategy.Auto"/> resolves to <see cref="GemmStrategy.Cublas"/>.
/// </param>
public sealed record DeviceInfo(
    int Index,
    string Name,
    int ComputeMajor,
    int ComputeMinor,
    int Multiprocessors,
    long TotalMemoryBytes,
    int L2CacheBytes,
    long SharedMemoryPerBlockOptin,
    int MemoryBusWidthBits,
    int MemoryClockKhz,
    double PeakMemoryBandwidthGBps,
    string GpuClass,
    double PeakFp8DenseTflops,
    double DatasheetBandwidthGBps,
    bool HasSm90a)
{
    /// <summary>The compute capability as "major.minor", e.g. "9.0".</summary>
    public string ComputeCapability => $"{ComputeMajor}.{ComputeMinor}";

    /// <summary>
    /// Whether the library knows this GPU class's compute and memory ceilings (<see cref="PeakFp8DenseTflops"/> and
    /// <see cref="DatasheetBandwidthGBps"/> both positive), so a roofline can be drawn for it; false for an unknown class,
    /// where a roofline against guessed ceilings would only give made-up percentages.
    /// </summary>
    public bool HasCeilings => PeakFp8DenseTflops > 0 && DatasheetBandwidthGBps > 0;
}

/// <summary>
/// Process-wide entry point: loads the native library (once), checks its ABI version and answers questions about the
/// build and the CUDA devices. Every other MoeCutlass API initializes the library on first use, so calling
/// <see cref="Initialize"/> explicitly is only needed to choose the logger or to surface loading problems early.
/// </summary>
/// <remarks>
/// The library is looked for in this order: the <c>MOECUTLASS_NATIVE_PATH</c> environment variable (a file, or a
/// directory holding libmoecutlass.so / moecutlass.dll / libmoecutlass.dylib; when set, it is the only place tried),
/// <see cref="AppContext.BaseDirectory"/>, <c>AppContext.BaseDirectory/runtimes/&lt;rid&gt;/native</c>, then the OS
/// search for the bare file name. A failure throws <see cref="MoeCutlassLibraryException"/> listing every place tried.
/// </remarks>
public static class MoeCutlassLibrary
{
    private static readonly object s_gate = new();
    private static readonly ConditionalWeakTable<ILoggerFactory, object> s_informedFactories = new();
    private static volatile bool s_initialized;
    private static BuildInfo? s_buildInfo;
    private static IReadOnlyList<KernelConfiguration>? s_kernelConfigurations;

    /// <summary>
    /// Loads the native library if needed and checks that its ABI version equals the one this assembly was built
    /// against. Idempotent and thread-safe. A logger factory passed here (once per factory) receives the
    /// "library loaded" event with the file path and the version.
    /// </summary>
    /// <param name="loggerFactory">Where to log the library-loaded event; null logs nowhere.</param>
    /// <exception cref="MoeCutlassLibraryException">The library was not found, could not be loaded, or has another ABI version.</exception>
    public static void Initialize(ILoggerFactory? loggerFactory = null)
    {
        if (!s_initialized)
        {
            lock (s_gate)
            {
                if (!s_initialized)
                {
                    NativeLibraryLoader.EnsureLoaded();
                    CheckAbiVersion();
                    s_buildInfo = ReadBuildInfo();
                    s_initialized = true;
                }
            }
        }

        if (loggerFactory is not null && loggerFactory is not NullLoggerFactory)
        {
            bool first;
            lock (s_informedFactories)
            {
                first = s_informedFactories.TryAdd(loggerFactory, new object());
            }

            if (first)
            {
                var info = s_buildInfo!;
                Log.LibraryLoaded(loggerFactory.CreateLogger(LoggerCategory), LoadedPath, info.Version, info.AbiVersion, info.HasCuda,
                    info.CudaArchitectures);
            }
        }
    }

    /// <summary>The logger category of library-level events.</summary>
    internal const string LoggerCategory = "MoeCutlass.MoeCutlassLibrary";

    /// <summary>The ABI version this assembly's bindings were generated for.</summary>
    public static int ExpectedAbiVersion => NativeConstants.MC_ABI_VERSION;

    /// <summary>The full path of the loaded native library (initializes the library if needed).</summary>
    public static string LoadedPath
    {
        get
        {
            Initialize();
            return NativeLibraryLoader.LoadedPath ?? NativeLibraryLoader.PlatformFileName;
        }
    }

    /// <summary>The build information of the loaded native library (initializes the library if needed).</summary>
    public static BuildInfo BuildInfo
    {
        get
        {
            Initialize();
            return s_buildInfo!;
        }
    }

    /// <summary>The number of CUDA devices; 0 without CUDA support in the library, without a driver or without a device.</summary>
    public static unsafe int DeviceCount
    {
        get
        {
            Initialize();
            int count;
            NativeStatus.Check(NativeMethods.mc_get_device_count(&count));
            return count;
        }
    }

    /// <summary>Reads the properties of a CUDA device.</summary>
    /// <param name="device">The device index, 0 .. <see cref="DeviceCount"/> - 1.</param>
    /// <returns>The device's properties.</returns>
    /// <exception cref="MoeCutlassNoDeviceException">No such device, no CUDA support or no driver.</exception>
    public static unsafe DeviceInfo GetDeviceInfo(int device)
    {
        Initialize();
        mc_device_info info = default;
        info.struct_size = (uint)sizeof(mc_device_info);
        NativeStatus.Check(NativeMethods.mc_get_device_info(device, &info));
        return new DeviceInfo(
            info.device,
            NativeStatus.FromFixed(info.name, 256),
            info.compute_major,
            info.compute_minor,
            info.multiprocessors,
            info.total_memory_bytes,
            info.l2_cache_bytes,
            info.shared_memory_per_block_optin,
            info.memory_bus_width_bits,
            info.memory_clock_khz,
            info.peak_memory_bandwidth_gbps,
            NativeStatus.FromFixed(info.gpu_class, 64),
            info.peak_fp8_dense_tflops,
            info.datasheet_bandwidth_gbps,
            info.has_sm90a != 0);
    }

    /// <summary>
    /// The library's kernel-configuration registry, by index: every configuration a plan can launch or be told to
    /// use (<see cref="GroupedGemmOptions.Configurations"/>). Read once.
    /// </summary>
    public static IReadOnlyList<KernelConfiguration> KernelConfigurations
    {
        get
        {
            Initialize();
            return s_kernelConfigurations ??= KernelConfiguration.ReadRegistry();
        }
    }

    /// <summary>The registry row named <paramref name="name"/>.</summary>
    /// <param name="name">A configuration name, e.g. <c>tile_128x128x128_c1x2_cooperative</c>.</param>
    /// <returns>The configuration.</returns>
    /// <exception cref="ArgumentException">No configuration has that name (the message lists them).</exception>
    public static KernelConfiguration FindKernelConfiguration(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return KernelConfigurations.FirstOrDefault(c => c.Name == name)
            ?? throw new ArgumentException(
                $"'{name}' is not a kernel configuration of this library; known: {string.Join(", ", KernelConfigurations.Select(c => c.Name))}.",
                nameof(name));
    }

    /// <summary>The native symbolic name of a status, e.g. "MC_STATUS_OUT_OF_RANGE".</summary>
    /// <param name="status">The status.</param>
    /// <returns>The name the native library gives it (a managed spelling for codes it does not know).</returns>
    public static string GetStatusName(MoeStatus status)
    {
        Initialize();
        return NativeStatus.StatusName((int)status);
    }

    private static unsafe void CheckAbiVersion()
    {
        int abi = -1;
        int status = NativeMethods.mc_get_abi_version(&abi);
        if (status != NativeConstants.MC_STATUS_OK)
        {
            throw new MoeCutlassLibraryException(
                $"mc_get_abi_version failed with status {status} in the native library {NativeLibraryLoader.LoadedPath}.");
        }

        var mismatch = CheckAbiVersion(NativeLibraryLoader.LoadedPath ?? NativeLibraryLoader.PlatformFileName, abi);
        if (mismatch is not null)
        {
            throw mismatch;
        }
    }

    /// <summary>The exception for a library whose ABI version differs from the bindings' (null when they match).</summary>
    internal static MoeCutlassLibraryException? CheckAbiVersion(string path, int nativeAbiVersion) =>
        nativeAbiVersion == NativeConstants.MC_ABI_VERSION
            ? null
            : new MoeCutlassLibraryException(
                $"The native library {path} has ABI version {nativeAbiVersion}, but this MoeCutlass assembly needs ABI version " +
                $"{NativeConstants.MC_ABI_VERSION}. Use the native library from the same release as the assembly.");

    private static unsafe BuildInfo ReadBuildInfo()
    {
        mc_build_info info = default;
        info.struct_size = (uint)sizeof(mc_build_info);
        int status = NativeMethods.mc_get_build_info(&info);
        if (status != NativeConstants.MC_STATUS_OK)
        {
            var inner = NativeStatus.Create(status);
            throw new MoeCutlassLibraryException($"mc_get_build_info failed: {inner.Message}", inner);
        }

        return new BuildInfo(
            NativeStatus.FromFixed(info.version, 64),
            NativeStatus.FromFixed(info.git_commit, 48),
            info.abi_version,
            info.has_cuda != 0,
            NativeStatus.FromFixed(info.cuda_architectures, 64),
            NativeStatus.FromFixed(info.compiler, 64));
    }
}
