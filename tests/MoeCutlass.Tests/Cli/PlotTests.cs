using MoeCutlass.Cli.Charts;
using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// The charts of <c>moecutlass plot</c>, drawn from the committed H200 results (bench/results) on any machine:
/// every file is a real PNG of the planned size and an SVG that parses and names every case; the same input
/// draws the same bytes; the ceilings are the ones the file recorded.
/// </summary>
[TestFixture]
public sealed class PlotTests
{
    private const string NewRun = "h200-suite-k-2026-12-03.json";
    private const string OldRun = "h200-suite-2026-12-03.json";
    private const string Peers = "h200-peers-k-2026-12-03.txt";

    private TempDirectory _temp = null!;

    [SetUp]
    public void CreateTemp() => _temp = new TempDirectory();

    [TearDown]
    public void DeleteTemp() => _temp.Dispose();

    [Test]
    public void NewRun_WithPeer_DrawsRooflineBaselineAndDeepGemmCharts_NamingEveryCase()
    {
        ChartFileChecks.RequireFonts();
        PlotRun run = ResultFileLoader.Load(ChartFileChecks.Fixture(NewRun), "RESULTS");
        PeerTimes peer = PeerTimes.Load(ChartFileChecks.Fixture(Peers), "--peer");

        IReadOnlyList<PlannedChart> charts = ChartSet.Plan([run], new ChartOptions("single", true, peer), new List<string>());
        ChartSet.Write(charts, _temp.Path);

        Assert.That(charts.Select(c => c.Stem), Is.EqualTo(new[]
        {
            "h200-suite-k-2026-12-03-roofline", "h200-suite-k-2026-12-03-vs-single", "h200-suite-k-2026-12-03-vs-deepgemm",
        }));
        Assert.That(run.Cases, Has.Count.EqualTo(22));
        foreach (PlannedChart chart in charts)
        {
            ChartFileChecks.AssertPng(_temp.Combine(chart.Stem + ".png"), chart.Width, chart.Height);
            ChartFileChecks.AssertNamesEveryCase(_temp.Combine(chart.Stem + ".svg"), run.Cases);
        }

        string roofline = ChartFileChecks.SvgText(_temp.Combine("h200-suite-k-2026-12-03-roofline.svg"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(roofline, Does.Contain("NVIDIA H200, library 903c14c+wip, 2026-12-03 10:35 UTC"), "title: device, commit, date");
            Assert.That(roofline, Does.Contain("H200 (132 SMs, HBM3e) datasheet"));
            Assert.That(roofline, Does.Contain("compute ceiling 1979 TFLOP/s"));
            Assert.That(roofline, Does.Contain("memory ceiling 4.80 TB/s"));
            Assert.That(roofline, Does.Contain("arithmetic intensity (FLOP per byte moved"), "x axis label with its unit");
            Assert.That(roofline, Does.Contain("TFLOP/s"), "y axis label with its unit");
            foreach (string strategy in run.Strategies)
            {
                Assert.That(roofline, Does.Contain(strategy), "the legend names every strategy");
            }
        }
    }

    [Test]
    public void OldRun_LabelsItsRecordedCeilings_AsTheFileRecordedThem()
    {
        ChartFileChecks.RequireFonts();
        PlotRun run = ResultFileLoader.Load(ChartFileChecks.Fixture(OldRun), "RESULTS");

        IReadOnlyList<PlannedChart> charts = ChartSet.Plan([run], new ChartOptions("single", true, null), new List<string>());
        ChartSet.Write(charts, _temp.Path);

        Assert.That(run.Ceilings, Is.Not.Null);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.Ceilings!.PeakTflops, Is.EqualTo(1979));
            Assert.That(run.Ceilings.MemoryGbps, Is.EqualTo(3000));
            Assert.That(run.Ceilings.Label, Does.Contain("constants the file recorded"));
        }

