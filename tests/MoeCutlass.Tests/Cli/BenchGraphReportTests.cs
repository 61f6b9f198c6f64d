using System.Text.Json;
using MoeCutlass.Cli.Bench;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// How bench reports CUDA-graph timings (table, JSON, CSV), from result records: the GPU runs that produce them
/// cannot run here, so the rendering is checked on its own.
/// </summary>
[TestFixture]
public sealed class BenchGraphReportTests
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void CreateTemp() => _temp = new TempDirectory();

    [TearDown]
    public void DeleteTemp() => _temp.Dispose();

    [Test]
    public void Table_ShowsGraphColumnsNextToTheirEagerCounterparts()
    {
        BenchResult[] results = [Measured("single"), Measured("expert_specialized") with { GraphError = "capture failed" }];

        string table = Render(results);
        string header = table.Split('\n').First(l => l.Contains("Median µs", StringComparison.Ordinal));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(header.IndexOf("Median µs", StringComparison.Ordinal), Is.LessThan(header.IndexOf("Graph µs", StringComparison.Ordinal)));
            Assert.That(header.IndexOf("Graph µs", StringComparison.Ordinal), Is.LessThan(header.IndexOf("Min µs", StringComparison.Ordinal)),
                "the graph median sits right after the eager median");
            Assert.That(header.IndexOf("TFLOP/s", StringComparison.Ordinal), Is.LessThan(header.IndexOf("Graph TFLOP/s", StringComparison.Ordinal)));
            Assert.That(table, Does.Contain("150.0").And.Contain("120.0"), "eager and graph medians");
            Assert.That(table, Does.Contain("failed"), "a failed graph timing is marked");
        }
    }

    [Test]
    public void Table_WithoutGraphTimings_HasNoGraphColumns()
    {
        string table = Render([Measured("single") with { Graph = null, GraphTflops = null }]);

        Assert.That(table, Does.Not.Contain("Graph"));
    }

    [Test]
    public void JsonAndCsv_CarryTheGraphFields()
    {
        BenchResult result = Measured("single");
        string json = _temp.Combine("r.json");
        string csv = _temp.Combine("r.csv");

        ResultWriters.WriteJson(json, new BenchReport(Metadata(), [result]));
        ResultWriters.WriteCsv(csv, [result]);

        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement record = document.RootElement.GetProperty("results")[0];
        string[] lines = File.ReadAllLines(csv);
        string[] names = lines[0].Split(',');
        string[] values = lines[1].Split(',');
        string Cell(string name) => values[Array.IndexOf(names, name)];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(document.RootElement.GetProperty("run").GetProperty("graph_mode").GetString(), Is.EqualTo("on"));
            Assert.That(record.GetProperty("time_median_us").GetDouble(), Is.EqualTo(150.0));
            Assert.That(record.GetProperty("graph_time_median_us").GetDouble(), Is.EqualTo(120.0));
            Assert.That(record.GetProperty("graph_tflops").GetDouble(), Is.EqualTo(2.5));
            Assert.That(record.GetProperty("graph_speedup_vs_eager").GetDouble(), Is.EqualTo(1.25));
            Assert.That(record.GetProperty("graph_error").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(Cell("graph_time_median_us"), Is.EqualTo("120"));
            Assert.That(Cell("graph_tflops"), Is.EqualTo("2.5"));
            Assert.That(Cell("graph_speedup_vs_eager"), Is.EqualTo("1.25"));
            Assert.That(Cell("graph_error"), Is.Empty);
        }
    }

    private static string Render(IReadOnlyList<BenchResult> results) =>
        TextConsole.Render(console => ResultTable.Write(console, results, RooflineCeilings.Of(TestDevices.H200)));

    private static BenchResult Measured(string strategy) => new()
    {
        Case = "tiny",
        Model = "m",
        Gemm = "down",
        Backend = "cuda",
        Strategy = strategy,
        OutputDtype = "bf16",
        Experts = 4,
        ActiveExperts = 4,
        N = 256,
        K = 512,
        Rows = 64,
        Scaled = false,
        CaseExperts = 4,
        CaseN = 256,
        CaseRows = 64,
        Timing = new Timing { Iterations = 10, Warmup = 2, MedianUs = 150.0 },
        Tflops = 2.0,
        Flops = 3e8,
        Bytes = 1e6,
        RooflineBound = "memory",
        Graph = new Timing { Iterations = 10, Warmup = 2, MedianUs = 120.0 },
        GraphTflops = 2.5,
        GraphSpeedupVsEager = 1.25,
    };

    internal static BenchRunMetadata Metadata() => new()
    {
        TimestampUtc = DateTimeOffset.UnixEpoch,
        Machine = "m",
        Os = "os",
        Runtime = "rt",
        ToolVersion = "t",
        LibraryVersion = "v",
        LibraryGitCommit = "c",
        LibraryAbiVersion = 1,
        LibraryPath = "p",
        Backend = "cuda",
        Device = "d",
        Iterations = 10,
        Warmup = 2,
        Seed = 1,
        Suite = "s",
        GraphMode = "on",
        Roofline = RooflineCeilings.Of(TestDevices.H200),
    };
}
