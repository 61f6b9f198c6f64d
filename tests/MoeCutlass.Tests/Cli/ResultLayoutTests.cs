using System.Text.Json;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Tune;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// bench and tune share one timing record, yet their result files keep the flat field names and order of the
/// committed runs (bench/results), so old and new files read the same.
/// </summary>
[TestFixture]
public sealed class ResultLayoutTests
{
    /// <summary>The record fields of bench/results/h200-suite-2026-12-03.json, in order.</summary>
    private static readonly string[] BenchFields =
    [
        "case", "model", "gemm", "backend", "strategy", "output_dtype", "experts", "active_experts", "n", "k", "rows",
        "scaled", "scale_note", "case_experts", "case_n", "case_rows", "iterations", "warmup", "time_median_us",
        "time_min_us", "time_p90_us", "time_mean_us", "host_median_us", "flops", "bytes", "tflops", "gbps",
        "roofline_percent", "roofline_bound", "speedup_vs_single", "graph_time_median_us", "graph_time_min_us",
        "graph_time_p90_us", "graph_time_mean_us", "graph_host_median_us", "graph_tflops", "graph_speedup_vs_eager",
        "graph_error", "kernels", "error",
    ];

    /// <summary>The record fields of a tune result (no mean time), in order; path came later, so it is last.</summary>
    private static readonly string[] TuneFields =
    [
        "shape", "case", "experts", "n", "k", "rows_per_expert", "rows", "configuration", "config", "iterations",
        "warmup", "time_median_us", "time_min_us", "time_p90_us", "host_median_us", "tflops", "fastest", "fitted",
        "kernels", "error", "path",
    ];

    private static readonly Timing Measured = new()
    {
        Iterations = 10, Warmup = 2, MedianUs = 150.5, MinUs = 140.25, P90Us = 160.125, MeanUs = 151.0, HostMedianUs = 9.5,
    };

    private TempDirectory _temp = null!;

    [SetUp]
    public void CreateTemp() => _temp = new TempDirectory();

    [TearDown]
    public void DeleteTemp() => _temp.Dispose();

    [Test]
    public void BenchRecord_JsonAndCsv_KeepTheCommittedFieldsInOrder_WithTheTimingFlat()
    {
        BenchResult result = ResultTests.Result("c", "single", null) with { Timing = Measured, Graph = Measured with { MedianUs = 120.0 } };
        string json = _temp.Combine("bench.json");
        string csv = _temp.Combine("bench.csv");

        ResultWriters.WriteJson(json, new BenchReport(BenchGraphReportTests.Metadata(), [result]));
        ResultWriters.WriteCsv(csv, [result]);

        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement record = document.RootElement.GetProperty("results")[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(record.EnumerateObject().Select(p => p.Name), Is.EqualTo(BenchFields));
            Assert.That(File.ReadAllLines(csv)[0], Is.EqualTo(string.Join(',', BenchFields)));
            Assert.That(record.GetProperty("iterations").GetInt32(), Is.EqualTo(10));
            Assert.That(record.GetProperty("warmup").GetInt32(), Is.EqualTo(2));
            Assert.That(record.GetProperty("time_min_us").GetDouble(), Is.EqualTo(140.25));
            Assert.That(record.GetProperty("time_p90_us").GetDouble(), Is.EqualTo(160.125));
            Assert.That(record.GetProperty("time_mean_us").GetDouble(), Is.EqualTo(151.0));
            Assert.That(record.GetProperty("host_median_us").GetDouble(), Is.EqualTo(9.5));
            Assert.That(record.GetProperty("graph_time_median_us").GetDouble(), Is.EqualTo(120.0));
            Assert.That(record.GetProperty("graph_host_median_us").GetDouble(), Is.EqualTo(9.5));
        }
    }

    [Test]
    public void TuneRecord_JsonAndCsv_KeepTheirFieldsInOrder_WithTheTimingFlat()
    {
        TuneResult result = new()
        {
            Shape = "E=2, N=128, K=128",
            Experts = 2,
            N = 128,
            K = 128,
            RowsPerExpert = 4,
            Rows = 8,
            Configuration = "128x32",
            ConfigurationName = "swap_128x32x128_c2x1_pingpong",
            Timing = Measured,
            Fastest = true,
            Fitted = true,
        };
        string json = _temp.Combine("tune.json");
        string csv = _temp.Combine("tune.csv");

        TuneResultWriters.WriteJson(json, new TuneReport(TuneMetadata(), [result], [], null));
        TuneResultWriters.WriteCsv(csv, [result]);

        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement record = document.RootElement.GetProperty("results")[0];
        string[] jsonFields = [.. TuneFields.Select(f => f == "config" ? "configuration_name" : f)];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(record.EnumerateObject().Select(p => p.Name), Is.EqualTo(jsonFields));
            Assert.That(File.ReadAllLines(csv)[0], Is.EqualTo(string.Join(',', TuneFields)));
            Assert.That(record.GetProperty("time_median_us").GetDouble(), Is.EqualTo(150.5));
            Assert.That(record.GetProperty("host_median_us").GetDouble(), Is.EqualTo(9.5));
            Assert.That(record.GetProperty("iterations").GetInt32(), Is.EqualTo(10));
        }
    }

    [Test]
    public void Timing_Measured_RoundsToNanoseconds_NotMeasured_HasNoStatistics()
    {
        var device = new TimingSummary(Median: 10.12345, Min: 9.00049, P90: 11.9996, Mean: 10.5, Count: 3);
        var host = new TimingSummary(Median: 2.00001, Min: 1, P90: 3, Mean: 2, Count: 3);

        Timing measured = Timing.Measured(3, 1, device, host);
        Timing failed = Timing.NotMeasured(3, 1);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(measured, Is.EqualTo(new Timing
            {
                Iterations = 3, Warmup = 1, MedianUs = 10.123, MinUs = 9.0, P90Us = 12.0, MeanUs = 10.5, HostMedianUs = 2.0,
            }));
            Assert.That(failed, Is.EqualTo(new Timing { Iterations = 3, Warmup = 1 }));
        }
    }

    internal static TuneRunMetadata TuneMetadata() => new()
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
        DeviceMultiprocessors = 132,
        DevicePeakBandwidthGbps = 4814,
        Iterations = 10,
        Warmup = 2,
        Seed = 1,
        OutputDtype = "bf16",
        RowsPerExpert = [4],
    };
}
