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
    /// <exception cref="MoeCutlassArgumentException">The stream is capturing (<see cref="BeginCapture"/>): waiting for it would
    /// invalidate the capture, so the library refuses (<see cref="MoeStatus.InvalidArgument"/>).</exception>
    public void Synchronize()
    {
        using var lease = Lease(this);
        NativeStatus.Check(NativeMethods.mc_stream_synchronize(lease.Raw));
    }

    /// <summary>
    /// Waits without blocking a thread until all work enqueued on this stream so far has completed: records an event at
    /// the end of the stream and polls it (<c>mc_event_query</c>), backing off from a yield to 16 ms between polls. On the
    /// CPU backend the work has completed when it was enqueued, so the task completes at once.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting (the GPU work itself is not cancelled).</param>
    /// <returns>A task that completes when the work has completed.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled before the work completed.</exception>
    /// <exception cref="ObjectDisposedException">The stream was disposed.</exception>
    public async Task SynchronizeAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        using MoeEvent done = Context.CreateEvent();
        done.Record(this);
        await done.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Starts capturing this stream into a CUDA graph: until <see cref="EndCapture"/>, work enqueued on it (grouped-GEMM
    /// runs of every strategy but <see cref="GemmStrategy.Cublas"/>, fills, copies between buffers) is recorded, not run. Capture is thread-local: call <see cref="EndCapture"/>
    /// on the same thread, and make no allocations (<see cref="MoeContext.Allocate{T}"/>) or host copies on that thread
    /// in between.
    /// </summary>
    /// <remarks>
    /// While the stream captures, calls that would wait for it fail with <see cref="MoeCutlassArgumentException"/>
    /// (<see cref="MoeStatus.InvalidArgument"/>) and leave the capture intact: <see cref="Synchronize"/>,
    /// <see cref="MoeContext.Synchronize"/>, <see cref="MoeContext.QueryDeviceErrors"/> and the synchronous host copies of
    /// <see cref="DeviceBuffer{T}"/>. Disposing the stream ends (and discards) an open capture.
    /// </remarks>
    /// <exception cref="MoeCutlassUnsupportedException">The context uses the CPU backend (<see cref="MoeContext.SupportsGraphs"/> is false).</exception>
    /// <exception cref="MoeCutlassArgumentException">The stream is already capturing.</exception>
    /// <exception cref="ObjectDisposedException">The stream was disposed.</exception>
    public void BeginCapture()
    {
        using var lease = Lease(this);
        NativeStatus.Check(NativeMethods.mc_stream_begin_capture(lease.Raw));
    }

    /// <summary>Ends the capture begun by <see cref="BeginCapture"/> and instantiates the recorded work as an executable graph.</summary>
    /// <returns>The graph; launch it any number of times (<see cref="MoeGraph.Launch"/>) and dispose it when done.</returns>
    /// <exception cref="MoeCutlassArgumentException">The stream is not capturing.</exception>
    /// <exception cref="MoeCutlassCudaException">The capture was invalidated, for example by other code that synchronized
    /// the stream through <see cref="NativeHandle"/>. The broken capture is ended and discarded: the stream is usable again
    /// and can capture anew.</exception>
    /// <exception cref="ObjectDisposedException">The stream was disposed, or the context was disposed (then the capture is
    /// ended and its graph discarded, since a disposed context takes no new children).</exception>
    public unsafe MoeGraph EndCapture()
    {
        using var lease = Lease(this);
        nint raw = 0;
        NativeStatus.Check(NativeMethods.mc_stream_end_capture(lease.Raw, &raw));
        GraphHandle handle;
        try
        {
            ObjectDisposedException.ThrowIf(Context.IsDisposed, Context);
            handle = new GraphHandle(Context.Handle, raw);
        }
        catch
        {
            NativeMethods.mc_graph_destroy(raw);
            throw;
        }

        Log.GraphCaptured(Context.GraphLogger, Context.Backend, Context.Device);
        return new MoeGraph(Context, handle);
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

    /// <summary>
    /// Waits without blocking a thread until the work before the last <see cref="Record"/> has completed, by polling
    /// <see cref="IsCompleted"/> (<c>mc_event_query</c>) with a back-off from a yield to 16 ms between polls.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting (the GPU work itself is not cancelled).</param>
    /// <returns>A task that completes when the work has completed.</returns>
    /// <exception cref="OperationCanceledException">The token was cancelled before the work completed.</exception>
    /// <exception cref="ObjectDisposedException">The event was disposed.</exception>
    public async Task WaitAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        int delayMs = 0;
        while (!IsCompleted)
        {
            if (delayMs == 0)
            {
                await Task.Yield();
                cancellationToken.ThrowIfCancellationRequested();
            }
            else
            {
                await Task.Delay(delayMs, cancellationToken).ConfigureAwait(false);
            }

            delayMs = Math.Min(Math.Max(1, delayMs * 2), 16);
        }
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
