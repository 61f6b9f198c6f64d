namespace MoeCutlass.Cli.Tune;

/// <summary>A run of consecutive rows values that the fit gives to one configuration.</summary>
internal sealed record CrossoverSegment(int Configuration, int FirstRows, int LastRows)
{
    public string Label => TuneConfigurations.Labels[Configuration];
}

/// <summary>
/// The crossovers of one shape: the fitted split of the swept rows values into one consecutive range per
/// configuration, narrowest first (128x32, 128x64, 128x128), the thresholds it implies, and a one-line description.
/// </summary>
internal sealed record ShapeCrossovers
{
    /// <summary>The points the fit used (every configuration measured), ascending rows.</summary>
    public required IReadOnlyList<TunePoint> Points { get; init; }

    /// <summary>Rows values left out of the fit because a configuration failed there.</summary>
    public required IReadOnlyList<int> Incomplete { get; init; }

    /// <summary>The fitted configuration per point of <see cref="Points"/>.</summary>
    public required IReadOnlyList<int> Assigned { get; init; }

    /// <summary>The fitted ranges in order (only configurations that got at least one point).</summary>
    public required IReadOnlyList<CrossoverSegment> Segments { get; init; }

    /// <summary>
    /// Sum over the points of (time of the fitted configuration / time of the fastest - 1): what the fitted split
    /// loses against choosing the fastest at every point. 0 when the raw winners are already ordered narrow to wide.
    /// </summary>
    public required double Regret { get; init; }

    /// <summary>
    /// Suggested largest rows per expert of each configuration but the widest, by index (a configuration without
    /// experts repeats the previous threshold, 0 for the first); null without any complete point.
    /// </summary>
    public IReadOnlyList<int>? MaxRows { get; init; }

    /// <summary>Suggested largest rows per expert of 128x32 (0: no expert), null without any complete point.</summary>
    public int? Swap32MaxRows => MaxRows?[TuneConfigurations.Swap32];

    /// <summary>Suggested largest rows per expert of 128x64 (equal to <see cref="Swap32MaxRows"/>: no expert).</summary>
    public int? Swap64MaxRows => MaxRows?[TuneConfigurations.Swap64];

    /// <summary>The configurations' labels by index, narrowest first (the fit's order).</summary>
    public IReadOnlyList<string> Labels { get; init; } = TuneConfigurations.Labels;

    /// <summary>"128x32 -> 128x64 between m=32 and m=48; 128x64 -> 128x128 between m=64 and m=96" and the like.</summary>
    public required string Description { get; init; }

    /// <summary>The fitted configuration at <paramref name="rows"/>, or null when that point was not fitted.</summary>
    public int? AssignedAt(int rows)
    {
        for (int i = 0; i < Points.Count; i++)
        {
            if (Points[i].Rows == rows)
            {
                return Assigned[i];
            }
        }

        return null;
    }
}

/// <summary>The thresholds suggested for a GPU class from several shapes' crossovers.</summary>
/// <param name="MaxRows">
/// Per configuration but the widest: the median over the shapes of its thresholds, at least the previous one's.
/// </param>
/// <param name="Shapes">How many shapes had a fit.</param>
internal sealed record ThresholdSuggestion(IReadOnlyList<int> MaxRows, int Shapes)
{
    public ThresholdSuggestion(int swap32MaxRows, int swap64MaxRows, int shapes)
        : this([swap32MaxRows, swap64MaxRows], shapes)
    {
    }

    /// <summary>Median over the shapes of their 128x32 thresholds.</summary>
    public int Swap32MaxRows => MaxRows[TuneConfigurations.Swap32];

    /// <summary>Median of their 128x64 thresholds, at least <see cref="Swap32MaxRows"/>.</summary>
    public int Swap64MaxRows => MaxRows[TuneConfigurations.Swap64];

    /// <summary>Equal when the thresholds are (a list compares by reference otherwise).</summary>
    public bool Equals(ThresholdSuggestion? other) =>
        other is not null && Shapes == other.Shapes && MaxRows.SequenceEqual(other.MaxRows);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.Add(Shapes);
        foreach (int rows in MaxRows)
        {
            hash.Add(rows);
        }

        return hash.ToHashCode();
    }
}
