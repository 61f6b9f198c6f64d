using System.Runtime.InteropServices;
using MoeCutlass.Interop;

namespace MoeCutlass.Internal;

/// <summary>Owns an <c>mc_context</c>; its release destroys the native context.</summary>
/// <remarks>
/// Every child handle (buffer, stream, event, plan, graph) holds a reference on this handle (DangerousAddRef) from its
/// creation until after it has freed its native object, so the native context is destroyed only after the context
/// object and all its children are released, whatever the order of Dispose calls or finalizers.
/// </remarks>
internal sealed class ContextHandle : SafeHandle
{
    public ContextHandle() : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    public void Attach(nint raw) => SetHandle(raw);

    protected override bool ReleaseHandle() => NativeMethods.mc_context_destroy(handle) == NativeConstants.MC_STATUS_OK;
}

/// <summary>A native object that belongs to a context and keeps that context alive until it is freed.</summary>
internal abstract class ContextChildHandle : SafeHandle
{
    /// <summary>Takes a reference on <paramref name="context"/> (throws ObjectDisposedException when it is closed) and owns <paramref name="raw"/>.</summary>
    protected ContextChildHandle(ContextHandle context, nint raw) : base(0, ownsHandle: true)
    {
        bool added = false;
        context.DangerousAddRef(ref added);
        Context = context;
        SetHandle(raw);
    }

    /// <summary>The owning context's handle; valid (not yet destroyed) as long as this handle is not released.</summary>
    public ContextHandle Context { get; }

    public override bool IsInvalid => handle == 0;

    protected sealed override bool ReleaseHandle()
    {
        try
        {
            return Free(Context.DangerousGetHandle(), handle) == NativeConstants.MC_STATUS_OK;
        }
        finally
        {
            Context.DangerousRelease();
        }
    }

    /// <summary>Frees the native object (the context is still alive here).</summary>
    protected abstract int Free(nint context, nint raw);
}

/// <summary>
/// Owns context memory from <c>mc_malloc</c>; the handle value is the pointer. An empty buffer has pointer 0 and no
/// native allocation: it is still a valid handle (it keeps the context alive like any buffer) and frees nothing.
/// </summary>
internal sealed class BufferHandle(ContextHandle context, nint pointer) : ContextChildHandle(context, pointer)
{
    public override bool IsInvalid => false;

    protected override unsafe int Free(nint context, nint raw) =>
        raw == 0 ? NativeConstants.MC_STATUS_OK : NativeMethods.mc_free(context, (void*)raw);
}

/// <summary>Owns an <c>mc_stream</c>.</summary>
internal sealed class StreamHandle(ContextHandle context, nint stream) : ContextChildHandle(context, stream)
{
    protected override int Free(nint context, nint raw) => NativeMethods.mc_stream_destroy(raw);
}

/// <summary>Owns an <c>mc_event</c>.</summary>
internal sealed class EventHandle(ContextHandle context, nint @event) : ContextChildHandle(context, @event)
{
    protected override int Free(nint context, nint raw) => NativeMethods.mc_event_destroy(raw);
}

/// <summary>Owns an <c>mc_grouped_gemm_plan</c>.</summary>
internal sealed class PlanHandle(ContextHandle context, nint plan) : ContextChildHandle(context, plan)
{
    protected override int Free(nint context, nint raw) => NativeMethods.mc_grouped_gemm_plan_destroy(raw);
}

/// <summary>
/// Owns an <c>mc_moe_layer</c> and a reference on each weight buffer it reads: the buffers' memory is freed only after
/// the layer is destroyed, whatever the order of Dispose calls or finalizers (a caller's Dispose of a weight buffer marks
/// the buffer disposed but its memory stays allocated while the layer lives).
/// </summary>
internal sealed class MoeLayerHandle(ContextHandle context, nint layer, BufferHandle[] weights) : ContextChildHandle(context, layer)
{
    // A field initializer runs before the base constructor: a closed weight buffer throws before the context is referenced.
    private readonly BufferHandle[] _weights = AddRefAll(weights);

    protected override int Free(nint context, nint raw)
    {
        try
        {
            return NativeMethods.mc_moe_layer_destroy(raw);
        }
        finally
        {
            foreach (BufferHandle weight in _weights)
            {
                weight.DangerousRelease();
            }
        }
    }

    /// <summary>References every handle (throws ObjectDisposedException for a closed one, having released the others).</summary>
    private static BufferHandle[] AddRefAll(BufferHandle[] handles)
    {
        int added = 0;
        try
        {
            foreach (BufferHandle handle in handles)
            {
                bool ok = false;
                handle.DangerousAddRef(ref ok);
                added++;
            }
        }
        catch
        {
            for (int i = 0; i < added; i++)
            {
                handles[i].DangerousRelease();
            }

            throw;
        }

        return [.. handles];
    }
}

/// <summary>Owns an <c>mc_communicator</c> (an NCCL communicator of one rank).</summary>
internal sealed class CommunicatorHandle(ContextHandle context, nint communicator) : ContextChildHandle(context, communicator)
{
    protected override int Free(nint context, nint raw) => NativeMethods.mc_communicator_destroy(raw);
}

/// <summary>Owns an <c>mc_graph</c> (an executable CUDA graph).</summary>
internal sealed class GraphHandle(ContextHandle context, nint graph) : ContextChildHandle(context, graph)
{
    protected override int Free(nint context, nint raw) => NativeMethods.mc_graph_destroy(raw);
}

/// <summary>
/// Keeps a SafeHandle from being released for the duration of a native call (what SafeHandle marshalling would do);
/// a null handle leases nothing and gives 0. Throws ObjectDisposedException for a closed handle.
/// </summary>
internal ref struct HandleLease
{
    private readonly SafeHandle? _handle;
    private bool _added;

    public HandleLease(SafeHandle? handle)
    {
        _handle = handle;
        _added = false;
        Raw = 0;
        if (handle is not null)
        {
            handle.DangerousAddRef(ref _added);
            Raw = handle.DangerousGetHandle();
        }
    }

    /// <summary>The raw handle value (0 for no handle).</summary>
    public nint Raw { get; }

    public void Dispose()
    {
        if (_added)
        {
            _added = false;
            _handle!.DangerousRelease();
        }
    }
}
