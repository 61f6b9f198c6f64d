using Microsoft.Extensions.Logging;
using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>The fixed shape and choices of a grouped-GEMM plan.</summary>
/// <param name="Experts">E, 1 .. 4096.</param>
/// <param name="N">Output columns per expert, a positive multiple of 8.</param>
/// <param name="K">Reduction depth, a positive multiple of 16.</param>
/// <param name="OutputDType">
/// The dtype of D: <see cref="DType.BFloat16"/> or <see cref="DType.Float16"/>, rounded to nearest even.
/// <see cref="DType.Float16"/> does not saturate: a result whose magnitude rounds beyond 65504 (|x| &gt;= 65520) is
/// stored as positive or negative infinity; choose <see cref="DType.BFloat16"/> where results may exceed that range.
/// </param>
/// <param name="Strategy">How kernel configurations are chosen.</param>
/// <param name="MaxRows">The largest <c>rows</c> any run will pass (capacity of A and D), at least 0.</param>
/// <remarks>The library validates every value when the plan is created; this record checks nothing itself.</remarks>
public sealed record GroupedGemmOptions(int Experts, int N, int K, DType OutputDType, GemmStrategy Strategy, int MaxRows)
{
    /// <summary>
    /// The kernel configurations to use instead of the library's selection for the GPU class, for tuning and
    /// measurement: registry names (<see cref="MoeCutlassLibrary.KernelConfigurations"/>), narrowest first, each with
    /// the largest rows per expert it takes; the last takes every larger expert (<see cref="ConfigurationRange.Unbounded"/>).
    /// One entry forces that configuration for every expert of every call. <see cref="GemmStrategy.Single"/> takes
    /// exactly one; with <see cref="GemmStrategy.Persistent"/> several run expert specialization inside the persistent
    /// kernel (one launch per configuration); <see cref="GemmStrategy.Cublas"/> takes none (cuBLAS picks its own
    /// kernels). Null (the default): the library selects.
    /// </summary>
    public IReadOnlyList<ConfigurationRange>? Configurations { get; init; }

    /// <summary>
    /// The caller promises that B and its scales keep their values while the plan lives (weights loaded once, as a
    /// model's are). <see cref="GemmStrategy.Cublas"/> then dequantizes B on the first run and again only when a run
    /// passes other B or B-scale buffers; without it, it dequantizes the experts that have rows on every run. The
    /// other strategies read the FP8 operands directly and are unaffected. Leave it false for weights rewritten in place.
    /// </summary>
    public bool StaticWeights { get; init; }

    /// <summary>A copy that forces the configuration named <paramref name="name"/> for every expert of every call.</summary>
    /// <param name="name">A registry name.</param>
    /// <returns>The options with <see cref="GemmStrategy.Single"/> and that one configuration.</returns>
    public GroupedGemmOptions Forcing(string name) =>
        this with { Strategy = GemmStrategy.Single, Configurations = [new ConfigurationRange(name)] };

    /// <summary>Elements of A for <paramref name="rows"/> rows: rows * K (e4m3 bytes).</summary>
    /// <param name="rows">The rows of a run.</param>
    /// <returns>The element count.</returns>
    public long ActivationElements(int rows) => (long)rows * K;

    /// <summary>Elements of the A scales for <paramref name="rows"/> rows: rows * ceil(K / 128).</summary>
    /// <param name="rows">The rows of a run.</param>
    /// <returns>The element count.</returns>
    public long ActivationScaleElements(int rows) => (long)rows * MoeContext.ScaleBlocks(K);

    /// <summary>Elements of B: E * N * K (e4m3 bytes).</summary>
    public long WeightElements => (long)Experts * N * K;

    /// <summary>Elements of the B scales: E * ceil(N / 128) * ceil(K / 128).</summary>
    public long WeightScaleElements => (long)Experts * MoeContext.ScaleBlocks(N) * MoeContext.ScaleBlocks(K);

    /// <summary>Elements of D for <paramref name="rows"/> rows: rows * N.</summary>
    /// <param name="rows">The rows of a run.</param>
    /// <returns>The element count.</returns>
    public long OutputElements(int rows) => (long)rows * N;

