using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>
/// An in-order work queue of a context: a CUDA stream on a CUDA context; on the CPU backend work runs to completion
/// when enqueued, so a stream only orders it.
/// </summary>
public sealed class MoeStream : IDisposable
{
    internal MoeStream(MoeContext context, StreamHandle handle, nint nativeHandle)
    {
        Context = context;
        Handle = handle;
        NativeHandle = nativeHandle;
    }

    /// <summary>The context that created the stream.</summary>
    public MoeContext Context { get; }

    /// <summary>The underlying <c>cudaStream_t</c> for interop with other CUDA libraries (0 on the CPU backend).</summary>
    public nint NativeHandle { get; }

    /// <summary>Whether the stream was disposed.</summary>
    public bool IsDisposed => Handle.IsClosed;

    internal StreamHandle Handle { get; }

    /// <summary>Waits until all work enqueued on this stream has completed.</summary>
    public void Synchronize()
    {
        using var lease = Lease(this);
        NativeStatus.Check(NativeMethods.mc_stream_synchronize(lease.Raw));
    }

    /// <summary>Destroys the stream (after its pending work, as CUDA does). Safe to call more than once.</summary>
    public void Dispose() => Handle.Dispose();

    /// <summary>Leases a stream for one native call: a null stream gives 0 (the context's default stream).</summary>
    internal static HandleLease Lease(MoeStream? stream)
    {
        if (stream is null)
        {
            return new HandleLease(null);
        }

        ObjectDisposedException.ThrowIf(stream.IsDisposed, stream);
        return new HandleLease(stream.Handle);
    }
}

/// <summary>A point in a stream's work, for waiting and timing.</summary>
public sealed class MoeEvent : IDisposable
{
    internal MoeEvent(MoeContext context, EventHandle handle)
    {
        Context = context;
        Handle = handle;
    }

    /// <summary>The context that created the event.</summary>
    public MoeContext Context { get; }

    /// <summary>Whether the event was disposed.</summary>
    public bool IsDisposed => Handle.IsClosed;

    /// <summary>Whether all work before the last <see cref="Record"/> has completed (false while it is pending).</summary>
    public bool IsCompleted
    {
        get
        {
            using var lease = Lease();
            int status = NativeMethods.mc_event_query(lease.Raw);
            if (status == NativeConstants.MC_STATUS_NOT_READY)
            {
                return false;
            }

            NativeStatus.Check(status);
            return true;
        }
    }

    internal EventHandle Handle { get; }

    /// <summary>Records the event at the current end of <paramref name="stream"/>.</summary>
    /// <param name="stream">The stream; null = the context's default stream.</param>
    public void Record(MoeStream? stream = null)
    {
        using var lease = Lease();
        using var streamLease = MoeStream.Lease(stream);
        NativeStatus.Check(NativeMethods.mc_event_record(lease.Raw, streamLease.Raw));
    }

    /// <summary>Waits until the work before the last <see cref="Record"/> has completed.</summary>
    public void Synchronize()
    {
        using var lease = Lease();
        NativeStatus.Check(NativeMethods.mc_event_synchronize(lease.Raw));
    }

    /// <summary>The time between two recorded, completed events of one context.</summary>
    /// <param name="start">The earlier event.</param>
    /// <param name="end">The later event.</param>
    /// <returns>The elapsed time.</returns>
    public static TimeSpan Elapsed(MoeEvent start, MoeEvent end) => TimeSpan.FromMilliseconds(ElapsedMilliseconds(start, end));

    /// <summary>Milliseconds between two recorded, completed events of one context (CUDA resolution is about 0.5 µs).</summary>
    /// <param name="start">The earlier event.</param>
    /// <param name="end">The later event.</param>
    /// <returns>The elapsed milliseconds.</returns>
    public static unsafe float ElapsedMilliseconds(MoeEvent start, MoeEvent end)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(end);
        using var startLease = start.Lease();
        using var endLease = end.Lease();
        float milliseconds = 0;
        NativeStatus.Check(NativeMethods.mc_event_elapsed_ms(startLease.Raw, endLease.Raw, &milliseconds));
        return milliseconds;
    }

    /// <summary>Destroys the event. Safe to call more than once.</summary>
    public void Dispose() => Handle.Dispose();

    private HandleLease Lease()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return new HandleLease(Handle);
    }
}
