using System.Globalization;

namespace MoeCutlass.Cli.Bench;

/// <summary>
/// The three kernel configurations of expert specialization, narrowest first, as <c>tune</c> forces them
/// (<see cref="GroupedGemmOptions.Forcing"/>): registry names, so the fit below stays a fit of these three while the
/// registry grows. Wider single-path tiles are compared with <c>bench --config</c>.
/// </summary>
internal static class TuneConfigurations
{
    /// <summary>Index of the swapped 128x32 configuration.</summary>
    public const int Swap32 = 0;

    /// <summary>Index of the swapped 128x64 configuration.</summary>
    public const int Swap64 = 1;

    /// <summary>Index of the 128x128 configuration.</summary>
    public const int Wide = 2;

    public const int Count = 3;

    /// <summary>The short labels of the tables, by index.</summary>
    public static readonly IReadOnlyList<string> Labels = ["128x32", "128x64", "128x128"];

    /// <summary>The largest rows per expert a sweep point may ask for (keeps one point's buffers to a few GB).</summary>
    public const int MaxRowsPerExpert = 100000;

    /// <summary>The registry names forced, by index.</summary>
    public static readonly IReadOnlyList<string> Names =
        ["swap_128x32x128_c2x1_pingpong", "swap_128x64x128_c2x1_pingpong", "tile_128x128x128_c1x2_cooperative"];
}

/// <summary>The median times of the three configurations at one rows-per-expert value; null where one failed.</summary>
/// <param name="Rows">Rows per expert (every expert has this many).</param>
/// <param name="TimesUs">Median µs by configuration index (<see cref="TuneConfigurations"/>), length 3.</param>
internal sealed record TunePoint(int Rows, IReadOnlyList<double?> TimesUs)
{
    public TunePoint(int rows, double? swap32Us, double? swap64Us, double? wideUs)
        : this(rows, [swap32Us, swap64Us, wideUs])
    {
    }

    /// <summary>Whether all three configurations were measured.</summary>
    public bool Complete => TimesUs.Count == TuneConfigurations.Count && TimesUs.All(t => t is > 0);

    /// <summary>
    /// The fastest configuration measured here (index), or null when none was. On an exact tie the wider
    /// configuration wins: it launches fewer kernels when experts differ, so it is the safer default.
    /// </summary>
    public int? Winner
    {
        get
        {
            int? best = null;
            for (int c = 0; c < TimesUs.Count; c++)
            {
                if (TimesUs[c] is double t && t > 0 && (best is null || t <= TimesUs[best.Value]!.Value))
                {
                    best = c;
                }
            }

            return best;
        }
    }
}

/// <summary>A run of consecutive rows values that the fit gives to one configuration.</summary>
internal sealed record CrossoverSegment(int Configuration, int FirstRows, int LastRows)
{
    public string Label => TuneConfigurations.Labels[Configuration];
}

/// <summary>
/// The crossovers of one shape: the fitted split of the swept rows values into a 128x32 range, a 128x64 range and
/// a 128x128 range, the thresholds it implies, and a one-line description.
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

    /// <summary>Suggested largest rows per expert of 128x32 (0: no expert), null without any complete point.</summary>
    public int? Swap32MaxRows { get; init; }

    /// <summary>Suggested largest rows per expert of 128x64 (equal to <see cref="Swap32MaxRows"/>: no expert).</summary>
    public int? Swap64MaxRows { get; init; }

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
/// <param name="Swap32MaxRows">Median over the shapes of their 128x32 thresholds.</param>
/// <param name="Swap64MaxRows">Median of their 128x64 thresholds, at least <paramref name="Swap32MaxRows"/>.</param>
/// <param name="Shapes">How many shapes had a fit.</param>
internal sealed record ThresholdSuggestion(int Swap32MaxRows, int Swap64MaxRows, int Shapes);

