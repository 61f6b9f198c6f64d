namespace MoeCutlass.Tests;

/// <summary>
/// The timed forward calls (<see cref="MoeLayer.ForwardTimed"/>, <see cref="MoeLayer.ForwardPrecomputedTimed"/>) and
/// <see cref="MoeLayerStageEvents"/> on the CPU backend: eight events recorded, non-negative stage times that add up to
/// the whole call, the same output as the untimed call, and the event argument rules.
/// </summary>
[TestFixture]
public sealed class MoeLayerTimedTests : NativeTestBase
{
    private static readonly MoeLayerOptions Options = new(TotalExperts: 8, TopK: 2, Hidden: 128, Intermediate: 128, MaxTokens: 6);

    [Test]
    public void ForwardTimed_RecordsEightEvents_StageTimesNonNegative_SameOutputAsForward()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var problem = LayerProblem.Create(new Random(77), Options, tokens: 5);
        using var layer = context.CreateMoeLayerFromHost(Options, problem.W13, problem.W2);
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);
        using var plain = MoeLayerTests.AllocateOutput(context, Options, problem.Tokens);
        using var timed = MoeLayerTests.AllocateOutput(context, Options, problem.Tokens);
        using var events = new MoeLayerStageEvents(context);

        layer.Forward(problem.Tokens, hidden, logits, plain);
        layer.ForwardTimed(problem.Tokens, hidden, logits, timed, events);
        context.Synchronize();

        float[] stages = events.StageMilliseconds();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(MoeLayer.StageEventCount, Is.EqualTo(8));
            Assert.That(events, Has.Count.EqualTo(8));
            Assert.That(events.All(e => e.IsCompleted), Is.True, "every event was recorded");
            Assert.That(MoeLayerStageEvents.StageNames, Is.EqualTo(new[] { "route", "permute", "gather", "gemm1", "act", "gemm2", "combine" }));
            Assert.That(stages, Has.Length.EqualTo(7));
            Assert.That(stages, Has.All.GreaterThanOrEqualTo(0f));
            Assert.That(stages.Sum(), Is.EqualTo(events.TotalMilliseconds()).Within(1e-3 + 1e-3 * events.TotalMilliseconds()));
            Assert.That(MoeLayerTests.ReadBits(timed), Is.EqualTo(MoeLayerTests.ReadBits(plain)), "timing changes nothing");
        }
    }

    [Test]
    public void ForwardPrecomputedTimed_SameOutputAsForwardPrecomputed()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var options = Options with { Routing = MoeRoutingMode.Precomputed };
        var problem = LayerProblem.Create(new Random(78), Options, tokens: 4);
        (int[] ids, float[] weights) = problem.Route();
        using var layer = context.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        using var hidden = problem.UploadHidden(context);
        using var idBuffer = context.Upload<int>(ids);
        using var weightBuffer = context.Upload<float>(weights);
        using var plain = MoeLayerTests.AllocateOutput(context, options, problem.Tokens);
        using var timed = MoeLayerTests.AllocateOutput(context, options, problem.Tokens);
        using var events = new MoeLayerStageEvents(context);

        layer.ForwardPrecomputed(problem.Tokens, hidden, idBuffer, weightBuffer, plain);
        layer.ForwardPrecomputedTimed(problem.Tokens, hidden, idBuffer, weightBuffer, timed, events);
        context.Synchronize();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(events.StageMilliseconds(), Has.All.GreaterThanOrEqualTo(0f));
            Assert.That(MoeLayerTests.ReadBits(timed), Is.EqualTo(MoeLayerTests.ReadBits(plain)));
        }
    }

    [TestCase(0)]
    [TestCase(7)]
    [TestCase(9)]
    public void ForwardTimed_WrongEventCount_IsRejected_WithParamNameEvents(int count)
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var problem = LayerProblem.Create(new Random(79), Options, tokens: 2);
        using var layer = context.CreateMoeLayerFromHost(Options, problem.W13, problem.W2);
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);
        using var output = MoeLayerTests.AllocateOutput(context, Options, problem.Tokens);
        MoeEvent[] events = [.. Enumerable.Range(0, count).Select(_ => context.CreateEvent())];
        try
        {
            var ex = Assert.Throws<MoeCutlassArgumentException>(() => layer.ForwardTimed(problem.Tokens, hidden, logits, output, events));
            using (Assert.EnterMultipleScope())
            {
                Assert.That(ex!.ParamName, Is.EqualTo("events"));
                Assert.That(ex.Message, Does.Contain("exactly 8 events"));
            }
        }
        finally
        {
            foreach (MoeEvent e in events)
            {
                e.Dispose();
            }
        }
    }

    [Test]
    public void ForwardTimed_EventOfAnotherContext_OrNullOrDisposed_IsRejected()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var foreign = MoeContext.CreateCpu(threads: 1);
        var problem = LayerProblem.Create(new Random(80), Options, tokens: 2);
        using var layer = context.CreateMoeLayerFromHost(Options, problem.W13, problem.W2);
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);
        using var output = MoeLayerTests.AllocateOutput(context, Options, problem.Tokens);
        using var own = new MoeLayerStageEvents(context);
        using var other = new MoeLayerStageEvents(foreign);
        MoeEvent[] mixed = [.. own.Take(7), other[7]];

        var foreignError = Assert.Throws<MoeCutlassArgumentException>(() => layer.ForwardTimed(problem.Tokens, hidden, logits, output, mixed));
        var nullError = Assert.Throws<ArgumentNullException>(() => layer.ForwardTimed(problem.Tokens, hidden, logits, output, null!));
        using var disposed = new MoeLayerStageEvents(context);
        disposed[3].Dispose();
        Assert.Throws<ObjectDisposedException>(() => layer.ForwardTimed(problem.Tokens, hidden, logits, output, disposed));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(foreignError!.ParamName, Is.EqualTo("events"));
            Assert.That(foreignError.Message, Does.Contain("events[7] belongs to another context"));
            Assert.That(nullError!.ParamName, Is.EqualTo("events"));
        }

        // The layer is still usable with good events.
        layer.ForwardTimed(problem.Tokens, hidden, logits, output, own);
        context.Synchronize();
        Assert.That(own.StageMilliseconds(), Has.All.GreaterThanOrEqualTo(0f));
    }

    [Test]
    public void ForwardTimed_OnAPrecomputedLayer_PointsToForwardPrecomputedTimed()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var options = Options with { Routing = MoeRoutingMode.Precomputed };
        var problem = LayerProblem.Create(new Random(81), Options, tokens: 2);
        using var layer = context.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);
        using var output = MoeLayerTests.AllocateOutput(context, options, problem.Tokens);
        using var events = new MoeLayerStageEvents(context);

        var ex = Assert.Throws<MoeCutlassArgumentException>(() => layer.ForwardTimed(problem.Tokens, hidden, logits, output, events));
        Assert.That(ex!.ParamName, Is.EqualTo("routerLogits"));
    }
}
