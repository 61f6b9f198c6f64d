using System.Globalization;
using MoeCutlass.Cli.Infrastructure;
using Spectre.Console;

namespace MoeCutlass.Cli.Bench;

/// <summary>The two tables of <c>bench --layer</c>: layer vs GEMMs alone, then the per-stage breakdown.</summary>
internal static class LayerResultTable
{
    public static void Write(IAnsiConsole console, IReadOnlyList<LayerResult> results, RooflineCeilings? ceilings)
    {
        bool graph = results.Any(r => r.GraphMedianUs is not null || r.GraphError is not null);
        var columns = new List<ColumnSpec<LayerResult>>
        {
            new("Case", r => Markup.Escape(r.Case)),
            new("Strategy", r => Markup.Escape(r.Strategy)),
            new("Tokens", r => Int(r.Tokens), RightAligned: true),
            new("Active", r => $"{Int(r.ActiveExperts)}/{Int(r.Experts)}", RightAligned: true),
            new("Rows", r => Int(r.RoutedRows), RightAligned: true),
            new("Layer µs", r => r.Error is null ? "[bold]" + NumberFormat.Microseconds(r.LayerMedianUs) + "[/]" : "[red]failed[/]", RightAligned: true),
            new("GEMM1 µs", r => NumberFormat.Microseconds(r.Gemm1MedianUs), DropPriority: 5, RightAligned: true),
            new("GEMM2 µs", r => NumberFormat.Microseconds(r.Gemm2MedianUs), DropPriority: 5, RightAligned: true),
            new("GEMMs µs", r => NumberFormat.Microseconds(r.GemmsMedianUs), RightAligned: true),
            new("Overhead", r => NumberFormat.Ratio(r.Overhead), RightAligned: true),
            new("Weights MB", r => NumberFormat.Readable(r.WeightBytes / 1e6), DropPriority: 4, RightAligned: true),
            new("TB/s", r => NumberFormat.Readable(r.WeightTbps), RightAligned: true),
        };
        if (graph)
        {
            columns.Insert(6, new("Graph µs", r => r.GraphError is not null ? "[red]failed[/]" : NumberFormat.Microseconds(r.GraphMedianUs), RightAligned: true));
        }

        if (ceilings is not null)
        {
            columns.Add(new($"% of {ceilings.ShortName} BW", r => NumberFormat.Percent(r.BandwidthPercent), RightAligned: true));
        }

        if (results.Any(r => r.Scaled))
        {
            columns.Add(new("Scaled (run of case)", r => Markup.Escape(r.ScaleNote ?? "not scaled"), DropPriority: 6));
        }

        Write(console, columns, results);
        console.WriteLine();

        var stages = new List<ColumnSpec<LayerResult>>
        {
            new("Case", r => Markup.Escape(r.Case)),
            new("Strategy", r => Markup.Escape(r.Strategy)),
        };
        foreach (string stage in MoeLayerStageEvents.StageNames)
        {
            stages.Add(new(stage + " µs", r => r.StageMedianUs is { } s ? NumberFormat.Microseconds(s[stage]) : "", RightAligned: true));
        }

        stages.Add(new("Timed µs", r => NumberFormat.Microseconds(r.StagesTotalMedianUs), RightAligned: true));
        Write(console, stages, results);
    }

    /// <summary>The note under the tables: what the columns mean and which bandwidth TB/s is compared with.</summary>
    public static string Footnote(RooflineCeilings? ceilings) =>
        "Layer µs: median of eager forward calls; Graph µs: one captured call replayed as a CUDA graph; GEMMs µs = GEMM1 (N=2I, K=H) + "
        + "GEMM2 (N=H, K=I) run alone as grouped-GEMM plans over the routed rows; Overhead = Layer / GEMMs. Weights = W13 + W2 + scales of the "
        + "active experts; TB/s = Weights / Layer µs"
        + (ceilings is not null
            ? string.Create(CultureInfo.InvariantCulture, $", % of the {ceilings.GpuClass} {ceilings.Source} bandwidth {ceilings.MemoryGbps / 1000:0.00} TB/s (no measured copy bandwidth)")
            : " (no bandwidth to compare with on this backend)")
        + ". Stage µs: medians of timed forward calls (8 events), each waited for, so their sum ('Timed µs') can exceed Layer µs.";

    private static void Write(IAnsiConsole console, List<ColumnSpec<LayerResult>> columns, IReadOnlyList<LayerResult> results)
    {
        console.Write(FittedTable.Build(console, columns, results, out IReadOnlyList<string> omitted));
        if (omitted.Count > 0)
        {
            console.WriteLine($"(narrow terminal: {string.Join(", ", omitted)} left out; --json keeps every field)");
        }
    }

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);
}
