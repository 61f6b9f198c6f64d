using System.Diagnostics;
using MoeCutlass.Cli.Commands;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Scale;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// <c>moecutlass scale</c> (the multi-rank layer bench, issue 16 slice 4) without a GPU: its option rules and every usage
/// error, the clear unsupported failure on the CPU backend (parent and rank command) instead of a hang, the rank launcher's
/// kill-on-failure and timeout, the ranks' command lines and environment, and the aggregation over ranks.
/// </summary>
[TestFixture]
public sealed class ScaleCommandTests : NativeTestBase
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    /// <summary>A suite with a whole small layer ("small": E 16, H 512, I 256, top-4, T 64) and an expert slice ("slice").</summary>
    private string Suite() => _temp.Write("suite.json", LayerBenchTests.LayerSuite(
        LayerBenchTests.LayerJson("small", "m", 16, 16, 512, 256, 4, 64),
        LayerBenchTests.LayerJson("slice", "m", 4, 16, 512, 256, 4, 64)));

    private Task<CliRun> Scale(params string[] arguments) => CliProcess.RunAsync(_temp.Path, ["scale", .. arguments]);

    [Test]
    public void ParseModes_DefaultsToBoth_AcceptsLongNames_AndDropsRepeats()
    {
        Assert.That(ScalePlan.ParseModes(null), Is.EqualTo(new[] { MoeParallelMode.Tensor, MoeParallelMode.Expert }));
        Assert.That(ScalePlan.ParseModes(["ep,tensor", "expert"]), Is.EqualTo(new[] { MoeParallelMode.Expert, MoeParallelMode.Tensor }));
        var ex = Assert.Throws<UsageException>(() => ScalePlan.ParseModes(["tp,dp"]));
        Assert.That(ex!.Message, Does.StartWith("--parallel: unknown mode 'dp'"));
    }

    [Test]
    public void ParseWorlds_DefaultsToOne_AndRejectsZeroNegativeAndText()
    {
        Assert.That(ScalePlan.ParseWorlds(null), Is.EqualTo(new[] { 1 }));
        Assert.That(ScalePlan.ParseWorlds(["1,2", "4", "2"]), Is.EqualTo(new[] { 1, 2, 4 }));
        Assert.That(Assert.Throws<UsageException>(() => ScalePlan.ParseWorlds(["2,0"]))!.Message, Does.Contain("at least 1 (got 0)"));
        Assert.That(Assert.Throws<UsageException>(() => ScalePlan.ParseWorlds(["-1"]))!.Message, Does.Contain("at least 1 (got -1)"));
        Assert.That(Assert.Throws<UsageException>(() => ScalePlan.ParseWorlds(["two"]))!.Message, Does.Contain("'two' is not an integer"));
    }

    [Test]
    public void CheckDevices_AllowsUpToTheDeviceCount_AndNamesTheRule()
    {
        Assert.DoesNotThrow(() => ScalePlan.CheckDevices([1, 2], 2));
        var ex = Assert.Throws<UsageException>(() => ScalePlan.CheckDevices([2, 4], 2));
        Assert.That(ex!.Message, Does.StartWith("--world 4: one rank per CUDA device").And.Contain("this machine has 2").And.Contain("at most 2"));
    }

    [Test]
    public void SplitProblem_ChecksTheTensorAndExpertRules()
    {
        LayerShape Shape(int experts, int router, int intermediate, int tokens) => LayerShape.Full(
            new LayerCase("c", "m", experts, 0, router, 512, intermediate, 4, tokens, LayerRouter.Uniform, null));
        Assert.That(ScalePlan.SplitProblem(Shape(256, 256, 2048, 128), MoeParallelMode.Tensor, 4), Is.Null);
        Assert.That(ScalePlan.SplitProblem(Shape(256, 256, 2048, 4096), MoeParallelMode.Expert, 4), Is.Null);
        Assert.That(ScalePlan.SplitProblem(Shape(16, 16, 256, 64), MoeParallelMode.Tensor, 4), Does.Contain("I/W must be a multiple of 128"));
        Assert.That(ScalePlan.SplitProblem(Shape(16, 16, 256, 64), MoeParallelMode.Expert, 3), Does.Contain("E % W = 0"));
        Assert.That(ScalePlan.SplitProblem(Shape(16, 16, 256, 66), MoeParallelMode.Expert, 4), Does.Contain("T % W = 0"));
        Assert.That(ScalePlan.SplitProblem(Shape(8, 16, 256, 64), MoeParallelMode.Tensor, 1), Does.Contain("splits a whole layer"));
    }

    [TestCase(new[] { "--parallel", "tp,xp" }, "--parallel: unknown mode 'xp'")]
    [TestCase(new[] { "--world", "0" }, "--world: the world size W must be at least 1 (got 0)")]
    [TestCase(new[] { "--world", "1,x" }, "--world: 'x' is not an integer")]
    [TestCase(new[] { "--backend", "cuda", "--world", "64" }, "--world 64: one rank per CUDA device")]
    [TestCase(new[] { "--case", "slice" }, "splits a whole layer")]
    [TestCase(new[] { "--case", "gemm" }, "--case: unknown layer case 'gemm'")]
    [TestCase(new[] { "--backend", "cpu", "--parallel", "tp", "--world", "4" }, "I/W must be a multiple of 128")]
    [TestCase(new[] { "--backend", "cpu", "--parallel", "ep", "--world", "3" }, "E % W = 0")]
    [TestCase(new[] { "--iterations", "0" }, "--iterations")]
    public async Task UsageErrors_ExitWithTwo_AndNameTheOption(string[] arguments, string message)
    {
        CliRun run = await Scale(["--suite", Suite(), .. arguments]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.UsageError), run.ToString());
        Assert.That(run.StandardError, Does.Contain(message), run.ToString());
    }

    [Test]
    public async Task SuiteWithoutLayers_IsAUsageError()
    {
        string suite = _temp.Write("gemm-only.json", SuiteFiles.SmallSuite());
        CliRun run = await Scale("--suite", suite);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.UsageError), run.ToString());
        Assert.That(run.StandardError, Does.Contain("has no \"layers\" list; scale runs layer cases"), run.ToString());
    }

    [Test]
    public async Task CpuBackend_FailsWithTheUnsupportedMessage_InsteadOfHanging()
    {
        var watch = Stopwatch.StartNew();
        CliRun run = await Scale("--suite", Suite(), "--case", "small", "--backend", "cpu", "--world", "1", "--timeout", "60");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Failure), run.ToString());
            Assert.That(run.StandardError, Does.Contain("MC_STATUS_UNSUPPORTED"), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("the CPU backend has no communicator"), run.ToString());
            Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(55)));
        }
    }

    [Test]
    public async Task RankCommand_OnTheCpuBackend_FailsWithTheUnsupportedMessage()
    {
        string id = Path.Combine(_temp.Path, "id.bin");
        File.WriteAllBytes(id, new byte[MoeCommunicator.UniqueIdBytes]);
        CliRun run = await CliProcess.RunAsync(_temp.Path, [ScaleCommand.RankCommandName, "--suite", Suite(), "--case", "small", "--parallel", "tp",
            "--world", "1", "--rank", "0", "--id-file", id, "--json", Path.Combine(_temp.Path, "rank0.json"), "--backend", "cpu"]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Failure), run.ToString());
        Assert.That(run.StandardError, Does.Contain("MC_STATUS_UNSUPPORTED"), run.ToString());
        Assert.That(File.Exists(Path.Combine(_temp.Path, "rank0.json")), Is.False);
    }

    [Test]
    public async Task RankCommand_IsHidden_AndChecksTheRank()
    {
        CliRun help = await CliProcess.RunAsync(_temp.Path, ["--help"]);
        Assert.That(help.StandardOutput, Does.Contain("scale").And.Not.Contain(ScaleCommand.RankCommandName), help.ToString());
        CliRun run = await CliProcess.RunAsync(_temp.Path, [ScaleCommand.RankCommandName, "--suite", Suite(), "--case", "small", "--parallel", "ep",
            "--world", "2", "--rank", "2", "--id-file", "x", "--json", "y"]);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.UsageError), run.ToString());
        Assert.That(run.StandardError, Does.Contain("--rank 2: must be 0 .. W-1 = 1"), run.ToString());
    }

    [Test]
    public void RankStarts_OneProcessPerRank_WithItsRankAndNvlsOff()
    {
        LayerShape shape = LayerShape.Full(new LayerCase("small", "m", 16, 0, 16, 512, 256, 4, 64, LayerRouter.Uniform, null));
        var request = new ScaleCommand.ScaleRequest(Suite(), null, [MoeParallelMode.Expert], [2], BackendRequest.Cuda, 7, 2, 60, 42UL, null, false);
        IReadOnlyList<ProcessStartInfo> starts = ScaleCommand.RankStarts(shape, MoeParallelMode.Expert, 2, "/tmp/id", _temp.Path, request,
            ScaleCommand.NvlsSetting(null));
        Assert.That(starts, Has.Count.EqualTo(2));
        for (int rank = 0; rank < 2; rank++)
        {
            string[] arguments = [.. starts[rank].ArgumentList];
            string Value(string option) => arguments[Array.IndexOf(arguments, option) + 1];
            using (Assert.EnterMultipleScope())
            {
                Assert.That(arguments, Does.Contain(ScaleCommand.RankCommandName));
                Assert.That(Value("--rank"), Is.EqualTo(rank.ToString()));
                Assert.That(Value("--world"), Is.EqualTo("2"));
                Assert.That(Value("--parallel"), Is.EqualTo("ep"));
                Assert.That(Value("--case"), Is.EqualTo("small"));
                Assert.That(Value("--iterations"), Is.EqualTo("7"));
                Assert.That(Value("--warmup"), Is.EqualTo("2"));
                Assert.That(Value("--seed"), Is.EqualTo("42"));
                Assert.That(Value("--backend"), Is.EqualTo("cuda"));
                Assert.That(Value("--id-file"), Is.EqualTo("/tmp/id"));
                Assert.That(Value("--json"), Is.EqualTo(Path.Combine(_temp.Path, $"rank{rank}.json")));
                Assert.That(starts[rank].Environment[ScaleCommand.NvlsVariable], Is.EqualTo("0"));
            }
        }

        Assert.That(ScaleCommand.NvlsSetting("1"), Is.EqualTo("1"), "a caller's setting is kept");
    }

    private static ProcessStartInfo Shell(string script)
    {
        var start = new ProcessStartInfo("/bin/sh");
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        return start;
    }

    [Test]
    public async Task Launcher_KillsTheOtherRanks_WhenOneFails_AndQuotesItsStderr()
    {
        var watch = Stopwatch.StartNew();
        LaunchOutcome outcome = await RankLauncher.RunAsync([Shell("echo 'rank zero broke' >&2; exit 3"), Shell("sleep 60")], TimeSpan.FromSeconds(120));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), "the sleeping rank was not killed");
            Assert.That(outcome.Failure, Does.Contain("rank 0 exited with code 3: rank zero broke"));
            Assert.That(outcome.Failure, Does.Contain("rank(s) 1 killed"));
            Assert.That(outcome.Ranks[1].ExitCode, Is.Null);
        }
    }

    [Test]
    public async Task Launcher_KillsEveryRank_AfterTheTimeout()
    {
        var watch = Stopwatch.StartNew();
        LaunchOutcome outcome = await RankLauncher.RunAsync([Shell("exit 0"), Shell("sleep 60")], TimeSpan.FromSeconds(2));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)));
        Assert.That(outcome.Failure, Does.Contain("rank(s) 1 did not finish within 2 s"));
    }

    [Test]
    public async Task Launcher_Succeeds_WhenEveryRankExitsWithZero()
    {
        LaunchOutcome outcome = await RankLauncher.RunAsync([Shell("exit 0"), Shell("echo noise >&2; exit 0")], TimeSpan.FromSeconds(30));
        Assert.That(outcome.Failure, Is.Null);
        Assert.That(outcome.Ranks.Select(r => r.ExitCode), Is.EqualTo(new int?[] { 0, 0 }));
    }

    [Test]
    public void TheRepositoryScaleSuite_SplitsAtOneTwoAndFourRanks_InBothModes()
    {
        string? directory = AppContext.BaseDirectory;
        while (directory is not null && !File.Exists(Path.Combine(directory, "bench", "scale-suite.json")))
        {
            directory = Path.GetDirectoryName(directory);
        }

        Assert.That(directory, Is.Not.Null, $"no bench/scale-suite.json above {AppContext.BaseDirectory}");
        BenchSuite suite = BenchSuite.Load(Path.Combine(directory!, "bench", "scale-suite.json"));
        LayerShape[] shapes = [.. suite.SelectLayers(null).Select(LayerShape.Full)];
        Assert.That(shapes.Select(s => s.Case.Name), Is.SupersetOf(new[] { "ds-layer-e256-t128", "ds-layer-e256-t4096" }));
        Assert.That(shapes.Single(s => s.Case.Name == "ds-layer-e256-t4096").Tokens, Is.EqualTo(4096));
        Assert.DoesNotThrow(() => ScalePlan.CheckSplits(shapes, [MoeParallelMode.Tensor, MoeParallelMode.Expert], [1, 2, 4]));
    }

    private static RankResult Rank(int rank, double forward, double pipeline, double single, bool passed, double rms = 0.01) => new(
        "c", "tp", 2, rank, rank, "gpu", 22700, 64, 16, 128, 1000, 5, 1, forward, forward - 1, pipeline, single, 64, rms, 0.5, null, 0, passed);

    [Test]
    public void Aggregation_TakesTheSlowestRank_AndEveryRanksTolerance()
    {
        LayerShape shape = LayerShape.Full(new LayerCase("c", "m", 16, 0, 16, 512, 256, 4, 64, LayerRouter.Uniform, null));
        ScaleRow row = ScaleRow.Of(shape, MoeParallelMode.Tensor, 2, [Rank(0, 60, 45, 100, true), Rank(1, 80, 60, 90, true, 0.02)], null);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(row.Error, Is.Null);
            Assert.That(row.LatencyUs, Is.EqualTo(80));
            Assert.That(row.SlowestRank, Is.EqualTo(1));
            Assert.That(row.PipelineUs, Is.EqualTo(60));
            Assert.That(row.CollectiveShare, Is.EqualTo(0.25));
            Assert.That(row.SingleGpuUs, Is.EqualTo(100), "rank 0's one-GPU time");
            Assert.That(row.Speedup, Is.EqualTo(1.25));
            Assert.That(row.Efficiency, Is.EqualTo(0.625));
            Assert.That(row.TolerancePassed, Is.True);
            Assert.That(row.WorstRelativeRms, Is.EqualTo(0.02));
        }

        ScaleRow failed = ScaleRow.Of(shape, MoeParallelMode.Tensor, 2, [Rank(0, 60, 45, 100, true), Rank(1, 80, 60, 90, false)], null);
        Assert.That(failed.TolerancePassed, Is.False);
        ScaleRow missing = ScaleRow.Of(shape, MoeParallelMode.Tensor, 2, [Rank(0, 60, 45, 100, true)], null);
        Assert.That(missing.Error, Does.Contain("expected ranks 0..1"));
    }
}
