using System.Globalization;
using MoeCutlass.Cli.Infrastructure;
using Spectre.Console;

namespace MoeCutlass.Cli.Bench;

/// <summary>Renders bench results as a Spectre.Console table (secondary columns give way on narrow terminals).</summary>
internal static class ResultTable
{
    /// <summary>
    /// Writes the table; the roofline column is named after <paramref name="ceilings"/>' GPU class and left out
    /// without ceilings (CPU backend, unknown GPU class), where there is no roofline to be a percentage of.
    /// </summary>
    public static void Write(IAnsiConsole console, IReadOnlyList<BenchResult> results, RooflineCeilings? ceilings)
    {
        bool anyScaled = results.Any(r => r.Scaled);
        bool graphColumns = results.Any(r => r.GraphTimeMedianUs is not null || r.GraphError is not null);
        var columns = new List<ColumnSpec<BenchResult>>
        {
            new("Case", r => Markup.Escape(r.Case)),
            new("Strategy", r => Markup.Escape(r.Strategy)),
            new("E", r => Int(r.Experts), RightAligned: true),
            new("N", r => Int(r.N), DropPriority: 4, RightAligned: true),
            new("K", r => Int(r.K), DropPriority: 4, RightAligned: true),
            new("Rows", r => Int(r.Rows), RightAligned: true),
            new("Median µs", r => r.Error is null ? "[bold]" + NumberFormat.Microseconds(r.TimeMedianUs) + "[/]" : "[red]failed[/]", RightAligned: true),
            new("Min µs", r => NumberFormat.Microseconds(r.TimeMinUs), DropPriority: 9, RightAligned: true),
            new("p90 µs", r => NumberFormat.Microseconds(r.TimeP90Us), DropPriority: 8, RightAligned: true),
            new("Host µs", r => NumberFormat.Microseconds(r.HostMedianUs), DropPriority: 7, RightAligned: true),
            new("TFLOP/s", r => NumberFormat.Readable(r.Tflops), RightAligned: true),
            new("GB/s", r => NumberFormat.Readable(r.Gbps), RightAligned: true),
            new("vs single", r => NumberFormat.Ratio(r.SpeedupVsSingle), RightAligned: true),
        };
        if (ceilings is not null)
        {
            int vsSingle = columns.FindIndex(c => c.Header == "vs single");
            columns.Insert(vsSingle, new(ceilings.ColumnHeader, r => r.Error is not null ? "" : $"{NumberFormat.Percent(r.RooflinePercent)} {r.RooflineBound}", RightAligned: true));
        }

        if (graphColumns)
        {
            // Next to their eager counterparts: CUDA-graph replay of the same run.
            int median = columns.FindIndex(c => c.Header == "Median µs");
            columns.Insert(median + 1, new("Graph µs", r => r.Error is not null ? "" : r.GraphError is not null ? "[red]failed[/]" : "[bold]" + NumberFormat.Microseconds(r.GraphTimeMedianUs) + "[/]", RightAligned: true));
            int tflops = columns.FindIndex(c => c.Header == "TFLOP/s");
            columns.Insert(tflops + 1, new("Graph TFLOP/s", r => NumberFormat.Readable(r.GraphTflops), DropPriority: 3, RightAligned: true));
        }

        if (anyScaled)
        {
            columns.Add(new("Scaled (run of case)", r => Markup.Escape(r.ScaleNote ?? "not scaled"), DropPriority: 6));
        }

        console.Write(FittedTable.Build(console, columns, results, out IReadOnlyList<string> omitted));
        if (omitted.Count > 0)
        {
            console.WriteLine($"(narrow terminal: {string.Join(", ", omitted)} left out; --json/--csv keep every field)");
            if (omitted.Contains("Scaled (run of case)"))
            {
                foreach (BenchResult r in results.Where(r => r.Scaled).DistinctBy(r => r.Case))
                {
                    console.WriteLine($"  {r.Case}: scaled to {r.ScaleNote}");
                }
            }
        }
    }

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);
}
