using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>
/// A MoeCutlass context: the CPU reference backend or one CUDA device. It allocates context memory
/// (<see cref="DeviceBuffer{T}"/>), creates streams, events and grouped-GEMM plans, and runs conversions and FP8
/// quantization. The same code works on both backends; on the CPU backend every call completes before it returns.
/// </summary>
/// <remarks>
/// <para><b>Lifetime.</b> Buffers, streams, events and plans keep their context's native object alive: each holds a
/// reference on the context's handle until it has freed its own native object. Disposing the context marks it disposed
/// (its members then throw <see cref="ObjectDisposedException"/> and no new children can be created), but the native
/// context is destroyed only when the last child is disposed (or finalized). Children stay usable until they are
/// disposed themselves. Dispose order is therefore free, and nothing is ever freed against a destroyed context.</para>
/// <para><b>Asynchrony.</b> Calls that take a <see cref="MoeStream"/> (null = the context's default stream) are
/// enqueued on it and return before the work is done on a CUDA context; the caller keeps the buffers alive until the
/// stream has reached that point (<see cref="MoeStream.Synchronize"/>, <see cref="Synchronize"/>, events).</para>
/// </remarks>
public sealed class MoeContext : IDisposable
{
    /// <summary>Above this many floating-point operations per run, a plan on the CPU backend logs a warning.</summary>
    private const double CpuLargeProblemFlops = 2e10;

    private readonly ContextHandle _handle;
    private readonly ILogger _logger;
    private int _disposed;
    private ILogger? _graphLogger;

    private MoeContext(ContextHandle handle, Backend backend, int device, int cpuThreads, DeviceInfo? deviceInfo, ILoggerFactory loggerFactory)
    {
        _handle = handle;
        Backend = backend;
        Device = device;
        CpuThreads = cpuThreads;
        DeviceInfo = deviceInfo;
        LoggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger(LoggerCategory);
    }

    /// <summary>The logger category of context events.</summary>
    internal const string LoggerCategory = "MoeCutlass.MoeContext";

    /// <summary>The backend of this context.</summary>
    public Backend Backend { get; }

    /// <summary>The CUDA device index (0 for the CPU backend).</summary>
    public int Device { get; }

    /// <summary>The CPU backend's worker threads as the library resolved them (0 asked = all hardware threads).</summary>
    public int CpuThreads { get; }

    /// <summary>The device's properties on a CUDA context; null on the CPU backend.</summary>
    public DeviceInfo? DeviceInfo { get; }

    /// <summary>Whether the context still works: false after a sticky device fault (then dispose it and create a new one).</summary>
    public bool IsUsable => GetInfo().usable != 0;

    /// <summary>Bytes of context memory currently allocated through this context.</summary>
    public long AllocatedBytes => GetInfo().allocated_bytes;

    /// <summary>Number of live allocations of this context.</summary>
    public long AllocationCount => GetInfo().allocation_count;

    /// <summary>
    /// Whether streams of this context can capture CUDA graphs (<see cref="MoeStream.BeginCapture"/>): true on the CUDA
    /// backend, false on the CPU reference backend.
    /// </summary>
    public bool SupportsGraphs => Backend == Backend.Cuda;

    /// <summary>Whether <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>The logger factory given at creation (never null).</summary>
    internal ILoggerFactory LoggerFactory { get; }

    /// <summary>The logger of graph events (<see cref="MoeGraph.LoggerCategory"/>).</summary>
    internal ILogger GraphLogger => _graphLogger ??= LoggerFactory.CreateLogger(MoeGraph.LoggerCategory);

    /// <summary>The native handle (children hold references on it).</summary>
    internal ContextHandle Handle => _handle;

    /// <summary>Number of 128-wide scale blocks along an extent: ceil(extent / 128).</summary>
    /// <param name="extent">A non-negative extent (K for activation scales, N or K for weight scales).</param>
    /// <returns>The number of scale blocks.</returns>
    public static int ScaleBlocks(int extent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(extent);
        return (int)(((long)extent + NativeConstants.MC_SCALE_BLOCK - 1) / NativeConstants.MC_SCALE_BLOCK);
    }

