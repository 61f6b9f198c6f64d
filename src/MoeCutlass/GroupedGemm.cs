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
    /// exactly one. Null (the default): the library selects.
    /// </summary>
    public IReadOnlyList<ConfigurationRange>? Configurations { get; init; }

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
            context.Backend, KernelList, workspaceBytes);
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

    /// <summary>Where the selection came from: the GPU class whose table it uses, or the caller's configurations.</summary>
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
    /// <param name="a">e4m3 [rows, K] (1-byte elements).</param>
    /// <param name="aScales">fp32 [rows, ceil(K/128)].</param>
    /// <param name="b">e4m3 [E, N, K] (1-byte elements).</param>
    /// <param name="bScales">fp32 [E, ceil(N/128), ceil(K/128)].</param>
    /// <param name="expertOffsets">int32 [E+1] prefix sums.</param>
    /// <param name="output">D, [rows, N] of the plan's output dtype (2-byte elements; fp16 overflows to ±infinity).</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    /// <exception cref="ArgumentNullException">A buffer is null.</exception>
    /// <exception cref="ArgumentException">A buffer has the wrong element size or belongs to another context.</exception>
    /// <exception cref="ObjectDisposedException">The plan, a buffer or the stream was disposed.</exception>
    /// <exception cref="MoeCutlassArgumentException">The library rejected the call.</exception>
    /// <exception cref="MoeCutlassException">
    /// <see cref="MoeStatus.Busy"/>: another thread's run of this plan has not returned. Runs of one plan must not
    /// overlap (they share its per-run device arrays): order them on one stream or with events, or use one plan per
    /// concurrent stream. Device work still pending on another stream cannot be detected; ordering it is the caller's job.
    /// </exception>
    public unsafe void Run(int rows, DeviceBuffer a, DeviceBuffer aScales, DeviceBuffer b, DeviceBuffer bScales, DeviceBuffer expertOffsets,
        DeviceBuffer output, MoeStream? stream = null)
    {
        CheckOperand(a, 1, nameof(a));
        CheckOperand(aScales, 4, nameof(aScales));
        CheckOperand(b, 1, nameof(b));
        CheckOperand(bScales, 4, nameof(bScales));
        CheckOperand(expertOffsets, 4, nameof(expertOffsets));
        CheckOperand(output, 2, nameof(output));
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
        NativeStatus.Check(NativeMethods.mc_grouped_gemm_run(plan.Raw, &args, streamLease.Raw));
        LogAutoChoice(rows);
    }

    /// <summary>
    /// What a run with <paramref name="rows"/> rows executes: <see cref="GemmStrategy.Single"/> or
    /// <see cref="GemmStrategy.ExpertSpecialized"/>. <see cref="GemmStrategy.Auto"/> decides per call from what the
    /// host knows (rows, E); expert specialization falls back to the single configuration once the average rows per
    /// expert reaches its widest bucket.
    /// </summary>
    /// <param name="rows">Rows of a run, 0 .. <see cref="GroupedGemmOptions.MaxRows"/>.</param>
    public unsafe GemmStrategy ResolveStrategy(int rows)
    {
        using var plan = Lease();
        int strategy;
        NativeStatus.Check(NativeMethods.mc_grouped_gemm_plan_resolve_strategy(plan.Raw, rows, &strategy));
        return (GemmStrategy)strategy;
    }

    /// <summary>The configurations a run with <paramref name="rows"/> rows launches and the rows per expert each takes.</summary>
    /// <param name="rows">Rows of a run, 0 .. <see cref="GroupedGemmOptions.MaxRows"/>.</param>
    public unsafe GroupedGemmLaunch Resolve(int rows)
    {
        using var plan = Lease();
        mc_grouped_gemm_launch launch = default;
        launch.struct_size = (uint)sizeof(mc_grouped_gemm_launch);
        NativeStatus.Check(NativeMethods.mc_grouped_gemm_plan_resolve(plan.Raw, rows, &launch));
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
    /// buffers). Same contract as the <see cref="DeviceBuffer"/> overload; the library checks nulls, alignment and,
    /// for pointers into its own allocations, sizes. The caller keeps the memory alive until the stream reaches the call.
    /// </summary>
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
        NativeStatus.Check(NativeMethods.mc_grouped_gemm_run(plan.Raw, &args, streamLease.Raw));
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

    private void CheckOperand(DeviceBuffer buffer, int elementSize, string name)
    {
        ArgumentNullException.ThrowIfNull(buffer, name);
        if (buffer.ElementSize != elementSize)
        {
            throw new ArgumentException(
                $"Expected a buffer of {elementSize}-byte elements, got DeviceBuffer<{buffer.ElementType.Name}>.", name);
        }

        if (!ReferenceEquals(buffer.Context, Context))
        {
            throw new ArgumentException($"The buffer belongs to another context ({buffer.Context}), not to the plan's {Context}.", name);
        }
    }
}