    /// <summary>Floating-point operations of a run with <paramref name="rows"/> real rows: 2 * rows * N * K.</summary>
    /// <param name="rows">The rows that belong to an expert.</param>
    /// <returns>The operation count.</returns>
    public double Flops(long rows) => 2.0 * rows * N * K;
}

/// <summary>
/// A grouped GEMM prepared for a fixed E, N, K, output dtype and strategy: D[rows of e] = dequant(A[rows of e]) *
/// dequant(B[e])ᵀ for every expert e, where expert e owns rows offsets[e] .. offsets[e+1]-1 and rows outside
/// offsets[0] .. offsets[E] are not written. Create once, run many times on any stream of its context.
/// </summary>
/// <remarks>Data contracts (all row-major): A e4m3 [rows, K]; A scales fp32 [rows, ceil(K/128)]; B e4m3 [E, N, K];
/// B scales fp32 [E, ceil(N/128), ceil(K/128)]; expert offsets int32 [E+1] in context memory; D bf16|fp16 [rows, N].</remarks>
public sealed class GroupedGemmPlan : IDisposable
{
    private readonly ILogger _logger;

    internal GroupedGemmPlan(MoeContext context, PlanHandle handle, GroupedGemmOptions options, IReadOnlyList<KernelConfiguration> configurations,
        long workspaceBytes, string selection)
    {
        Context = context;
        Handle = handle;
        Options = options;
        Configurations = configurations;
        WorkspaceBytes = workspaceBytes;
        Selection = selection;
        _logger = context.LoggerFactory.CreateLogger(LoggerCategory);
        Log.PlanCreated(_logger, options.Experts, options.N, options.K, options.OutputDType, options.Strategy, options.MaxRows,
            context.Backend, selection, KernelList, workspaceBytes);
    }

    /// <summary>The logger category of plan events.</summary>
    internal const string LoggerCategory = "MoeCutlass.GroupedGemmPlan";

    /// <summary>The options the plan was created with.</summary>
    public GroupedGemmOptions Options { get; }

    /// <summary>The context that owns the plan.</summary>
    public MoeContext Context { get; }

    /// <summary>The kernel configurations the plan may launch (registry rows, ascending index).</summary>
    public IReadOnlyList<KernelConfiguration> Configurations { get; }

    /// <summary>The names of <see cref="Configurations"/>.</summary>
    public IReadOnlyList<string> Kernels => Configurations.Select(c => c.Name).ToArray();

    /// <summary>The configuration names, ';'-separated.</summary>
    public string KernelList => string.Join(';', Kernels);

    /// <summary>The number of kernel configurations the plan may launch.</summary>
    public int KernelCount => Configurations.Count;

    /// <summary>
    /// Where the selection came from: the GPU class whose table it uses, the caller's configurations, or cuBLAS
    /// (<c>"cuBLAS"</c> when asked for, <c>"cuBLAS (auto: the device has no SM90a)"</c> when <see cref="GemmStrategy.Auto"/>
    /// chose it). The plan's creation is logged at Information with it.
    /// </summary>
    public string Selection { get; }

    /// <summary>Bytes of workspace (device memory on CUDA) the plan owns.</summary>
    public long WorkspaceBytes { get; }

    /// <summary>Whether the plan was disposed.</summary>
    public bool IsDisposed => Handle.IsClosed;

    internal PlanHandle Handle { get; }

