using Microsoft.Extensions.Logging;
using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>
/// The fixed shape and choices of an <see cref="MoeLayer"/>. Names follow ONNX Runtime's com.microsoft.MoE where they
/// overlap (<c>k</c> = <see cref="TopK"/>, <c>activation_type</c> = <see cref="Activation"/>,
/// <c>normalize_routing_weights</c> = <see cref="NormalizeRoutingWeights"/>).
/// </summary>
/// <param name="TotalExperts">Experts the router chooses from (logit columns), 1 .. 4096.</param>
/// <param name="TopK">Experts per token, 1 .. min(TotalExperts, 32).</param>
/// <param name="Hidden">H: the model width, GEMM1's K and GEMM2's N; a positive multiple of 16.</param>
/// <param name="Intermediate">I: each expert's intermediate size, GEMM2's K (GEMM1 has 2I columns); a positive multiple of 16.</param>
/// <param name="MaxTokens">The largest token count a forward call passes (sizes the workspace), at least 0;
/// MaxTokens * TopK must fit in int32.</param>
/// <remarks>The library validates every value when the layer is created; this record checks nothing itself.</remarks>
public sealed record MoeLayerOptions(int TotalExperts, int TopK, int Hidden, int Intermediate, int MaxTokens)
{
    private readonly int? _localExperts;

    /// <summary>Global id of the first expert this layer holds (expert parallelism), 0 .. TotalExperts-1. Default 0.</summary>
    public int FirstExpert { get; init; }

    /// <summary>
    /// E: the experts whose weights this layer holds, global ids FirstExpert .. FirstExpert + E - 1 (FirstExpert + E &lt;=
    /// TotalExperts). Default: TotalExperts - FirstExpert (every expert from FirstExpert on; all of them when FirstExpert
    /// is 0). Slots routed to experts outside the slice contribute nothing, so the slices' outputs sum to the whole layer's.
    /// </summary>
    public int LocalExperts
    {
        get => _localExperts ?? TotalExperts - FirstExpert;
        init => _localExperts = value;
    }

    /// <summary>How tokens are routed. Default <see cref="MoeRoutingMode.SoftmaxTopK"/>.</summary>
    public MoeRoutingMode Routing { get; init; } = MoeRoutingMode.SoftmaxTopK;

    /// <summary>
    /// With <see cref="MoeRoutingMode.SoftmaxTopK"/>: weight the chosen experts by the softmax over the TopK chosen logits
    /// (they sum to 1, as Mixtral and Qwen3 do) instead of over all logits. Ignored for precomputed routing. Default false
    /// (ONNX Runtime's default).
    /// </summary>
    public bool NormalizeRoutingWeights { get; init; }

    /// <summary>The activation between the GEMMs. Default <see cref="MoeActivation.SiluAndMul"/>.</summary>
    public MoeActivation Activation { get; init; } = MoeActivation.SiluAndMul;

    /// <summary>The dtype of the hidden states [tokens, H]: <see cref="DType.BFloat16"/> (default), <see cref="DType.Float16"/> or <see cref="DType.Float32"/>.</summary>
    public DType InputDType { get; init; } = DType.BFloat16;

    /// <summary>The dtype of the router logits [tokens, TotalExperts]: <see cref="DType.Float32"/> (default), BFloat16 or Float16; ignored for precomputed routing.</summary>
    public DType LogitsDType { get; init; } = DType.Float32;

    /// <summary>The dtype of the output [tokens, H]: <see cref="DType.BFloat16"/> (default) or <see cref="DType.Float16"/>
    /// (overflows to ±infinity beyond 65504), or <see cref="DType.Float32"/>.</summary>
    public DType OutputDType { get; init; } = DType.BFloat16;

    /// <summary>
    /// The grouped-GEMM strategy of both GEMMs. Default <see cref="GemmStrategy.Auto"/>. With
    /// <see cref="GemmStrategy.Cublas"/> a forward call synchronises with the host and cannot be captured.
    /// </summary>
    public GemmStrategy Strategy { get; init; } = GemmStrategy.Auto;

