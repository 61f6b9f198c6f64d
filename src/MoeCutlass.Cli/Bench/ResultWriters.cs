using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoeCutlass.Cli.Bench;

/// <summary>Source-generated (reflection-free) JSON metadata for the result file.</summary>
[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(BenchReport))]
internal sealed partial class BenchJsonContext : JsonSerializerContext;

/// <summary>Writes bench results as JSON (metadata + records) and CSV (one row per result).</summary>
internal static class ResultWriters
{
    /// <summary>CSV columns, in order; the names match the JSON record fields.</summary>
    private static readonly (string Name, Func<BenchResult, string> Value)[] CsvColumns =
    [
        ("case", r => r.Case),
        ("model", r => r.Model),
        ("gemm", r => r.Gemm),
        ("backend", r => r.Backend),
        ("strategy", r => r.Strategy),
        ("output_dtype", r => r.OutputDtype),
        ("experts", r => Int(r.Experts)),
        ("active_experts", r => Int(r.ActiveExperts)),
        ("n", r => Int(r.N)),
        ("k", r => Int(r.K)),
        ("rows", r => Int(r.Rows)),
        ("scaled", r => r.Scaled ? "true" : "false"),
        ("scale_note", r => r.ScaleNote ?? ""),
        ("case_experts", r => Int(r.CaseExperts)),
        ("case_n", r => Int(r.CaseN)),
        ("case_rows", r => Int(r.CaseRows)),
        ("iterations", r => Int(r.Iterations)),
        ("warmup", r => Int(r.Warmup)),
        ("time_median_us", r => NumberFormat.Raw(r.TimeMedianUs)),
        ("time_min_us", r => NumberFormat.Raw(r.TimeMinUs)),
        ("time_p90_us", r => NumberFormat.Raw(r.TimeP90Us)),
        ("time_mean_us", r => NumberFormat.Raw(r.TimeMeanUs)),
        ("host_median_us", r => NumberFormat.Raw(r.HostMedianUs)),
        ("flops", r => NumberFormat.Raw(r.Flops)),
        ("bytes", r => NumberFormat.Raw(r.Bytes)),
        ("tflops", r => NumberFormat.Raw(r.Tflops)),
        ("gbps", r => NumberFormat.Raw(r.Gbps)),
        ("roofline_percent", r => NumberFormat.Raw(r.RooflinePercent)),
        ("roofline_bound", r => r.RooflineBound ?? ""),
        ("speedup_vs_single", r => NumberFormat.Raw(r.SpeedupVsSingle)),
        ("graph_time_median_us", r => NumberFormat.Raw(r.GraphTimeMedianUs)),
        ("graph_time_min_us", r => NumberFormat.Raw(r.GraphTimeMinUs)),
        ("graph_time_p90_us", r => NumberFormat.Raw(r.GraphTimeP90Us)),
        ("graph_time_mean_us", r => NumberFormat.Raw(r.GraphTimeMeanUs)),
        ("graph_host_median_us", r => NumberFormat.Raw(r.GraphHostMedianUs)),
        ("graph_tflops", r => NumberFormat.Raw(r.GraphTflops)),
        ("graph_speedup_vs_eager", r => NumberFormat.Raw(r.GraphSpeedupVsEager)),
        ("graph_error", r => r.GraphError ?? ""),
        ("kernels", r => r.Kernels ?? ""),
        ("error", r => r.Error ?? ""),
    ];

    /// <summary>Result files are data, not HTML: keep '+' and quotes readable instead of \u escapes.</summary>
    private static readonly BenchJsonContext FileContext = new(new JsonSerializerOptions(BenchJsonContext.Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static void WriteJson(string path, BenchReport report) => WriteText(path, ToJson(report) + Environment.NewLine);

    /// <summary>The result file's text; bench --plot reads its charts back from it, as plot reads a saved file.</summary>
    public static string ToJson(BenchReport report) => JsonSerializer.Serialize(report, FileContext.BenchReport);

    public static void WriteCsv(string path, IReadOnlyList<BenchResult> results) => WriteCsv(path, CsvColumns, results);

    /// <summary>A header of column names, then one escaped line per record (bench and tune share it).</summary>
    internal static void WriteCsv<T>(string path, IReadOnlyList<(string Name, Func<T, string> Value)> columns, IReadOnlyList<T> records)
    {
        var text = new StringBuilder();
        text.AppendJoin(',', columns.Select(c => c.Name)).Append('\n');
        foreach (T record in records)
        {
            text.AppendJoin(',', columns.Select(c => Escape(c.Value(record)))).Append('\n');
        }

        WriteText(path, text.ToString());
    }

    /// <summary>RFC 4180 quoting: fields with commas, quotes or line breaks are quoted, quotes doubled.</summary>
    internal static string Escape(string field) =>
        field.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;

    internal static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    internal static void WriteText(string path, string text)
    {
        string full = Path.GetFullPath(path);
        try
        {
            if (Path.GetDirectoryName(full) is { Length: > 0 } directory)
            {
                Directory.CreateDirectory(directory);
            }

            File.WriteAllText(full, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new Infrastructure.UsageException($"cannot write {full}: {ex.Message}", ex);
        }
    }
}
