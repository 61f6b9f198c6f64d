using Microsoft.Extensions.Logging;

namespace MoeCutlass;

/// <summary>
/// The stable event ids of everything MoeCutlass logs, for filtering. Categories: <c>MoeCutlass.MoeCutlassLibrary</c>,
/// <c>MoeCutlass.MoeContext</c>, <c>MoeCutlass.GroupedGemmPlan</c>, <c>MoeCutlass.MoeLayer</c>, <c>MoeCutlass.MoeGraph</c>.
/// </summary>
public static class MoeCutlassLogEvents
{
    /// <summary>The native library was loaded (path, version, ABI version, CUDA support). Information.</summary>
    public const int LibraryLoaded = 1000;

    /// <summary>A context was created (backend, device, CPU threads, device name). Information.</summary>
    public const int ContextCreated = 1100;

    /// <summary>A context was disposed (backend, device). Information.</summary>
    public const int ContextDestroyed = 1101;

    /// <summary>A CUDA context could not be created because there is no device or no CUDA support. Debug.</summary>
    public const int CudaUnavailable = 1102;

    /// <summary>
    /// A grouped-GEMM plan was created (E, N, K, output dtype, strategy, where its selection came from, kernels,
    /// workspace). Information. The selection says why <see cref="GemmStrategy.Auto"/> runs cuBLAS where it does.
    /// </summary>
    public const int PlanCreated = 1200;

    /// <summary>A grouped-GEMM plan was disposed. Debug.</summary>
    public const int PlanDestroyed = 1201;

    /// <summary>An <see cref="GemmStrategy.Auto"/> plan chose what one run executes (Debug).</summary>
    public const int AutoStrategyChosen = 1202;

    /// <summary>An MoE layer was created (shape, routing, dtypes, strategy, both GEMMs' kernels, workspace). Information.</summary>
    public const int MoeLayerCreated = 1250;

    /// <summary>An MoE layer was disposed. Debug.</summary>
    public const int MoeLayerDestroyed = 1251;

    /// <summary>The CPU reference backend was asked for a large problem. Warning.</summary>
    public const int CpuBackendLargeProblem = 1300;

    /// <summary>A device error flag (clamped expert offsets, skipped or repeated top-k ids) was found set. Warning.</summary>
    public const int DeviceErrorFlagsSet = 1301;

    /// <summary>A stream's capture ended in an executable CUDA graph (backend, device). Debug.</summary>
    public const int GraphCaptured = 1400;
}

