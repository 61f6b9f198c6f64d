using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli.Tune;

/// <summary>The crossover fit of every swept shape, per path, from the records of a sweep.</summary>
internal static class TuneFit
{
    /// <summary>
    /// Fits each shape's crossovers of expert specialization's configurations (<see cref="Crossovers.Analyze(IEnumerable{TunePoint})"/>),
    /// in the order of <paramref name="shapes"/>, and sets <see cref="TuneResult.Fitted"/> on their records.
    /// </summary>
    public static (IReadOnlyList<ShapeCrossovers> Analyses, IReadOnlyList<TuneShapeSummary> Summaries) Apply(
        IReadOnlyList<TuneShape> shapes, List<TuneResult> results)
    {
        IReadOnlyList<ShapeCrossovers> analyses = Fit(shapes, results, TuneConfigurationSet.Specialized);
        return (analyses, Summaries(shapes, analyses, null, null));
    }

    /// <summary>
    /// Fits each shape's crossovers over the configurations of <paramref name="set"/> (records of its path only), in
    /// the order of <paramref name="shapes"/>, and sets <see cref="TuneResult.Fitted"/> on the records of that path
    /// whose configuration the fit gives their rows value.
    /// </summary>
    public static IReadOnlyList<ShapeCrossovers> Fit(IReadOnlyList<TuneShape> shapes, List<TuneResult> results, TuneConfigurationSet set)
    {
        string path = TuneConfigurationSet.RecordName(set.Path);
        var analyses = new List<ShapeCrossovers>();
        foreach (TuneShape shape in shapes)
        {
            ShapeCrossovers crossovers = Crossovers.Analyze(Points(results, shape, set), set.Labels);
            analyses.Add(crossovers);
            for (int i = 0; i < results.Count; i++)
            {
                TuneResult r = results[i];
                if (r.Shape == shape.Label && r.Path == path)
                {
                    results[i] = r with { Fitted = crossovers.AssignedAt(r.RowsPerExpert) is { } c && set.Labels[c] == r.Configuration };
                }
            }
        }

        return analyses;
    }

    /// <summary>
    /// The JSON summaries of the shapes: the specialized fit's fields (a placeholder description where that path was
    /// not tuned) and the single fit's where it was.
    /// </summary>
    public static IReadOnlyList<TuneShapeSummary> Summaries(
        IReadOnlyList<TuneShape> shapes,
        IReadOnlyList<ShapeCrossovers>? specialized,
        IReadOnlyList<ShapeCrossovers>? single,
        TuneConfigurationSet? singleSet)
    {
        var summaries = new List<TuneShapeSummary>();
        for (int s = 0; s < shapes.Count; s++)
        {
            TuneShape shape = shapes[s];
            ShapeCrossovers? crossovers = specialized?[s];
            ShapeCrossovers? singleFit = single?[s];
            summaries.Add(new TuneShapeSummary
            {
                Shape = shape.Label,
                Case = shape.Case,
                Experts = shape.Experts,
                N = shape.N,
                K = shape.K,
                Crossovers = crossovers?.Description ?? "not measured (--path single)",
                Swap32MaxRows = crossovers?.Swap32MaxRows,
                Swap64MaxRows = crossovers?.Swap64MaxRows,
                Regret = crossovers?.Regret ?? 0,
                Incomplete = crossovers?.Incomplete ?? [],
                SingleCrossovers = singleFit?.Description,
                SingleConfigurations = singleFit is null ? null : singleSet?.Names,
                SingleMaxRows = singleFit?.MaxRows,
                SingleRegret = singleFit?.Regret,
                SingleIncomplete = singleFit?.Incomplete,
            });
        }

        return summaries;
    }

    /// <summary>The shape's measurements of expert specialization's configurations as crossover points, ascending rows.</summary>
    public static IEnumerable<TunePoint> Points(IReadOnlyList<TuneResult> results, TuneShape shape) =>
        Points(results, shape, TuneConfigurationSet.Specialized);

    /// <summary>The shape's measurements on <paramref name="set"/>'s path as crossover points, ascending rows; a failed configuration's time is null.</summary>
    public static IEnumerable<TunePoint> Points(IReadOnlyList<TuneResult> results, TuneShape shape, TuneConfigurationSet set)
    {
        string path = TuneConfigurationSet.RecordName(set.Path);
        return results.Where(r => r.Shape == shape.Label && r.Path == path)
            .GroupBy(r => r.RowsPerExpert)
            .Select(g => new TunePoint(
                g.Key,
                Enumerable.Range(0, set.Count)
                    .Select(c => g.FirstOrDefault(r => r.Configuration == set.Labels[c]) is { Error: null } r ? r.TimeMedianUs : null)
                    .ToArray()))
            .OrderBy(p => p.Rows);
    }
}