/// <summary>
/// Finds where expert specialization's configurations cross over, from uniform sweeps (every expert has m rows,
/// each configuration forced for every expert, median times per m). Pure: no device, no I/O.
/// <para>
/// Per shape, the rows values are split into three consecutive ranges, 128x32 for the smallest m, 128x64 next,
/// 128x128 for the rest (any range may be empty), choosing the split that loses least against the fastest
/// configuration at each m: the sum over m of <c>t(assigned) / t(fastest) - 1</c>. A narrow configuration's range
/// therefore ends at the largest m where it wins, unless a win further out is a single noisy inversion that costs
/// less to overrule than the points between would cost to reassign. Exact ties go to the wider configuration (fewer
/// kernels per run), and among splits that lose equally the one with the smaller narrow ranges is kept.
/// </para>
/// <para>
/// A crossover lies between the last m of one range and the first m of the next; the threshold suggested is the
/// midpoint, rounded down (largest rows per expert the narrower configuration takes). A configuration with no range
/// gets no expert (128x32: 0; 128x64: the 128x32 threshold); one whose range reaches the largest m measured gets that
/// m (the sweep did not see its end). Across shapes, each threshold is the median of the shapes' thresholds.
/// </para>
/// </summary>
internal static class Crossovers
{
    /// <summary>Splits whose losses differ by less than this are equally good.</summary>
    private const double Tolerance = 1e-12;

    public static ShapeCrossovers Analyze(IEnumerable<TunePoint> points)
    {
        TunePoint[] ordered = points.OrderBy(p => p.Rows).ToArray();
        TunePoint[] complete = ordered.Where(p => p.Complete).ToArray();
        int[] incomplete = ordered.Where(p => !p.Complete).Select(p => p.Rows).ToArray();
        int n = complete.Length;
        if (n == 0)
        {
            return new ShapeCrossovers
            {
                Points = complete,
                Incomplete = incomplete,
                Assigned = [],
                Segments = [],
                Regret = 0,
                Description = "none: no rows value has all three configurations measured",
            };
        }

        // loss[c][i]: what giving point i to configuration c loses against its fastest configuration.
        double[][] loss = new double[TuneConfigurations.Count][];
        for (int c = 0; c < TuneConfigurations.Count; c++)
        {
            loss[c] = new double[n];
            for (int i = 0; i < n; i++)
            {
                double best = complete[i].TimesUs.Min(t => t!.Value);
                loss[c][i] = complete[i].TimesUs[c]!.Value / best - 1.0;
            }
        }

        // Points [0, narrowEnd) go to 128x32, [narrowEnd, middleEnd) to 128x64, [middleEnd, n) to 128x128.
        // Ascending loops with a strict improvement keep the smallest narrow ranges among equal losses.
        int bestNarrow = 0, bestMiddle = 0;
        double bestLoss = double.PositiveInfinity;
        for (int narrowEnd = 0; narrowEnd <= n; narrowEnd++)
        {
            for (int middleEnd = narrowEnd; middleEnd <= n; middleEnd++)
            {
                double total = 0;
                for (int i = 0; i < n; i++)
                {
                    int c = i < narrowEnd ? TuneConfigurations.Swap32 : i < middleEnd ? TuneConfigurations.Swap64 : TuneConfigurations.Wide;
                    total += loss[c][i];
                }

                if (total < bestLoss - Tolerance)
                {
                    bestLoss = total;
                    bestNarrow = narrowEnd;
                    bestMiddle = middleEnd;
                }
            }
        }

        int[] assigned = Enumerable.Range(0, n)
            .Select(i => i < bestNarrow ? TuneConfigurations.Swap32 : i < bestMiddle ? TuneConfigurations.Swap64 : TuneConfigurations.Wide)
            .ToArray();
        var segments = new List<CrossoverSegment>();
        for (int i = 0; i < n; i++)
        {
            if (segments.Count > 0 && segments[^1].Configuration == assigned[i])
            {
                segments[^1] = segments[^1] with { LastRows = complete[i].Rows };
            }
            else
            {
                segments.Add(new CrossoverSegment(assigned[i], complete[i].Rows, complete[i].Rows));
            }
        }

        int largest = complete[^1].Rows;
        int swap32 = Threshold(complete, bestNarrow, 0);
        int swap64 = bestMiddle == bestNarrow ? swap32 : Threshold(complete, bestMiddle, swap32);
        return new ShapeCrossovers
        {
            Points = complete,
            Incomplete = incomplete,
            Assigned = assigned,
            Segments = segments,
            Regret = Math.Max(0, bestLoss),
            Swap32MaxRows = swap32,
            Swap64MaxRows = swap64,
            Description = Describe(segments, largest),
        };
    }

