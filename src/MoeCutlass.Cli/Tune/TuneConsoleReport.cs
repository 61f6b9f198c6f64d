using System.Globalization;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Infrastructure;
using Spectre.Console;

namespace MoeCutlass.Cli.Tune;

/// <summary>What <c>tune</c> prints: the header, a table and the crossovers per shape, and the suggested range lines.</summary>
internal static class TuneConsoleReport
{
    public static void WriteHeader(IAnsiConsole console, DeviceInfo info, int device, TuneRequest request, BenchSettings settings)
    {
        var header = new ReportHeader(console);
        header.Add("device", $"{info.Name} (device {device}, {info.Multiprocessors} SMs, {Bandwidth(info)} GB/s peak)");
        header.Add("library", LibraryDescription.Text);
        header.Add("shapes", string.Join("; ", request.Shapes.Select(s => s.Label)) + (request.SuitePath is null ? "" : $" (cases from {request.SuitePath})"));
        header.Add("rows", "per expert, every expert alike: " + string.Join(", ", request.Rows.Select(Int)));
        header.Add("configs", "every expert forced into one registry configuration (GroupedGemmOptions.Forcing): "
            + string.Join(", ", Enumerable.Range(0, TuneConfigurations.Count).Select(c => $"{TuneConfigurations.Labels[c]} = {TuneConfigurations.Names[c]}")));
        header.Add("timing", $"{settings.Iterations} timed iterations after {settings.Warmup} warm-up per configuration, taking turns in rounds; "
            + $"median of per-iteration event times; output {OutputDTypeSelection.Name(settings.OutputDType)}; seed {TuneRunner.Seed.ToString(CultureInfo.InvariantCulture)}");
        console.WriteLine();
    }

    /// <summary>One shape's table (a row per rows value, a column per configuration), its crossovers and thresholds.</summary>
    public static void WriteShape(IAnsiConsole console, TuneShape shape, IReadOnlyList<TuneResult> results, ShapeCrossovers crossovers)
    {
        TunePoint[] points = TuneFit.Points(results, shape).ToArray();
        var columns = new List<ColumnSpec<TunePoint>> { new("Rows/expert", p => Int(p.Rows), RightAligned: true) };
        for (int c = 0; c < TuneConfigurations.Count; c++)
        {
            int configuration = c;
            columns.Add(new($"{TuneConfigurations.Labels[c]} µs", p => TimeCell(p, configuration), RightAligned: true));
        }

        columns.Add(new("Best", p => BestCell(p, crossovers)));
        console.MarkupLine($"[bold]{Markup.Escape(shape.Label)}[/]");
        console.Write(FittedTable.Build(console, columns, points, out _));
        console.WriteLine($"crossovers: {crossovers.Description}");
        if (crossovers.Swap32MaxRows is { } swap32 && crossovers.Swap64MaxRows is { } swap64)
        {
            console.WriteLine($"thresholds for this shape: swap32_max_rows = {Int(swap32)}, swap64_max_rows = {Int(swap64)}"
                + (crossovers.Regret > 0 ? $" (the fit overrules faster configurations at some m, {crossovers.Regret * 100:0.#}% in all: marked 'fit:')" : ""));
        }

        if (crossovers.Incomplete.Count > 0)
        {
            console.WriteLine($"left out of the fit (a configuration failed): m={string.Join(", ", crossovers.Incomplete.Select(Int))}");
        }

        console.WriteLine();
    }

    /// <summary>
    /// Prints the thresholds suggested across the shapes and their <c>kernel_configs.def</c> range lines, or why there
    /// are none; returns them as the JSON file's suggestion (null without one).
    /// </summary>
    public static TuneSuggestion? WriteSuggestion(IAnsiConsole console, ThresholdSuggestion? suggestion, DeviceInfo info)
    {
        if (suggestion is null)
        {
            console.WriteLine($"no suggestion: no shape has a rows value with {TuneConfigurations.All} configurations measured");
            return null;
        }

        string row = string.Join(Environment.NewLine, Crossovers.TableRows(Crossovers.GpuClassWord(info.Name), suggestion.MaxRows));
        console.WriteLine($"suggested thresholds for {info.Name} ({info.Multiprocessors} SMs, {Bandwidth(info)} GB/s peak): "
            + $"swap32_max_rows = {Int(suggestion.Swap32MaxRows)}, swap64_max_rows = {Int(suggestion.Swap64MaxRows)} "
            + $"(median over {Int(suggestion.Shapes)} shape(s) of the crossover midpoints)");
        console.WriteLine($"as range lines of {Crossovers.KernelConfigsFile} (the library picks the class by SM count and peak bandwidth):");
        foreach (string line in row.Split(Environment.NewLine))
        {
            console.WriteLine("  " + line);
        }

        return new TuneSuggestion
        {
            Swap32MaxRows = suggestion.Swap32MaxRows,
            Swap64MaxRows = suggestion.Swap64MaxRows,
            Shapes = suggestion.Shapes,
            TableRow = row,
        };
    }

    private static string TimeCell(TunePoint point, int configuration)
    {
        if (point.TimesUs[configuration] is not { } time)
        {
            return "[red]failed[/]";
        }

        string text = NumberFormat.Microseconds(time);
        return point.Winner == configuration ? $"[bold]{text}[/]" : text;
    }

    private static string BestCell(TunePoint point, ShapeCrossovers crossovers)
    {
        if (point.Winner is not { } winner)
        {
            return "";
        }

        string text = TuneConfigurations.Labels[winner];
        return crossovers.AssignedAt(point.Rows) is { } fitted && fitted != winner ? $"{text} (fit: {TuneConfigurations.Labels[fitted]})" : text;
    }

    private static string Bandwidth(DeviceInfo info) => info.PeakMemoryBandwidthGBps.ToString("0", CultureInfo.InvariantCulture);

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);
}
