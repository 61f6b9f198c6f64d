using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>
/// One rank of an NCCL communicator, bound to a CUDA context (its device): what a parallel <see cref="MoeLayer"/>
/// (<see cref="MoeLayerOptions.Parallel"/>) exchanges its partial results through. NCCL 2.18 or later is loaded at run
/// time (libnccl.so.2 from the loader's path or NCCL_HOME/lib); a library built without NCCL, a machine without it and
/// the CPU backend throw <see cref="MoeCutlassUnsupportedException"/> naming why.
/// </summary>
/// <remarks>
/// One process per GPU: rank 0 calls <see cref="GetUniqueId"/> and hands the bytes to the other processes; each calls
/// <see cref="Create"/> with its context, the same id and world size, and its rank (the call blocks until every rank has
/// joined). One process driving several GPUs: <see cref="CreateAll"/>. A layer created with a communicator keeps the
/// native communicator alive until the layer is disposed. Set NCCL_NVLS_ENABLE=0 in the environment to keep NVLink
/// multicast off; the library never enables it.
/// </remarks>
public sealed class MoeCommunicator : IDisposable
{
    /// <summary>The size of an NCCL unique id, in bytes.</summary>
    public const int UniqueIdBytes = NativeConstants.MC_NCCL_UNIQUE_ID_BYTES;

    private MoeCommunicator(MoeContext context, CommunicatorHandle handle, mc_communicator_info info)
    {
        Context = context;
        Handle = handle;
        WorldSize = info.world_size;
        Rank = info.rank;
        Device = info.device;
        NcclVersion = info.nccl_version;
    }

    /// <summary>The context (CUDA device) this rank belongs to.</summary>
    public MoeContext Context { get; }

    /// <summary>W: the number of ranks.</summary>
    public int WorldSize { get; }

    /// <summary>r: this rank, 0 .. W-1.</summary>
    public int Rank { get; }

    /// <summary>The CUDA device of <see cref="Context"/>.</summary>
    public int Device { get; }

    /// <summary>The loaded NCCL's version, major * 10000 + minor * 100 + patch (21803 is 2.18.3).</summary>
    public int NcclVersion { get; }

    /// <summary>Whether <see cref="Dispose"/> has been called.</summary>
    public bool IsDisposed => Handle.IsClosed;

    internal CommunicatorHandle Handle { get; }

    /// <summary>A new NCCL unique id (rank 0 makes it and hands it to every rank).</summary>
    /// <returns>The <see cref="UniqueIdBytes"/> bytes of the id.</returns>
    /// <exception cref="MoeCutlassUnsupportedException">The library was built without NCCL, or no NCCL 2.18+ can be loaded.</exception>
    public static unsafe byte[] GetUniqueId()
    {
        MoeCutlassLibrary.Initialize();
        var id = new mc_nccl_unique_id { struct_size = (uint)sizeof(mc_nccl_unique_id) };
        NativeStatus.Check(NativeMethods.mc_nccl_get_unique_id(&id));
        return new ReadOnlySpan<byte>(id.bytes, UniqueIdBytes).ToArray();
    }

    /// <summary>Joins rank <paramref name="rank"/> of <paramref name="worldSize"/> to the communicator named by <paramref name="uniqueId"/>;
    /// blocks until every rank has joined.</summary>
    /// <param name="context">This rank's CUDA context.</param>
    /// <param name="uniqueId">The id from <see cref="GetUniqueId"/> on rank 0 (<see cref="UniqueIdBytes"/> bytes).</param>
    /// <param name="worldSize">W, 1 .. 65536.</param>
    /// <param name="rank">This rank, 0 .. W-1.</param>
    /// <returns>The communicator.</returns>
    /// <exception cref="MoeCutlassUnsupportedException">A CPU context, a library built without NCCL, or no NCCL 2.18+.</exception>
    public static unsafe MoeCommunicator Create(MoeContext context, ReadOnlySpan<byte> uniqueId, int worldSize, int rank)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (uniqueId.Length != UniqueIdBytes)
        {
            throw new MoeCutlassArgumentException(
                $"uniqueId has {uniqueId.Length} bytes; an NCCL unique id has {UniqueIdBytes} (MoeCommunicator.GetUniqueId).",
                MoeStatus.InvalidArgument, string.Empty, nameof(uniqueId));
        }