    /// <summary>Creates a CPU reference context.</summary>
    /// <param name="threads">Worker threads; 0 uses all hardware threads.</param>
    /// <param name="loggerFactory">Where to log; null logs nowhere.</param>
    /// <returns>The new context.</returns>
    public static MoeContext CreateCpu(int threads = 0, ILoggerFactory? loggerFactory = null) =>
        CreateCore((int)Backend.Cpu, 0, threads, loggerFactory);

    /// <summary>Creates a CUDA context on a device.</summary>
    /// <param name="device">The CUDA device index.</param>
    /// <param name="loggerFactory">Where to log; null logs nowhere.</param>
    /// <returns>The new context.</returns>
    /// <exception cref="MoeCutlassNoDeviceException">No driver, no device, or no device with this index.</exception>
    /// <exception cref="MoeCutlassUnsupportedException">The native library was built without CUDA.</exception>
    public static MoeContext CreateCuda(int device = 0, ILoggerFactory? loggerFactory = null) =>
        CreateCore((int)Backend.Cuda, device, 0, loggerFactory);

    /// <summary>
    /// Tries to create a CUDA context; returns false (instead of throwing) only when there is no usable device or the
    /// library has no CUDA support. Every other failure still throws.
    /// </summary>
    /// <param name="device">The CUDA device index.</param>
    /// <param name="context">The new context when the method returns true.</param>
    /// <param name="loggerFactory">Where to log; null logs nowhere.</param>
    /// <returns>Whether a context was created.</returns>
    public static bool TryCreateCuda(int device, [NotNullWhen(true)] out MoeContext? context, ILoggerFactory? loggerFactory = null)
    {
        try
        {
            context = CreateCuda(device, loggerFactory);
            return true;
        }
        catch (MoeCutlassException ex) when (ex.Status is MoeStatus.NoDevice or MoeStatus.Unsupported)
        {
            Log.CudaUnavailable((loggerFactory ?? NullLoggerFactory.Instance).CreateLogger(LoggerCategory), device, ex.Message);
            context = null;
            return false;
        }
    }

    /// <summary>Creates a context for a backend.</summary>
    /// <param name="backend">The backend; an unknown value is rejected by the library (<see cref="MoeStatus.InvalidBackend"/>).</param>
    /// <param name="device">The CUDA device index (must be 0 for the CPU backend).</param>
    /// <param name="loggerFactory">Where to log; null logs nowhere.</param>
    /// <returns>The new context.</returns>
    public static MoeContext Create(Backend backend, int device = 0, ILoggerFactory? loggerFactory = null) =>
        CreateCore((int)backend, device, 0, loggerFactory);

