using System.Runtime.InteropServices;

namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// CUDA-graph capture and replay on the device: captured work runs only when launched, every replay runs it again,
/// graphs launch on any stream of their context, sync calls are refused during a capture without breaking it, and a
/// capture broken by other code fails at EndCapture with the stream usable afterwards. Runs on the GPU machine.
/// </summary>
[TestFixture, Category("Gpu"), NonParallelizable]
public sealed class CudaGraphTests
{
    private const int Count = 1 << 20;

    private MoeContext _context = null!;

    [OneTimeSetUp]
    public void RequireDevice()
    {
        GpuRequirement.EnsureDevice();
        _context = MoeContext.CreateCuda(0);
    }

    [OneTimeTearDown]
    public void DisposeContext() => _context?.Dispose();

    [Test, CancelAfter(60_000)]
    public void CudaContext_SupportsGraphs() => Assert.That(_context.SupportsGraphs, Is.True);

    [Test, CancelAfter(60_000)]
    public void FillAndDeviceCopy_CapturedOnce_EveryReplayRunsThem()
    {
        using var stream = _context.CreateStream();
        using var source = _context.Allocate<int>(Count);
        using var target = _context.Allocate<int>(Count);
        source.Fill(0);
        target.Fill(0);
        _context.Synchronize();

        using MoeGraph graph = CaptureFillAndCopy(stream, source, target, 0x0C0FFEE);
        Assert.That(target.ToArray(), Is.All.EqualTo(0), "captured work must not run before the graph is launched");

        for (int replay = 0; replay < 3; replay++)
        {
            // Overwrite both buffers eagerly, so only this replay can make them right again.
            source.Fill(-1);
            target.Fill(-2);
            _context.Synchronize();
            graph.Launch(stream);
            stream.Synchronize();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(source.ToArray(), Is.All.EqualTo(0x0C0FFEE), $"source after replay {replay}");
                Assert.That(target.ToArray(), Is.All.EqualTo(0x0C0FFEE), $"target after replay {replay}");
            }
        }
    }

    [Test, CancelAfter(60_000)]
    public void Graph_LaunchesOnAnotherStream_AndOnTheDefaultStream()
    {
        using var capturing = _context.CreateStream();
        using var other = _context.CreateStream();
        using var source = _context.Allocate<int>(Count);
        using var target = _context.Allocate<int>(Count);
        using MoeGraph graph = CaptureFillAndCopy(capturing, source, target, 31);

        target.Fill(0);
        _context.Synchronize();
        graph.Launch(other);
        other.Synchronize();
        Assert.That(target.ToArray(), Is.All.EqualTo(31), "launched on a stream other than the capturing one");

        target.Fill(0);
        _context.Synchronize();
        graph.Launch();
        _context.Synchronize();
        Assert.That(target.ToArray(), Is.All.EqualTo(31), "launched on the context's default stream");

        // Back to back on two streams: each launch of one graph runs after the previous one.
        graph.Launch(capturing);
        graph.Launch(other);
        _context.Synchronize();
        Assert.That(target.ToArray(), Is.All.EqualTo(31));
    }

    [Test, CancelAfter(60_000)]
    public void Graph_OnAStreamOfAnotherContext_IsAContextMismatch()
    {
        using var stream = _context.CreateStream();
        using var target = _context.Allocate<int>(Count);
        using MoeGraph graph = CaptureFill(stream, target, 1);
        using var otherContext = MoeContext.CreateCuda(0);
        using var foreign = otherContext.CreateStream();

        var ex = Assert.Throws<MoeCutlassArgumentException>(() => graph.Launch(foreign));

        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.ContextMismatch));
        Assert.That(ex.NativeMessage, Does.StartWith("mc_graph_launch: stream = 0x"));
    }

    [Test, CancelAfter(60_000)]
    public void CaptureThenDispose_TheGraphIsGone_AndAnEnqueuedReplayStillCompletes()
    {
        using var stream = _context.CreateStream();
        using var target = _context.Allocate<int>(Count);
        target.Fill(0);
        _context.Synchronize();

        MoeGraph unused = CaptureFill(stream, target, 3);
        unused.Dispose();
        Assert.That(unused.IsDisposed, Is.True);
        Assert.That(() => unused.Launch(stream), Throws.TypeOf<ObjectDisposedException>());
        Assert.That(unused.Dispose, Throws.Nothing, "double dispose is harmless");
        stream.Synchronize();
        Assert.That(target.ToArray(), Is.All.EqualTo(0), "a graph disposed unlaunched never ran");

        MoeGraph launched = CaptureFill(stream, target, 4);
        launched.Launch(stream);
        launched.Dispose(); // the replay is already enqueued
        stream.Synchronize();
        Assert.That(target.ToArray(), Is.All.EqualTo(4));
    }

    [Test, CancelAfter(60_000)]
    public void Graph_OutlivesItsDisposedContext_UntilDisposed()
    {
        var context = MoeContext.CreateCuda(0);
        var stream = context.CreateStream();
        var target = context.Allocate<int>(Count);
        MoeGraph graph = CaptureFill(stream, target, 8);
        context.Dispose();

        graph.Launch(stream); // children stay usable after their context is disposed
        stream.Synchronize();
        Assert.That(target.ToArray(), Is.All.EqualTo(8));
        graph.Dispose();
        stream.Dispose();
        target.Dispose();
    }

    [Test, CancelAfter(60_000)]
    public void SyncCallsDuringCapture_AreArgumentErrors_AndTheCaptureSurvives()
    {
        using var stream = _context.CreateStream();
        using var target = _context.Allocate<int>(Count);
        target.Fill(0);
        _context.Synchronize();

        stream.BeginCapture();
        MoeGraph graph;
        try
        {
            target.Fill(21, stream);
            var streamSync = Assert.Throws<MoeCutlassArgumentException>(stream.Synchronize);
            var contextSync = Assert.Throws<MoeCutlassArgumentException>(_context.Synchronize);
            var query = Assert.Throws<MoeCutlassArgumentException>(() => _context.QueryDeviceErrors());
            var again = Assert.Throws<MoeCutlassArgumentException>(stream.BeginCapture);
            using (Assert.EnterMultipleScope())
            {
                Assert.That(streamSync!.Status, Is.EqualTo(MoeStatus.InvalidArgument));
                Assert.That(streamSync.NativeMessage, Does.StartWith("mc_stream_synchronize: stream = 0x").And.Contain("the stream is capturing"));
                Assert.That(contextSync!.Status, Is.EqualTo(MoeStatus.InvalidArgument));
                Assert.That(contextSync.NativeMessage, Does.Contain("stream is capturing"));
                Assert.That(query!.NativeMessage, Does.Contain("stream is capturing"));
                Assert.That(again!.NativeMessage, Does.Contain("is already capturing"));
            }
        }
        finally
        {
            graph = stream.EndCapture(); // the refused calls did not invalidate the capture
        }

        using (graph)
        {
            Assert.That(target.ToArray(), Is.All.EqualTo(0), "still not run");
            graph.Launch(stream);
            stream.Synchronize();
            Assert.That(target.ToArray(), Is.All.EqualTo(21));
        }
    }

    [Test, CancelAfter(60_000)]
    public void CaptureInvalidatedByOtherCode_FailsAtEndCapture_AndTheStreamIsUsableAfterwards()
    {
        using var stream = _context.CreateStream();
        using var target = _context.Allocate<int>(Count);
        target.Fill(0);
        _context.Synchronize();

        // Another CUDA library that holds the native stream synchronizes it during the capture: not permitted, and it
        // invalidates the capture. The library cannot refuse that call; EndCapture must report it and clean up.
        stream.BeginCapture();
        target.Fill(5, stream);
        int driverStatus = CudaDriver.StreamSynchronize(stream.NativeHandle);
        Assert.That(driverStatus, Is.Not.Zero, "cuStreamSynchronize on a capturing stream must fail");

        var ex = Assert.Throws<MoeCutlassCudaException>(() => stream.EndCapture().Dispose());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Status, Is.EqualTo(MoeStatus.CudaError));
            Assert.That(ex.NativeMessage, Does.StartWith("mc_stream_end_capture: cudaStreamEndCapture"));
            Assert.That(ex.NativeMessage, Does.Contain("cudaErrorStreamCaptureInvalidated").And.Contain("the stream is usable again"));
            Assert.That(_context.IsUsable, Is.True, "an invalidated capture is not a device fault");
        }

        // The stream is out of capture mode: it runs work and can be waited for ...
        Assert.Throws<MoeCutlassArgumentException>(() => stream.EndCapture().Dispose(), "no capture is open any more");
        target.Fill(9, stream);
        stream.Synchronize();
        Assert.That(target.ToArray(), Is.All.EqualTo(9));

        // ... and it captures again.
        using MoeGraph graph = CaptureFill(stream, target, 12);
        graph.Launch(stream);
        stream.Synchronize();
        Assert.That(target.ToArray(), Is.All.EqualTo(12));
        Assert.That(_context.QueryDeviceErrors(), Is.EqualTo(DeviceErrorFlags.None));
    }

    [Test, CancelAfter(60_000)]
    public void DisposingACapturingStream_EndsTheCapture()
    {
        using var target = _context.Allocate<int>(Count);
        var stream = _context.CreateStream();
        stream.BeginCapture();
        target.Fill(1, stream);
        stream.Dispose();

        // The thread is no longer in a capture: allocations and context-wide waits work again.
        using var more = _context.Allocate<int>(Count);
        _context.Synchronize();
        using var fresh = _context.CreateStream();
        using MoeGraph graph = CaptureFill(fresh, target, 2);
        graph.Launch(fresh);
        fresh.Synchronize();
        Assert.That(target.ToArray(), Is.All.EqualTo(2));
    }

    /// <summary>Captures "fill <paramref name="source"/> with <paramref name="value"/>, copy it to <paramref name="target"/>".</summary>
    private static MoeGraph CaptureFillAndCopy(MoeStream stream, DeviceBuffer<int> source, DeviceBuffer<int> target, int value)
    {
        stream.BeginCapture();
        try
        {
            source.Fill(value, stream);
            target.CopyFrom(source, stream);
        }
        catch
        {
            stream.EndCapture().Dispose();
            throw;
        }

        return stream.EndCapture();
    }

    /// <summary>Captures "fill <paramref name="target"/> with <paramref name="value"/>".</summary>
    private static MoeGraph CaptureFill(MoeStream stream, DeviceBuffer<int> target, int value)
    {
        stream.BeginCapture();
        try
        {
            target.Fill(value, stream);
        }
        catch
        {
            stream.EndCapture().Dispose();
            throw;
        }

        return stream.EndCapture();
    }

    /// <summary>The CUDA driver API, for acting as "another CUDA library" on a stream's native handle.</summary>
    private static unsafe class CudaDriver
    {
        /// <summary><c>cuStreamSynchronize</c>: the CUresult (0 = success).</summary>
        public static int StreamSynchronize(nint stream)
        {
            string name = OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1";
            if (!NativeLibrary.TryLoad(name, out nint library))
            {
                Assert.Fail($"the CUDA driver library {name} could not be loaded although a device is present");
            }

            var function = (delegate* unmanaged<nint, int>)NativeLibrary.GetExport(library, "cuStreamSynchronize");
            return function(stream);
        }
    }
}