    /// <summary>
    /// One rank of a tensor- or expert-parallel layer across GPUs (issue 16), or null (the default) for a layer on one
    /// device. The other options keep their per-rank meaning: <see cref="Intermediate"/> is I/W for
    /// <see cref="MoeParallelMode.Tensor"/>; <see cref="FirstExpert"/> and <see cref="LocalExperts"/> are the rank's slice
    /// for <see cref="MoeParallelMode.Expert"/>. Forward calls are collective: every rank makes the same ones, in order.
    /// Needs a CUDA context and NCCL (<see cref="MoeCommunicator"/>).
    /// </summary>
    public MoeParallelism? Parallel { get; init; }

    /// <summary>The largest number of expert rows (token-expert pairs) a forward call makes: MaxTokens * TopK.</summary>
    public long MaxRows => (long)MaxTokens * TopK;

    /// <summary>Elements (e4m3 bytes) of W13 [E, 2I, H]: rows 0 .. I-1 of each expert are the gate projection, I .. 2I-1 the up projection.</summary>
    public long W13Elements => (long)LocalExperts * 2 * Intermediate * Hidden;

    /// <summary>Elements (fp32) of the W13 scales [E, ceil(2I/128), ceil(H/128)].</summary>
    public long W13ScaleElements => (long)LocalExperts * MoeContext.ScaleBlocks(2 * Intermediate) * MoeContext.ScaleBlocks(Hidden);

    /// <summary>Elements (e4m3 bytes) of W2 [E, H, I].</summary>
    public long W2Elements => (long)LocalExperts * Hidden * Intermediate;

    /// <summary>Elements (fp32) of the W2 scales [E, ceil(H/128), ceil(I/128)].</summary>
    public long W2ScaleElements => (long)LocalExperts * MoeContext.ScaleBlocks(Hidden) * MoeContext.ScaleBlocks(Intermediate);

    /// <summary>Elements of the hidden states for <paramref name="tokens"/> tokens: tokens * H.</summary>
    /// <param name="tokens">The tokens of a forward call.</param>
    /// <returns>The element count.</returns>
    public long HiddenElements(int tokens) => (long)tokens * Hidden;

    /// <summary>Elements of the router logits for <paramref name="tokens"/> tokens: tokens * TotalExperts.</summary>
    /// <param name="tokens">The tokens of a forward call.</param>
    /// <returns>The element count.</returns>
    public long LogitElements(int tokens) => (long)tokens * TotalExperts;

    /// <summary>Elements of the precomputed top-k ids or weights for <paramref name="tokens"/> tokens: tokens * TopK.</summary>
    /// <param name="tokens">The tokens of a forward call.</param>
    /// <returns>The element count.</returns>
    public long TopKElements(int tokens) => (long)tokens * TopK;

    /// <summary>Elements of the output for <paramref name="tokens"/> tokens: tokens * H.</summary>
    /// <param name="tokens">The tokens of a forward call.</param>
    /// <returns>The element count.</returns>
    public long OutputElements(int tokens) => (long)tokens * Hidden;

    /// <summary>Bytes of one expert's weights as the GEMMs stream them: e4m3 W13 and W2 plus their fp32 scales.</summary>
    public long ExpertWeightBytes =>
        3L * Intermediate * Hidden
        + 4L * (MoeContext.ScaleBlocks(2 * Intermediate) * (long)MoeContext.ScaleBlocks(Hidden)
                + MoeContext.ScaleBlocks(Hidden) * (long)MoeContext.ScaleBlocks(Intermediate));

    /// <summary>
    /// Bytes of weights a forward call reads when <paramref name="activeExperts"/> local experts receive at least one
    /// token (each active expert's W13, W2 and scales once): the memory traffic that bounds a small-batch forward call.
    /// </summary>
    /// <param name="activeExperts">Local experts with at least one row, 0 .. LocalExperts.</param>
    /// <returns>The byte count.</returns>
    public long WeightStreamBytes(int activeExperts) => activeExperts * ExpertWeightBytes;

    /// <summary>
    /// The expected number of local experts that receive at least one of <paramref name="tokens"/> tokens when routing
    /// is uniform: LocalExperts * (1 - (1 - TopK / TotalExperts)^tokens). With <see cref="WeightStreamBytes"/>, the
    /// weight traffic of a benchmark's random routing.
    /// </summary>
    /// <param name="tokens">The tokens of a forward call.</param>
    /// <returns>The expected active experts.</returns>
    public double ExpectedActiveExperts(int tokens) =>
        LocalExperts * (1.0 - Math.Pow(1.0 - (double)TopK / TotalExperts, tokens));