    /// <summary>
    /// Runs the grouped GEMM on buffers of the plan's context, enqueued on <paramref name="stream"/> (asynchronous on
    /// CUDA). Allocates nothing. The library validates rows, pointers, alignment, buffer sizes and (on the CPU backend)
    /// the offsets; a rejected call writes nothing.
    /// </summary>
    /// <param name="rows">Rows of A and D in this call, 0 .. <see cref="GroupedGemmOptions.MaxRows"/>.</param>
    /// <param name="a">e4m3 [rows, K]: a <see cref="DeviceBuffer{T}"/> of <see cref="byte"/>.</param>
    /// <param name="aScales">fp32 [rows, ceil(K/128)]: a <see cref="DeviceBuffer{T}"/> of <see cref="float"/>.</param>
    /// <param name="b">e4m3 [E, N, K]: a <see cref="DeviceBuffer{T}"/> of <see cref="byte"/>.</param>
    /// <param name="bScales">fp32 [E, ceil(N/128), ceil(K/128)]: a <see cref="DeviceBuffer{T}"/> of <see cref="float"/>.</param>
    /// <param name="expertOffsets">int32 [E+1] prefix sums: a <see cref="DeviceBuffer{T}"/> of <see cref="int"/>.</param>
    /// <param name="output">D, [rows, N] of the plan's output dtype: a <see cref="DeviceBuffer{T}"/> of <see cref="BFloat16"/>
    /// for a <see cref="DType.BFloat16"/> plan, of <see cref="Half"/> for a <see cref="DType.Float16"/> plan (fp16
    /// overflows to ±infinity), or of <see cref="ushort"/> for the raw bits of either.</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    /// <remarks>
    /// Before any native call the facade checks each buffer's element type against the plan (status
    /// <see cref="MoeStatus.InvalidDtype"/>) and, for 0 &lt;= rows &lt;= MaxRows, its length against what the run reads or
    /// writes (<see cref="MoeStatus.BufferTooSmall"/>), so swapped operands are caught where their types or sizes differ;
    /// the exception's ParamName is the parameter. With <paramref name="rows"/> = 0, <paramref name="a"/>,
    /// <paramref name="aScales"/> and <paramref name="output"/> may be empty buffers (there is nothing to read or
    /// write); the run then does nothing.
    /// </remarks>
    /// <exception cref="ArgumentNullException">A buffer is null.</exception>
    /// <exception cref="MoeCutlassArgumentException">A buffer has the wrong element type, is too small or belongs to
    /// another context (ParamName names it; an <see cref="ArgumentException"/>), or the library rejected the call.</exception>
    /// <exception cref="ObjectDisposedException">The plan, a buffer or the stream was disposed.</exception>
    /// <exception cref="MoeCutlassException">
    /// <see cref="MoeStatus.Busy"/>: another thread's run of this plan has not returned. Runs of one plan must not
    /// overlap (they share its per-run device arrays): order them on one stream or with events, or use one plan per
    /// concurrent stream. Device work still pending on another stream cannot be detected; ordering it is the caller's job.
    /// </exception>
    public unsafe void Run(int rows, DeviceBuffer a, DeviceBuffer aScales, DeviceBuffer b, DeviceBuffer bScales, DeviceBuffer expertOffsets,
        DeviceBuffer output, MoeStream? stream = null)
    {
        GroupedGemmOptions o = Options;
        bool sized = rows >= 0 && rows <= o.MaxRows;
        CheckOperand(a, typeof(byte), sized ? o.ActivationElements(rows) : 0, nameof(a), rows);
        CheckOperand(aScales, typeof(float), sized ? o.ActivationScaleElements(rows) : 0, nameof(aScales), rows);
        CheckOperand(b, typeof(byte), o.WeightElements, nameof(b), rows);
        CheckOperand(bScales, typeof(float), o.WeightScaleElements, nameof(bScales), rows);
        CheckOperand(expertOffsets, typeof(int), o.Experts + 1L, nameof(expertOffsets), rows);
        CheckOperand(output, o.OutputDType == DType.Float16 ? typeof(Half) : typeof(BFloat16), sized ? o.OutputElements(rows) : 0,
            nameof(output), rows);
        if (rows == 0 && (a.Length == 0 || aScales.Length == 0 || output.Length == 0))
        {
            // Empty operands (pointer 0) of a run with no rows: nothing to read or write, so no native call.
            using var emptyPlan = Lease();
            using var emptyA = a.Lease();
            using var emptyAScales = aScales.Lease();
            using var emptyB = b.Lease();
            using var emptyBScales = bScales.Lease();
            using var emptyOffsets = expertOffsets.Lease();
            using var emptyOutput = output.Lease();
            using var emptyStream = MoeStream.Lease(stream);
            return;
        }

        using var plan = Lease();
        using var aLease = a.Lease();
        using var aScalesLease = aScales.Lease();
        using var bLease = b.Lease();
        using var bScalesLease = bScales.Lease();
        using var offsetsLease = expertOffsets.Lease();
        using var outputLease = output.Lease();
        using var streamLease = MoeStream.Lease(stream);
        var args = new mc_grouped_gemm_args
        {
            struct_size = (uint)sizeof(mc_grouped_gemm_args),
            rows = rows,
            a = (void*)aLease.Raw,
            a_scales = (float*)aScalesLease.Raw,
            b = (void*)bLease.Raw,
            b_scales = (float*)bScalesLease.Raw,
            expert_offsets = (int*)offsetsLease.Raw,
            d = (void*)outputLease.Raw,
        };
        NativeStatus.Check(NativeMethods.mc_grouped_gemm_run(plan.Raw, &args, streamLease.Raw), ParameterMap.GroupedGemmRun);
        LogAutoChoice(rows);
    }

