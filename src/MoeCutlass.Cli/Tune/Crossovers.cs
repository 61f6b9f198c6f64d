using System.Globalization;

namespace MoeCutlass.Cli.Tune;

/// <summary>
/// Finds where expert specialization's configurations cross over, from uniform sweeps (every expert has m rows,
/// each configuration forced for every expert, median times per m). Pure: no device, no I/O.
/// <para>
/// Per shape, the rows values are split into one consecutive range per configuration in the order of
/// <see cref="TuneConfigurations"/> (128x32 for the smallest m, 128x64 next, 128x128 for the rest; any range may be
/// empty), choosing the split that loses least against the fastest configuration at each m: the sum over m of
/// <c>t(assigned) / t(fastest) - 1</c>. A narrow configuration's range therefore ends at the largest m where it
/// wins, unless a win further out is a single noisy inversion that costs less to overrule than the points between
/// would cost to reassign. Exact ties go to the wider configuration (fewer kernels per run), and among splits that
/// lose equally the one with the smaller narrow ranges is kept.
/// </para>
/// <para>
/// A crossover lies between the last m of one range and the first m of the next; the threshold suggested is the
/// midpoint, rounded down (largest rows per expert the narrower configuration takes). A configuration with no range
/// gets no expert (its threshold repeats the previous one; 0 for the narrowest); one whose range reaches the largest
/// m measured gets that m (the sweep did not see its end). Across shapes, each threshold is the median of the
/// shapes' thresholds.
/// </para>
/// </summary>
internal static partial class Crossovers
{
    /// <summary>Splits whose losses differ by less than this are equally good.</summary>
    private const double Tolerance = 1e-12;

    public static ShapeCrossovers Analyze(IEnumerable<TunePoint> points) => Analyze(points, TuneConfigurations.Labels);

