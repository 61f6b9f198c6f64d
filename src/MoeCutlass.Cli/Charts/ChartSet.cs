using MoeCutlass.Cli.Infrastructure;
using ScottPlot;

namespace MoeCutlass.Cli.Charts;

/// <summary>What to draw besides the roofline: the baseline strategy, and DeepGEMM's times when imported.</summary>
/// <param name="Baseline">The strategy the time ratios are taken against ("single").</param>
/// <param name="BaselineRequired">
/// True for <c>plot</c>, where the user named the baseline (a file without it is a usage error); false for
/// <c>bench --plot</c>, whose run may not include single (the ratio chart is then left out, and said so).
/// </param>
/// <param name="Peer">DeepGEMM's times (<c>--peer</c>), or null.</param>
internal sealed record ChartOptions(string Baseline, bool BaselineRequired, PeerTimes? Peer);

/// <summary>One chart to write: file stem, size, and how to draw it.</summary>
internal sealed record PlannedChart(string Stem, int Width, int Height, Func<Plot> Draw);

/// <summary>
/// The charts of a set of runs, shared by <c>plot</c> and <c>bench --plot</c>. <see cref="Plan"/> checks every
/// input and decides every file before <see cref="Write"/> draws any, so bad input writes nothing.
/// Per run: <c>STEM-roofline</c>, <c>STEM-vs-BASELINE</c>, and with a peer <c>STEM-vs-deepgemm</c>. A stacked
/// per-stage chart of <c>layers</c> results belongs in this list once bench writes such records (issue 17); no
/// result file has them yet, so there is nothing to plan for them.
/// </summary>
internal static class ChartSet
{
    public static IReadOnlyList<PlannedChart> Plan(IReadOnlyList<PlotRun> runs, ChartOptions options, ICollection<string> notes)
    {
        var charts = new List<PlannedChart>();
        foreach (PlotRun run in runs)
        {
            charts.Add(new PlannedChart($"{run.Name}-roofline", RooflineChart.Width, RooflineChart.Height, () => RooflineChart.Build(run)));

            if (!run.Strategies.Contains(options.Baseline))
            {
                string message = $"--baseline: {run.Source} has no '{options.Baseline}' results; its strategies: {string.Join(", ", run.Strategies)}";
                if (options.BaselineRequired)
                {
                    throw new UsageException(message);
                }

                notes.Add(message + " (no baseline chart)");
            }
            else if (run.Strategies.Count > 1)
            {
                charts.Add(Ratios(run, $"vs-{options.Baseline}", BaselineChart.Title(options.Baseline), BaselineChart.AxisLabel(options.Baseline), BaselineChart.Series(run, options.Baseline)));
            }
            else
            {
                notes.Add($"{run.Source}: only '{options.Baseline}' was run, so there is nothing to compare with it (no baseline chart)");
            }

            if (options.Peer is { } peer)
            {
                if (!run.Cases.Any(peer.Microseconds.ContainsKey))
                {
                    throw new UsageException($"--peer: {peer.Source} has no case of {run.Source}");
                }

                charts.Add(Ratios(run, "vs-deepgemm", PeerChart.Title, PeerChart.AxisLabel, PeerChart.Series(run, peer)));
            }
        }

        string? clash = charts.GroupBy(c => c.Stem, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1)?.Key;
        return clash is null
            ? charts
            : throw new UsageException($"RESULTS: two inputs would both write {clash}.png; give files with different names");
    }

    /// <summary>Draws every planned chart into <paramref name="directory"/>; returns the files written.</summary>
    public static IReadOnlyList<string> Write(IReadOnlyList<PlannedChart> charts, string directory) =>
        charts.SelectMany(c => ChartFiles.Write(c.Draw(), directory, c.Stem, c.Width, c.Height)).ToArray();

    /// <summary>A ratio chart over the cases that have at least one ratio.</summary>
    private static PlannedChart Ratios(PlotRun run, string suffix, string title, string axis, IReadOnlyList<RatioSeries> series)
    {
        int[] shown = Enumerable.Range(0, run.Cases.Count).Where(c => series.Any(s => s.Ratios[c] is not null)).ToArray();
        string[] cases = shown.Select(c => run.Cases[c]).ToArray();
        RatioSeries[] kept = series.Select(s => s with { Ratios = shown.Select(c => s.Ratios[c]).ToArray() }).ToArray();
        return new PlannedChart($"{run.Name}-{suffix}", RatioChart.Width(cases.Length), RatioChart.Height, () => RatioChart.Build(title, run.Identity, axis, cases, kept));
    }
}
