namespace MoeCutlass.Tests.Cli;

/// <summary>
/// <c>moecutlass verify --layer</c> end to end on a tiny layers suite (CPU backend, so CPU vs CPU): every case and strategy
/// is reported and passes, the run says what a CPU-vs-CPU comparison checks, and its usage errors name the option.
/// </summary>
[TestFixture]
public sealed class LayerVerifyTests : NativeTestBase
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    private string TinySuite() => _temp.Write("suite.json", LayerBenchTests.LayerSuite(
        LayerBenchTests.LayerJson("wide-a", "m", 16, 16, 512, 128, 4, 80),
        LayerBenchTests.LayerJson("slice-b", "m", 4, 16, 128, 128, 2, 24, "zipf", firstExpert: 8)));

    [Test]
    public async Task VerifyLayer_TinySuite_PassesEveryCaseAndStrategy_AndSaysItIsCpuVsCpu()
    {
        string suite = TinySuite();

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["verify", "--layer", "--suite", suite, "--backend", "cpu", "--strategy", "single,auto"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(run.StandardError, Is.Empty, run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("4 passed, 0 failed, 0 error(s) of 4 checks"), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("CPU vs CPU").And.Contain("determinism"), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("2^-5").And.Contain("2^-3"), "the rule is stated");
            Assert.That(run.StandardOutput, Does.Contain("Routed rows").And.Contain("Active experts").And.Contain("Worst ratio"), run.ToString());
            // The scaled shape is stated: wide-a is reduced to 8 experts, H 256, 64 tokens; slice-b fits as it is.
            Assert.That(run.StandardOutput, Does.Contain("E=8 of 16").And.Contain("H=256 of 512").And.Contain("T=64 of 80"), run.ToString());
            Assert.That(run.StandardOutput, Does.Not.Contain("FAIL"), run.ToString());
            foreach (string item in (string[])["wide-a single: PASS", "wide-a auto: PASS", "slice-b single: PASS", "slice-b auto: PASS"])
            {
                Assert.That(run.StandardOutput, Does.Contain(item), run.ToString());
            }
        }
    }

    [Test]
    public async Task VerifyLayer_CaseOption_RunsOnlyThatLayerCase()
    {
        string suite = TinySuite();

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["verify", "--layer", "--suite", suite, "--backend", "cpu", "--case", "slice-b", "-s", "expert_specialized"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("(1 of 2 layer cases)").And.Contain("slice-b expert_specialized: PASS"), run.ToString());
            Assert.That(run.StandardOutput, Does.Not.Contain("wide-a"), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("1 passed, 0 failed, 0 error(s) of 1 checks"), run.ToString());
        }
    }

    [Test]
    public async Task VerifyLayer_UnknownLayerCase_IsAUsageError_ListingTheLayerCases()
    {
        string suite = TinySuite();

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["verify", "--layer", "--suite", suite, "--case", "gemm", "--backend", "cpu"]);

        AssertUsageError(run, "error: --case: unknown layer case 'gemm'; valid layer cases: wide-a, slice-b");
    }

    [Test]
    public async Task VerifyLayer_SuiteWithoutLayers_IsAUsageError()
    {
        string suite = _temp.Write("suite.json", SuiteFiles.SmallSuite());

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["verify", "--layer", "--suite", suite, "--backend", "cpu"]);

        AssertUsageError(run, $"error: --layer: suite file {suite} has no \"layers\" list");
    }

    [TestCase("--scale", "error: --scale: layer cases are always scaled down for the CPU reference; leave out --scale with --layer")]
    [TestCase("--dtype=fp16", "error: --dtype: the layer check writes bf16 output only (the generated layer data overflows fp16)")]
    public async Task VerifyLayer_GemmOnlyOptions_AreUsageErrors_NamingTheOption(string option, string expected)
    {
        string suite = TinySuite();

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["verify", "--layer", "--suite", suite, "--backend", "cpu", option]);

        AssertUsageError(run, expected);
    }

    private static void AssertUsageError(CliRun run, string expectedLine)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
            Assert.That(run.ErrorLines, Is.EqualTo(new[] { expectedLine }), run.ToString());
            Assert.That(run.StandardOutput, Is.Empty, "usage errors come before any report");
        }
    }
}
