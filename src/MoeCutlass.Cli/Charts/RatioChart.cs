using System.Globalization;
using ScottPlot;

namespace MoeCutlass.Cli.Charts;

/// <summary>One bar series of a <see cref="RatioChart"/>: a strategy and its ratio per case (null: not measured).</summary>
/// <param name="StrategyIndex">The strategy's position in the file, for its color (ChartStyle).</param>
internal sealed record RatioSeries(string Strategy, int StrategyIndex, IReadOnlyList<double?> Ratios);

/// <summary>
/// Per-case grouped bars of a time ratio, one bar per strategy, a line at 1.0 (same time). Every ratio this tool
/// draws is "reference time / our time", so above the line is faster than the reference in every chart.
/// </summary>
internal static class RatioChart
{
    public const int Height = 900;

    /// <summary>Wide enough for each case's group of bars and its name below them.</summary>
    public static int Width(int cases) => Math.Max(1200, 300 + (cases * 70));

    public static Plot Build(string title, string identity, string yLabel, IReadOnlyList<string> cases, IReadOnlyList<RatioSeries> series)
    {
        var plot = new Plot();
        ChartStyle.Apply(plot, title, identity, "case (suite order)", yLabel);

        const double groupWidth = 0.8;
        double barWidth = groupWidth / Math.Max(1, series.Count);
        var bars = new List<Bar>();
        for (int s = 0; s < series.Count; s++)
        {
            Color color = ChartStyle.StrategyColor(series[s].StrategyIndex);
            for (int c = 0; c < cases.Count; c++)
            {
                if (series[s].Ratios[c] is { } ratio)
                {
                    bars.Add(new Bar
                    {
                        Position = c - (groupWidth / 2) + ((s + 0.5) * barWidth),
                        Value = ratio,
                        ValueBase = 1.0,
                        Size = barWidth * 0.95,
                        FillColor = color,
                        LineWidth = 0,
                    });
                }
            }

            plot.Legend.ManualItems.Add(new LegendItem { LabelText = series[s].Strategy, FillColor = color });
        }

        plot.Add.Bars(bars);
        plot.Add.HorizontalLine(1.0, 1.5f, Colors.Black, LinePattern.Dashed);

        plot.Axes.Bottom.SetTicks(Enumerable.Range(0, cases.Count).Select(i => (double)i).ToArray(), cases.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 45;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Bottom.MinimumSize = 220;
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
        {
            LabelFormatter = v => v.ToString("0.00", CultureInfo.InvariantCulture),
        };
        plot.Axes.Bottom.TickLabelStyle.FontSize = ChartStyle.TickLabelSize;
        plot.Axes.Left.TickLabelStyle.FontSize = ChartStyle.TickLabelSize;

        double[] values = [1.0, .. bars.Select(b => b.Value)];
        double span = Math.Max(0.05, values.Max() - values.Min());
        plot.Axes.SetLimits(-0.6, cases.Count - 0.4, values.Min() - (span * 0.08), values.Max() + (span * 0.12));
        // Outside the data, on the right: inside it would cover bars, and it leaves room for the last case's slanted name.
        plot.ShowLegend(Edge.Right);
        return plot;
    }
}
