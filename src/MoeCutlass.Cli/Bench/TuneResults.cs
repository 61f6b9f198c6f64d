using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoeCutlass.Cli.Bench;

/// <summary>One (shape, rows per expert, configuration) measurement of <c>tune</c>; null means "failed".</summary>
internal sealed record TuneResult
{
    /// <summary>The shape's label ("E=32, N=7168, K=2048" or "case (E=.., N=.., K=..)").</summary>
    public required string Shape { get; init; }

    /// <summary>The suite case the shape came from, else null.</summary>
    public string? Case { get; init; }

    public required int Experts { get; init; }

    public required int N { get; init; }

    public required int K { get; init; }

    /// <summary>Rows of every expert (m).</summary>
    public required int RowsPerExpert { get; init; }

    /// <summary>E x m.</summary>
    public required int Rows { get; init; }

    /// <summary>"128x32", "128x64" or "128x128".</summary>
    public required string Configuration { get; init; }

    /// <summary>The registry name of the configuration forced (GroupedGemmOptions.Forcing).</summary>
    public required string ConfigurationName { get; init; }

    public required int Iterations { get; init; }

    public required int Warmup { get; init; }

    /// <summary>Median of the per-iteration event times, µs.</summary>
    public double? TimeMedianUs { get; init; }

    public double? TimeMinUs { get; init; }

    public double? TimeP90Us { get; init; }

    public double? HostMedianUs { get; init; }

    /// <summary>Flops / median time, in TFLOP/s.</summary>
    public double? Tflops { get; init; }

    /// <summary>True for the fastest configuration at this rows value (exact ties: the wider one).</summary>
    public required bool Fastest { get; init; }

    /// <summary>True when the crossover fit gives this rows value to this configuration.</summary>
    public required bool Fitted { get; init; }

    /// <summary>Kernel configurations the plan may launch, ';'-separated.</summary>
    public string? Kernels { get; init; }

    public string? Error { get; init; }
}

/// <summary>The crossovers of one shape as written to the JSON file.</summary>
internal sealed record TuneShapeSummary
{
    public required string Shape { get; init; }

    public string? Case { get; init; }

    public required int Experts { get; init; }

    public required int N { get; init; }

    public required int K { get; init; }

    /// <summary>The one-line crossover description printed under the shape's table.</summary>
    public required string Crossovers { get; init; }

    /// <summary>Largest rows per expert of 128x32 for this shape (0: none); null without a fit.</summary>
    public int? Swap32MaxRows { get; init; }

    /// <summary>Largest rows per expert of 128x64 (equal to swap32_max_rows: none); null without a fit.</summary>
    public int? Swap64MaxRows { get; init; }

    /// <summary>Sum over m of t(fitted) / t(fastest) - 1.</summary>
    public required double Regret { get; init; }

    /// <summary>Rows values left out of the fit because a configuration failed there.</summary>
    public required IReadOnlyList<int> Incomplete { get; init; }
}

/// <summary>The range lines suggested for native/src/core/kernel_configs.def.</summary>
internal sealed record TuneSuggestion
{
    public required int Swap32MaxRows { get; init; }

    public required int Swap64MaxRows { get; init; }

    /// <summary>How many shapes the medians were taken over.</summary>
    public required int Shapes { get; init; }

    /// <summary>The MC_KERNEL_RANGE lines, newline-separated.</summary>
    public required string TableRow { get; init; }
}

/// <summary>Run-level metadata of a <c>tune</c> result file (bench's run block plus what tune sweeps).</summary>
internal sealed record TuneRunMetadata
{
    public required DateTimeOffset TimestampUtc { get; init; }

    public required string Machine { get; init; }

    public required string Os { get; init; }

    public required string Runtime { get; init; }

    public required string ToolVersion { get; init; }

    public required string LibraryVersion { get; init; }

    public required string LibraryGitCommit { get; init; }

    public required int LibraryAbiVersion { get; init; }

    public required string LibraryPath { get; init; }

    public required string Backend { get; init; }

    public required string Device { get; init; }

    public required int DeviceMultiprocessors { get; init; }

    /// <summary>Peak memory bandwidth from bus width and memory clock (what the library matches GPU classes by), GB/s.</summary>
    public required double DevicePeakBandwidthGbps { get; init; }

    public required int Iterations { get; init; }

    public required int Warmup { get; init; }

    public required ulong Seed { get; init; }

    public required string OutputDtype { get; init; }

    /// <summary>The suite file, when shapes came from --case.</summary>
    public string? Suite { get; init; }

    /// <summary>The rows-per-expert values swept.</summary>
    public required IReadOnlyList<int> RowsPerExpert { get; init; }
}

/// <summary>The JSON result file of <c>tune</c>.</summary>
internal sealed record TuneReport(
    TuneRunMetadata Run,
    IReadOnlyList<TuneResult> Results,
    IReadOnlyList<TuneShapeSummary> Shapes,
    TuneSuggestion? Suggestion);

/// <summary>Source-generated (reflection-free) JSON metadata for the tune result file.</summary>
[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(TuneReport))]
internal sealed partial class TuneJsonContext : JsonSerializerContext;

/// <summary>Writes tune results as JSON (metadata, records, crossovers, suggestion) and CSV (one row per record).</summary>
internal static class TuneResultWriters
{
    private static readonly (string Name, Func<TuneResult, string> Value)[] CsvColumns =
    [
        ("shape", r => r.Shape),
        ("case", r => r.Case ?? ""),
        ("experts", r => Int(r.Experts)),
        ("n", r => Int(r.N)),
        ("k", r => Int(r.K)),
        ("rows_per_expert", r => Int(r.RowsPerExpert)),
        ("rows", r => Int(r.Rows)),
        ("configuration", r => r.Configuration),
        ("config", r => r.ConfigurationName),
        ("iterations", r => Int(r.Iterations)),
        ("warmup", r => Int(r.Warmup)),
        ("time_median_us", r => NumberFormat.Raw(r.TimeMedianUs)),
        ("time_min_us", r => NumberFormat.Raw(r.TimeMinUs)),
        ("time_p90_us", r => NumberFormat.Raw(r.TimeP90Us)),
        ("host_median_us", r => NumberFormat.Raw(r.HostMedianUs)),
        ("tflops", r => NumberFormat.Raw(r.Tflops)),
        ("fastest", r => r.Fastest ? "true" : "false"),
        ("fitted", r => r.Fitted ? "true" : "false"),
        ("kernels", r => r.Kernels ?? ""),
        ("error", r => r.Error ?? ""),
    ];

    private static readonly TuneJsonContext FileContext = new(new JsonSerializerOptions(TuneJsonContext.Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static void WriteJson(string path, TuneReport report) =>
        ResultWriters.WriteText(path, JsonSerializer.Serialize(report, FileContext.TuneReport) + Environment.NewLine);

    public static void WriteCsv(string path, IReadOnlyList<TuneResult> results) => ResultWriters.WriteCsv(path, CsvColumns, results);

    private static string Int(int value) => ResultWriters.Int(value);
}
