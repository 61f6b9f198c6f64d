namespace MoeCutlass.Cli.Tune;

/// <summary>The crossovers of one shape as written to the JSON file.</summary>
internal sealed record TuneShapeSummary
{
    public required string Shape { get; init; }

    public string? Case { get; init; }

    public required int Experts { get; init; }

    public required int N { get; init; }

    public required int K { get; init; }

    /// <summary>The one-line crossover description printed under the shape's table.</summary>
    public required string Crossovers { get; init; }

    /// <summary>Largest rows per expert of 128x32 for this shape (0: none); null without a fit.</summary>
    public int? Swap32MaxRows { get; init; }

    /// <summary>Largest rows per expert of 128x64 (equal to swap32_max_rows: none); null without a fit.</summary>
    public int? Swap64MaxRows { get; init; }

    /// <summary>Sum over m of t(fitted) / t(fastest) - 1.</summary>
    public required double Regret { get; init; }

    /// <summary>Rows values left out of the fit because a configuration failed there.</summary>
    public required IReadOnlyList<int> Incomplete { get; init; }

    /// <summary>The SINGLE path's crossover description for this shape; null when that path was not tuned.</summary>
    public string? SingleCrossovers { get; init; }

    /// <summary>The SINGLE path's configurations (registry names), narrowest first; null when not tuned.</summary>
    public IReadOnlyList<string>? SingleConfigurations { get; init; }

    /// <summary>Largest rows per expert of each SINGLE configuration but the widest (as swap32/64_max_rows); null without a fit.</summary>
    public IReadOnlyList<int>? SingleMaxRows { get; init; }

    /// <summary>The SINGLE fit's sum over m of t(fitted) / t(fastest) - 1; null when not tuned.</summary>
    public double? SingleRegret { get; init; }

    /// <summary>Rows values left out of the SINGLE fit because a configuration failed there; null when not tuned.</summary>
    public IReadOnlyList<int>? SingleIncomplete { get; init; }
}

/// <summary>The SINGLE range lines suggested for native/src/core/kernel_configs.def, grouped by K.</summary>
internal sealed record TuneSingleSuggestion
{
    /// <summary>The configurations fitted (registry names), narrowest first.</summary>
    public required IReadOnlyList<string> Configurations { get; init; }

    /// <summary>The K groups, smallest K first: K values, min_k written, and the table.</summary>
    public required IReadOnlyList<SingleKGroup> Groups { get; init; }

    /// <summary>The MC_KERNEL_RANGE SINGLE lines, newline-separated, longest-K rows first.</summary>
    public required string TableRows { get; init; }
}

/// <summary>The range lines suggested for native/src/core/kernel_configs.def.</summary>
internal sealed record TuneSuggestion
{
    public required int Swap32MaxRows { get; init; }

    public required int Swap64MaxRows { get; init; }

    /// <summary>How many shapes the medians were taken over.</summary>
    public required int Shapes { get; init; }

    /// <summary>The MC_KERNEL_RANGE lines, newline-separated.</summary>
    public required string TableRow { get; init; }
}

/// <summary>Run-level metadata of a <c>tune</c> result file (bench's run block plus what tune sweeps).</summary>
internal sealed record TuneRunMetadata
{
    public required DateTimeOffset TimestampUtc { get; init; }

    public required string Machine { get; init; }

    public required string Os { get; init; }

    public required string Runtime { get; init; }

    public required string ToolVersion { get; init; }

    public required string LibraryVersion { get; init; }

    public required string LibraryGitCommit { get; init; }

    public required int LibraryAbiVersion { get; init; }

    public required string LibraryPath { get; init; }

    public required string Backend { get; init; }

    public required string Device { get; init; }

    public required int DeviceMultiprocessors { get; init; }

    /// <summary>Peak memory bandwidth from bus width and memory clock (what the library matches GPU classes by), GB/s.</summary>
    public required double DevicePeakBandwidthGbps { get; init; }

    public required int Iterations { get; init; }

    public required int Warmup { get; init; }

    public required ulong Seed { get; init; }

    public required string OutputDtype { get; init; }

    /// <summary>The suite file, when shapes came from --case.</summary>
    public string? Suite { get; init; }

    /// <summary>The rows-per-expert values swept (on the specialized path).</summary>
    public required IReadOnlyList<int> RowsPerExpert { get; init; }

    /// <summary>The paths tuned: "specialized", "single".</summary>
    public IReadOnlyList<string> Paths { get; init; } = [TuneConfigurationSet.RecordName(TunePath.Specialized)];

    /// <summary>The rows-per-expert values swept on the single path; null when it was not tuned.</summary>
    public IReadOnlyList<int>? SingleRowsPerExpert { get; init; }

    /// <summary>The K values of --k (replacing the K of every shape), or null.</summary>
    public IReadOnlyList<int>? KValues { get; init; }
}

/// <summary>The JSON result file of <c>tune</c>.</summary>
internal sealed record TuneReport(
    TuneRunMetadata Run,
    IReadOnlyList<TuneResult> Results,
    IReadOnlyList<TuneShapeSummary> Shapes,
    TuneSuggestion? Suggestion,
    TuneSingleSuggestion? SingleSuggestion = null);
