using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>The compute backend of a <see cref="MoeContext"/>.</summary>
public enum Backend
{
    /// <summary>The CPU reference backend: always present, accumulates in double precision, slow.</summary>
    Cpu = NativeConstants.MC_BACKEND_CPU,

    /// <summary>The CUDA SM90a (Hopper) backend.</summary>
    Cuda = NativeConstants.MC_BACKEND_CUDA,
}

/// <summary>Element types understood by the native library (<c>MC_DTYPE_*</c>).</summary>
public enum DType
{
    /// <summary>IEEE 754 binary32 (<see cref="float"/>).</summary>
    Float32 = NativeConstants.MC_DTYPE_FP32,

    /// <summary>bfloat16 (<see cref="MoeCutlass.BFloat16"/>).</summary>
    BFloat16 = NativeConstants.MC_DTYPE_BF16,

    /// <summary>
    /// IEEE 754 binary16 (<see cref="System.Half"/>): largest finite value 65504; results and conversions that round
    /// beyond it become positive or negative infinity (no saturation).
    /// </summary>
    Float16 = NativeConstants.MC_DTYPE_FP16,

    /// <summary>OCP FP8 e4m3 (finite-only, max 448, NaN = 0x7F/0xFF), stored as <see cref="byte"/>.</summary>
    Float8E4M3 = NativeConstants.MC_DTYPE_E4M3,
}

/// <summary>How a grouped-GEMM plan chooses its kernel configurations.</summary>
public enum GemmStrategy
{
    /// <summary>The library chooses per call.</summary>
    Auto = NativeConstants.MC_STRATEGY_AUTO,

    /// <summary>One kernel configuration for every expert.</summary>
    Single = NativeConstants.MC_STRATEGY_SINGLE,

    /// <summary>A configuration per expert, chosen on the device from the expert's row count.</summary>
    ExpertSpecialized = NativeConstants.MC_STRATEGY_EXPERT_SPECIALIZED,

    /// <summary>
    /// One persistent kernel over the base pointers and the device expert offsets: no per-expert pointer arrays and
    /// no precompute kernel. Runs every configuration (swap-AB included), chosen per call from the average rows per
    /// expert by the GPU class's persistent table; a forced list of several configurations runs expert specialization
    /// inside it (one launch per configuration, each walking only its experts).
    /// </summary>
    Persistent = NativeConstants.MC_STRATEGY_PERSISTENT,

    /// <summary>
    /// Dequantize A and B to bf16, then cuBLAS (one grouped GEMM call, or a GEMM per expert where each expert's GEMM
    /// is large): no kernel configuration of the registry (cuBLAS picks its own), so a plan of it reports none and takes no <see cref="GroupedGemmOptions.Configurations"/>. The one
    /// strategy that copies the expert offsets to the host and synchronises with the run's stream, so it cannot run
    /// under CUDA-graph capture. <see cref="Auto"/> never chooses it on SM90a devices and chooses it on devices without
    /// SM90a (<see cref="DeviceInfo.HasSm90a"/> false). The CPU reference backend runs it (the same math as every
    /// strategy). The CUDA backend loads cuBLAS 12.5 or later at run time; without one, creating a CUDA plan or MoE
    /// layer of it throws <see cref="MoeCutlassUnsupportedException"/> naming what was tried. A run refuses bad
    /// offsets and a capturing stream before writing anything.
    /// </summary>
    Cublas = NativeConstants.MC_STRATEGY_CUBLAS,
}

/// <summary>Status codes of the native library (<c>MC_STATUS_*</c>), with the same numeric values.</summary>
public enum MoeStatus
{
    /// <summary>Success.</summary>
    Ok = NativeConstants.MC_STATUS_OK,

    /// <summary>A required pointer argument is null.</summary>
    NullPointer = NativeConstants.MC_STATUS_NULL_POINTER,

    /// <summary>An integer argument is outside its documented range.</summary>
    OutOfRange = NativeConstants.MC_STATUS_OUT_OF_RANGE,

    /// <summary>A size or pointer breaks an alignment rule (K % 16, N % 8, 16-byte pointers).</summary>
    Misaligned = NativeConstants.MC_STATUS_MISALIGNED,

    /// <summary>An unknown dtype, or one the operation does not take.</summary>
    InvalidDtype = NativeConstants.MC_STATUS_INVALID_DTYPE,

    /// <summary>An unknown grouped-GEMM strategy.</summary>
    InvalidStrategy = NativeConstants.MC_STATUS_INVALID_STRATEGY,

    /// <summary>An unknown backend.</summary>
    InvalidBackend = NativeConstants.MC_STATUS_INVALID_BACKEND,

    /// <summary>A handle that was destroyed or never created.</summary>
    InvalidHandle = NativeConstants.MC_STATUS_INVALID_HANDLE,

    /// <summary>A handle (plan, stream, event) used with another context.</summary>
    ContextMismatch = NativeConstants.MC_STATUS_CONTEXT_MISMATCH,

    /// <summary>Expert offsets that are not monotonic, negative, or beyond the rows.</summary>
    InvalidOffsets = NativeConstants.MC_STATUS_INVALID_OFFSETS,

    /// <summary>A pointer into a library allocation whose remaining bytes cannot hold the tensor.</summary>
    BufferTooSmall = NativeConstants.MC_STATUS_BUFFER_TOO_SMALL,

    /// <summary>A descriptor's <c>struct_size</c> is not one this library version understands.</summary>
    InvalidStructSize = NativeConstants.MC_STATUS_INVALID_STRUCT_SIZE,

    /// <summary>Any other invalid argument (the message says which).</summary>
    InvalidArgument = NativeConstants.MC_STATUS_INVALID_ARGUMENT,

