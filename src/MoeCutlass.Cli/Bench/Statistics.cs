namespace MoeCutlass.Cli.Bench;

/// <summary>Order statistics of a sample of timings.</summary>
internal readonly record struct TimingSummary(double Median, double Min, double P90, double Mean, int Count)
{
    /// <summary>Summarizes <paramref name="samples"/> (which must not be empty).</summary>
    public static TimingSummary Of(IReadOnlyCollection<double> samples)
    {
        if (samples.Count == 0)
        {
            throw new ArgumentException("no samples", nameof(samples));
        }

        double[] sorted = samples.Order().ToArray();
        return new TimingSummary(
            Percentile(sorted, 0.5),
            sorted[0],
            Percentile(sorted, 0.9),
            sorted.Average(),
            sorted.Length);
    }

    /// <summary>Linear interpolation between closest ranks (the "R-7"/NumPy default definition).</summary>
    public static double Percentile(double[] sorted, double fraction)
    {
        if (sorted.Length == 1)
        {
            return sorted[0];
        }

        double position = fraction * (sorted.Length - 1);
        int lower = (int)Math.Floor(position);
        int upper = Math.Min(lower + 1, sorted.Length - 1);
        return sorted[lower] + ((position - lower) * (sorted[upper] - sorted[lower]));
    }
}
