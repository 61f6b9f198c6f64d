namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// What CUDA plans execute per call: auto and expert specialization specialize while the average rows per expert
/// stays below the widest swapped threshold (64 rows on an H100 and H200), and run the single configuration from there;
/// on an H200 auto runs the persistent kernel up to 64 rows with K >= 2048 and does not specialize below K 1024.
/// </summary>
[TestFixture, Category("Gpu"), NonParallelizable]
public sealed class CudaStrategyResolutionTests
{
    private MoeContext _cuda = null!;

    [OneTimeSetUp]
    public void RequireDevice()
    {
        GpuRequirement.EnsureDevice();
        _cuda = MoeContext.CreateCuda();
    }

    [OneTimeTearDown]
    public void Release() => _cuda?.Dispose();

    [Test]
    public void Auto_SpecializesTensorParallelDownWithFewRowsPerExpert_ExceptOnTheH200()
    {
        using var plan = _cuda.CreateGroupedGemmPlan(new GroupedGemmOptions(256, 7168, 256, DType.BFloat16, GemmStrategy.Auto, 65536));
        // The H200's table keeps auto on one configuration at K 256 (MC_AUTO_SPECIALIZE: specializing gained at most
        // 1.6 % there with uniform routing and lost up to 36 % with skewed routing); other classes specialize.
        GemmStrategy few = IsH200 ? GemmStrategy.Single : GemmStrategy.ExpertSpecialized;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.ResolveStrategy(1024), Is.EqualTo(few), "4 rows per expert");
            Assert.That(plan.ResolveStrategy(4096), Is.EqualTo(few), "16 rows per expert");
            Assert.That(plan.ResolveStrategy(16128), Is.EqualTo(few), "63 rows per expert");
            Assert.That(plan.ResolveStrategy(16384), Is.EqualTo(GemmStrategy.Single), "64 rows per expert");
            Assert.That(plan.ResolveStrategy(65536), Is.EqualTo(GemmStrategy.Single), "256 rows per expert");
            Assert.That(plan.Resolve(1024).Configurations, Has.Count.EqualTo(few == GemmStrategy.Single ? 1 : 3));
            if (few == GemmStrategy.Single)
            {
                Assert.That(plan.Kernels, Has.None.Contains("swap"), "auto prepares only what it can launch at K 256");
            }
            else
            {
                // The specialized configurations plus the single path's.
                Assert.That(plan.Kernels, Has.Count.GreaterThanOrEqualTo(3));
            }
        }
    }

    [Test]
    public void ExpertSpecialized_StillSpecializesAtShortDepth()
    {
        using var plan = _cuda.CreateGroupedGemmPlan(new GroupedGemmOptions(256, 7168, 256, DType.BFloat16, GemmStrategy.ExpertSpecialized, 65536));
        Assert.That(plan.ResolveStrategy(4096), Is.EqualTo(GemmStrategy.ExpertSpecialized), "16 rows per expert, K 256");
    }

    [Test]
    public void Auto_KeepsSingleForManyRowsPerExpert()
    {
        using var plan = _cuda.CreateGroupedGemmPlan(new GroupedGemmOptions(32, 4096, 7168, DType.BFloat16, GemmStrategy.Auto, 32768));
        // The H200's table sends decode averages with K >= 2048 to the persistent kernel (MC_AUTO_PERSISTENT); other
        // classes specialize there.
        GemmStrategy decode = IsH200 ? GemmStrategy.Persistent : GemmStrategy.ExpertSpecialized;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.ResolveStrategy(32 * 8), Is.EqualTo(decode), "8 rows per expert");
            Assert.That(plan.ResolveStrategy(32 * 1024), Is.EqualTo(GemmStrategy.Single), "1024 rows per expert");
        }
    }

    [Test]
    public void Auto_RunsThePersistentKernelOnlyWhereTheH200Measured()
    {
        if (!IsH200) Assert.Ignore($"the persistent rows of auto are measured for the H200; this is {GpuClass}");
        using var longK = _cuda.CreateGroupedGemmPlan(new GroupedGemmOptions(32, 7168, 2048, DType.BFloat16, GemmStrategy.Auto, 32768));
        using var shortK = _cuda.CreateGroupedGemmPlan(new GroupedGemmOptions(256, 7168, 256, DType.BFloat16, GemmStrategy.Auto, 65536));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(longK.ResolveStrategy(32 * 64), Is.EqualTo(GemmStrategy.Persistent), "64 rows per expert, K 2048");
            Assert.That(longK.ResolveStrategy(32 * 65), Is.Not.EqualTo(GemmStrategy.Persistent), "65 rows per expert");
            Assert.That(shortK.ResolveStrategy(256 * 4), Is.EqualTo(GemmStrategy.Single), "K 256 (MC_AUTO_SPECIALIZE)");
            // The persistent table's choice at that average (PERSISTENT rows), prepared by auto.
            GroupedGemmLaunch launch = longK.Resolve(32 * 64);
            Assert.That(launch.Configurations.Select(c => c.Configuration.Name), Is.EqualTo(new[] { "swap_128x64x128_c2x1_pingpong" }));
            Assert.That(longK.Kernels, Does.Contain("swap_128x64x128_c2x1_pingpong"));
        }
    }

    private string GpuClass => MoeCutlassLibrary.GetDeviceInfo(0).GpuClass;

    private bool IsH200 => GpuClass.StartsWith("H200", StringComparison.Ordinal);

    [Test]
    public void ExpertSpecialized_FallsBackToSingleFromTheWidestSwappedThreshold()
    {
        using var plan = _cuda.CreateGroupedGemmPlan(new GroupedGemmOptions(8, 4096, 7168, DType.Float16, GemmStrategy.ExpertSpecialized, 8192));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.ResolveStrategy(8 * 16), Is.EqualTo(GemmStrategy.ExpertSpecialized));
            Assert.That(plan.ResolveStrategy(8 * 64), Is.EqualTo(GemmStrategy.Single));
            Assert.That(plan.ResolveStrategy(8 * 1024), Is.EqualTo(GemmStrategy.Single));
        }
    }

    [Test]
    public void Single_AlwaysResolvesToSingle()
    {
        using var plan = _cuda.CreateGroupedGemmPlan(new GroupedGemmOptions(256, 7168, 256, DType.BFloat16, GemmStrategy.Single, 4096));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.ResolveStrategy(1024), Is.EqualTo(GemmStrategy.Single));
            Assert.That(plan.Resolve(1024).Configurations, Has.Count.EqualTo(1));
            Assert.That(plan.Kernels, Has.None.Contains("swap"), "single never instantiates the swapped tiles");
        }
    }
}
