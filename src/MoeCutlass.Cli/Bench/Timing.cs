namespace MoeCutlass.Cli.Bench;

/// <summary>
/// How one configuration was timed and what it measured, shared by bench and tune records: the timed iterations
/// and warm-up runs, and the order statistics of the per-iteration event times and of the host time per call.
/// The result records write these fields flat under their own names (iterations, warmup, time_median_us, ...)
/// rather than as a nested object, so the JSON and CSV files keep the layout of the committed results.
/// </summary>
internal sealed record Timing
{
    public required int Iterations { get; init; }

    /// <summary>Untimed runs before the timed iterations.</summary>
    public required int Warmup { get; init; }

    /// <summary>Median of the per-iteration event times, µs; null when nothing was measured (a failure).</summary>
    public double? MedianUs { get; init; }

    public double? MinUs { get; init; }

    public double? P90Us { get; init; }

    public double? MeanUs { get; init; }

    /// <summary>Median host time of one call (its enqueue cost on CUDA; the whole GEMM on the synchronous CPU backend), µs.</summary>
    public double? HostMedianUs { get; init; }

    /// <summary>The timing of a configuration that was to be timed this way but could not be: no statistics.</summary>
    public static Timing NotMeasured(int iterations, int warmup) => new() { Iterations = iterations, Warmup = warmup };

    /// <summary>The statistics of measured <paramref name="device"/> and <paramref name="host"/> times, in µs.</summary>
    public static Timing Measured(int iterations, int warmup, TimingSummary device, TimingSummary host) => new()
    {
        Iterations = iterations,
        Warmup = warmup,
        MedianUs = Nanosecond(device.Median),
        MinUs = Nanosecond(device.Min),
        P90Us = Nanosecond(device.P90),
        MeanUs = Nanosecond(device.Mean),
        HostMedianUs = Nanosecond(host.Median),
    };

    /// <summary>Event times come from float milliseconds; more than nanosecond digits would be noise.</summary>
    private static double Nanosecond(double microseconds) => Math.Round(microseconds, 3);
}