    /// <summary>
    /// The thresholds for a GPU class: the median over the shapes that had a fit of each threshold (the mean of the
    /// two middle values, rounded down, for an even count), with the 128x64 one raised to the 128x32 one where the
    /// medians cross. Null when no shape had a fit.
    /// </summary>
    public static ThresholdSuggestion? Suggest(IEnumerable<ShapeCrossovers> shapes)
    {
        ShapeCrossovers[] fitted = shapes.Where(s => s.Swap32MaxRows is not null && s.Swap64MaxRows is not null).ToArray();
        if (fitted.Length == 0)
        {
            return null;
        }

        int swap32 = Median(fitted.Select(s => s.Swap32MaxRows!.Value));
        int swap64 = Math.Max(swap32, Median(fitted.Select(s => s.Swap64MaxRows!.Value)));
        return new ThresholdSuggestion(swap32, swap64, fitted.Length);
    }

    /// <summary>
    /// The SPECIALIZED range lines of <c>native/src/core/kernel_configs.def</c> for a GPU class, e.g.
    /// <c>MC_KERNEL_RANGE(H200, SPECIALIZED, swap_128x32x128_c2x1_pingpong, 1, 36)</c>, one per configuration that
    /// gets rows (128x64 gets none when its threshold equals 128x32's; 128x32 none at 0).
    /// </summary>
    public static IReadOnlyList<string> TableRows(string gpuClass, int swap32MaxRows, int swap64MaxRows)
    {
        var lines = new List<string>();
        int first = 1;
        foreach ((int configuration, int last) in new[] { (TuneConfigurations.Swap32, swap32MaxRows), (TuneConfigurations.Swap64, swap64MaxRows) })
        {
            if (last >= first)
            {
                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $"MC_KERNEL_RANGE({gpuClass}, SPECIALIZED, {TuneConfigurations.Names[configuration]}, {first}, {last})"));
                first = last + 1;
            }
        }

        lines.Add(string.Create(CultureInfo.InvariantCulture,
            $"MC_KERNEL_RANGE({gpuClass}, SPECIALIZED, {TuneConfigurations.Names[TuneConfigurations.Wide]}, {first}, {ConfigurationRange.Unbounded})"));
        return lines;
    }

    /// <summary>
    /// The class word of <c>kernel_configs.def</c> for a device name: H100 or H200 where the name says so, else a
    /// placeholder to be added to the library's GPU classes (core/gemm_selection.cpp) together with the rows.
    /// </summary>
    public static string GpuClassWord(string deviceName) =>
        deviceName.Contains("H200", StringComparison.OrdinalIgnoreCase) ? "H200"
        : deviceName.Contains("H100", StringComparison.OrdinalIgnoreCase) ? "H100"
        : "NEW_CLASS";

    /// <summary>The median of integers; the lower midpoint of the two middle values for an even count.</summary>
    internal static int Median(IEnumerable<int> values)
    {
        int[] sorted = values.Order().ToArray();
        if (sorted.Length == 0)
        {
            throw new ArgumentException("no values", nameof(values));
        }

        int middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (int)Math.Floor((sorted[middle - 1] + (double)sorted[middle]) / 2);
    }

    /// <summary>
    /// The largest rows per expert of the range ending before point <paramref name="end"/>: <paramref name="empty"/>
    /// when the range has no point, the largest m measured when it runs to the end, else the midpoint of the last m
    /// in the range and the next one, rounded down.
    /// </summary>
    private static int Threshold(TunePoint[] points, int end, int empty)
    {
        if (end == 0)
        {
            return empty;
        }

        if (end == points.Length)
        {
            return points[^1].Rows;
        }

        return (int)Math.Floor((points[end - 1].Rows + (double)points[end].Rows) / 2);
    }

    private static string Describe(IReadOnlyList<CrossoverSegment> segments, int largest)
    {
        var parts = new List<string>();
        for (int s = 1; s < segments.Count; s++)
        {
            parts.Add($"{segments[s - 1].Label} -> {segments[s].Label} between m={Int(segments[s - 1].LastRows)} and m={Int(segments[s].FirstRows)}");
        }

        if (parts.Count == 0)
        {
            parts.Add($"none ({segments[0].Label} wins at every m)");
        }

        CrossoverSegment last = segments[^1];
        if (last.Configuration != TuneConfigurations.Wide)
        {
            parts.Add($"{last.Label} still wins at m={Int(largest)}, the largest measured (sweep further)");
        }

        foreach (int c in new[] { TuneConfigurations.Swap32, TuneConfigurations.Swap64 })
        {
            if (segments.All(s => s.Configuration != c))
            {
                parts.Add($"{TuneConfigurations.Labels[c]} never wins");
            }
        }

        return string.Join("; ", parts);
    }

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);
}
