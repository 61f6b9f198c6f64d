using System.Globalization;
using System.Text.Json;
using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli.Charts;

/// <summary>
/// Reads a bench result file (the JSON that <c>bench --json</c> writes) into a <see cref="PlotRun"/>. It reads
/// the fields by name instead of deserializing BenchReport: that record writes its timing flat and cannot read it
/// back, and files written before a field existed must still load (see <see cref="ReadCeilings"/>).
/// Every problem is a <see cref="UsageException"/> that names the command-line argument the file came from.
/// </summary>
internal static class ResultFileLoader
{
    /// <summary>Loads <paramref name="path"/>, given as <paramref name="argument"/> ("RESULTS") on the command line.</summary>
    public static PlotRun Load(string path, string argument)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new UsageException($"{argument}: no such file: {full}");
        }

        string text;
        try
        {
            text = File.ReadAllText(full);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{argument}: cannot read {full}: {ex.Message}", ex);
        }

        return Parse(text, Path.GetFileNameWithoutExtension(full), full, argument);
    }

    /// <summary>Parses result-file text; <paramref name="source"/> names it in messages.</summary>
    public static PlotRun Parse(string json, string name, string source, string argument)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new UsageException($"{argument}: {source} is not JSON: {ex.Message}", ex);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("run", out JsonElement run) || run.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("results", out JsonElement results) || results.ValueKind != JsonValueKind.Array)
            {
                throw new UsageException($"{argument}: {source} is not a bench result file (it needs a 'run' object and a 'results' array)");
            }

            var records = new List<PlotRecord>();
            foreach (JsonElement record in results.EnumerateArray())
            {
                records.Add(ReadRecord(record, records.Count, source, argument));
            }

            if (records.Count == 0)
            {
                throw new UsageException($"{argument}: {source} has no results to plot");
            }

            return new PlotRun(
                name,
                source,
                Text(run, "device") ?? "unknown device",
                Text(run, "library_git_commit") ?? "unknown commit",
                ReadTimestamp(run, source, argument),
                ReadCeilings(run),
                records);
        }
    }

    private static PlotRecord ReadRecord(JsonElement record, int index, string source, string argument)
    {
        string where = $"{argument}: {source}, results[{index}]";
        if (record.ValueKind != JsonValueKind.Object)
        {
            throw new UsageException($"{where} is not an object");
        }

        string caseName = Text(record, "case") ?? throw new UsageException($"{where} has no 'case'");
        string strategy = Text(record, "strategy") ?? throw new UsageException($"{where} ({caseName}) has no 'strategy'");
        double flops = Number(record, "flops") is { } f and > 0 ? f : throw new UsageException($"{where} ({caseName}) has no positive 'flops'");
        double bytes = Number(record, "bytes") is { } b and > 0 ? b : throw new UsageException($"{where} ({caseName}) has no positive 'bytes'");
        double? time = Number(record, "time_median_us") is { } t and > 0 ? t : null;
        return new PlotRecord(caseName, strategy, flops, bytes, time, time is null ? null : Number(record, "tflops"));
    }

    private static DateTimeOffset ReadTimestamp(JsonElement run, string source, string argument)
    {
        string? text = Text(run, "timestamp_utc");
        return text is not null && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out DateTimeOffset value)
            ? value
            : throw new UsageException($"{argument}: {source} has no valid run.timestamp_utc");
    }

    /// <summary>
    /// New files carry <c>run.roofline</c> (null when the run had no ceilings: CPU backend, unknown GPU class).
    /// Files written before it carry <c>run.roofline_peak_tflops</c> / <c>roofline_memory_gbps</c>: constants the
    /// CLI then applied to every GPU (H100 figures), labelled here as what the file recorded, not as the device's.
    /// </summary>
    private static PlotCeilings? ReadCeilings(JsonElement run)
    {
        if (run.TryGetProperty("roofline", out JsonElement roofline))
        {
            return roofline.ValueKind == JsonValueKind.Object
                && Number(roofline, "peak_tflops") is > 0 and double peak
                && Number(roofline, "memory_gbps") is > 0 and double memory
                    ? new PlotCeilings(peak, memory, $"{Text(roofline, "gpu_class") ?? "GPU"} {Text(roofline, "source") ?? "ceilings"}")
                    : null;
        }

        return Number(run, "roofline_peak_tflops") is > 0 and double oldPeak && Number(run, "roofline_memory_gbps") is > 0 and double oldMemory
            ? new PlotCeilings(oldPeak, oldMemory, "constants the file recorded (the CLI then applied them to every GPU: not this device's own)")
            : null;
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static double? Number(JsonElement element, string name) =>
        element.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : null;
}
