using Microsoft.Extensions.Logging;

namespace MoeCutlass.Tests;

/// <summary>What a run of a plan executes, as GroupedGemmPlan.ResolveStrategy reports it (CPU reference).</summary>
[TestFixture]
public sealed class StrategyResolutionTests : NativeTestBase
{
    // The CPU backend resolves with the same selection step as a GPU without a measured table ("other": swapped
    // 128x32 up to 32 rows, 128x64 up to 64, 128x128 beyond; specialize while the average is below 64).
    [TestCase(GemmStrategy.Single, 4 * 4, GemmStrategy.Single)]
    [TestCase(GemmStrategy.ExpertSpecialized, 4 * 4, GemmStrategy.ExpertSpecialized)]
    [TestCase(GemmStrategy.Auto, 4 * 4, GemmStrategy.ExpertSpecialized)]
    [TestCase(GemmStrategy.Auto, 4 * 63, GemmStrategy.ExpertSpecialized)]
    [TestCase(GemmStrategy.Auto, 4 * 64, GemmStrategy.Single)]
    [TestCase(GemmStrategy.ExpertSpecialized, 4 * 200, GemmStrategy.Single)]
    public void CpuPlans_ResolveLikeAGpuWithoutAMeasuredTable(GemmStrategy requested, int rows, GemmStrategy expected)
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(4, 256, 256, DType.BFloat16, requested, 1024));
        GroupedGemmLaunch launch = plan.Resolve(rows);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.ResolveStrategy(rows), Is.EqualTo(expected));
            Assert.That(launch.Strategy, Is.EqualTo(expected));
            Assert.That(launch.Configurations, Has.Count.EqualTo(expected == GemmStrategy.Single ? 1 : 3));
            Assert.That(launch.Configurations[^1].MaxRows, Is.EqualTo(ConfigurationRange.Unbounded));
            Assert.That(plan.Selection, Does.StartWith("other GPU"));
        }
    }

    [Test]
    public void CublasPlans_ResolveToCublasForEveryRun_WithNoRegistryConfiguration()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        using var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(4, 256, 256, DType.BFloat16, GemmStrategy.Cublas, 1024));
        using (Assert.EnterMultipleScope())
        {
            Assert.That((int)GemmStrategy.Cublas, Is.EqualTo(4), "MC_STRATEGY_CUBLAS is 4 in the C ABI");
            Assert.That(plan.Kernels, Is.Empty, "cuBLAS picks its own kernels");
            Assert.That(plan.Selection, Is.EqualTo("cuBLAS"));
            foreach (int rows in new[] { 0, 4, 4 * 16, 1024 })
            {
                // The value comes back from the library, so this checks the enum against the native constant's meaning.
                Assert.That(plan.ResolveStrategy(rows), Is.EqualTo(GemmStrategy.Cublas), $"{rows} rows");
                GroupedGemmLaunch launch = plan.Resolve(rows);
                Assert.That(launch.Strategy, Is.EqualTo(GemmStrategy.Cublas));
                Assert.That(launch.Configurations, Is.Empty);
                Assert.That(launch.ToString(), Is.EqualTo("Cublas: no registry configuration"));
            }
        }
    }

    [Test]
    public void CublasWithAConfigurationList_IsAnArgumentErrorNamingTheRule()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var options = new GroupedGemmOptions(4, 256, 256, DType.BFloat16, GemmStrategy.Cublas, 64)
        {
            Configurations = [new ConfigurationRange("tile_128x128x128_c1x2_cooperative")],
        };
        var error = Assert.Throws<MoeCutlassArgumentException>(() => context.CreateGroupedGemmPlan(options).Dispose())!;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(error.Status, Is.EqualTo(MoeStatus.InvalidArgument));
            Assert.That(error.NativeMessage, Does.Contain("desc->config_count = 1: MC_STRATEGY_CUBLAS runs no kernel configuration"));
            Assert.That(error.ParamName, Is.EqualTo("options"));
            Assert.That(context.AllocationCount, Is.Zero);
        }
    }

    [TestCase(256)]
    [TestCase(7168)]
    public void AutoOnTheCpu_NeverResolvesToCublas(int k)
    {
        // The CPU plans as an SM90a GPU of no measured class, and auto never runs cuBLAS on SM90a.
        using var context = MoeContext.CreateCpu(threads: 1);
        using var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(8, 256, k, DType.BFloat16, GemmStrategy.Auto, 8 * 4096));
        foreach (int rows in new[] { 0, 1, 8 * 8, 8 * 63, 8 * 64, 8 * 512, 8 * 4096 })
        {
            Assert.That(plan.ResolveStrategy(rows), Is.Not.EqualTo(GemmStrategy.Cublas), $"{rows} rows");
        }
    }

    [Test]
    public void ForcedConfiguration_IsWhatEveryRunLaunches_AndUnknownNamesAreArgumentErrors()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        var options = new GroupedGemmOptions(4, 256, 256, DType.BFloat16, GemmStrategy.Auto, 1024);
        using var plan = context.CreateGroupedGemmPlan(options.Forcing("tile_256x128x128_c2x1_cooperative"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Kernels, Is.EqualTo(new[] { "tile_256x128x128_c2x1_cooperative" }));
            Assert.That(plan.Selection, Is.EqualTo("mc_grouped_gemm_desc.configs"));
            foreach (int rows in new[] { 0, 4, 1024 })
            {
                Assert.That(plan.Resolve(rows).Configurations.Single().Configuration.Name, Is.EqualTo("tile_256x128x128_c2x1_cooperative"));
            }

            var unknown = Assert.Throws<ArgumentException>(() => context.CreateGroupedGemmPlan(options.Forcing("tile_1x1")))!;
            Assert.That(unknown.ParamName, Is.EqualTo("options"));
            Assert.That(unknown.Message, Does.Contain("'tile_1x1' is not a kernel configuration").And.Contain("tile_128x128x128_c1x2_cooperative"));
            var unordered = Assert.Throws<MoeCutlassArgumentException>(() => context.CreateGroupedGemmPlan(options with
            {
                Configurations = [new("swap_128x32x128_c2x1_pingpong", 40), new("swap_128x64x128_c2x1_pingpong", 30), new("tile_128x128x128_c1x2_cooperative")],
            }))!;
            Assert.That(unordered.NativeMessage, Does.Contain("desc->config_max_rows[1] = 30 must be above desc->config_max_rows[0] = 40"));
        }
    }

    [Test]
    public void Registry_IsReadByIndex_AndFoundByName()
    {
        IReadOnlyList<KernelConfiguration> registry = MoeCutlassLibrary.KernelConfigurations;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(registry, Has.Count.GreaterThanOrEqualTo(5));
            Assert.That(registry.Select(c => c.Index), Is.EqualTo(Enumerable.Range(0, registry.Count)));
            Assert.That(registry.Select(c => c.Name).Distinct().Count(), Is.EqualTo(registry.Count));
            Assert.That(registry.Where(c => c.SwapAB).Select(c => c.TileM), Is.All.EqualTo(128), "CUTLASS #3596");
            Assert.That(registry.Select(c => c.TileK), Is.All.EqualTo(128));
            Assert.That(MoeCutlassLibrary.FindKernelConfiguration("swap_128x32x128_c2x1_pingpong").TileN, Is.EqualTo(32));
            Assert.That(MoeCutlassLibrary.FindKernelConfiguration("tile_256x128x128_c2x1_cooperative").ClusterM, Is.EqualTo(2));
            Assert.That(() => MoeCutlassLibrary.FindKernelConfiguration("nope"), Throws.ArgumentException.With.Property("ParamName").EqualTo("name"));
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
            Assert.That((string)chosen[0].State["Launch"]!, Does.StartWith("ExpertSpecialized: swap_128x32x128_c2x1_pingpong (1-32 rows)"));
        }
    }
}
