namespace MoeCutlass.Cli.Charts;

/// <summary>
/// The ratios of the baseline chart: baseline median / strategy median per case (the bench table's "vs single"),
/// for every strategy but the baseline itself, whose bars would all read 1.0.
/// </summary>
internal static class BaselineChart
{
    public static string Title(string baseline) => $"Time of {baseline} / time of each strategy, per case (above 1: faster than {baseline})";

    public static string AxisLabel(string baseline) => $"{baseline} µs / strategy µs (dashed: same time)";

    public static IReadOnlyList<RatioSeries> Series(PlotRun run, string baseline)
    {
        IReadOnlyList<string> strategies = run.Strategies;
        return Enumerable.Range(0, strategies.Count)
            .Where(s => strategies[s] != baseline)
            .Select(s => new RatioSeries(strategies[s], s, run.Cases.Select(c => Ratio(run, c, baseline, strategies[s])).ToArray()))
            .ToArray();
    }

    private static double? Ratio(PlotRun run, string caseName, string baseline, string strategy) =>
        Time(run, caseName, baseline) is { } reference && Time(run, caseName, strategy) is { } ours ? reference / ours : null;

    private static double? Time(PlotRun run, string caseName, string strategy) =>
        run.Records.FirstOrDefault(r => r.Case == caseName && r.Strategy == strategy)?.TimeMedianUs;
}