    /// <summary>
    /// What a run with <paramref name="rows"/> rows executes: <see cref="GemmStrategy.Single"/>,
    /// <see cref="GemmStrategy.ExpertSpecialized"/>, <see cref="GemmStrategy.Persistent"/> or
    /// <see cref="GemmStrategy.Cublas"/>. <see cref="GemmStrategy.Auto"/> decides per call from what the host knows (rows,
    /// E, N, K) on an SM90a device, and is <see cref="GemmStrategy.Cublas"/> for every call on a device without SM90a;
    /// expert specialization falls back to the single configuration once the average rows per expert reaches its
    /// widest bucket.
    /// </summary>
    /// <param name="rows">Rows of a run, 0 .. <see cref="GroupedGemmOptions.MaxRows"/>.</param>
    public unsafe GemmStrategy ResolveStrategy(int rows)
    {
        using var plan = Lease();
        int strategy;
        NativeStatus.Check(NativeMethods.mc_grouped_gemm_plan_resolve_strategy(plan.Raw, rows, &strategy), ParameterMap.Rows);
        return (GemmStrategy)strategy;
    }

    /// <summary>The configurations a run with <paramref name="rows"/> rows launches and the rows per expert each takes.</summary>
    /// <param name="rows">Rows of a run, 0 .. <see cref="GroupedGemmOptions.MaxRows"/>.</param>
    public unsafe GroupedGemmLaunch Resolve(int rows)
    {
        using var plan = Lease();
        mc_grouped_gemm_launch launch = default;
        launch.struct_size = (uint)sizeof(mc_grouped_gemm_launch);
        NativeStatus.Check(NativeMethods.mc_grouped_gemm_plan_resolve(plan.Raw, rows, &launch), ParameterMap.Rows);
        var configurations = new LaunchedConfiguration[launch.config_count];
        for (int i = 0; i < launch.config_count; i++)
        {
            configurations[i] = new LaunchedConfiguration(
                MoeCutlassLibrary.KernelConfigurations[launch.configs[i]], launch.min_rows[i], launch.max_rows[i]);
        }

        return new GroupedGemmLaunch((GemmStrategy)launch.strategy, configurations);
    }

    private void LogAutoChoice(int rows)
    {
        if (Options.Strategy == GemmStrategy.Auto && _logger.IsEnabled(LogLevel.Debug))
        {
            Log.AutoStrategyChosen(_logger, Options.Experts, Options.N, Options.K, rows, Resolve(rows).ToString());
        }
    }