        var id = new mc_nccl_unique_id { struct_size = (uint)sizeof(mc_nccl_unique_id) };
        uniqueId.CopyTo(new Span<byte>(id.bytes, UniqueIdBytes));
        using var lease = context.Lease();
        nint raw = 0;
        NativeStatus.Check(NativeMethods.mc_communicator_create(lease.Raw, &id, worldSize, rank, &raw), ParameterMap.CommunicatorCreate);
        return Wrap(context, raw);
    }

    /// <summary>One communicator per context (rank i for <paramref name="contexts"/>[i]), for one process driving several GPUs.</summary>
    /// <param name="contexts">CUDA contexts on distinct devices.</param>
    /// <returns>The communicators, in the order of <paramref name="contexts"/>.</returns>
    public static unsafe MoeCommunicator[] CreateAll(IReadOnlyList<MoeContext> contexts)
    {
        ArgumentNullException.ThrowIfNull(contexts);
        if (contexts.Count == 0)
        {
            throw new MoeCutlassArgumentException("contexts is empty; give one CUDA context per rank.", MoeStatus.OutOfRange,
                string.Empty, nameof(contexts));
        }

        var leases = new List<MoeContext>();
        var raws = new nint[contexts.Count];
        var created = new nint[contexts.Count];
        bool[] added = new bool[contexts.Count];
        try
        {
            for (int i = 0; i < contexts.Count; i++)
            {
                MoeContext context = contexts[i] ?? throw new ArgumentNullException(nameof(contexts), $"contexts[{i}] is null.");
                context.Handle.DangerousAddRef(ref added[i]);
                raws[i] = context.Handle.DangerousGetHandle();
            }

            fixed (nint* contextPointers = raws)
            fixed (nint* communicatorPointers = created)
            {
                NativeStatus.Check(NativeMethods.mc_communicator_create_all(contextPointers, contexts.Count, communicatorPointers),
                    ParameterMap.CommunicatorCreateAll);
            }
        }
        finally
        {
            for (int i = 0; i < contexts.Count; i++)
            {
                if (added[i])
                {
                    contexts[i].Handle.DangerousRelease();
                }
            }
        }

        var result = new MoeCommunicator[contexts.Count];
        int wrapped = 0;
        try
        {
            for (; wrapped < contexts.Count; wrapped++)
            {
                result[wrapped] = Wrap(contexts[wrapped], created[wrapped]);
            }
        }
        catch
        {
            for (int i = 0; i < wrapped; i++)
            {
                result[i].Dispose();
            }

            for (int i = wrapped + 1; i < contexts.Count; i++)
            {
                NativeMethods.mc_communicator_destroy(created[i]);
            }

            throw;
        }

        return result;
    }

    /// <summary>Destroys this rank's communicator (a layer created with it keeps the native communicator until it is disposed).</summary>
    public void Dispose() => Handle.Dispose();

    /// <inheritdoc/>
    public override string ToString() =>
        $"MoeCommunicator(rank {Rank} of {WorldSize}, device {Device}, NCCL {NcclVersion / 10000}.{NcclVersion / 100 % 100}.{NcclVersion % 100})";

    internal HandleLease Lease()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return new HandleLease(Handle);
    }

    private static unsafe MoeCommunicator Wrap(MoeContext context, nint raw)
    {
        CommunicatorHandle handle;
        try
        {
            handle = new CommunicatorHandle(context.Handle, raw);
        }
        catch
        {
            NativeMethods.mc_communicator_destroy(raw);
            throw;
        }

        try
        {
            var info = new mc_communicator_info { struct_size = (uint)sizeof(mc_communicator_info) };
            NativeStatus.Check(NativeMethods.mc_communicator_get_info(raw, &info));
            return new MoeCommunicator(context, handle, info);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}

/// <summary>
/// How a layer is split across ranks (<see cref="MoeLayerOptions.Parallel"/>): the mode and this rank's communicator,
/// which must belong to the layer's context.
/// </summary>
/// <param name="Mode">Tensor or expert parallel.</param>
/// <param name="Communicator">This rank's communicator (its <see cref="MoeCommunicator.WorldSize"/> W and <see cref="MoeCommunicator.Rank"/> r).</param>
public sealed record MoeParallelism(MoeParallelMode Mode, MoeCommunicator Communicator)
{
    /// <summary>
    /// <see cref="MoeParallelMode.Expert"/>: the padded token count every rank passes to the all-gather, 1 ..
    /// <see cref="MoeLayerOptions.MaxTokens"/>, the same on every rank; a forward call then takes 0 .. TokensPerRank of the
    /// rank's own tokens and writes that many output rows. <see cref="MoeParallelMode.Tensor"/>: 0 (the default).
    /// </summary>
    public int TokensPerRank { get; init; }
}
