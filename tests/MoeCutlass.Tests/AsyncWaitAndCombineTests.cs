namespace MoeCutlass.Tests;

/// <summary>
/// Issue 14 item 4 (e): a non-blocking wait for stream work (<see cref="MoeStream.SynchronizeAsync"/>,
/// <see cref="MoeEvent.WaitAsync"/>) and <see cref="RoutingResult.Combine(ReadOnlySpan{BFloat16}, int, ReadOnlySpan{float}, Span{float})"/>
/// taking the grouped GEMM's bf16 (or fp16) D directly.
/// </summary>
[TestFixture]
public sealed class AsyncWaitAndCombineTests : NativeTestBase
{
    [Test]
    public async Task StreamSynchronizeAsync_CompletesAfterTheEnqueuedWork()
    {
        using var gemm = new GemmFixture();
        using var stream = gemm.Context.CreateStream();
        gemm.Run(stream: stream);
        await stream.SynchronizeAsync();
        Assert.That(gemm.D.ToArray().Take(GemmFixture.Rows * GemmFixture.N).Select(v => (float)v), Is.All.EqualTo(128f));
    }

    [Test]
    public async Task EventWaitAsync_CompletesOnceRecordedWorkIsDone()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var stream = context.CreateStream();
        using var buffer = context.Allocate<float>(1024);
        using var done = context.CreateEvent();
        buffer.Fill(2f, stream);
        done.Record(stream);
        await done.WaitAsync();
        Assert.That(done.IsCompleted, Is.True);
        Assert.That(buffer.ToArray(), Is.All.EqualTo(2f));
    }

    [Test]
    public void SynchronizeAsync_HonoursCancellation_AndDisposal()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var stream = context.CreateStream();
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.That(async () => await stream.SynchronizeAsync(cancelled.Token), Throws.InstanceOf<OperationCanceledException>());
        stream.Dispose();
        Assert.That(async () => await stream.SynchronizeAsync(), Throws.TypeOf<ObjectDisposedException>());
    }

    [Test]
    public void Combine_TakesBf16AndFp16Outputs_WidenedExactly()
    {
        int[] ids = [2, 0, 1, 2, 0, 1, 2, 1];
        var result = MoeRouting.Sort(ids, topK: 2, experts: 3);
        const int width = 3;
        float[] rows = Enumerable.Range(0, result.Rows * width).Select(i => 0.25f * i - 1.5f).ToArray(); // exact in bf16/fp16
        float[] weights = [1f, 0.5f, 0.25f, 2f, 1f, -1f, 0.5f, 0.5f];
        var expected = new float[result.Tokens * width];
        result.Combine(rows, width, weights, expected);

        var fromBf16 = new float[expected.Length];
        result.Combine(rows.Select(v => (BFloat16)v).ToArray(), width, weights, fromBf16);
        var fromHalf = new float[expected.Length];
        result.Combine(rows.Select(v => (Half)v).ToArray(), width, weights, fromHalf);
        Assert.That(fromBf16, Is.EqualTo(expected));
        Assert.That(fromHalf, Is.EqualTo(expected));
        Assert.That(() => result.Combine(new BFloat16[1], width, weights, fromBf16),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("sortedRows"));
    }
}
