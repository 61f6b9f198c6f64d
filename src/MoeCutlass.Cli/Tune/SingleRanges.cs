using System.Globalization;

namespace MoeCutlass.Cli.Tune;

/// <summary>One range of a SINGLE table: a configuration and the largest average rows per expert it takes.</summary>
/// <param name="Name">The registry name.</param>
/// <param name="LastRows">The largest rows per expert it takes; <see cref="ConfigurationRange.Unbounded"/> for the last.</param>
internal sealed record SingleRange(string Name, int LastRows);

/// <summary>
/// The K values swept whose SINGLE tables came out the same, the min_k their MC_KERNEL_RANGE rows carry (0 for the
/// group of the smallest K: the general rows; else the smallest K of the group) and the table.
/// </summary>
internal sealed record SingleKGroup(IReadOnlyList<int> Ks, int MinK, IReadOnlyList<SingleRange> Table)
{
    public bool Equals(SingleKGroup? other) =>
        other is not null && MinK == other.MinK && Ks.SequenceEqual(other.Ks) && Table.SequenceEqual(other.Table);

    public override int GetHashCode() => HashCode.Combine(MinK, Ks.Count, Table.Count);
}

/// <summary>
/// The SINGLE path's table for a GPU class, from the per-shape fits of the non-swapped configurations
/// (<see cref="Crossovers.Analyze(IEnumerable{TunePoint}, IReadOnlyList{string})"/>). Pure: no device, no I/O.
/// <para>
/// Per K swept, each configuration's threshold is the median over the shapes of that K (<see cref="Crossovers.Suggest"/>),
/// giving a table that partitions 0 .. MC_MAX_ROWS: the narrowest configuration from 0 rows per expert, each next one
/// from where the previous ended, the widest to the end; a configuration whose threshold does not pass the previous
/// one's gets no range. K values in increasing order whose tables are equal form one group.
/// </para>
/// <para>
/// The lines follow the registry's reading (core/gemm_selection.cpp): a plan reads its class's SINGLE rows in order,
/// skips those whose min_k is above its K, and each row takes the rows from where the previous one ended up to its
/// last_rows (a row already covered is shadowed). The group of the smallest K is written last, whole, with min_k 0
/// (the general rows: every K below the next group's, including K values not swept). Each longer-K group is written
/// before the groups of smaller K, with min_k = the smallest K swept in it, and only as far as it has to be: its
/// ranges up to and including the one holding the largest rows value where its table differs from the next smaller
/// group's; beyond that the rows after it (which a plan of that K reads too) give the same configurations. So the
/// H200's K 2048 and 7168 (64x128 up to 96) over K 256 (64x128 up to 40) come out as one 64x128 row with min_k 2048
/// before the general rows, as in kernel_configs.def (where the hand-written min_k 1024 is a K between the two
/// measured; tune writes only K values it measured).
/// </para>
/// </summary>
internal static class SingleRanges
{
    /// <summary>
    /// The table of thresholds <paramref name="maxRows"/> (the largest rows per expert of each configuration but the
    /// last, narrowest first, as <see cref="ShapeCrossovers.MaxRows"/>) over <paramref name="names"/>.
    /// </summary>
    public static IReadOnlyList<SingleRange> Table(IReadOnlyList<string> names, IReadOnlyList<int> maxRows)
    {
        var table = new List<SingleRange>();
        int covered = 0;
        for (int c = 0; c < names.Count - 1 && c < maxRows.Count; c++)
        {
            // A first threshold of 0 is "no range" (the fit's thresholds of a range are at least the smallest m swept).
            if (maxRows[c] > covered)
            {
                table.Add(new SingleRange(names[c], maxRows[c]));
                covered = maxRows[c];
            }
        }

        table.Add(new SingleRange(names[^1], ConfigurationRange.Unbounded));
        return table;
    }

    /// <summary>The configuration a table gives <paramref name="rows"/> per expert: the first range reaching it.</summary>
    public static string At(IReadOnlyList<SingleRange> table, int rows) => table.First(r => r.LastRows >= rows).Name;

    /// <summary>
    /// Groups the per-shape fits by K: per K the median thresholds over its shapes (shapes without a fit are left out;
    /// a K without any fit gets no table), then consecutive K values with equal tables merged, smallest K first.
    /// </summary>
    public static IReadOnlyList<SingleKGroup> Group(IReadOnlyList<string> names, IEnumerable<(int K, ShapeCrossovers Fit)> shapes)
    {
        var perK = new List<(int K, IReadOnlyList<SingleRange> Table)>();
        foreach (IGrouping<int, (int K, ShapeCrossovers Fit)> byK in shapes.GroupBy(s => s.K).OrderBy(g => g.Key))
        {
            if (Crossovers.Suggest(byK.Select(s => s.Fit)) is { } suggestion)
            {
                perK.Add((byK.Key, Table(names, suggestion.MaxRows)));
            }
        }

        var groups = new List<SingleKGroup>();
        foreach ((int k, IReadOnlyList<SingleRange> table) in perK)
        {
            if (groups.Count > 0 && groups[^1].Table.SequenceEqual(table))
            {
                groups[^1] = groups[^1] with { Ks = [.. groups[^1].Ks, k] };
            }
            else
            {
                groups.Add(new SingleKGroup([k], groups.Count == 0 ? 0 : k, table));
            }
        }

        return groups;
    }

    /// <summary>
    /// The MC_KERNEL_RANGE SINGLE lines of <paramref name="groups"/> (smallest K first, as <see cref="Group"/> returns
    /// them) for a GPU class: the longest-K group's rows first, the general rows (min_k 0) last. A row's first_rows is
    /// where it starts in its own group's table (0 for the first).
    /// </summary>
    public static IReadOnlyList<string> Lines(string gpuClass, IReadOnlyList<SingleKGroup> groups)
    {
        var lines = new List<string>();
        for (int g = groups.Count - 1; g >= 0; g--)
        {
            IReadOnlyList<SingleRange> table = groups[g].Table;
            int count = g == 0 ? table.Count : PrefixNeeded(table, groups[g - 1].Table);
            int first = 0;
            for (int r = 0; r < count; r++)
            {
                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $"MC_KERNEL_RANGE({gpuClass}, SINGLE, {table[r].Name}, {first}, {table[r].LastRows}, {(g == 0 ? 0 : groups[g].MinK)})"));
                first = table[r].LastRows == ConfigurationRange.Unbounded ? first : table[r].LastRows + 1;
            }
        }

        return lines;
    }

    /// <summary>
    /// How many leading ranges of <paramref name="table"/> must be written before rows that read as
    /// <paramref name="after"/>: up to the range holding the largest rows value where the two differ (0 when equal).
    /// </summary>
    private static int PrefixNeeded(IReadOnlyList<SingleRange> table, IReadOnlyList<SingleRange> after)
    {
        // Both are step functions whose steps end at their ranges' last rows: compare them at every step end.
        int[] ends = [.. table.Select(r => r.LastRows).Concat(after.Select(r => r.LastRows)).Distinct().Order()];
        int differsAt = -1;
        foreach (int end in ends)
        {
            if (At(table, end) != At(after, end))
            {
                differsAt = end;
            }
        }

        if (differsAt < 0)
        {
            return 0;
        }

        for (int r = 0; r < table.Count; r++)
        {
            if (table[r].LastRows >= differsAt)
            {
                return r + 1;
            }
        }

        return table.Count;
    }
}