    /// <summary>
    /// Runs the grouped GEMM on raw context/device pointers (for memory owned by other libraries, or offsets into
    /// buffers). Same contract as the <see cref="DeviceBuffer"/> overload, but <b>unchecked</b>: no element types, and
    /// sizes only for pointers into this context's own allocations. The caller keeps the memory alive until the stream
    /// reaches the call.
    /// </summary>
    /// <remarks>
    /// This overload is as unsafe as the C ABI it wraps: on a CUDA context the library cannot tell a valid device pointer
    /// of another library from a wild one, and a pointer that does not address [rows, K] (etc.) bytes of device memory is
    /// a device fault or memory corruption, not an exception (a made-up address such as 0x1000 can end the process). The
    /// library checks nulls and alignment; on the CPU backend every operand must lie in this context's memory. Prefer the
    /// <see cref="DeviceBuffer"/> overload, which checks types and sizes first.
    /// </remarks>
    /// <param name="rows">Rows of A and D in this call, 0 .. <see cref="GroupedGemmOptions.MaxRows"/>.</param>
    /// <param name="a">e4m3 [rows, K].</param>
    /// <param name="aScales">fp32 [rows, ceil(K/128)].</param>
    /// <param name="b">e4m3 [E, N, K].</param>
    /// <param name="bScales">fp32 [E, ceil(N/128), ceil(K/128)].</param>
    /// <param name="expertOffsets">int32 [E+1].</param>
    /// <param name="output">D, [rows, N] of the plan's output dtype.</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    public unsafe void Run(int rows, nint a, nint aScales, nint b, nint bScales, nint expertOffsets, nint output, MoeStream? stream = null)
    {
        using var plan = Lease();
        using var streamLease = MoeStream.Lease(stream);
        var args = new mc_grouped_gemm_args
        {
            struct_size = (uint)sizeof(mc_grouped_gemm_args),
            rows = rows,
            a = (void*)a,
            a_scales = (float*)aScales,
            b = (void*)b,
            b_scales = (float*)bScales,
            expert_offsets = (int*)expertOffsets,
            d = (void*)output,
        };
        NativeStatus.Check(NativeMethods.mc_grouped_gemm_run(plan.Raw, &args, streamLease.Raw), ParameterMap.GroupedGemmRun);
        LogAutoChoice(rows);
    }

    /// <summary>Frees the plan and its workspace. Safe to call more than once.</summary>
    public void Dispose()
    {
        if (!Handle.IsClosed)
        {
            Handle.Dispose();
            Log.PlanDestroyed(_logger, Options.Experts, Options.N, Options.K);
        }
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"GroupedGemmPlan(E={Options.Experts}, N={Options.N}, K={Options.K}, {Options.OutputDType}, {Options.Strategy}, kernels [{KernelList}])";

    private HandleLease Lease()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return new HandleLease(Handle);
    }

    private void CheckOperand(DeviceBuffer buffer, Type elementType, long elements, string name, int rows)
    {
        ArgumentNullException.ThrowIfNull(buffer, name);
        if (buffer.ElementType != elementType && !(name == "output" && buffer.ElementType == typeof(ushort)))
        {
            string plan = name == "output" ? $" (the plan's output dtype is {Options.OutputDType})" : string.Empty;
            throw new MoeCutlassArgumentException(
                $"{name} must be a DeviceBuffer<{DeviceBuffer.TypeName(elementType)}>{plan}, not a {buffer.TypeDisplayName}.",
                MoeStatus.InvalidDtype, string.Empty, name);
        }

        if (!ReferenceEquals(buffer.Context, Context))
        {
            throw new MoeCutlassArgumentException(
                $"{name} belongs to another context ({buffer.Context}), not to the plan's {Context}.", MoeStatus.InvalidArgument,
                string.Empty, name);
        }

        if (buffer.Length < elements)
        {
            throw new MoeCutlassArgumentException(
                $"{name} has {buffer.Length} elements, but the run needs {elements} ({Shape(name, rows)}).", MoeStatus.BufferTooSmall,
                string.Empty, name);
        }
    }

    private string Shape(string name, int rows) => name switch
    {
        "a" => $"rows x K = {rows} x {Options.K}",
        "aScales" => $"rows x ceil(K/128) = {rows} x {MoeContext.ScaleBlocks(Options.K)}",
        "b" => $"E x N x K = {Options.Experts} x {Options.N} x {Options.K}",
        "bScales" => $"E x ceil(N/128) x ceil(K/128) = {Options.Experts} x {MoeContext.ScaleBlocks(Options.N)} x {MoeContext.ScaleBlocks(Options.K)}",
        "expertOffsets" => $"E + 1 = {Options.Experts + 1}",
        _ => $"rows x N = {rows} x {Options.N}",
    };
}
