using System.Globalization;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Infrastructure;
using Spectre.Console;

namespace MoeCutlass.Cli.Tune;

/// <summary>What <c>tune</c> prints: the header, a table and the crossovers per shape, and the suggested range lines.</summary>
internal static class TuneConsoleReport
{
    public static void WriteHeader(IAnsiConsole console, DeviceInfo info, int device, TuneRequest request, BenchSettings settings) =>
        WriteHeader(console, info, device, request, settings, request.Tunes(TunePath.Specialized) ? [TuneConfigurationSet.Specialized] : []);

    /// <summary>The header of a sweep of <paramref name="sets"/> (one per path tuned).</summary>
    public static void WriteHeader(IAnsiConsole console, DeviceInfo info, int device, TuneRequest request, BenchSettings settings, IReadOnlyList<TuneConfigurationSet> sets)
    {
        var header = new ReportHeader(console);
        header.Add("device", $"{info.Name} (device {device}, {info.Multiprocessors} SMs, {Bandwidth(info)} GB/s peak)");
        header.Add("library", LibraryDescription.Text);
        header.Add("shapes", string.Join("; ", request.Shapes.Select(s => s.Label)) + (request.SuitePath is null ? "" : $" (cases from {request.SuitePath})"));
        if (request.KValues is { } ks)
        {
            header.Add("k", "every shape swept at K = " + string.Join(", ", ks.Select(Int)) + " (--k; E and N kept)");
        }

        foreach (TuneConfigurationSet set in sets)
        {
            string path = sets.Count > 1 || set.Path == TunePath.Single ? $" ({set.Word})" : "";
            header.Add("rows" + path, "per expert, every expert alike: " + string.Join(", ", request.RowsOf(set.Path).Select(Int)));
            header.Add("configs" + path, "every expert forced into one registry configuration (GroupedGemmOptions.Forcing): "
                + string.Join(", ", Enumerable.Range(0, set.Count).Select(c => $"{set.Labels[c]} = {set.Names[c]}")));
        }

        header.Add("timing", $"{settings.Iterations} timed iterations after {settings.Warmup} warm-up per configuration, taking turns in rounds; "
            + $"median of per-iteration event times; output {OutputDTypeSelection.Name(settings.OutputDType)}; seed {TuneRunner.Seed.ToString(CultureInfo.InvariantCulture)}");
        console.WriteLine();
    }

    /// <summary>One shape's table (a row per rows value, a column per configuration), its crossovers and thresholds.</summary>
    public static void WriteShape(IAnsiConsole console, TuneShape shape, IReadOnlyList<TuneResult> results, ShapeCrossovers crossovers) =>
        WriteShape(console, shape, results, crossovers, TuneConfigurationSet.Specialized);

