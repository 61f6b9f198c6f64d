using Microsoft.Extensions.Logging;

namespace MoeCutlass.Tests;

[TestFixture]
public sealed class LoggingTests : NativeTestBase
{
    [Test]
    public void LibraryContextAndPlanEvents_AreLoggedWithStableIdsAndState()
    {
        var provider = new CapturingLoggerProvider();
        using (var factory = LoggerFactory.Create(builder => builder.AddProvider(provider).SetMinimumLevel(LogLevel.Trace)))
        {
            MoeCutlassLibrary.Initialize(factory);
            using var context = MoeContext.CreateCpu(threads: 1, loggerFactory: factory);
            using (var newPlan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(3, 200, 272, DType.Float16, GemmStrategy.Single, 77)))
            {
                Assert.That(newPlan.Kernels, Is.Not.Empty);
            }
        }

        var entries = provider.Entries;
        var loaded = entries.Single(e => e.EventId.Id == MoeCutlassLogEvents.LibraryLoaded);
        var created = entries.Single(e => e.EventId.Id == MoeCutlassLogEvents.ContextCreated);
        var plan = entries.Single(e => e.EventId.Id == MoeCutlassLogEvents.PlanCreated);
        var destroyed = entries.Single(e => e.EventId.Id == MoeCutlassLogEvents.ContextDestroyed);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(loaded.Category, Is.EqualTo("MoeCutlass.MoeCutlassLibrary"));
            Assert.That(loaded.EventId.Name, Is.EqualTo("LibraryLoaded"));
            Assert.That(loaded.Level, Is.EqualTo(LogLevel.Information));
            Assert.That(loaded.State["Path"], Is.EqualTo(MoeCutlassLibrary.LoadedPath));
            Assert.That(loaded.State["Version"], Is.EqualTo(MoeCutlassLibrary.BuildInfo.Version));
            Assert.That(loaded.State["AbiVersion"], Is.EqualTo(MoeCutlassLibrary.ExpectedAbiVersion));

            Assert.That(created.Category, Is.EqualTo("MoeCutlass.MoeContext"));
            Assert.That(created.State["Backend"], Is.EqualTo(Backend.Cpu));
            Assert.That(created.State["Device"], Is.EqualTo(0));
            Assert.That(created.State["CpuThreads"], Is.EqualTo(1));

            Assert.That(plan.Category, Is.EqualTo("MoeCutlass.GroupedGemmPlan"));
            Assert.That(plan.State["Experts"], Is.EqualTo(3));
            Assert.That(plan.State["N"], Is.EqualTo(200));
            Assert.That(plan.State["K"], Is.EqualTo(272));
            Assert.That(plan.State["OutputDType"], Is.EqualTo(DType.Float16));
            Assert.That(plan.State["Strategy"], Is.EqualTo(GemmStrategy.Single));
            Assert.That(plan.State["MaxRows"], Is.EqualTo(77));
            Assert.That((string)plan.State["Kernels"]!, Is.Not.Empty);
            Assert.That((string)plan.State["Selection"]!, Does.StartWith("other GPU"));
            Assert.That(plan.State, Does.ContainKey("WorkspaceBytes"));
            Assert.That(plan.Message, Does.Contain("E=3 N=200 K=272"));

            Assert.That(destroyed.State["Backend"], Is.EqualTo(Backend.Cpu));
            Assert.That(entries.Select(e => e.EventId.Id).ToList().IndexOf(MoeCutlassLogEvents.ContextDestroyed),
                Is.GreaterThan(entries.Select(e => e.EventId.Id).ToList().IndexOf(MoeCutlassLogEvents.PlanCreated)));
        }
    }

    [Test]
    public void PlanCreation_LogsWhereItsSelectionCameFrom_AtInformation()
    {
        // On a device without SM90a auto's plan says "cuBLAS (auto: the device has no SM90a)" here: the reason auto ran
        // cuBLAS is in the Information event, not only in a Debug one per run.
        var provider = new CapturingLoggerProvider();
        using (var factory = LoggerFactory.Create(builder => builder.AddProvider(provider).SetMinimumLevel(LogLevel.Information)))
        using (var context = MoeContext.CreateCpu(threads: 1, loggerFactory: factory))
        using (context.CreateGroupedGemmPlan(new GroupedGemmOptions(3, 200, 272, DType.BFloat16, GemmStrategy.Cublas, 16)))
        {
        }

        var plan = provider.Entries.Single(e => e.EventId.Id == MoeCutlassLogEvents.PlanCreated);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Level, Is.EqualTo(LogLevel.Information));
            Assert.That(plan.State["Strategy"], Is.EqualTo(GemmStrategy.Cublas));
            Assert.That(plan.State["Selection"], Is.EqualTo("cuBLAS"));
            Assert.That(plan.State["Kernels"], Is.EqualTo(""));
            Assert.That(plan.Message, Does.Contain("strategy Cublas").And.Contain("selection cuBLAS, kernels []"));
        }
    }

    [Test]
    public void LargeCpuProblem_LogsAWarning()
    {
        var provider = new CapturingLoggerProvider();
        using var factory = LoggerFactory.Create(builder => builder.AddProvider(provider));
        using var context = MoeContext.CreateCpu(threads: 1, loggerFactory: factory);
        using (context.CreateGroupedGemmPlan(new GroupedGemmOptions(8, 4096, 4096, DType.BFloat16, GemmStrategy.Auto, 8192)))
        {
        }

        using (context.CreateGroupedGemmPlan(new GroupedGemmOptions(8, 64, 128, DType.BFloat16, GemmStrategy.Auto, 64)))
        {
        }

        var warnings = provider.Entries.Where(e => e.EventId.Id == MoeCutlassLogEvents.CpuBackendLargeProblem).ToList();
        Assert.That(warnings, Has.Count.EqualTo(1), "only the large plan warns");
        Assert.That(warnings[0].Level, Is.EqualTo(LogLevel.Warning));
        Assert.That(warnings[0].State["MaxRows"], Is.EqualTo(8192));
    }

    [Test]
    public void WithoutLoggerFactory_NothingIsRequired()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(1, 8, 16, DType.BFloat16, GemmStrategy.Auto, 1));
        Assert.That(plan.KernelCount, Is.GreaterThanOrEqualTo(1));
        Assert.That(plan.Kernels, Has.Count.EqualTo(plan.KernelList.Split(';', StringSplitOptions.RemoveEmptyEntries).Length));
    }
}