    /// <summary>An event or stream has pending work (not an error for queries).</summary>
    NotReady = NativeConstants.MC_STATUS_NOT_READY,

    /// <summary>
    /// The grouped-GEMM plan is already running: another thread's run of the same plan has not returned. Runs of one
    /// plan must not overlap; order them, or use one plan per concurrent stream.
    /// </summary>
    Busy = NativeConstants.MC_STATUS_BUSY,

    /// <summary>A valid request that this build or device cannot do (e.g. built without CUDA).</summary>
    Unsupported = NativeConstants.MC_STATUS_UNSUPPORTED,

    /// <summary>No CUDA driver, no device, or the device index does not exist.</summary>
    NoDevice = NativeConstants.MC_STATUS_NO_DEVICE,

    /// <summary>A host or device allocation failed.</summary>
    OutOfMemory = NativeConstants.MC_STATUS_OUT_OF_MEMORY,

    /// <summary>A sticky device error: the context is unusable and must be destroyed.</summary>
    DeviceFault = NativeConstants.MC_STATUS_DEVICE_FAULT,

    /// <summary>Any other CUDA runtime error (the message names the error and the call).</summary>
    CudaError = NativeConstants.MC_STATUS_CUDA_ERROR,

    /// <summary>A bug: an exception or invariant failure inside the library.</summary>
    Internal = NativeConstants.MC_STATUS_INTERNAL,
}

/// <summary>Bits of a context's device-side error flag (see <see cref="MoeContext.QueryDeviceErrors"/>).</summary>
[Flags]
public enum DeviceErrorFlags
{
    /// <summary>No error was recorded.</summary>
    None = 0,

    /// <summary>Expert offsets decreased somewhere; the device clamped them.</summary>
    OffsetsNotMonotonic = NativeConstants.MC_DEVICE_ERROR_OFFSETS_NOT_MONOTONIC,

    /// <summary>An expert offset was negative; the device clamped it.</summary>
    OffsetsNegative = NativeConstants.MC_DEVICE_ERROR_OFFSETS_NEGATIVE,

    /// <summary>An expert offset was beyond the rows of the call; the device clamped it.</summary>
    OffsetsBeyondRows = NativeConstants.MC_DEVICE_ERROR_OFFSETS_BEYOND_ROWS,

    /// <summary>
    /// An MoE layer's precomputed top-k id was outside 0 .. TotalExperts-1; the device skipped that slot (it contributed
    /// nothing). The CPU backend rejects such ids instead (<see cref="MoeStatus.InvalidArgument"/>).
    /// </summary>
    TopKIdOutOfRange = NativeConstants.MC_DEVICE_ERROR_TOPK_ID_OUT_OF_RANGE,

    /// <summary>
    /// An MoE layer's precomputed top-k ids repeated an expert within one token; the device added that expert once per
    /// slot. The CPU backend rejects such ids instead (<see cref="MoeStatus.InvalidArgument"/>).
    /// </summary>
    TopKIdDuplicate = NativeConstants.MC_DEVICE_ERROR_TOPK_ID_DUPLICATE,
}

/// <summary>
/// How an <see cref="MoeLayer"/> chooses each token's experts (<c>MC_ROUTING_*</c>; ONNX Runtime's com.microsoft.MoE
/// routes from logits like <see cref="SoftmaxTopK"/>).
/// </summary>
public enum MoeRoutingMode
{
    /// <summary>
    /// From router logits [tokens, TotalExperts]: the TopK largest logits (ties to the lower expert id), weighted by the
    /// softmax over all logits, or over the chosen TopK with <see cref="MoeLayerOptions.NormalizeRoutingWeights"/>.
    /// Called with <see cref="MoeLayer.Forward"/>.
    /// </summary>
    SoftmaxTopK = NativeConstants.MC_ROUTING_SOFTMAX_TOPK,

    /// <summary>
    /// The caller routes: top-k expert ids (int32) and weights (fp32) [tokens, TopK], used as given. Called with
    /// <see cref="MoeLayer.ForwardPrecomputed"/>.
    /// </summary>
    Precomputed = NativeConstants.MC_ROUTING_PRECOMPUTED,
}

/// <summary>The activation between an <see cref="MoeLayer"/>'s two GEMMs (<c>MC_ACTIVATION_*</c>; ONNX Runtime's <c>activation_type</c>).</summary>
public enum MoeActivation
{
    /// <summary>GEMM1's rows are [gate | up] (2 * Intermediate columns); h = silu(gate) * up (SwiGLU: Mixtral, DeepSeek, Qwen).</summary>
    SiluAndMul = NativeConstants.MC_ACTIVATION_SILU_AND_MUL,
}

/// <summary>
/// How a layer is split across the ranks of an <see cref="MoeCommunicator"/> (<c>MC_PARALLEL_*</c>; issue 16,
/// docs/design/multi-gpu.md).
/// </summary>
public enum MoeParallelMode
{
    /// <summary>
    /// Tensor parallel: every rank holds every expert with a 1/W slice of the intermediate size
    /// (<see cref="MoeLayerOptions.Intermediate"/> is I/W, a multiple of 128), runs the layer on all tokens and the fp32
    /// partial outputs are summed across the ranks (all-reduce).
    /// </summary>
    Tensor = NativeConstants.MC_PARALLEL_TENSOR,

    /// <summary>
    /// Expert parallel: rank r holds experts r E/W .. (r+1) E/W - 1 (<see cref="MoeLayerOptions.FirstExpert"/>,
    /// <see cref="MoeLayerOptions.LocalExperts"/>); each rank passes up to <see cref="MoeParallelism.TokensPerRank"/> of
    /// its own tokens, which are all-gathered, run through every rank's experts and reduce-scattered back.
    /// </summary>
    Expert = NativeConstants.MC_PARALLEL_EXPERT,
}
