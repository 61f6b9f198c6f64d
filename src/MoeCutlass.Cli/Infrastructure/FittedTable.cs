using Spectre.Console;
using Spectre.Console.Rendering;

namespace MoeCutlass.Cli.Infrastructure;

/// <summary>A table column: header, alignment, a drop priority (0 = never dropped; higher = dropped first) and the cell markup.</summary>
internal sealed record ColumnSpec<T>(string Header, Func<T, string> Cell, int DropPriority = 0, bool RightAligned = false);

/// <summary>
/// Builds a Spectre table that fits the console: when the natural width exceeds it (an 80-column terminal
/// and a 15-column report), the columns with the highest drop priority are left out one by one instead of
/// letting every cell wrap into an unreadable column of fragments. Redirected output is rendered wide, so
/// CI logs and files always get every column.
/// </summary>
internal static class FittedTable
{
    public static Table Build<T>(IAnsiConsole console, IReadOnlyList<ColumnSpec<T>> columns, IReadOnlyList<T> rows, out IReadOnlyList<string> omitted)
    {
        var included = columns.ToList();
        var dropped = new List<string>();
        while (true)
        {
            Table table = Create(included, rows);
            int width = ((IRenderable)table).Measure(RenderOptions.Create(console), int.MaxValue / 2).Max;
            ColumnSpec<T>? next = included.Where(c => c.DropPriority > 0).MaxBy(c => c.DropPriority);
            if (width <= console.Profile.Width || next is null)
            {
                omitted = dropped;
                return table;
            }

            included.Remove(next);
            dropped.Add(next.Header);
        }
    }

    private static Table Create<T>(IReadOnlyList<ColumnSpec<T>> columns, IReadOnlyList<T> rows)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (ColumnSpec<T> column in columns)
        {
            var header = new TableColumn(Markup.Escape(column.Header));
            table.AddColumn(column.RightAligned ? header.RightAligned() : header);
        }

        foreach (T row in rows)
        {
            table.AddRow(columns.Select(c => c.Cell(row)).ToArray());
        }

        return table;
    }
}
