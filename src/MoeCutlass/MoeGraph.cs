using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>
/// An executable CUDA graph: the work captured on a stream between <see cref="MoeStream.BeginCapture"/> and
/// <see cref="MoeStream.EndCapture"/>, replayed as a whole by <see cref="Launch"/> with one launch (no per-kernel host
/// overhead). Replays use the same buffers, shapes and argument values as the captured calls; change the contents of
/// the buffers between replays, not the calls.
/// </summary>
/// <remarks>
/// <para>Graphs need the CUDA backend (<see cref="MoeContext.SupportsGraphs"/>).</para>
/// <para><b>Lifetime.</b> Like streams and events, a graph keeps its context's native object alive until it is disposed;
/// the buffers the captured work uses must stay allocated as long as the graph may be launched.</para>
/// </remarks>
/// <example>
/// <code>
/// stream.BeginCapture();
/// plan.Run(rows, a, aScales, b, bScales, offsets, d, stream);
/// using MoeGraph step = stream.EndCapture();
/// for (int i = 0; i &lt; steps; i++)
/// {
///     // ... write new activations and offsets into a, aScales, offsets ...
///     step.Launch(stream);
/// }
/// </code>
/// </example>
public sealed class MoeGraph : IDisposable
{
    internal MoeGraph(MoeContext context, GraphHandle handle)
    {
        Context = context;
        Handle = handle;
    }

    /// <summary>The logger category of graph events.</summary>
    internal const string LoggerCategory = "MoeCutlass.MoeGraph";

    /// <summary>The context whose stream captured the graph.</summary>
    public MoeContext Context { get; }

    /// <summary>Whether the graph was disposed.</summary>
    public bool IsDisposed => Handle.IsClosed;

    internal GraphHandle Handle { get; }

    /// <summary>
    /// Enqueues one replay of the captured work on <paramref name="stream"/> (asynchronous, like any enqueued work).
    /// A graph can be launched any number of times, on any stream of its context; launches of one graph run one after
    /// another.
    /// </summary>
    /// <param name="stream">The stream; null = the context's default stream.</param>
    /// <exception cref="ObjectDisposedException">The graph or the stream was disposed.</exception>
    /// <exception cref="MoeCutlassArgumentException">The stream belongs to another context (<see cref="MoeStatus.ContextMismatch"/>).</exception>
    /// <exception cref="MoeCutlassCudaException">The launch failed.</exception>
    public void Launch(MoeStream? stream = null)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        using var lease = new HandleLease(Handle);
        using var streamLease = MoeStream.Lease(stream);
        NativeStatus.Check(NativeMethods.mc_graph_launch(lease.Raw, streamLease.Raw));
    }

    /// <summary>Destroys the graph; a replay already enqueued still completes. Safe to call more than once.</summary>
    public void Dispose() => Handle.Dispose();

    /// <inheritdoc/>
    public override string ToString() => $"MoeGraph on {Context}";
}