    /// <summary>
    /// Floating-point operations of both GEMMs for <paramref name="rows"/> expert rows (token-expert pairs routed to local
    /// experts; tokens * TopK for a layer that holds every expert): 2 * rows * 2I * H + 2 * rows * H * I.
    /// </summary>
    /// <param name="rows">Rows routed to local experts.</param>
    /// <returns>The operation count.</returns>
    public double Flops(long rows) => 6.0 * rows * Hidden * Intermediate;

    /// <summary>The options of GEMM1 (N = 2I, K = H) as a grouped-GEMM plan would take them.</summary>
    public GroupedGemmOptions Gemm1Options => new(LocalExperts, 2 * Intermediate, Hidden, DType.BFloat16, Strategy, (int)Math.Min(MaxRows, int.MaxValue));

    /// <summary>The options of GEMM2 (N = H, K = I) as a grouped-GEMM plan would take them.</summary>
    public GroupedGemmOptions Gemm2Options => new(LocalExperts, Hidden, Intermediate, DType.BFloat16, Strategy, (int)Math.Min(MaxRows, int.MaxValue));
}

/// <summary>
/// A whole Mixture-of-Experts layer on one context: route (softmax top-k from router logits, or precomputed ids and
/// weights), permute, gather and quantize to FP8, GEMM1 (W13 = [gate | up]), SiLU-and-mul and requantize, GEMM2 (W2),
/// weighted combine, all on the context's device with no host synchronization (a forward call can be captured into a
/// CUDA graph; not with <see cref="GemmStrategy.Cublas"/>, whose GEMMs read the expert offsets on the host). Created with <see cref="MoeContext.CreateMoeLayer"/> or <see cref="MoeContext.CreateMoeLayerFromHost(MoeLayerOptions, ReadOnlySpan{float}, ReadOnlySpan{float}, MoeStream?)"/>.
/// </summary>
/// <remarks>
/// <para>For each token t with experts e_j and weights w_j: output[t] = Σ_j w_j · y_j over the local experts, with
/// y_j = fp8(h_j) · W2[e_j]ᵀ, h_j = silu(gate) * up, [gate | up] = fp8(hidden[t]) · W13[e_j]ᵀ rounded to bf16. A token
/// whose experts all lie outside the layer's slice gets zeros. The same inputs give the same bits on every call.</para>
/// <para><b>Weights.</b> The layer reads its four weight buffers at every forward call. It holds a reference on each: a
/// caller's <see cref="DeviceBuffer.Dispose()"/> (or the garbage collector) marks such a buffer disposed, but its memory is
/// freed only after the layer is disposed. The contents must not change while the layer is used.</para>
/// <para><b>Concurrency.</b> Used like a <see cref="GroupedGemmPlan"/>: forward calls of one layer must not overlap
/// (<see cref="MoeStatus.Busy"/> for a concurrent call from another thread); use one layer per concurrent stream.</para>
/// <para><b>Lifetime.</b> Like every child of a context, the layer keeps the native context alive and stays usable after
/// the context's <see cref="MoeContext.Dispose"/>; the native context is destroyed once the layer is disposed too.</para>
/// </remarks>
public sealed class MoeLayer : IDisposable
{
    private readonly ILogger _logger;
    private readonly DeviceBuffer[] _ownedWeights;

    internal MoeLayer(MoeContext context, MoeLayerHandle handle, MoeLayerOptions options, DeviceBuffer<byte> w13, DeviceBuffer<float> w13Scales,
        DeviceBuffer<byte> w2, DeviceBuffer<float> w2Scales, bool ownsWeights, in mc_moe_layer_info info)
    {
        Context = context;
        Handle = handle;
        Options = options;
        W13 = w13;
        W13Scales = w13Scales;
        W2 = w2;
        W2Scales = w2Scales;
        OwnsWeights = ownsWeights;
        _ownedWeights = ownsWeights ? [w13, w13Scales, w2, w2Scales] : [];
        WorkspaceBytes = info.workspace_bytes;
        unsafe
        {
            fixed (byte* gemm1 = info.gemm1_kernels, gemm2 = info.gemm2_kernels)
            {
                Gemm1KernelList = NativeStatus.FromFixed(gemm1, 256);
                Gemm2KernelList = NativeStatus.FromFixed(gemm2, 256);
            }
        }

        _logger = context.LoggerFactory.CreateLogger(LoggerCategory);
        Log.MoeLayerCreated(_logger, options.FirstExpert, options.FirstExpert + options.LocalExperts - 1, options.TotalExperts, options.TopK,
            options.Hidden, options.Intermediate, options.Routing, options.InputDType, options.OutputDType, options.MaxTokens, options.Strategy,
            context.Backend, Gemm1KernelList, Gemm2KernelList, WorkspaceBytes);
    }

