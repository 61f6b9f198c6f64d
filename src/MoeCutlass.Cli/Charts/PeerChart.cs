namespace MoeCutlass.Cli.Charts;

/// <summary>
/// The DeepGEMM comparison as a picture: DeepGEMM's better layout (µs) / our median (µs) per case, for every
/// strategy of the run; cases the peer file does not time are left out.
/// </summary>
internal static class PeerChart
{
    public const string Title = $"Time of {PeerTimes.PeerName} (better of contig, masked) / our time, per case (above 1: we are faster)";

    public const string AxisLabel = $"{PeerTimes.PeerName} µs / our µs (dashed: same time)";

    public static IReadOnlyList<RatioSeries> Series(PlotRun run, PeerTimes peer)
    {
        IReadOnlyList<string> strategies = run.Strategies;
        return Enumerable.Range(0, strategies.Count)
            .Select(s => new RatioSeries(strategies[s], s, run.Cases.Select(c => Ratio(run, peer, c, strategies[s])).ToArray()))
            .ToArray();
    }

    private static double? Ratio(PlotRun run, PeerTimes peer, string caseName, string strategy) =>
        peer.Microseconds.TryGetValue(caseName, out double theirs)
        && run.Records.FirstOrDefault(r => r.Case == caseName && r.Strategy == strategy)?.TimeMedianUs is { } ours
            ? theirs / ours
            : null;
}
