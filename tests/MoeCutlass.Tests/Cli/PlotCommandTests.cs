using MoeCutlass.Cli.Charts;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// <c>moecutlass plot</c> and <c>bench --plot</c> as child processes: the files they write, and bad input as one
/// usage error naming the argument, with nothing written.
/// </summary>
[TestFixture]
public sealed class PlotCommandTests : NativeTestBase
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void CreateTemp() => _temp = new TempDirectory();

    [TearDown]
    public void DeleteTemp() => _temp.Dispose();

    [Test]
    public async Task Plot_WithPeer_WritesThreeChartsAsPngAndSvg()
    {
        string output = _temp.Combine("charts");

        CliRun run = await CliProcess.RunAsync(_temp.Path, [
            "plot", ChartFileChecks.Fixture("h200-suite-k-2026-12-03.json"), "--out", output,
            "--peer", ChartFileChecks.Fixture("h200-peers-k-2026-12-03.txt")]);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        Assert.That(Directory.GetFiles(output).Select(Path.GetFileName).Order(), Is.EqualTo(new[]
        {
            "h200-suite-k-2026-12-03-roofline.png", "h200-suite-k-2026-12-03-roofline.svg",
            "h200-suite-k-2026-12-03-vs-deepgemm.png", "h200-suite-k-2026-12-03-vs-deepgemm.svg",
            "h200-suite-k-2026-12-03-vs-single.png", "h200-suite-k-2026-12-03-vs-single.svg",
        }));
        Assert.That(run.StandardOutput, Does.Contain("wrote " + Path.Combine(output, "h200-suite-k-2026-12-03-roofline.png")));
    }

    [TestCase("missing", "error: RESULTS: no such file: ")]
    [TestCase("not-json", "error: RESULTS: ")]
    [TestCase("no-results", "error: RESULTS: ")]
    [TestCase("unknown-baseline", "error: --baseline: ")]
    [TestCase("bad-peer", "error: --peer: ")]
    [TestCase("missing-peer", "error: --peer: no such file: ")]
    public async Task Plot_BadInput_OneUsageErrorNamingTheArgument_WritesNothing(string input, string expectedStart)
    {
        string good = ChartFileChecks.Fixture("h200-suite-k-2026-12-03.json");
        string output = _temp.Combine("charts");
        string[] arguments = input switch
        {
            "missing" => [good, _temp.Combine("nope.json")],
            "not-json" => [good, _temp.Write("text.json", "case | contig 1.0 us")],
            "no-results" => [good, _temp.Write("empty.json", "{\"run\": {\"timestamp_utc\": \"2026-12-03T00:00:00Z\"}, \"results\": []}")],
            "unknown-baseline" => [good, "--baseline", "fastest"],
            "bad-peer" => [good, "--peer", _temp.Write("peers.txt", "no peers here\n")],
            _ => [good, "--peer", _temp.Combine("nope.txt")],
        };

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["plot", .. arguments, "--out", output]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
            Assert.That(run.ErrorLines, Has.Length.EqualTo(1), run.ToString());
            Assert.That(run.StandardError, Does.StartWith(expectedStart), run.ToString());
            Assert.That(run.StandardOutput, Is.Empty, "nothing reported as written");
            Assert.That(Directory.Exists(output), Is.False, "nothing written");
        }

        string message = run.StandardError;
        if (input is "not-json")
        {
            Assert.That(message, Does.Contain("is not JSON"));
        }
        else if (input is "no-results")
        {
            Assert.That(message, Does.Contain("has no results"));
        }
    }

    [Test]
    public async Task Plot_WithoutOut_IsAUsageError()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["plot", ChartFileChecks.Fixture("h200-suite-k-2026-12-03.json")]);

        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.StandardError, Does.Contain("--out"));
    }

    [Test]
    public async Task Bench_Plot_DrawsTheRunsCharts_ThroughTheSameLoader()
    {
        ChartFileChecks.RequireFonts();
        string suite = _temp.Write("suite.json", SuiteFiles.SmallSuite());
        string output = _temp.Combine("charts");

        CliRun run = await CliProcess.RunAsync(_temp.Path, [
            "bench", "--suite", suite, "--backend", "cpu", "--iterations", "1", "--warmup", "0",
            "--json", _temp.Combine("run.json"), "--plot", output]);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        ChartFileChecks.AssertPng(Path.Combine(output, "run-roofline.png"), RooflineChart.Width, RooflineChart.Height);
        ChartFileChecks.AssertNamesEveryCase(Path.Combine(output, "run-roofline.svg"), ["tiny", "other"]);
        ChartFileChecks.AssertNamesEveryCase(Path.Combine(output, "run-vs-single.svg"), ["tiny", "other"]);
        Assert.That(ChartFileChecks.SvgText(Path.Combine(output, "run-roofline.svg")), Does.Contain("no ceilings"), "the CPU backend has none");
    }
}
