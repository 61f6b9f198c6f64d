using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli.Tune;

/// <summary>The crossover fit of every swept shape, from the records of a sweep.</summary>
internal static class TuneFit
{
    /// <summary>
    /// Fits each shape's crossovers (<see cref="Crossovers.Analyze"/>), in the order of <paramref name="shapes"/>, and
    /// sets <see cref="TuneResult.Fitted"/> on the records of <paramref name="results"/> whose configuration the fit
    /// gives their rows value.
    /// </summary>
    public static (IReadOnlyList<ShapeCrossovers> Analyses, IReadOnlyList<TuneShapeSummary> Summaries) Apply(
        IReadOnlyList<TuneShape> shapes, List<TuneResult> results)
    {
        var summaries = new List<TuneShapeSummary>();
        var analyses = new List<ShapeCrossovers>();
        foreach (TuneShape shape in shapes)
        {
            ShapeCrossovers crossovers = Crossovers.Analyze(Points(results, shape));
            analyses.Add(crossovers);
            summaries.Add(new TuneShapeSummary
            {
                Shape = shape.Label,
                Case = shape.Case,
                Experts = shape.Experts,
                N = shape.N,
                K = shape.K,
                Crossovers = crossovers.Description,
                Swap32MaxRows = crossovers.Swap32MaxRows,
                Swap64MaxRows = crossovers.Swap64MaxRows,
                Regret = crossovers.Regret,
                Incomplete = crossovers.Incomplete,
            });
            for (int i = 0; i < results.Count; i++)
            {
                TuneResult r = results[i];
                if (r.Shape == shape.Label)
                {
                    results[i] = r with { Fitted = crossovers.AssignedAt(r.RowsPerExpert) is { } c && TuneConfigurations.Labels[c] == r.Configuration };
                }
            }
        }

        return (analyses, summaries);
    }

    /// <summary>The shape's measurements as crossover points, ascending rows; a failed configuration's time is null.</summary>
    public static IEnumerable<TunePoint> Points(IReadOnlyList<TuneResult> results, TuneShape shape) =>
        results.Where(r => r.Shape == shape.Label)
            .GroupBy(r => r.RowsPerExpert)
            .Select(g => new TunePoint(
                g.Key,
                Enumerable.Range(0, TuneConfigurations.Count)
                    .Select(c => g.FirstOrDefault(r => r.Configuration == TuneConfigurations.Labels[c]) is { Error: null } r ? r.TimeMedianUs : null)
                    .ToArray()))
            .OrderBy(p => p.Rows);
}
