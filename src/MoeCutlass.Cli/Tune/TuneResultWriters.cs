using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using MoeCutlass.Cli.Bench;

namespace MoeCutlass.Cli.Tune;

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
        ("path", r => r.Path),
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
