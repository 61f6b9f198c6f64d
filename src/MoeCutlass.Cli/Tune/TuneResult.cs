using System.Text.Json.Serialization;
using MoeCutlass.Cli.Bench;

namespace MoeCutlass.Cli.Tune;

/// <summary>One (shape, rows per expert, configuration) measurement of <c>tune</c>; null means "failed".</summary>
internal sealed record TuneResult
{
    /// <summary>The shape's label ("E=32, N=7168, K=2048" or "case (E=.., N=.., K=..)").</summary>
    public required string Shape { get; init; }

    /// <summary>The suite case the shape came from, else null.</summary>
    public string? Case { get; init; }

    public required int Experts { get; init; }

    public required int N { get; init; }

    public required int K { get; init; }

    /// <summary>Rows of every expert (m).</summary>
    public required int RowsPerExpert { get; init; }

    /// <summary>E x m.</summary>
    public required int Rows { get; init; }

    /// <summary>The short label: "128x32", "128x64" or "128x128"; on the single path e.g. "64x128", "256x128".</summary>
    public required string Configuration { get; init; }

    /// <summary>The registry name of the configuration forced (GroupedGemmOptions.Forcing).</summary>
    public required string ConfigurationName { get; init; }

    /// <summary>
    /// How the configuration was timed, written flat as the fields below (the layout of the committed results; no
    /// mean). Set by every producer, yet not <c>required</c>: System.Text.Json rejects a required member that it does
    /// not read back.
    /// </summary>
    [JsonIgnore]
    public Timing Timing { get; init; } = null!;

    public int Iterations => Timing.Iterations;

    public int Warmup => Timing.Warmup;

    /// <summary>Median of the per-iteration event times, µs.</summary>
    public double? TimeMedianUs => Timing.MedianUs;

    public double? TimeMinUs => Timing.MinUs;

    public double? TimeP90Us => Timing.P90Us;

    public double? HostMedianUs => Timing.HostMedianUs;

    /// <summary>Flops / median time, in TFLOP/s.</summary>
    public double? Tflops { get; init; }

    /// <summary>True for the fastest configuration at this rows value (exact ties: the wider one).</summary>
    public required bool Fastest { get; init; }

    /// <summary>True when the crossover fit gives this rows value to this configuration.</summary>
    public required bool Fitted { get; init; }

    /// <summary>Kernel configurations the plan may launch, ';'-separated.</summary>
    public string? Kernels { get; init; }

    public string? Error { get; init; }

    /// <summary>
    /// The path whose configurations this record's rows value was timed with: "specialized" (expert specialization's
    /// 128x32, 128x64, 128x128) or "single" (every non-swapped configuration); <see cref="Fastest"/> and
    /// <see cref="Fitted"/> compare within the path. Last in the files: it came after the fields above.
    /// </summary>
    public string Path { get; init; } = TuneConfigurationSet.RecordName(TunePath.Specialized);
}
