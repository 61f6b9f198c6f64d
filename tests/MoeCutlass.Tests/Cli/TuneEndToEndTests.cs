namespace MoeCutlass.Tests.Cli;

/// <summary><c>moecutlass tune</c> as a child process: its help, its usage errors, and its one-line refusal without a GPU.</summary>
[TestFixture]
public sealed class TuneEndToEndTests : NativeTestBase
{
    private const string NoDevicePrefix = "error: tune measures CUDA kernel configurations and needs a CUDA device (none found: ";

    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public async Task Tune_WithoutACudaDevice_OneErrorLine_ExitCode1()
    {
        Assume.That(MoeCutlassLibrary.BuildInfo.HasCuda && MoeCutlassLibrary.DeviceCount > 0, Is.False, "this machine has a CUDA device: tune would measure");
        string json = _temp.Combine("tune.json");

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["tune", "--json", json], new Dictionary<string, string?> { ["MOECUTLASS_BUCKETS"] = null });

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
            Assert.That(run.ErrorLines, Has.Length.EqualTo(1), run.ToString());
            Assert.That(run.StandardError, Does.StartWith(NoDevicePrefix).And.EndWith(")" + Environment.NewLine), run.ToString());
            if (!MoeCutlassLibrary.BuildInfo.HasCuda)
            {
                Assert.That(run.ErrorLines[0], Is.EqualTo(NoDevicePrefix + "the native library was built without CUDA)"));
            }

            Assert.That(run.StandardError + run.StandardOutput, Does.Not.Contain("   at "), "no stack trace");
            Assert.That(run.StandardError, Does.Not.Contain("Exception"));
            Assert.That(run.StandardOutput, Is.Empty, "nothing is measured, so nothing is reported");
            Assert.That(File.Exists(json), Is.False, "no result file without results");
        }
    }

    [Test]
    public async Task Tune_BadShape_UsageError_BeforeLookingForADevice()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["tune", "--shape", "32,7168,2048", "--shape", "32,7170,2048"]);

        AssertUsageError(run, "error: --shape 32,7170,2048: N must be a positive multiple of 8 up to 1048576 (got 7170)");
    }

    [Test]
    public async Task Tune_BadRows_UsageError()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["tune", "--rows", "4,8,sixteen"]);

        AssertUsageError(run, "error: --rows: 'sixteen' is not a whole number (rows per expert, e.g. --rows 4,8,16,32)");
    }

    [Test]
    public async Task Tune_BadPath_UsageError()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["tune", "--path", "swapped"]);

        AssertUsageError(run, "error: --path 'swapped': expected specialized, single or both");
    }

    [Test]
    public async Task Tune_BadK_UsageError()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["tune", "--k", "256,100"]);

        AssertUsageError(run, "error: --k: K must be a positive multiple of 16 up to 1048576 (got 100)");
    }

    [Test]
    public async Task Tune_SinglePath_WithoutACudaDevice_StillOneErrorLine()
    {
        Assume.That(MoeCutlassLibrary.BuildInfo.HasCuda && MoeCutlassLibrary.DeviceCount > 0, Is.False, "this machine has a CUDA device: tune would measure");

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["tune", "--path", "single", "--k", "256,2048"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
            Assert.That(run.ErrorLines, Has.Length.EqualTo(1), run.ToString());
            Assert.That(run.StandardError, Does.StartWith(NoDevicePrefix), run.ToString());
            Assert.That(run.StandardOutput, Is.Empty);
        }
    }

    [Test]
    public async Task Tune_UnknownCase_UsageError_ListingValidCases()
    {
        string suite = _temp.Write("suite.json", SuiteFiles.SmallSuite());

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["tune", "--suite", suite, "--case", "nope"]);

        AssertUsageError(run, "error: unknown case 'nope'; valid cases: tiny, other");
    }

    [Test]
    public async Task Tune_Help_ListsItsOptions()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["tune", "--help"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            foreach (string option in new[] { "--shape", "--case", "--suite", "--k", "--path", "--rows", "--dtype", "--iterations", "--warmup", "--device", "--json", "--csv", "--verbose" })
            {
                Assert.That(run.StandardOutput, Does.Contain(option), option);
            }

            Assert.That(run.StandardOutput, Does.Contain("4,8,16,24,32,40,48,56,64,80,96,128,192"));
            Assert.That(run.StandardOutput, Does.Contain("32,7168,2048 and 256,7168,256 and 32,4096,7168"));
        }
    }

    /// <summary>Exit code 2, exactly one stderr line (the expected one), no stack trace, nothing on stdout.</summary>
    private static void AssertUsageError(CliRun run, string expectedLine)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
            Assert.That(run.ErrorLines, Is.EqualTo(new[] { expectedLine }), run.ToString());
            Assert.That(run.StandardError + run.StandardOutput, Does.Not.Contain("   at "), "no stack trace");
            Assert.That(run.StandardOutput, Is.Empty, "usage errors come before any report");
        }
    }
}
