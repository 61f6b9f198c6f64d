using System.Diagnostics;
using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass.Tests;

/// <summary>
/// CUDA graphs on the CPU backend: capture is refused as unsupported and leaves the stream working; the facade's
/// argument, disposal and lifetime rules for streams and graphs. (Capture and replay run in Gpu/CudaGraphTests.)
/// </summary>
[TestFixture]
public sealed unsafe class GraphTests : NativeTestBase
{
    [Test]
    public void CpuContext_DoesNotSupportGraphs()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        Assert.That(context.SupportsGraphs, Is.False);
    }

    [Test]
    public void CpuCapture_IsUnsupported_AndTheStreamKeepsWorking()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var stream = context.CreateStream();
        using var buffer = context.Allocate<int>(8);

        var ex = Assert.Throws<MoeCutlassUnsupportedException>(stream.BeginCapture);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Status, Is.EqualTo(MoeStatus.Unsupported));
            Assert.That(ex.NativeMessage, Does.StartWith("mc_stream_begin_capture: CUDA graphs need the CUDA backend"));
            Assert.That(ex.Message, Does.EndWith("[MC_STATUS_UNSUPPORTED]"));
        }

        // Nothing is being captured: work runs at once and the stream can be waited for.
        buffer.Fill(5, stream);
        stream.Synchronize();
        Assert.That(buffer.ToArray(), Is.All.EqualTo(5));
    }

    [Test]
    public void EndCapture_WithoutACapture_IsAnArgumentError()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var stream = context.CreateStream();

        var ex = Assert.Throws<MoeCutlassArgumentException>(() => stream.EndCapture().Dispose());

        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.InvalidArgument));
        Assert.That(ex.NativeMessage, Does.Contain("is not capturing").And.Contain("CUDA graphs need the CUDA backend"));
    }

    [Test]
    public void DisposedStream_CannotCapture()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var stream = context.CreateStream();
        stream.Dispose();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(stream.BeginCapture, Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => stream.EndCapture(), Throws.TypeOf<ObjectDisposedException>());
        }
    }

    [Test]
    public void GraphHandles_AreValidatedByTheLibrary()
    {
        // Handle values the library never issued (the CPU backend cannot capture a real graph).
        using var context = MoeContext.CreateCpu(threads: 1);
        using var stream = context.CreateStream();
        int launch = NativeMethods.mc_graph_launch(unchecked((nint)0xDEADBEEF0), 0);
        string launchMessage = NativeStatus.LastError();
        int wrongKind = NativeMethods.mc_graph_launch(stream.Handle.DangerousGetHandle(), 0);
        string wrongKindMessage = NativeStatus.LastError();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(launch, Is.EqualTo(NativeConstants.MC_STATUS_INVALID_HANDLE));
            Assert.That(launchMessage, Does.Contain("graph = 0xdeadbeef0").And.Contain("not a live mc_graph"));
            Assert.That(wrongKind, Is.EqualTo(NativeConstants.MC_STATUS_INVALID_HANDLE));
            Assert.That(wrongKindMessage, Does.Contain("is an mc_stream, not an mc_graph"));
            Assert.That(NativeMethods.mc_graph_launch(0, 0), Is.EqualTo(NativeConstants.MC_STATUS_NULL_POINTER));
            Assert.That(NativeMethods.mc_graph_destroy(0), Is.EqualTo(NativeConstants.MC_STATUS_OK), "destroying NULL is a no-op");
            Assert.That(NativeMethods.mc_stream_begin_capture(0), Is.EqualTo(NativeConstants.MC_STATUS_NULL_POINTER));
            Assert.That(NativeStatus.LastError(), Does.Contain("stream is NULL"));
        }
    }

    [Test]
    public void Graph_Disposal_IsIdempotent_AndKeepsTheContextAliveUntilThen()
    {
        // The facade's lifetime rules, with a handle value that stands in for a captured graph: the library rejects
        // it (invalid handle) wherever it is used, which the facade reports as such.
        var context = MoeContext.CreateCpu(threads: 1);
        nint rawContext = context.Handle.DangerousGetHandle();
        var graph = new MoeGraph(context, new GraphHandle(context.Handle, unchecked((nint)0x0BAD6A5510000)));

        context.Dispose();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(graph.IsDisposed, Is.False);
            Assert.That(graph.Context, Is.SameAs(context));
            Assert.That(NativeContextAlive(rawContext), Is.True, "an undisposed graph keeps the native context");
            var ex = Assert.Throws<MoeCutlassInvalidHandleException>(() => graph.Launch());
            Assert.That(ex!.NativeMessage, Does.Contain("not a live mc_graph"));
        }

        graph.Dispose();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(graph.IsDisposed, Is.True);
            Assert.That(NativeContextAlive(rawContext), Is.False, "the last child released the native context");
            Assert.That(() => graph.Launch(), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(graph.Dispose, Throws.Nothing, "double dispose is harmless");
        }
    }

    [Test]
    public void GraphLaunch_OnADisposedStream_IsObjectDisposed()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var stream = context.CreateStream();
        using var graph = new MoeGraph(context, new GraphHandle(context.Handle, unchecked((nint)0x0BAD6A5520000)));
        stream.Dispose();

        Assert.That(() => graph.Launch(stream), Throws.TypeOf<ObjectDisposedException>());
    }

    private static bool NativeContextAlive(nint raw)
    {
        var info = new mc_context_info { struct_size = (uint)sizeof(mc_context_info) };
        int status = NativeMethods.mc_context_get_info(raw, &info);
        Debug.Assert(status is NativeConstants.MC_STATUS_OK or NativeConstants.MC_STATUS_INVALID_HANDLE);
        return status == NativeConstants.MC_STATUS_OK;
    }
}