    /// <summary>
    /// The same fit over any configurations ordered by width (<paramref name="labels"/>, narrowest first; each point
    /// has one time per label), e.g. the SINGLE path's non-swapped tiles (<see cref="TuneConfigurationSet.Single"/>).
    /// </summary>
    public static ShapeCrossovers Analyze(IEnumerable<TunePoint> points, IReadOnlyList<string> labels)
    {
        int count = labels.Count;
        TunePoint[] ordered = points.OrderBy(p => p.Rows).ToArray();
        TunePoint[] complete = ordered.Where(p => p.TimesUs.Count == count && p.Complete).ToArray();
        int[] incomplete = ordered.Where(p => !(p.TimesUs.Count == count && p.Complete)).Select(p => p.Rows).ToArray();
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
                Labels = labels,
                Description = $"none: no rows value has {TuneConfigurations.AllOf(count)} configurations measured",
            };
        }

        // loss[c][i]: what giving point i to configuration c loses against its fastest configuration.
        double[][] loss = new double[count][];
        for (int c = 0; c < count; c++)
        {
            loss[c] = new double[n];
            for (int i = 0; i < n; i++)
            {
                double best = complete[i].TimesUs.Min(t => t!.Value);
                loss[c][i] = complete[i].TimesUs[c]!.Value / best - 1.0;
            }
        }

        (int[] ends, double bestLoss) = BestSplit(loss, n);
        int[] assigned = Enumerable.Range(0, n).Select(i => ConfigurationAt(ends, i)).ToArray();
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

        // A configuration without points takes no expert: its threshold repeats the previous one (0 before the first).
        var maxRows = new int[ends.Length];
        int start = 0;
        int previous = 0;
        for (int c = 0; c < ends.Length; c++)
        {
            maxRows[c] = ends[c] == start ? previous : Threshold(complete, ends[c]);
            previous = maxRows[c];
            start = ends[c];
        }

        return new ShapeCrossovers
        {
            Points = complete,
            Incomplete = incomplete,
            Assigned = assigned,
            Segments = segments,
            Regret = Math.Max(0, bestLoss),
            MaxRows = maxRows,
            Labels = labels,
            Description = Describe(segments, complete[^1].Rows, labels),
        };
    }

    /// <summary>
    /// The thresholds for a GPU class: the median over the shapes that had a fit of each threshold (the mean of the
    /// two middle values, rounded down, for an even count), each raised to the previous configuration's where the
    /// medians cross. Null when no shape had a fit.
    /// </summary>
    public static ThresholdSuggestion? Suggest(IEnumerable<ShapeCrossovers> shapes)
    {
        ShapeCrossovers[] fitted = shapes.Where(s => s.MaxRows is not null).ToArray();
        if (fitted.Length == 0)
        {
            return null;
        }

        var maxRows = new int[fitted.Min(s => s.MaxRows!.Count)];
        for (int c = 0; c < maxRows.Length; c++)
        {
            int median = Median(fitted.Select(s => s.MaxRows![c]));
            maxRows[c] = c == 0 ? median : Math.Max(maxRows[c - 1], median);
        }

        return new ThresholdSuggestion(maxRows, fitted.Length);
    }

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
    /// The split of <paramref name="n"/> points that loses least: <c>ends[c]</c> is where configuration c's range
    /// ends (points <c>ends[c-1] .. ends[c]-1</c> are its own; the widest takes the rest). Every non-decreasing choice
    /// of ends is tried in lexicographic order and only a strict improvement replaces the best, so among equal losses
    /// the one with the smallest narrow ranges is kept. A sweep has tens of points and a few configurations, so
    /// trying every split is cheap.
    /// </summary>
    private static (int[] Ends, double Loss) BestSplit(double[][] loss, int n)
    {
        var ends = new int[loss.Length - 1];
        var best = new int[ends.Length];
        double bestLoss = double.PositiveInfinity;

        void Search(int configuration, int from)
        {
            if (configuration == ends.Length)
            {
                double total = 0;
                for (int i = 0; i < n; i++)
                {
                    total += loss[ConfigurationAt(ends, i)][i];
                }

                if (total < bestLoss - Tolerance)
                {
                    bestLoss = total;
                    ends.CopyTo(best, 0);
                }

                return;
            }

            for (int end = from; end <= n; end++)
            {
                ends[configuration] = end;
                Search(configuration + 1, end);
            }
        }

        Search(0, 0);
        return (best, bestLoss);
    }

    /// <summary>The configuration a split gives point <paramref name="i"/>: the first whose range ends after it, else the widest.</summary>
    private static int ConfigurationAt(int[] ends, int i)
    {
        for (int c = 0; c < ends.Length; c++)
        {
            if (i < ends[c])
            {
                return c;
            }
        }

        return ends.Length;
    }

    /// <summary>
    /// The largest rows per expert of a non-empty range ending before point <paramref name="end"/>: the largest m
    /// measured when it runs to the end, else the midpoint of the last m in the range and the next one, rounded down.
    /// </summary>
    private static int Threshold(TunePoint[] points, int end) =>
        end == points.Length ? points[^1].Rows : (int)Math.Floor((points[end - 1].Rows + (double)points[end].Rows) / 2);

    private static string Describe(IReadOnlyList<CrossoverSegment> segments, int largest, IReadOnlyList<string> labels)
    {
        var parts = new List<string>();
        for (int s = 1; s < segments.Count; s++)
        {
            parts.Add($"{labels[segments[s - 1].Configuration]} -> {labels[segments[s].Configuration]} between m={Int(segments[s - 1].LastRows)} and m={Int(segments[s].FirstRows)}");
        }

        if (parts.Count == 0)
        {
            parts.Add($"none ({labels[segments[0].Configuration]} wins at every m)");
        }

        CrossoverSegment last = segments[^1];
        int widest = labels.Count - 1;
        if (last.Configuration != widest)
        {
            parts.Add($"{labels[last.Configuration]} still wins at m={Int(largest)}, the largest measured (sweep further)");
        }

        for (int c = 0; c < widest; c++)
        {
            if (segments.All(s => s.Configuration != c))
            {
                parts.Add($"{labels[c]} never wins");
            }
        }

        return string.Join("; ", parts);
    }

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);
}
