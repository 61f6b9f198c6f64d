using Microsoft.Extensions.Logging;

namespace MoeCutlass.Tests;

/// <summary>What a run of a plan executes, as GroupedGemmPlan.ResolveStrategy reports it (CPU reference).</summary>
[TestFixture]
public sealed class StrategyResolutionTests : NativeTestBase
{
    [TestCase(GemmStrategy.Single, GemmStrategy.Single)]
    [TestCase(GemmStrategy.ExpertSpecialized, GemmStrategy.ExpertSpecialized)]
    [TestCase(GemmStrategy.Auto, GemmStrategy.Single)]
    public void CpuPlans_ResolveToTheirOneReferenceKernel(GemmStrategy requested, GemmStrategy expected)
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(4, 256, 256, DType.BFloat16, requested, 64));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.ResolveStrategy(0), Is.EqualTo(expected));
            Assert.That(plan.ResolveStrategy(64), Is.EqualTo(expected));
        }
    }

    [TestCase(-1)]
    [TestCase(65)]
    public void RowsOutsideThePlan_AreAnOutOfRangeError(int rows)
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(4, 256, 256, DType.BFloat16, GemmStrategy.Auto, 64));
        var error = Assert.Throws<MoeCutlassArgumentException>(() => plan.ResolveStrategy(rows))!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(error.Status, Is.EqualTo(MoeStatus.OutOfRange));
            Assert.That(error.NativeMessage, Does.Contain($"rows = {rows}"));
        }
    }

    [Test]
    public void DisposedPlan_ThrowsObjectDisposed()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(4, 256, 256, DType.BFloat16, GemmStrategy.Auto, 64));
        plan.Dispose();
        Assert.Throws<ObjectDisposedException>(() => plan.ResolveStrategy(8));
    }

    [Test]
    public void AutoRuns_LogTheirChoiceAtDebug_AndOtherStrategiesDoNot()
    {
        var provider = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(provider).SetMinimumLevel(LogLevel.Debug));
        using var context = MoeContext.CreateCpu(threads: 1, loggerFactory: factory);
        const int experts = 2, n = 16, k = 128, rows = 3;
        using var a = context.Allocate<byte>(rows * k);
        using var aScales = context.Allocate<float>(rows);
        using var b = context.Allocate<byte>(experts * n * k);
        using var bScales = context.Allocate<float>(experts);
        using var offsets = context.Upload<int>([0, 1, 3]);
        using var d = context.Allocate<BFloat16>(rows * n);
        a.Fill(0);
        aScales.Fill(1f);
        b.Fill(0);
        bScales.Fill(1f);
        foreach (GemmStrategy strategy in new[] { GemmStrategy.Auto, GemmStrategy.Single })
        {
            using var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(experts, n, k, DType.BFloat16, strategy, rows));
            plan.Run(rows, a, aScales, b, bScales, offsets, d);
        }

        var chosen = provider.Entries.Where(e => e.EventId.Id == MoeCutlassLogEvents.AutoStrategyChosen).ToList();
        Assert.That(chosen, Has.Count.EqualTo(1));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(chosen[0].Level, Is.EqualTo(LogLevel.Debug));
            Assert.That(chosen[0].State["Rows"], Is.EqualTo(rows));
            Assert.That(chosen[0].State["Strategy"], Is.EqualTo(GemmStrategy.Single));
        }
    }
}