    /// <summary>One shape's table on the path of <paramref name="set"/>, its crossovers and thresholds.</summary>
    public static void WriteShape(IAnsiConsole console, TuneShape shape, IReadOnlyList<TuneResult> results, ShapeCrossovers crossovers, TuneConfigurationSet set)
    {
        TunePoint[] points = TuneFit.Points(results, shape, set).ToArray();
        var columns = new List<ColumnSpec<TunePoint>> { new("Rows/expert", p => Int(p.Rows), RightAligned: true) };
        for (int c = 0; c < set.Count; c++)
        {
            int configuration = c;
            columns.Add(new($"{set.Labels[c]} µs", p => TimeCell(p, configuration), RightAligned: true));
        }

        columns.Add(new("Best", p => BestCell(p, crossovers, set.Labels)));
        console.MarkupLine($"[bold]{Markup.Escape(shape.Label)}[/]" + (set.Path == TunePath.Single ? " [bold]SINGLE[/] (one configuration for every expert)" : ""));
        console.Write(FittedTable.Build(console, columns, points, out _));
        console.WriteLine($"crossovers: {crossovers.Description}");
        string overruled = crossovers.Regret > 0 ? $" (the fit overrules faster configurations at some m, {crossovers.Regret * 100:0.#}% in all: marked 'fit:')" : "";
        if (set.Path == TunePath.Specialized && crossovers.Swap32MaxRows is { } swap32 && crossovers.Swap64MaxRows is { } swap64)
        {
            console.WriteLine($"thresholds for this shape: swap32_max_rows = {Int(swap32)}, swap64_max_rows = {Int(swap64)}" + overruled);
        }
        else if (set.Path == TunePath.Single && crossovers.MaxRows is { } maxRows)
        {
            console.WriteLine("ranges for this shape: "
                + string.Join(", ", SingleRanges.Table(set.Labels, maxRows).Select(r => $"{r.Name} {RowsText(r.LastRows)}")) + overruled);
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

    /// <summary>
    /// Prints the SINGLE table suggested across the shapes, grouped by K, and its <c>kernel_configs.def</c> range
    /// lines, or why there are none; returns them as the JSON file's single suggestion (null without one).
    /// </summary>
    public static TuneSingleSuggestion? WriteSingleSuggestion(
        IAnsiConsole console, TuneConfigurationSet set, IReadOnlyList<TuneShape> shapes, IReadOnlyList<ShapeCrossovers> fits, DeviceInfo info)
    {
        IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(set.Names, shapes.Select((s, i) => (s.K, fits[i])));
        if (groups.Count == 0)
        {
            console.WriteLine($"no SINGLE suggestion: no shape has a rows value with {TuneConfigurations.AllOf(set.Count)} single-path configurations measured");
            return null;
        }

        IReadOnlyList<string> lines = SingleRanges.Lines(Crossovers.GpuClassWord(info.Name), groups);
        console.WriteLine($"suggested SINGLE ranges for {info.Name} per average rows per expert (median over the shapes of each K of the crossover midpoints):");
        foreach (SingleKGroup group in groups)
        {
            console.WriteLine($"  K = {string.Join(", ", group.Ks.Select(Int))} (min_k {Int(group.MinK)}): "
                + string.Join(", ", group.Table.Select(r => $"{set.Labels[IndexOf(set.Names, r.Name)]} {RowsText(r.LastRows)}")));
        }

        console.WriteLine($"as SINGLE range lines of {Crossovers.KernelConfigsFile} (longest K first; min_k = the smallest K swept in its group, "
            + "0 for the general rows):");
        foreach (string line in lines)
        {
            console.WriteLine("  " + line);
        }

        return new TuneSingleSuggestion { Configurations = set.Names, Groups = groups, TableRows = string.Join(Environment.NewLine, lines) };
    }

    private static int IndexOf(IReadOnlyList<string> names, string name)
    {
        for (int i = 0; i < names.Count; i++)
        {
            if (names[i] == name)
            {
                return i;
            }
        }

        throw new ArgumentException($"'{name}' is not one of the configurations", nameof(name));
    }

    private static string RowsText(int lastRows) => lastRows == ConfigurationRange.Unbounded ? "beyond" : "up to " + Int(lastRows);

    private static string TimeCell(TunePoint point, int configuration)
    {
        if (point.TimesUs[configuration] is not { } time)
        {
            return "[red]failed[/]";
        }

        string text = NumberFormat.Microseconds(time);
        return point.Winner == configuration ? $"[bold]{text}[/]" : text;
    }

    private static string BestCell(TunePoint point, ShapeCrossovers crossovers, IReadOnlyList<string> labels)
    {
        if (point.Winner is not { } winner)
        {
            return "";
        }

        string text = labels[winner];
        return crossovers.AssignedAt(point.Rows) is { } fitted && fitted != winner ? $"{text} (fit: {labels[fitted]})" : text;
    }

    private static string Bandwidth(DeviceInfo info) => info.PeakMemoryBandwidthGBps.ToString("0", CultureInfo.InvariantCulture);

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);
}
