using System.Diagnostics;
using System.Runtime.CompilerServices;
using MoeCutlass.Interop;

namespace MoeCutlass.Tests;

/// <summary>Disposal order, double disposal, use after disposal and finalization of contexts and their children.</summary>
[TestFixture]
public sealed unsafe class LifetimeTests : NativeTestBase
{
    [Test]
    public void DisposingTheContextFirst_KeepsTheNativeContextUntilTheLastChildIsDisposed()
    {
        var context = MoeContext.CreateCpu(threads: 1);
        nint raw = context.Handle.DangerousGetHandle();
        var buffer = context.Upload<int>([1, 2, 3, 4]);
        var stream = context.CreateStream();
        var @event = context.CreateEvent();
        var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(2, 8, 16, DType.BFloat16, GemmStrategy.Auto, 4));

        context.Dispose();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(context.IsDisposed, Is.True);
            Assert.That(NativeContextAlive(raw), Is.True, "children keep the native context");
            Assert.That(buffer.ToArray(), Is.EqualTo(new[] { 1, 2, 3, 4 }), "children stay usable");
            Assert.That(() => context.Allocate<int>(4), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => context.CreateStream(), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => context.AllocatedBytes, Throws.TypeOf<ObjectDisposedException>());
        }

        buffer.Dispose();
        stream.Dispose();
        plan.Dispose();
        Assert.That(NativeContextAlive(raw), Is.True, "one child (the event) is still alive");
        @event.Dispose();
        Assert.That(NativeContextAlive(raw), Is.False, "the last child released the native context");
    }

    [Test]
    public void DisposingChildrenFirst_DestroysTheNativeContextWithTheContext()
    {
        var context = MoeContext.CreateCpu(threads: 1);
        nint raw = context.Handle.DangerousGetHandle();
        var buffer = context.Allocate<float>(256);
        Assert.That(context.AllocatedBytes, Is.EqualTo(1024));
        Assert.That(context.AllocationCount, Is.EqualTo(1));
        buffer.Dispose();
        Assert.That(context.AllocatedBytes, Is.Zero, "the buffer was freed");
        context.Dispose();
        Assert.That(NativeContextAlive(raw), Is.False);
    }

    [Test]
    public void DoubleDispose_IsHarmless()
    {
        var context = MoeContext.CreateCpu(threads: 1);
        var buffer = context.Allocate<byte>(16);
        var stream = context.CreateStream();
        var @event = context.CreateEvent();
        var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(1, 8, 16, DType.BFloat16, GemmStrategy.Auto, 4));
        Assert.DoesNotThrow(() =>
        {
            buffer.Dispose();
            buffer.Dispose();
            stream.Dispose();
            stream.Dispose();
            @event.Dispose();
            @event.Dispose();
            plan.Dispose();
            plan.Dispose();
            context.Dispose();
            context.Dispose();
        });
    }

    [Test]
    public void UseAfterDispose_IsObjectDisposedException()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var buffer = context.Allocate<float>(16);
        var stream = context.CreateStream();
        var @event = context.CreateEvent();
        var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(1, 8, 16, DType.BFloat16, GemmStrategy.Auto, 4));
        buffer.Dispose();
        stream.Dispose();
        @event.Dispose();
        plan.Dispose();
        using var live = context.Allocate<float>(16);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(buffer.IsDisposed, Is.True);
            Assert.That(() => buffer.ToArray(), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => buffer.Pointer, Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => buffer.Fill(1f), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => live.CopyFrom(buffer), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => context.Convert(buffer, DType.Float32, live, DType.Float32, 16), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => stream.Synchronize(), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => live.Fill(1f, stream), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => @event.Record(), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => @event.IsCompleted, Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => plan.Run(0, 16, 16, 16, 16, 16, 16), Throws.TypeOf<ObjectDisposedException>());
        }
    }

    [Test]
    public void UndisposedObjects_AreFinalizedInASafeOrder()
    {
        nint raw = CreateAndAbandon();
        for (int i = 0; i < 10 && NativeContextAlive(raw); i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }

        Assert.That(NativeContextAlive(raw), Is.False, "the finalizers freed the children and then destroyed the context");
    }

    [Test]
    public void BufferProperties_DescribeTheAllocation()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var bf16 = context.Allocate<BFloat16>(10);
        using var fp8 = context.Allocate<byte>(10);
        using var ints = context.Allocate<int>(10);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bf16.Length, Is.EqualTo(10));
            Assert.That(bf16.SizeInBytes, Is.EqualTo(20));
            Assert.That(bf16.ElementDType, Is.EqualTo(DType.BFloat16));
            Assert.That(fp8.ElementDType, Is.EqualTo(DType.Float8E4M3));
            Assert.That(ints.ElementDType, Is.Null);
            Assert.That((long)bf16.Pointer % 256, Is.EqualTo(0L), "256-byte aligned");
            Assert.That(bf16.Context, Is.SameAs(context));
        }
    }

    [Test]
    public void CopiesFillsAndOffsets_RoundTrip()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var buffer = context.Allocate<ushort>(100);
        buffer.Fill((ushort)0xABCD);
        buffer.CopyFrom([1, 2, 3], offset: 97);
        var tail = new ushort[4];
        buffer.CopyTo(tail, offset: 96);
        Assert.That(tail, Is.EqualTo(new ushort[] { 0xABCD, 1, 2, 3 }));
        using var copy = context.Allocate<ushort>(120);
        copy.Fill((ushort)7);
        copy.CopyFrom(buffer);
        var all = copy.ToArray();
        Assert.That(all.Take(96), Is.All.EqualTo((ushort)0xABCD));
        Assert.That(all.Skip(100), Is.All.EqualTo((ushort)7));
        Assert.That(() => buffer.CopyFrom(copy), Throws.ArgumentException);
        using var bytes = context.Allocate<byte>(5);
        bytes.Fill((byte)0x38);
        Assert.That(bytes.ToArray(), Is.All.EqualTo((byte)0x38));
        using var longs = context.Allocate<long>(2);
        Assert.That(() => longs.Fill(1L), Throws.TypeOf<NotSupportedException>());
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nint CreateAndAbandon()
    {
        var context = MoeContext.CreateCpu(threads: 1);
        context.Allocate<float>(64);
        context.CreateStream();
        context.CreateEvent();
        context.CreateGroupedGemmPlan(new GroupedGemmOptions(1, 8, 16, DType.BFloat16, GemmStrategy.Auto, 4));
        return context.Handle.DangerousGetHandle();
    }

    private static bool NativeContextAlive(nint raw)
    {
        var info = new mc_context_info { struct_size = (uint)sizeof(mc_context_info) };
        int status = NativeMethods.mc_context_get_info(raw, &info);
        Debug.Assert(status is NativeConstants.MC_STATUS_OK or NativeConstants.MC_STATUS_INVALID_HANDLE);
        return status == NativeConstants.MC_STATUS_OK;
    }
}

