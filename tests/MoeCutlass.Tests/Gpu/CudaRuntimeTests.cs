namespace MoeCutlass.Tests.Gpu;

/// <summary>CUDA backend runtime: contexts, device info, memory, streams, events, error mapping. Runs on the GPU machine.</summary>
[TestFixture, Category("Gpu"), NonParallelizable]
public sealed class CudaRuntimeTests
{
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
    public void CudaContext_DescribesAHopperDevice()
    {
        var info = _context.DeviceInfo;
        TestContext.Out.WriteLine(info);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_context.Backend, Is.EqualTo(Backend.Cuda));
            Assert.That(_context.Device, Is.Zero);
            Assert.That(_context.IsUsable, Is.True);
            Assert.That(info, Is.Not.Null);
            Assert.That(info!.Index, Is.Zero);
            Assert.That(info.Name, Is.Not.Empty);
            Assert.That(info.ComputeCapability, Is.EqualTo("9.0"));
            Assert.That(info.Multiprocessors, Is.GreaterThan(100));
            Assert.That(info.TotalMemoryBytes, Is.GreaterThan(60L << 30));
            Assert.That(info.L2CacheBytes, Is.GreaterThan(40 << 20));
            Assert.That(info.SharedMemoryPerBlockOptin, Is.GreaterThanOrEqualTo(200 * 1024));
            Assert.That(info.PeakMemoryBandwidthGBps, Is.InRange(2000.0, 6000.0));
            Assert.That(info.GpuClass, Is.Not.Empty, "every device has a class, 'other GPU ...' at least");
            // A class either has both ceilings or neither: a roofline needs both.
            Assert.That(info.PeakFp8DenseTflops > 0, Is.EqualTo(info.DatasheetBandwidthGBps > 0));
            if (info.HasCeilings)
            {
                Assert.That(info.PeakFp8DenseTflops, Is.InRange(1000.0, 5000.0), "datasheet dense FP8 TFLOP/s of a Hopper class");
                Assert.That(info.DatasheetBandwidthGBps, Is.InRange(2000.0, 6000.0));
            }

            Assert.That(MoeCutlassLibrary.GetDeviceInfo(0), Is.EqualTo(info));
            Assert.That(MoeCutlassLibrary.BuildInfo.HasCuda, Is.True);
            Assert.That(MoeCutlassLibrary.BuildInfo.CudaArchitectures, Does.Contain("90"));
        }
    }

    [Test, CancelAfter(60_000)]
    public void NonexistentDevice_IsNoDevice()
    {
        int count = MoeCutlassLibrary.DeviceCount;
        var ex = Assert.Throws<MoeCutlassNoDeviceException>(() => MoeContext.CreateCuda(count).Dispose());
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.NoDevice));
        Assert.That(MoeContext.TryCreateCuda(count, out var none), Is.False);
        Assert.That(none, Is.Null);
    }

    [Test, CancelAfter(60_000)]
    public void SixtyFourMiB_RoundTripWithAPattern()
    {
        const int count = 64 << 20 >> 2;
        var data = new int[count];
        for (int i = 0; i < count; i++)
        {
            data[i] = (int)(i * 2654435761u);
        }

        long before = _context.AllocatedBytes;
        using var buffer = _context.Upload<int>(data);
        Assert.That(_context.AllocatedBytes - before, Is.EqualTo(64L << 20));
        var back = buffer.ToArray();
        Assert.That(back.AsSpan().SequenceEqual(data), Is.True);
        var window = new int[1000];
        buffer.CopyTo(window, offset: count - 1000);
        Assert.That(window, Is.EqualTo(data[^1000..]));
    }

    [Test, CancelAfter(60_000)]
    public void Fill_WritesEveryElement_ForEachWidth()
    {
        using var bytes = _context.Allocate<byte>(1_000_003);
        using var halves = _context.Allocate<Half>(77_777);
        using var floats = _context.Allocate<float>(1 << 20);
        bytes.Fill(0x5A);
        halves.Fill((Half)1.5f);
        floats.Fill(-2.25f);
        Assert.That(bytes.ToArray(), Is.All.EqualTo((byte)0x5A));
        Assert.That(halves.ToArray(), Is.All.EqualTo((Half)1.5f));
        Assert.That(floats.ToArray(), Is.All.EqualTo(-2.25f));
    }

    [Test, CancelAfter(60_000)]
    public void StreamsAndEvents_TimeWork()
    {
        using var stream = _context.CreateStream();
        Assert.That(stream.NativeHandle, Is.Not.EqualTo((nint)0), "a real cudaStream_t");
        using var start = _context.CreateEvent();
        using var end = _context.CreateEvent();
        using var buffer = _context.Allocate<float>(64 << 20);
        start.Record(stream);
        for (int i = 0; i < 20; i++)
        {
            buffer.Fill(i, stream);
        }

        end.Record(stream);
        end.Synchronize();
        Assert.That(end.IsCompleted, Is.True);
        float ms = MoeEvent.ElapsedMilliseconds(start, end);
        TestContext.Out.WriteLine($"20 fills of 256 MiB: {ms} ms");
        Assert.That(ms, Is.GreaterThan(0f).And.LessThan(10_000f));
        stream.Synchronize();
        var sample = new float[16];
        buffer.CopyTo(sample, offset: 12345);
        Assert.That(sample, Is.All.EqualTo(19f));
    }

    [Test, CancelAfter(60_000)]
    public void DeviceCopies_OnTwoStreams()
    {
        const int count = 4 << 20;
        using var first = _context.CreateStream();
        using var second = _context.CreateStream();
        using var source1 = _context.Upload<int>(Enumerable.Range(0, count).ToArray());
        using var source2 = _context.Upload<int>(Enumerable.Range(0, count).Select(i => -i).ToArray());
        using var target1 = _context.Allocate<int>(count);
        using var target2 = _context.Allocate<int>(count);
        target1.CopyFrom(source1, first);
        target2.CopyFrom(source2, second);
        first.Synchronize();
        second.Synchronize();
        Assert.That(target1.ToArray().AsSpan().SequenceEqual(Enumerable.Range(0, count).ToArray()), Is.True);
        Assert.That(target2.ToArray().AsSpan().SequenceEqual(Enumerable.Range(0, count).Select(i => -i).ToArray()), Is.True);
    }

    [Test, CancelAfter(60_000)]
    public void AbsurdAllocation_IsOutOfMemory()
    {
        var ex = Assert.Throws<MoeCutlassOutOfMemoryException>(() => _context.Allocate<byte>(1L << 50).Dispose());
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.OutOfMemory));
        Assert.That(_context.IsUsable, Is.True, "an allocation failure is not sticky");
        using var small = _context.Allocate<byte>(16);
    }
}