    private static unsafe MoeContext CreateCore(int backend, int device, int threads, ILoggerFactory? loggerFactory)
    {
        loggerFactory ??= NullLoggerFactory.Instance;
        MoeCutlassLibrary.Initialize(loggerFactory);
        var desc = new mc_context_desc
        {
            struct_size = (uint)sizeof(mc_context_desc),
            backend = backend,
            device = device,
            cpu_threads = threads,
        };
        var handle = new ContextHandle();
        try
        {
            nint raw = 0;
            NativeStatus.Check(NativeMethods.mc_context_create(&desc, &raw), ParameterMap.ContextCreate);
            handle.Attach(raw);
            mc_context_info info = GetInfo(handle);
            var actualBackend = (Backend)info.backend;
            DeviceInfo? deviceInfo = actualBackend == Backend.Cuda ? MoeCutlassLibrary.GetDeviceInfo(info.device) : null;
            var context = new MoeContext(handle, actualBackend, info.device, info.cpu_threads, deviceInfo, loggerFactory);
            Log.ContextCreated(context._logger, context.Backend, context.Device, deviceInfo?.Name ?? "CPU reference", context.CpuThreads);
            return context;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Allocates context memory for <paramref name="length"/> elements (device memory on CUDA), 256-byte aligned, uninitialized.</summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="length">Number of elements. 0 gives an empty buffer: no native allocation, <see cref="DeviceBuffer.Pointer"/>
    /// 0; every call that takes buffers accepts it where it has nothing to read or write (empty experts, empty batches).</param>
    /// <returns>The new buffer; dispose it to free the memory.</returns>
    /// <exception cref="MoeCutlassOutOfMemoryException">The allocation failed.</exception>
    public unsafe DeviceBuffer<T> Allocate<T>(long length)
        where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length > long.MaxValue / sizeof(T))
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "The buffer size in bytes does not fit in 64 bits.");
        }

        using var context = Lease();
        void* pointer = null;
        if (length > 0)
        {
            NativeStatus.Check(NativeMethods.mc_malloc(context.Raw, length * sizeof(T), &pointer));
        }

        return new DeviceBuffer<T>(this, new BufferHandle(_handle, (nint)pointer), length);
    }

    /// <summary>Allocates a buffer holding a copy of <paramref name="data"/> (synchronous: the copy is complete on return).</summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="data">The host data; empty gives an empty buffer (see <see cref="Allocate{T}"/>).</param>
    /// <returns>The new buffer.</returns>
    public DeviceBuffer<T> Upload<T>(ReadOnlySpan<T> data)
        where T : unmanaged
    {
        var buffer = Allocate<T>(data.Length);
        try
        {
            buffer.CopyFrom(data);
            return buffer;
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>Creates a stream of this context (a CUDA stream; an in-order no-op queue on the CPU backend).</summary>
    /// <returns>The new stream.</returns>
    public unsafe MoeStream CreateStream()
    {
        using var context = Lease();
        nint raw = 0;
        NativeStatus.Check(NativeMethods.mc_stream_create(context.Raw, &raw));
        var handle = new StreamHandle(_handle, raw);
        try
        {
            void* native = null;
            NativeStatus.Check(NativeMethods.mc_stream_get_native(raw, &native));
            return new MoeStream(this, handle, (nint)native);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Creates an event of this context, for ordering and timing.</summary>
    /// <returns>The new event.</returns>
    public unsafe MoeEvent CreateEvent()
    {
        using var context = Lease();
        nint raw = 0;
        NativeStatus.Check(NativeMethods.mc_event_create(context.Raw, &raw));
        return new MoeEvent(this, new EventHandle(_handle, raw));
    }

    /// <summary>
    /// Creates a grouped-GEMM plan: validates the shape, chooses kernel configurations and allocates the workspace once.
    /// </summary>
    /// <param name="options">Experts, N, K, output dtype, strategy and the largest row count any run will pass.</param>
    /// <returns>The plan; run it many times on any stream of this context.</returns>
    /// <exception cref="MoeCutlassArgumentException">The library rejected the options (E, N, K, dtype, strategy, max rows).</exception>
    public unsafe GroupedGemmPlan CreateGroupedGemmPlan(GroupedGemmOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        using var context = Lease();
        var desc = new mc_grouped_gemm_desc
        {
            struct_size = (uint)sizeof(mc_grouped_gemm_desc),
            experts = options.Experts,
            n = options.N,
            k = options.K,
            output_dtype = (int)options.OutputDType,
            strategy = (int)options.Strategy,
            max_rows = options.MaxRows,
            flags = options.StaticWeights ? NativeConstants.MC_PLAN_STATIC_WEIGHTS : 0,
        };
        if (options.Configurations is { } configurations)
        {
            if (configurations.Count > NativeConstants.MC_MAX_PLAN_CONFIGS)
            {
                throw new ArgumentException(
                    $"Configurations has {configurations.Count} entries; a plan takes at most {NativeConstants.MC_MAX_PLAN_CONFIGS}.", nameof(options));
            }

            desc.config_count = configurations.Count;
            for (int i = 0; i < configurations.Count; i++)
            {
                ConfigurationRange range = configurations[i] ?? throw new ArgumentException($"Configurations[{i}] is null.", nameof(options));
                KernelConfiguration? known = MoeCutlassLibrary.KernelConfigurations.FirstOrDefault(c => c.Name == range.Name);
                if (known is null)
                {
                    throw new ArgumentException(
                        $"Configurations[{i}].Name = '{range.Name}' is not a kernel configuration of this library; known: "
                        + string.Join(", ", MoeCutlassLibrary.KernelConfigurations.Select(c => c.Name)) + ".",
                        nameof(options));
                }

                desc.configs[i] = known.Index;
                desc.config_max_rows[i] = range.MaxRows;
            }
        }

        nint raw = 0;
        NativeStatus.Check(NativeMethods.mc_grouped_gemm_plan_create(context.Raw, &desc, &raw), ParameterMap.GroupedGemmPlanCreate);
        var handle = new PlanHandle(_handle, raw);
        try
        {
            mc_grouped_gemm_plan_info info = default;
            info.struct_size = (uint)sizeof(mc_grouped_gemm_plan_info);
            NativeStatus.Check(NativeMethods.mc_grouped_gemm_plan_get_info(raw, &info));
            var planConfigurations = new KernelConfiguration[info.config_count];
            for (int i = 0; i < info.config_count; i++)
            {
                planConfigurations[i] = MoeCutlassLibrary.KernelConfigurations[info.configs[i]];
            }

            var plan = new GroupedGemmPlan(this, handle, options, planConfigurations, info.workspace_bytes,
                NativeStatus.FromFixed(info.selection, 64));
            if (Backend == Backend.Cpu)
            {
                double flops = 2.0 * options.MaxRows * options.N * options.K;
                if (flops > CpuLargeProblemFlops)
                {
                    Log.CpuBackendLargeProblem(_logger, flops / 1e9, options.MaxRows, options.N, options.K);
                }
            }

            return plan;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates an MoE layer over FP8 expert weights already in this context's memory (quantized by
    /// <see cref="QuantizeWeights"/> or loaded pre-quantized): validates the options and the buffer sizes, creates the two
    /// grouped-GEMM plans and allocates the workspace for <see cref="MoeLayerOptions.MaxTokens"/>.
    /// </summary>
    /// <param name="options">Shape, routing, dtypes, strategy and capacity.</param>
    /// <param name="w13">e4m3 [E, 2I, H] (<see cref="DeviceBuffer{T}"/> of <see cref="byte"/>): per expert, rows 0 .. I-1 are
    /// the gate projection and rows I .. 2I-1 the up projection (E = <see cref="MoeLayerOptions.LocalExperts"/>).</param>
    /// <param name="w13Scales">fp32 [E, ceil(2I/128), ceil(H/128)].</param>
    /// <param name="w2">e4m3 [E, H, I].</param>
    /// <param name="w2Scales">fp32 [E, ceil(H/128), ceil(I/128)].</param>
    /// <returns>The layer. It references the four buffers (it does not copy them) and holds a reference on each, so a
    /// Dispose of a buffer by the caller, or its finalization, cannot free the memory while the layer lives: the memory is
    /// freed once both the buffer and the layer are disposed. Do not change their contents while the layer is used.</returns>
    /// <exception cref="ArgumentNullException">A buffer is null.</exception>
    /// <exception cref="MoeCutlassArgumentException">A buffer has the wrong element type (<see cref="MoeStatus.InvalidDtype"/>)
    /// or belongs to another context (ParamName names it), or the library rejected the options (ParamName <c>options</c>,
    /// the message names the property) or a buffer's size (<see cref="MoeStatus.BufferTooSmall"/>, ParamName names it).</exception>
    public unsafe MoeLayer CreateMoeLayer(MoeLayerOptions options, DeviceBuffer w13, DeviceBuffer w13Scales, DeviceBuffer w2, DeviceBuffer w2Scales)
    {
        ArgumentNullException.ThrowIfNull(options);
        var typedW13 = CheckWeight<byte>(w13);
        var typedW13Scales = CheckWeight<float>(w13Scales);
        var typedW2 = CheckWeight<byte>(w2);
        var typedW2Scales = CheckWeight<float>(w2Scales);
        return CreateMoeLayerCore(options, typedW13, typedW13Scales, typedW2, typedW2Scales, ownsWeights: false);
    }

    /// <summary>
    /// Creates an MoE layer from host weights in full precision: uploads them, quantizes them to e4m3 with 128x128 block
    /// scales (<see cref="QuantizeWeights"/>) into buffers the layer owns (disposed with it), and waits for that to finish.
    /// </summary>
    /// <param name="options">Shape, routing, dtypes, strategy and capacity.</param>
    /// <param name="w13">[E, 2I, H] row-major, per expert the gate rows then the up rows (E = <see cref="MoeLayerOptions.LocalExperts"/>).</param>
    /// <param name="w2">[E, H, I] row-major.</param>
    /// <param name="stream">The stream to quantize on; null = the context's default stream. The method returns once the
    /// quantization is complete.</param>
    /// <returns>The layer, owning its FP8 weights (<see cref="MoeLayer.OwnsWeights"/>).</returns>
    /// <exception cref="MoeCutlassArgumentException">The library rejected the options (ParamName <c>options</c>), or a span's
    /// length is not the options' element count (<see cref="MoeStatus.InvalidArgument"/>, ParamName <c>w13</c> or <c>w2</c>).</exception>
    public MoeLayer CreateMoeLayerFromHost(MoeLayerOptions options, ReadOnlySpan<float> w13, ReadOnlySpan<float> w2, MoeStream? stream = null) =>
        CreateMoeLayerFromHostCore(options, w13, w2, stream);

    /// <inheritdoc cref="CreateMoeLayerFromHost(MoeLayerOptions, ReadOnlySpan{float}, ReadOnlySpan{float}, MoeStream?)"/>
    public MoeLayer CreateMoeLayerFromHost(MoeLayerOptions options, ReadOnlySpan<Half> w13, ReadOnlySpan<Half> w2, MoeStream? stream = null) =>
        CreateMoeLayerFromHostCore(options, w13, w2, stream);

    /// <inheritdoc cref="CreateMoeLayerFromHost(MoeLayerOptions, ReadOnlySpan{float}, ReadOnlySpan{float}, MoeStream?)"/>
    public MoeLayer CreateMoeLayerFromHost(MoeLayerOptions options, ReadOnlySpan<BFloat16> w13, ReadOnlySpan<BFloat16> w2, MoeStream? stream = null) =>
        CreateMoeLayerFromHostCore(options, w13, w2, stream);

    private MoeLayer CreateMoeLayerFromHostCore<T>(MoeLayerOptions options, ReadOnlySpan<T> w13, ReadOnlySpan<T> w2, MoeStream? stream)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(options);
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        // The FP8 buffers first and the layer over them (the library validates the options before anything is quantized,
        // so a bad option is reported as such), then the weights are quantized into them: the layer reads them only when
        // it runs.
        var owned = new DeviceBuffer[4];
        MoeLayer? layer = null;
        try
        {
            var q13 = Allocate<byte>(Math.Max(0, options.W13Elements));
            owned[0] = q13;
            var s13 = Allocate<float>(Math.Max(0, options.W13ScaleElements));
            owned[1] = s13;
            var q2 = Allocate<byte>(Math.Max(0, options.W2Elements));
            owned[2] = q2;
            var s2 = Allocate<float>(Math.Max(0, options.W2ScaleElements));
            owned[3] = s2;
            layer = CreateMoeLayerCore(options, q13, s13, q2, s2, ownsWeights: true);
            CheckHostWeights(w13.Length, options.W13Elements, nameof(w13), "E x 2I x H",
                $"{options.LocalExperts} x {2L * options.Intermediate} x {options.Hidden}");
            CheckHostWeights(w2.Length, options.W2Elements, nameof(w2), "E x H x I",
                $"{options.LocalExperts} x {options.Hidden} x {options.Intermediate}");
            // One staging buffer at a time: the peak is the larger of the two full-precision tensors.
            using (DeviceBuffer<T> staging = Upload(w13))
            {
                QuantizeWeights(staging, options.LocalExperts, 2 * options.Intermediate, options.Hidden, q13, s13, stream);
                WaitFor(stream);
            }

            using (DeviceBuffer<T> staging = Upload(w2))
            {
                QuantizeWeights(staging, options.LocalExperts, options.Hidden, options.Intermediate, q2, s2, stream);
                WaitFor(stream);
            }

            return layer;
        }
        catch
        {
            if (layer is not null)
            {
                layer.Dispose(); // disposes the owned buffers too
            }
            else
            {
                foreach (DeviceBuffer? buffer in owned)
                {
                    buffer?.Dispose();
                }
            }

            throw;
        }
    }

    private void WaitFor(MoeStream? stream)
    {
        if (stream is null)
        {
            Synchronize();
        }
        else
        {
            stream.Synchronize();
        }
    }

    private static void CheckHostWeights(int length, long expected, string name, string shape, string values)
    {
        if (length != expected)
        {
            throw new MoeCutlassArgumentException(
                $"{name} has {length} elements, but the layer's weights are {shape} = {values} = {expected}.", MoeStatus.InvalidArgument,
                string.Empty, name);
        }
    }

    private DeviceBuffer<T> CheckWeight<T>(DeviceBuffer buffer, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(buffer))] string? name = null)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(buffer, name);
        if (buffer is not DeviceBuffer<T> typed)
        {
            string role = typeof(T) == typeof(byte) ? "e4m3 weights" : "fp32 block scales";
            throw new MoeCutlassArgumentException(
                $"{name} must be a DeviceBuffer<{DeviceBuffer.TypeName(typeof(T))}> ({role}), not a {buffer.TypeDisplayName}.",
                MoeStatus.InvalidDtype, string.Empty, name);
        }

        if (!ReferenceEquals(buffer.Context, this))
        {
            throw new MoeCutlassArgumentException($"{name} belongs to another context ({buffer.Context}), not to {this}.",
                MoeStatus.InvalidArgument, string.Empty, name);
        }

        return typed;
    }

    private unsafe MoeLayer CreateMoeLayerCore(MoeLayerOptions options, DeviceBuffer<byte> w13, DeviceBuffer<float> w13Scales,
        DeviceBuffer<byte> w2, DeviceBuffer<float> w2Scales, bool ownsWeights)
    {
        using var context = Lease();
        using var w13Lease = w13.Lease();
        using var w13ScalesLease = w13Scales.Lease();
        using var w2Lease = w2.Lease();
        using var w2ScalesLease = w2Scales.Lease();
        var desc = new mc_moe_layer_desc
        {
            struct_size = (uint)sizeof(mc_moe_layer_desc),
            total_experts = options.TotalExperts,
            first_expert = options.FirstExpert,
            local_experts = options.LocalExperts,
            top_k = options.TopK,
            hidden = options.Hidden,
            inter = options.Intermediate,
            routing = (int)options.Routing,
            normalize_routing_weights = options.NormalizeRoutingWeights ? 1 : 0,
            activation = (int)options.Activation,
            input_dtype = (int)options.InputDType,
            logits_dtype = (int)options.LogitsDType,
            output_dtype = (int)options.OutputDType,
            max_tokens = options.MaxTokens,
            strategy = (int)options.Strategy,
        };
        var weights = new mc_moe_layer_weights
        {
            struct_size = (uint)sizeof(mc_moe_layer_weights),
            w13 = (void*)w13Lease.Raw,
            w13_scales = (float*)w13ScalesLease.Raw,
            w2 = (void*)w2Lease.Raw,
            w2_scales = (float*)w2ScalesLease.Raw,
        };
        nint raw = 0;
        if (options.Parallel is { } parallel)
        {
            // A null communicator goes to the library as NULL, which names it (after the checks that come first).
            using HandleLease communicator = parallel.Communicator is null ? default : parallel.Communicator.Lease();
            var parallelDesc = new mc_moe_layer_parallel_desc
            {
                struct_size = (uint)sizeof(mc_moe_layer_parallel_desc),
                mode = (int)parallel.Mode,
                communicator = communicator.Raw,
                tokens_per_rank = parallel.TokensPerRank,
            };
            NativeStatus.Check(NativeMethods.mc_moe_layer_create_parallel(context.Raw, &desc, &parallelDesc, &weights, &raw),
                ParameterMap.MoeLayerCreate);
        }
        else
        {
            NativeStatus.Check(NativeMethods.mc_moe_layer_create(context.Raw, &desc, &weights, &raw), ParameterMap.MoeLayerCreate);
        }
        MoeLayerHandle handle;
        try
        {
            handle = new MoeLayerHandle(_handle, raw, [w13.Handle, w13Scales.Handle, w2.Handle, w2Scales.Handle]);
        }
        catch
        {
            NativeMethods.mc_moe_layer_destroy(raw);
            throw;
        }

        try
        {
            mc_moe_layer_info info = default;
            info.struct_size = (uint)sizeof(mc_moe_layer_info);
            NativeStatus.Check(NativeMethods.mc_moe_layer_get_info(raw, &info));
            return new MoeLayer(this, handle, options, w13, w13Scales, w2, w2Scales, ownsWeights, info);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>Waits until all work enqueued on this context (every stream) has completed. To wait without blocking a
    /// thread, await <see cref="MoeStream.SynchronizeAsync"/> of the streams the work was enqueued on.</summary>
    public void Synchronize()
    {
        using var context = Lease();
        NativeStatus.Check(NativeMethods.mc_context_synchronize(context.Raw));
    }

    /// <summary>
    /// Waits for all work on the context, then reads the device-side error flag: set when a CUDA grouped GEMM met expert
    /// offsets that were not monotonic, negative or beyond the rows and clamped them. Always <see cref="DeviceErrorFlags.None"/>
    /// on the CPU backend, which rejects such offsets with <see cref="MoeStatus.InvalidOffsets"/> instead.
    /// </summary>
    /// <param name="reset">Whether to clear the flag after reading it.</param>
    /// <returns>The flags found.</returns>
    public unsafe DeviceErrorFlags QueryDeviceErrors(bool reset = false)
    {
        using var context = Lease();
        int flags = 0;
        NativeStatus.Check(NativeMethods.mc_context_query_device_errors(context.Raw, reset ? 1 : 0, &flags));
        var result = (DeviceErrorFlags)flags;
        if (result != DeviceErrorFlags.None)
        {
            Log.DeviceErrorFlagsSet(_logger, Backend, Device, result);
        }

        return result;
    }

    /// <summary>
    /// Quantizes activations [rows, cols] to e4m3 with one fp32 scale per row per 128 columns (scale = amax / 448,
    /// 1 for an all-zero block); the "1x128" recipe of the grouped GEMM's A operand.
    /// </summary>
    /// <param name="input">[rows, cols] of <see cref="float"/>, <see cref="BFloat16"/> or <see cref="Half"/>.</param>
    /// <param name="rows">Rows.</param>
    /// <param name="cols">Columns (K).</param>
    /// <param name="output">e4m3 [rows, cols].</param>
    /// <param name="scales">fp32 [rows, ceil(cols / 128)].</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    public unsafe void QuantizeActivations(DeviceBuffer input, int rows, int cols, DeviceBuffer<byte> output, DeviceBuffer<float> scales,
        MoeStream? stream = null)
    {
        int dtype = QuantizationInputDType(input);
        CheckBuffer(output);
        CheckBuffer(scales);
        using var context = Lease();
        using var inputLease = input.Lease();
        using var outputLease = output.Lease();
        using var scalesLease = scales.Lease();
        using var streamLease = MoeStream.Lease(stream);
        if (NothingToDo((long)rows * cols, rows, cols, input, output, scales))
        {
            return;
        }

        NativeStatus.Check(NativeMethods.mc_quantize_activations_async(context.Raw, (void*)inputLease.Raw, dtype, rows, cols,
            (void*)outputLease.Raw, (float*)scalesLease.Raw, streamLease.Raw), ParameterMap.Quantize);
    }

    /// <summary>
    /// Quantizes expert weights [experts, n, k] to e4m3 with one fp32 scale per 128x128 block (scale = amax / 448,
    /// 1 for an all-zero block); the recipe of the grouped GEMM's B operand.
    /// </summary>
    /// <param name="input">[experts, n, k] of <see cref="float"/>, <see cref="BFloat16"/> or <see cref="Half"/>.</param>
    /// <param name="experts">Experts.</param>
    /// <param name="n">Rows per expert (N).</param>
    /// <param name="k">Columns (K).</param>
    /// <param name="output">e4m3 [experts, n, k].</param>
    /// <param name="scales">fp32 [experts, ceil(n / 128), ceil(k / 128)].</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    public unsafe void QuantizeWeights(DeviceBuffer input, int experts, int n, int k, DeviceBuffer<byte> output, DeviceBuffer<float> scales,
        MoeStream? stream = null)
    {
        int dtype = QuantizationInputDType(input);
        CheckBuffer(output);
        CheckBuffer(scales);
        using var context = Lease();
        using var inputLease = input.Lease();
        using var outputLease = output.Lease();
        using var scalesLease = scales.Lease();
        using var streamLease = MoeStream.Lease(stream);
        if (NothingToDo((long)experts * n * k, Math.Min(experts, Math.Min(n, k)), 0, input, output, scales))
        {
            return;
        }

        NativeStatus.Check(NativeMethods.mc_quantize_weights_async(context.Raw, (void*)inputLease.Raw, dtype, experts, n, k,
            (void*)outputLease.Raw, (float*)scalesLease.Raw, streamLease.Raw), ParameterMap.Quantize);
    }

    /// <summary>
    /// Converts <paramref name="count"/> elements between dtypes (to e4m3: round to nearest even, saturating to ±448,
    /// NaN stays NaN). The dtypes are passed as given: an unknown one is rejected by the library.
    /// </summary>
    /// <param name="source">The source buffer.</param>
    /// <param name="sourceType">The dtype of the source elements.</param>
    /// <param name="destination">The destination buffer.</param>
    /// <param name="destinationType">The dtype of the destination elements.</param>
    /// <param name="count">Number of elements.</param>
    /// <param name="stream">The stream to enqueue on; null = the context's default stream.</param>
    public unsafe void Convert(DeviceBuffer source, DType sourceType, DeviceBuffer destination, DType destinationType, long count,
        MoeStream? stream = null)
    {
        CheckBuffer(source);
        CheckBuffer(destination);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        using var context = Lease();
        using var sourceLease = source.Lease();
        using var destinationLease = destination.Lease();
        using var streamLease = MoeStream.Lease(stream);
        if (count == 0 && (source.Length == 0 || destination.Length == 0) && Enum.IsDefined(sourceType) && Enum.IsDefined(destinationType))
        {
            return; // an empty buffer (pointer 0) and nothing to convert
        }

        NativeStatus.Check(NativeMethods.mc_convert_async(context.Raw, (void*)sourceLease.Raw, (int)sourceType,
            (void*)destinationLease.Raw, (int)destinationType, count, streamLease.Raw), ParameterMap.Convert);
    }

    /// <summary>
    /// Marks the context disposed. The native context is destroyed once every buffer, stream, event and plan created
    /// from it has been disposed too (see the remarks on <see cref="MoeContext"/>). Safe to call more than once.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Log.ContextDestroyed(_logger, Backend, Device);
        _handle.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() =>
        Backend == Backend.Cuda ? $"MoeContext(Cuda:{Device} {DeviceInfo?.Name})" : $"MoeContext(Cpu, {CpuThreads} threads)";

    /// <summary>Leases the context handle for one native call; throws ObjectDisposedException once disposed.</summary>
    internal HandleLease Lease()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return new HandleLease(_handle);
    }

    /// <summary>Checks that a buffer is not null and was allocated by this context.</summary>
    internal void CheckBuffer(DeviceBuffer buffer, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(buffer))] string? name = null)
    {
        ArgumentNullException.ThrowIfNull(buffer, name);
        if (!ReferenceEquals(buffer.Context, this))
        {
            throw new ArgumentException($"The buffer belongs to another context ({buffer.Context}), not to {this}.", name);
        }
    }

    /// <summary>Whether a quantization has no elements and an empty operand (pointer 0), so the native call is skipped;
    /// negative extents still go to the library, which rejects them.</summary>
    private static bool NothingToDo(long elements, int smallestExtent, int otherExtent, DeviceBuffer input, DeviceBuffer output,
        DeviceBuffer scales) =>
        elements == 0 && smallestExtent >= 0 && otherExtent >= 0 && (input.Length == 0 || output.Length == 0 || scales.Length == 0);

    private int QuantizationInputDType(DeviceBuffer input, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(input))] string? name = null)
    {
        CheckBuffer(input, name);
        return input.ElementDType switch
        {
            DType.Float32 => NativeConstants.MC_DTYPE_FP32,
            DType.BFloat16 => NativeConstants.MC_DTYPE_BF16,
            DType.Float16 => NativeConstants.MC_DTYPE_FP16,
            _ => throw new ArgumentException(
                $"Quantization input must be a buffer of float, BFloat16 or Half, not of {input.ElementType.Name}.", name),
        };
    }

    private unsafe mc_context_info GetInfo()
    {
        using var context = Lease();
        return GetInfo(_handle);
    }

    private static unsafe mc_context_info GetInfo(ContextHandle handle)
    {
        mc_context_info info = default;
        info.struct_size = (uint)sizeof(mc_context_info);
        NativeStatus.Check(NativeMethods.mc_context_get_info(handle.DangerousGetHandle(), &info));
        return info;
    }
}
