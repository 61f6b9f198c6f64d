namespace MoeCutlass.Cli.Bench;

/// <summary>Fills <see cref="BenchResult.SpeedupVsSingle"/> from the same run's <c>single</c> results.</summary>
internal static class Speedups
{
    /// <summary>
    /// Each result's speedup = median time of <c>single</c> on the same case / its own median; null when
    /// <c>single</c> was not run (or failed) for that case.
    /// </summary>
    public static IReadOnlyList<BenchResult> Apply(IReadOnlyList<BenchResult> results)
    {
        var single = results
            .Where(r => r.Strategy == "single" && r.TimeMedianUs is > 0)
            .GroupBy(r => r.Case, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First().TimeMedianUs!.Value, StringComparer.Ordinal);

        return results
            .Select(r => single.TryGetValue(r.Case, out double baseline) && r.TimeMedianUs is > 0
                ? r with { SpeedupVsSingle = baseline / r.TimeMedianUs.Value }
                : r with { SpeedupVsSingle = null })
            .ToArray();
    }
}