[TestFixture]
public sealed class StreamAndEventTests : NativeTestBase
{
    [Test]
    public void CpuEvents_MeasurePlausibleElapsedTime()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var stream = context.CreateStream();
        using var start = context.CreateEvent();
        using var end = context.CreateEvent();
        start.Record(stream);
        var watch = Stopwatch.StartNew();
        Thread.Sleep(50);
        end.Record(stream);
        watch.Stop();
        end.Synchronize();
        float ms = MoeEvent.ElapsedMilliseconds(start, end);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(end.IsCompleted, Is.True);
            Assert.That(ms, Is.GreaterThanOrEqualTo(45f));
            Assert.That(ms, Is.LessThanOrEqualTo((float)watch.Elapsed.TotalMilliseconds + 5f));
            Assert.That(MoeEvent.Elapsed(start, end).TotalMilliseconds, Is.EqualTo(ms).Within(0.01));
            Assert.That(MoeEvent.ElapsedMilliseconds(start, start), Is.Zero);
        }
    }

    [Test]
    public void ElapsedTime_OfAnUnrecordedEvent_IsRejected()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var start = context.CreateEvent();
        using var end = context.CreateEvent();
        start.Record();
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => MoeEvent.ElapsedMilliseconds(start, end));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.InvalidArgument));
        Assert.That(ex.NativeMessage, Does.Contain("end").And.Contain("never recorded"));
    }

    [Test]
    public void EventsOfDifferentContexts_AreAContextMismatch()
    {
        using var first = MoeContext.CreateCpu(threads: 1);
        using var second = MoeContext.CreateCpu(threads: 1);
        using var start = first.CreateEvent();
        using var end = second.CreateEvent();
        start.Record();
        end.Record();
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => MoeEvent.ElapsedMilliseconds(start, end));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.ContextMismatch));
    }

    [Test]
    public void StreamsOrderWork_AndSynchronize()
    {
        using var context = MoeContext.CreateCpu(threads: 2);
        using var first = context.CreateStream();
        using var second = context.CreateStream();
        Assert.That(first.NativeHandle, Is.EqualTo((nint)0), "no cudaStream_t on the CPU backend");
        using var a = context.Allocate<int>(1000);
        using var b = context.Allocate<int>(1000);
        a.Fill(5, first);
        b.CopyFrom(a, first);
        first.Synchronize();
        second.Synchronize();
        context.Synchronize();
        Assert.That(b.ToArray(), Is.All.EqualTo(5));
        Assert.That(context.QueryDeviceErrors(), Is.EqualTo(DeviceErrorFlags.None));
        Assert.That(context.IsUsable, Is.True);
    }
}