    /// <summary>The logger category of layer events.</summary>
    internal const string LoggerCategory = "MoeCutlass.MoeLayer";

    /// <summary>The options the layer was created with.</summary>
    public MoeLayerOptions Options { get; }

    /// <summary>The context that owns the layer.</summary>
    public MoeContext Context { get; }

    /// <summary>Bytes of workspace (device memory on CUDA) the layer owns, sized from <see cref="MoeLayerOptions.MaxTokens"/>.</summary>
    public long WorkspaceBytes { get; }

    /// <summary>The kernel configurations GEMM1 may launch (registry names).</summary>
    public IReadOnlyList<string> Gemm1Kernels => Split(Gemm1KernelList);

    /// <summary>The kernel configurations GEMM2 may launch (registry names).</summary>
    public IReadOnlyList<string> Gemm2Kernels => Split(Gemm2KernelList);

    /// <summary>GEMM1's configuration names, ';'-separated.</summary>
    public string Gemm1KernelList { get; }

    /// <summary>GEMM2's configuration names, ';'-separated.</summary>
    public string Gemm2KernelList { get; }

    /// <summary>The e4m3 W13 [E, 2I, H] the layer reads.</summary>
    public DeviceBuffer<byte> W13 { get; }

    /// <summary>The fp32 W13 scales [E, ceil(2I/128), ceil(H/128)].</summary>
    public DeviceBuffer<float> W13Scales { get; }

    /// <summary>The e4m3 W2 [E, H, I] the layer reads.</summary>
    public DeviceBuffer<byte> W2 { get; }

    /// <summary>The fp32 W2 scales [E, ceil(H/128), ceil(I/128)].</summary>
    public DeviceBuffer<float> W2Scales { get; }

    /// <summary>Whether the layer created its weight buffers (<see cref="MoeContext.CreateMoeLayerFromHost(MoeLayerOptions, ReadOnlySpan{float}, ReadOnlySpan{float}, MoeStream?)"/>)
    /// and disposes them with itself.</summary>
    public bool OwnsWeights { get; }

    /// <summary>Whether the layer was disposed.</summary>
    public bool IsDisposed => Handle.IsClosed;

    internal MoeLayerHandle Handle { get; }