        string roofline = ChartFileChecks.SvgText(_temp.Combine("h200-suite-2026-12-03-roofline.svg"));
        Assert.That(roofline, Does.Contain("constants the file recorded"));
        Assert.That(roofline, Does.Contain("memory ceiling 3.00 TB/s"));
        foreach (PlannedChart chart in charts)
        {
            ChartFileChecks.AssertPng(_temp.Combine(chart.Stem + ".png"), chart.Width, chart.Height);
            ChartFileChecks.AssertNamesEveryCase(_temp.Combine(chart.Stem + ".svg"), run.Cases);
        }
    }

    [Test]
    public void RunWithoutCeilings_DrawsNoCeilings_AndSaysSoInTheTitle()
    {
        ChartFileChecks.RequireFonts();
        string json = File.ReadAllText(ChartFileChecks.Fixture(NewRun));
        int start = json.IndexOf("\"roofline\": {", StringComparison.Ordinal);
        int end = json.IndexOf('}', start);
        PlotRun run = ResultFileLoader.Parse(json[..start] + "\"roofline\": null" + json[(end + 1)..], "cpu", "test", "RESULTS");

        ChartSet.Write(ChartSet.Plan([run], new ChartOptions("single", true, null), new List<string>()), _temp.Path);

        string roofline = ChartFileChecks.SvgText(_temp.Combine("cpu-roofline.svg"));
        Assert.That(run.Ceilings, Is.Null);
        Assert.That(roofline, Does.Contain("no ceilings"));
        Assert.That(roofline, Does.Not.Contain("compute ceiling"));
    }

    [Test]
    public void SameInput_DrawsTheSameBytes()
    {
        PlotRun run = ResultFileLoader.Load(ChartFileChecks.Fixture(NewRun), "RESULTS");
        var options = new ChartOptions("single", true, PeerTimes.Load(ChartFileChecks.Fixture(Peers), "--peer"));

        IReadOnlyList<string> first = ChartSet.Write(ChartSet.Plan([run], options, new List<string>()), _temp.Combine("a"));
        IReadOnlyList<string> second = ChartSet.Write(ChartSet.Plan([run], options, new List<string>()), _temp.Combine("b"));

        Assert.That(second.Select(File.ReadAllBytes), Is.EqualTo(first.Select(File.ReadAllBytes)));
    }

    [Test]
    public void PeerFile_DeepGemmIsTheBetterLayout_OtherPeersAreSkipped()
    {
        PeerTimes peer = PeerTimes.Load(ChartFileChecks.Fixture(Peers), "--peer");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(peer.Microseconds, Has.Count.EqualTo(22));
            Assert.That(peer.Microseconds["mixtral-gate_up-e8-t1024"], Is.EqualTo(471.7), "masked beats contig 479.2");
            Assert.That(peer.Microseconds["mixtral-down-e8-t1024"], Is.EqualTo(232.2), "contig beats masked 246.1");
            Assert.That(peer.Microseconds["ds-tp8-down-e256-t128"], Is.EqualTo(202.4), "the fp8-rowwise line of the case is not DeepGEMM");
        }
    }

    [Test]
    public void UnknownBaseline_IsAUsageError_NamingTheOption()
    {
        PlotRun run = ResultFileLoader.Load(ChartFileChecks.Fixture(NewRun), "RESULTS");

        var error = Assert.Throws<UsageException>(() => ChartSet.Plan([run], new ChartOptions("fastest", true, null), new List<string>()));

        Assert.That(error!.Message, Does.StartWith("--baseline: ").And.Contain("'fastest'").And.Contain("single, expert_specialized, auto"));
    }

    [Test]
    public void PeerFileWithoutDeepGemmLines_IsAUsageError_NamingTheOption()
    {
        var error = Assert.Throws<UsageException>(() => PeerTimes.Parse(["# nothing", "case | bf16 12.0 us 1 TF"], "p.txt", "--peer"));

        Assert.That(error!.Message, Does.StartWith("--peer: p.txt has no DeepGEMM times"));
    }
}