/// <summary>Source-generated log methods (no boxing, no work unless the level is enabled).</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = MoeCutlassLogEvents.LibraryLoaded, EventName = "LibraryLoaded", Level = LogLevel.Information,
        Message = "Loaded MoeCutlass native library {Path} version {Version} (ABI {AbiVersion}, CUDA {HasCuda}, architectures '{CudaArchitectures}')")]
    public static partial void LibraryLoaded(ILogger logger, string path, string version, int abiVersion, bool hasCuda, string cudaArchitectures);

    [LoggerMessage(EventId = MoeCutlassLogEvents.ContextCreated, EventName = "ContextCreated", Level = LogLevel.Information,
        Message = "Created MoeCutlass {Backend} context on device {Device} ({DeviceName}, {CpuThreads} CPU threads)")]
    public static partial void ContextCreated(ILogger logger, Backend backend, int device, string deviceName, int cpuThreads);

    [LoggerMessage(EventId = MoeCutlassLogEvents.ContextDestroyed, EventName = "ContextDestroyed", Level = LogLevel.Information,
        Message = "Disposed MoeCutlass {Backend} context on device {Device}; native resources are released once its buffers, streams, events and plans are disposed too")]
    public static partial void ContextDestroyed(ILogger logger, Backend backend, int device);

    [LoggerMessage(EventId = MoeCutlassLogEvents.CudaUnavailable, EventName = "CudaUnavailable", Level = LogLevel.Debug,
        Message = "No CUDA context for device {Device}: {Reason}")]
    public static partial void CudaUnavailable(ILogger logger, int device, string reason);

    [LoggerMessage(EventId = MoeCutlassLogEvents.PlanCreated, EventName = "PlanCreated", Level = LogLevel.Information,
        Message = "Created grouped GEMM plan E={Experts} N={N} K={K} output {OutputDType} strategy {Strategy} max rows {MaxRows} on {Backend}: selection {Selection}, kernels [{Kernels}], workspace {WorkspaceBytes} bytes")]
    public static partial void PlanCreated(ILogger logger, int experts, int n, int k, DType outputDType, GemmStrategy strategy, int maxRows,
        Backend backend, string selection, string kernels, long workspaceBytes);

    [LoggerMessage(EventId = MoeCutlassLogEvents.PlanDestroyed, EventName = "PlanDestroyed", Level = LogLevel.Debug,
        Message = "Disposed grouped GEMM plan E={Experts} N={N} K={K}")]
    public static partial void PlanDestroyed(ILogger logger, int experts, int n, int k);

    [LoggerMessage(EventId = MoeCutlassLogEvents.AutoStrategyChosen, EventName = "AutoStrategyChosen", Level = LogLevel.Debug,
        Message = "Auto grouped GEMM E={Experts} N={N} K={K}: run of {Rows} rows executes {Launch}")]
    public static partial void AutoStrategyChosen(ILogger logger, int experts, int n, int k, int rows, string launch);

    [LoggerMessage(EventId = MoeCutlassLogEvents.MoeLayerCreated, EventName = "MoeLayerCreated", Level = LogLevel.Information,
        Message = "Created MoE layer experts {FirstExpert}..{LastExpert} of {TotalExperts} top-{TopK} H={Hidden} I={Intermediate} routing {Routing} input {InputDType} output {OutputDType} max tokens {MaxTokens} strategy {Strategy} on {Backend}: GEMM1 kernels [{Gemm1Kernels}], GEMM2 kernels [{Gemm2Kernels}], workspace {WorkspaceBytes} bytes")]
    public static partial void MoeLayerCreated(ILogger logger, int firstExpert, int lastExpert, int totalExperts, int topK, int hidden,
        int intermediate, MoeRoutingMode routing, DType inputDType, DType outputDType, int maxTokens, GemmStrategy strategy, Backend backend,
        string gemm1Kernels, string gemm2Kernels, long workspaceBytes);

    [LoggerMessage(EventId = MoeCutlassLogEvents.MoeLayerDestroyed, EventName = "MoeLayerDestroyed", Level = LogLevel.Debug,
        Message = "Disposed MoE layer experts {FirstExpert}..{LastExpert} of {TotalExperts} H={Hidden} I={Intermediate}")]
    public static partial void MoeLayerDestroyed(ILogger logger, int firstExpert, int lastExpert, int totalExperts, int hidden, int intermediate);

    [LoggerMessage(EventId = MoeCutlassLogEvents.CpuBackendLargeProblem, EventName = "CpuBackendLargeProblem", Level = LogLevel.Warning,
        Message = "The CPU reference backend was asked for a grouped GEMM of up to {GigaFlop:F1} GFLOP per run (max rows {MaxRows}, N={N}, K={K}); it is a slow double-precision reference, use a CUDA context for real workloads")]
    public static partial void CpuBackendLargeProblem(ILogger logger, double gigaFlop, int maxRows, int n, int k);

    [LoggerMessage(EventId = MoeCutlassLogEvents.DeviceErrorFlagsSet, EventName = "DeviceErrorFlagsSet", Level = LogLevel.Warning,
        Message = "Device error flags set on {Backend} context device {Device}: {Flags}; the device clamped bad expert offsets or skipped bad top-k ids")]
    public static partial void DeviceErrorFlagsSet(ILogger logger, Backend backend, int device, DeviceErrorFlags flags);

    [LoggerMessage(EventId = MoeCutlassLogEvents.GraphCaptured, EventName = "GraphCaptured", Level = LogLevel.Debug,
        Message = "Captured a CUDA graph on {Backend} context device {Device}")]
    public static partial void GraphCaptured(ILogger logger, Backend backend, int device);
}