    /// <summary>
    /// One forward step of a <see cref="MoeRoutingMode.SoftmaxTopK"/> layer, enqueued on <paramref name="stream"/>
    /// (asynchronous on CUDA). Allocates nothing and copies nothing to the host; a rejected call writes nothing.
    /// </summary>
    /// <param name="tokens">T, 0 .. <see cref="MoeLayerOptions.MaxTokens"/>.</param>
    /// <param name="hidden">[T, H] of the layer's input dtype: <see cref="BFloat16"/>, <see cref="Half"/> or <see cref="float"/>
    /// (<see cref="ushort"/> for the raw bits of a 16-bit dtype).</param>
    /// <param name="routerLogits">[T, TotalExperts] of the layer's logits dtype.</param>
    /// <param name="output">[T, H] of the layer's output dtype, overwritten; must not overlap the inputs.</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    /// <remarks>Before any native call the facade checks each buffer's element type (<see cref="MoeStatus.InvalidDtype"/>),
    /// context and, for 0 &lt;= tokens &lt;= MaxTokens, length (<see cref="MoeStatus.BufferTooSmall"/>); the exception's
    /// ParamName is the parameter. With tokens = 0 the buffers may be empty and nothing is written.</remarks>
    /// <exception cref="ArgumentNullException">A buffer is null.</exception>
    /// <exception cref="MoeCutlassArgumentException">The layer takes precomputed routing (ParamName <c>routerLogits</c>: call
    /// <see cref="ForwardPrecomputed"/>), a buffer has the wrong type or size or belongs to another context, or the library
    /// rejected the call (tokens, overlapping output, stream).</exception>
    /// <exception cref="ObjectDisposedException">The layer, a buffer or the stream was disposed.</exception>
    /// <exception cref="MoeCutlassException"><see cref="MoeStatus.Busy"/>: another thread's forward call of this layer has not returned.</exception>
    public void Forward(int tokens, DeviceBuffer hidden, DeviceBuffer routerLogits, DeviceBuffer output, MoeStream? stream = null)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        RunSoftmax(tokens, hidden, routerLogits, output, stream, null, nameof(ForwardPrecomputed));
    }

    /// <summary>
    /// One forward step of a <see cref="MoeRoutingMode.Precomputed"/> layer: the caller's top-k expert ids and weights,
    /// used as given. Enqueued on <paramref name="stream"/> (asynchronous on CUDA); a rejected call writes nothing.
    /// </summary>
    /// <param name="tokens">T, 0 .. <see cref="MoeLayerOptions.MaxTokens"/>.</param>
    /// <param name="hidden">[T, H] of the layer's input dtype.</param>
    /// <param name="topkIds">int32 [T, TopK] global expert ids, each in 0 .. TotalExperts-1 and distinct within a token.
    /// The CPU backend rejects others (<see cref="MoeStatus.InvalidArgument"/>, ParamName <c>topkIds</c>); a CUDA context
    /// cannot read them without waiting, so it skips out-of-range slots, adds a repeated expert once per slot, and raises
    /// <see cref="DeviceErrorFlags.TopKIdOutOfRange"/> / <see cref="DeviceErrorFlags.TopKIdDuplicate"/>
    /// (<see cref="MoeContext.QueryDeviceErrors"/>).</param>
    /// <param name="topkWeights">fp32 [T, TopK] routing weights.</param>
    /// <param name="output">[T, H] of the layer's output dtype, overwritten; must not overlap the inputs.</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    /// <exception cref="ArgumentNullException">A buffer is null.</exception>
    /// <exception cref="MoeCutlassArgumentException">The layer routes from logits (ParamName <c>topkIds</c>: call
    /// <see cref="Forward"/>), a buffer has the wrong type or size or belongs to another context, or the library rejected
    /// the call.</exception>
    /// <exception cref="ObjectDisposedException">The layer, a buffer or the stream was disposed.</exception>
    /// <exception cref="MoeCutlassException"><see cref="MoeStatus.Busy"/>: another thread's forward call of this layer has not returned.</exception>
    public void ForwardPrecomputed(int tokens, DeviceBuffer hidden, DeviceBuffer topkIds, DeviceBuffer topkWeights, DeviceBuffer output,
        MoeStream? stream = null)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        RunPrecomputed(tokens, hidden, topkIds, topkWeights, output, stream, null, nameof(Forward));
    }

    /// <summary>The events a timed forward call records (<see cref="ForwardTimed"/>): one before the first stage and one after
    /// each of the <see cref="MoeLayerStageEvents.StageNames"/> seven stages.</summary>
    public const int StageEventCount = NativeConstants.MC_MOE_LAYER_STAGE_EVENTS;

    /// <summary>
    /// <see cref="Forward"/>, with <paramref name="events"/> recorded on <paramref name="stream"/> at the stage boundaries:
    /// event 0 before the first stage, then after routing, the permutation, the gather + quantize, GEMM1, SiLU-and-mul +
    /// quantize, GEMM2 and the combine (7). Once the work completed, <see cref="MoeEvent.ElapsedMilliseconds"/> of
    /// consecutive events gives each stage's time (<see cref="MoeLayerStageEvents.StageMilliseconds"/>). The output is the
    /// same as <see cref="Forward"/>'s; recording costs a few microseconds of host time per event.
    /// </summary>
    /// <param name="tokens">As for <see cref="Forward"/>.</param>
    /// <param name="hidden">As for <see cref="Forward"/>.</param>
    /// <param name="routerLogits">As for <see cref="Forward"/>.</param>
    /// <param name="output">As for <see cref="Forward"/>.</param>
    /// <param name="events">Exactly <see cref="StageEventCount"/> events of the layer's context, e.g. a <see cref="MoeLayerStageEvents"/>.</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    /// <exception cref="ArgumentNullException"><paramref name="events"/>, one of its events or a buffer is null.</exception>
    /// <exception cref="MoeCutlassArgumentException">ParamName <c>events</c>: not <see cref="StageEventCount"/> events, or an
    /// event of another context; otherwise as for <see cref="Forward"/>.</exception>
    /// <exception cref="ObjectDisposedException">The layer, a buffer, an event or the stream was disposed.</exception>
    public void ForwardTimed(int tokens, DeviceBuffer hidden, DeviceBuffer routerLogits, DeviceBuffer output, IReadOnlyList<MoeEvent> events,
        MoeStream? stream = null)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        CheckEvents(events);
        RunSoftmax(tokens, hidden, routerLogits, output, stream, events, nameof(ForwardPrecomputedTimed));
    }

    /// <summary><see cref="ForwardPrecomputed"/>, with <paramref name="events"/> recorded at the stage boundaries as
    /// <see cref="ForwardTimed"/> records them (the routing stage is empty: event 1 follows event 0 at once).</summary>
    /// <param name="tokens">As for <see cref="ForwardPrecomputed"/>.</param>
    /// <param name="hidden">As for <see cref="ForwardPrecomputed"/>.</param>
    /// <param name="topkIds">As for <see cref="ForwardPrecomputed"/>.</param>
    /// <param name="topkWeights">As for <see cref="ForwardPrecomputed"/>.</param>
    /// <param name="output">As for <see cref="ForwardPrecomputed"/>.</param>
    /// <param name="events">Exactly <see cref="StageEventCount"/> events of the layer's context.</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    /// <exception cref="ArgumentNullException"><paramref name="events"/>, one of its events or a buffer is null.</exception>
    /// <exception cref="MoeCutlassArgumentException">ParamName <c>events</c>: not <see cref="StageEventCount"/> events, or an
    /// event of another context; otherwise as for <see cref="ForwardPrecomputed"/>.</exception>
    /// <exception cref="ObjectDisposedException">The layer, a buffer, an event or the stream was disposed.</exception>
    public void ForwardPrecomputedTimed(int tokens, DeviceBuffer hidden, DeviceBuffer topkIds, DeviceBuffer topkWeights, DeviceBuffer output,
        IReadOnlyList<MoeEvent> events, MoeStream? stream = null)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        CheckEvents(events);
        RunPrecomputed(tokens, hidden, topkIds, topkWeights, output, stream, events, nameof(ForwardTimed));
    }

    /// <summary>The checks and run of a softmax-routed forward call (<see cref="Forward"/>, <see cref="ForwardTimed"/>);
    /// <paramref name="precomputedMethod"/> is the method a precomputed layer should have been called with.</summary>
    private void RunSoftmax(int tokens, DeviceBuffer hidden, DeviceBuffer routerLogits, DeviceBuffer output, MoeStream? stream,
        IReadOnlyList<MoeEvent>? events, string precomputedMethod)
    {
        if (Options.Routing != MoeRoutingMode.SoftmaxTopK)
        {
            throw new MoeCutlassArgumentException(
                $"routerLogits: this layer takes precomputed routing (Routing = {Options.Routing}); call {precomputedMethod} with topkIds and topkWeights.",
                MoeStatus.InvalidArgument, string.Empty, nameof(routerLogits));
        }

        bool sized = tokens >= 0 && tokens <= Options.MaxTokens;
        CheckOperand(hidden, Options.InputDType, sized ? Options.HiddenElements(tokens) : 0, nameof(hidden), tokens);
        CheckOperand(routerLogits, Options.LogitsDType, sized ? Options.LogitElements(tokens) : 0, nameof(routerLogits), tokens);
        CheckOperand(output, Options.OutputDType, sized ? Options.OutputElements(tokens) : 0, nameof(output), tokens);
        Run(tokens, hidden, routerLogits, null, null, output, stream, events);
    }

    /// <summary>The checks and run of a precomputed-routing forward call (<see cref="ForwardPrecomputed"/>,
    /// <see cref="ForwardPrecomputedTimed"/>); <paramref name="softmaxMethod"/> is the method a softmax-routed layer takes.</summary>
    private void RunPrecomputed(int tokens, DeviceBuffer hidden, DeviceBuffer topkIds, DeviceBuffer topkWeights, DeviceBuffer output,
        MoeStream? stream, IReadOnlyList<MoeEvent>? events, string softmaxMethod)
    {
        if (Options.Routing != MoeRoutingMode.Precomputed)
        {
            throw new MoeCutlassArgumentException(
                $"topkIds: this layer routes from router logits (Routing = {Options.Routing}); call {softmaxMethod} with routerLogits.",
                MoeStatus.InvalidArgument, string.Empty, nameof(topkIds));
        }

        bool sized = tokens >= 0 && tokens <= Options.MaxTokens;
        CheckOperand(hidden, Options.InputDType, sized ? Options.HiddenElements(tokens) : 0, nameof(hidden), tokens);
        CheckOperand(topkIds, null, sized ? Options.TopKElements(tokens) : 0, nameof(topkIds), tokens);
        CheckOperand(topkWeights, DType.Float32, sized ? Options.TopKElements(tokens) : 0, nameof(topkWeights), tokens);
        CheckOperand(output, Options.OutputDType, sized ? Options.OutputElements(tokens) : 0, nameof(output), tokens);
        Run(tokens, hidden, null, topkIds, topkWeights, output, stream, events);
    }

    private unsafe void Run(int tokens, DeviceBuffer hidden, DeviceBuffer? logits, DeviceBuffer? ids, DeviceBuffer? weights, DeviceBuffer output,
        MoeStream? stream, IReadOnlyList<MoeEvent>? events = null)
    {
        using var layer = new HandleLease(Handle);
        using var hiddenLease = hidden.Lease();
        using var logitsLease = logits is null ? default : logits.Lease();
        using var idsLease = ids is null ? default : ids.Lease();
        using var weightsLease = weights is null ? default : weights.Lease();
        using var outputLease = output.Lease();
        using var streamLease = MoeStream.Lease(stream);
        if (tokens == 0 && (hidden.Length == 0 || output.Length == 0 || logits?.Length == 0 || ids?.Length == 0 || weights?.Length == 0))
        {
            return; // empty operands (pointer 0) of a call with no tokens: nothing to read or write, so no native call
        }

        var args = new mc_moe_layer_args
        {
            struct_size = (uint)sizeof(mc_moe_layer_args),
            tokens = tokens,
            hidden = (void*)hiddenLease.Raw,
            router_logits = (void*)logitsLease.Raw,
            topk_ids = (int*)idsLease.Raw,
            topk_weights = (float*)weightsLease.Raw,
            output = (void*)outputLease.Raw,
        };
        if (events is null)
        {
            NativeStatus.Check(NativeMethods.mc_moe_layer_forward(layer.Raw, &args, streamLease.Raw), ParameterMap.MoeLayerForward);
            return;
        }

        // HandleLease is a ref struct, so the eight event references are taken and released by hand.
        nint* raw = stackalloc nint[StageEventCount];
        bool[] added = new bool[StageEventCount];
        try
        {
            for (int i = 0; i < StageEventCount; i++)
            {
                events[i].Handle.DangerousAddRef(ref added[i]);
                raw[i] = events[i].Handle.DangerousGetHandle();
            }

            NativeStatus.Check(NativeMethods.mc_moe_layer_forward_timed(layer.Raw, &args, streamLease.Raw, raw, StageEventCount),
                ParameterMap.MoeLayerForward);
        }
        finally
        {
            for (int i = 0; i < StageEventCount; i++)
            {
                if (added[i])
                {
                    events[i].Handle.DangerousRelease();
                }
            }
        }
    }

    /// <summary>Checks a timed call's events before any native call: count, null entries, disposal and context.</summary>
    private void CheckEvents(IReadOnlyList<MoeEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count != StageEventCount)
        {
            throw new MoeCutlassArgumentException(
                $"events must hold exactly {StageEventCount} events (one per stage boundary), not {events.Count}.", MoeStatus.InvalidArgument,
                string.Empty, nameof(events));
        }

        for (int i = 0; i < StageEventCount; i++)
        {
            MoeEvent e = events[i] ?? throw new ArgumentNullException(nameof(events), $"events[{i}] is null.");
            ObjectDisposedException.ThrowIf(e.IsDisposed, e);
            if (!ReferenceEquals(e.Context, Context))
            {
                throw new MoeCutlassArgumentException(
                    $"events[{i}] belongs to another context ({e.Context}), not to the layer's {Context}.", MoeStatus.InvalidArgument,
                    string.Empty, nameof(events));
            }
        }
    }

    /// <summary>Frees the layer and its workspace, releases its references on the weight buffers and disposes the weight
    /// buffers it owns. Safe to call more than once.</summary>
    public void Dispose()
    {
        if (!Handle.IsClosed)
        {
            Handle.Dispose();
            foreach (DeviceBuffer weight in _ownedWeights)
            {
                weight.Dispose();
            }

            MoeLayerOptions o = Options;
            Log.MoeLayerDestroyed(_logger, o.FirstExpert, o.FirstExpert + o.LocalExperts - 1, o.TotalExperts, o.Hidden, o.Intermediate);
        }
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        MoeLayerOptions o = Options;
        return $"MoeLayer(experts {o.FirstExpert}..{o.FirstExpert + o.LocalExperts - 1} of {o.TotalExperts}, top-{o.TopK}, H={o.Hidden}, "
            + $"I={o.Intermediate}, {o.Routing}, {o.InputDType} -> {o.OutputDType}, {o.Strategy}, GEMM1 [{Gemm1KernelList}], GEMM2 [{Gemm2KernelList}])";
    }

    /// <summary>The managed element type that holds <paramref name="dtype"/> (null for an unknown dtype).</summary>
    internal static Type? ElementTypeOf(DType dtype) => dtype switch
    {
        DType.Float32 => typeof(float),
        DType.BFloat16 => typeof(BFloat16),
        DType.Float16 => typeof(Half),
        DType.Float8E4M3 => typeof(byte),
        _ => null,
    };

    private static string[] Split(string list) => list.Length == 0 ? [] : list.Split(';');

    /// <summary>Checks a buffer's element type (<paramref name="dtype"/> null: int32), context and length.</summary>
    private void CheckOperand(DeviceBuffer buffer, DType? dtype, long elements, string name, int tokens)
    {
        ArgumentNullException.ThrowIfNull(buffer, name);
        Type? expected = dtype is { } d ? ElementTypeOf(d) : typeof(int);
        bool raw16 = dtype is DType.BFloat16 or DType.Float16 && buffer.ElementType == typeof(ushort);
        // An unknown dtype cannot be created (the library rejects it), so expected is null only for a corrupt Options.
        if (expected is not null && buffer.ElementType != expected && !raw16)
        {
            string what = dtype is { } known && name is "hidden" or "routerLogits" or "output" ? $" (the layer's {DTypeRole(name)} is {known})" : string.Empty;
            throw new MoeCutlassArgumentException(
                $"{name} must be a DeviceBuffer<{DeviceBuffer.TypeName(expected)}>{what}, not a {buffer.TypeDisplayName}.",
                MoeStatus.InvalidDtype, string.Empty, name);
        }

        if (!ReferenceEquals(buffer.Context, Context))
        {
            throw new MoeCutlassArgumentException(
                $"{name} belongs to another context ({buffer.Context}), not to the layer's {Context}.", MoeStatus.InvalidArgument,
                string.Empty, name);
        }

        if (buffer.Length < elements)
        {
            throw new MoeCutlassArgumentException(
                $"{name} has {buffer.Length} elements, but the call needs {elements} ({Shape(name, tokens)}).", MoeStatus.BufferTooSmall,
                string.Empty, name);
        }
    }

    private static string DTypeRole(string name) => name switch
    {
        "hidden" => "InputDType",
        "routerLogits" => "LogitsDType",
        _ => "OutputDType",
    };

    private string Shape(string name, int tokens) => name switch
    {
        "routerLogits" => $"tokens x TotalExperts = {tokens} x {Options.TotalExperts}",
        "topkIds" or "topkWeights" => $"tokens x TopK = {tokens} x {Options.TopK}",
        _ => $"tokens x Hidden = {tokens} x {Options.Hidden}",
    };
}
