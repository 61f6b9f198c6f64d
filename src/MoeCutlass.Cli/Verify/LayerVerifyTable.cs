using System.Globalization;
using MoeCutlass.Cli.Infrastructure;
using Spectre.Console;

namespace MoeCutlass.Cli.Verify;

/// <summary>The result table of <c>verify --layer</c>: one row per (layer case, strategy).</summary>
internal static class LayerVerifyTable
{
    public static void Write(IAnsiConsole console, IReadOnlyList<LayerVerifyRow> rows)
    {
        var columns = new List<ColumnSpec<LayerVerifyRow>>
        {
            new("Case", r => Markup.Escape(r.Shape.Case.Name)),
            new("Strategy", r => Markup.Escape(StrategySelection.Name(r.Strategy))),
            new("T", r => Int(r.Shape.Tokens), DropPriority: 3, RightAligned: true),
            new("Routed rows", r => r.Passed is null ? "" : Int(r.RoutedRows), RightAligned: true),
            new("Active experts", r => r.Passed is null ? "" : $"{Int(r.ActiveExperts)}/{Int(r.Shape.Experts)}", RightAligned: true),
            new("Rel. RMS", r => r.Comparison is { } c ? Format(c.RelativeRms) + (c.NonFinite > 0 ? $" ({c.NonFinite} non-finite)" : "") : "", RightAligned: true),
            new("Worst ratio", r => r.Comparison is { } c ? Ratio(c.WorstRatio) : "", RightAligned: true),
            new("Same bits", r => r.Deterministic switch { true => "yes", false => "[red]no[/]", null => "" }, DropPriority: 2),
            new("Result", r => r.Passed switch { true => "[green]PASS[/]", false => "[red]FAIL[/]", null => "[red]ERROR[/]" }),
        };
        if (rows.Any(r => r.Shape.Scaled))
        {
            columns.Add(new("Scaled (run of case)", r => Markup.Escape(r.Shape.ScaleNote ?? "not scaled"), DropPriority: 5));
        }

        console.Write(FittedTable.Build(console, columns, rows, out IReadOnlyList<string> omitted));
        if (omitted.Count > 0)
        {
            console.WriteLine($"(narrow terminal: {string.Join(", ", omitted)} left out)");
        }
    }

    public static string Format(double value) => double.IsFinite(value)
        ? value.ToString("0.000e0", CultureInfo.InvariantCulture)
        : value.ToString(CultureInfo.InvariantCulture);

    public static string Ratio(double value) => double.IsFinite(value)
        ? value.ToString("0.000", CultureInfo.InvariantCulture)
        : value.ToString(CultureInfo.InvariantCulture);

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);
}
