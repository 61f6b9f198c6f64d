namespace MoeCutlass.Cli.Tune;

/// <summary>
/// The kernel configurations of expert specialization, ordered by tile width, narrowest first, as <c>tune</c> forces
/// them (<see cref="GroupedGemmOptions.Forcing"/>): registry names, so the fit stays a fit of these while the
/// registry grows. The crossover fit works over any number of them, in this order; the widest takes every larger
/// expert. Wider single-path tiles are compared with <c>bench --config</c>.
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

    /// <summary>The widest configuration: the one that takes every expert above the narrower ones' ranges.</summary>
    public const int Widest = Count - 1;

    /// <summary>The short labels of the tables, by index.</summary>
    public static readonly IReadOnlyList<string> Labels = ["128x32", "128x64", "128x128"];

    /// <summary>The registry names forced, by index.</summary>
    public static readonly IReadOnlyList<string> Names =
        ["swap_128x32x128_c2x1_pingpong", "swap_128x64x128_c2x1_pingpong", "tile_128x128x128_c1x2_cooperative"];

    /// <summary>"all three": how messages about every configuration being measured name them.</summary>
    public static string All => AllOf(Count);

    /// <summary>"all three" for 3: how messages about every one of <paramref name="count"/> configurations name them.</summary>
    public static string AllOf(int count) =>
        "all " + (count < NumberWords.Length ? NumberWords[count] : count.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The largest rows per expert a sweep point may ask for (keeps one point's buffers to a few GB).</summary>
    public const int MaxRowsPerExpert = 100000;

    private static readonly string[] NumberWords = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"];
}

/// <summary>Which selection path of the registry a sweep measures (MC_KERNEL_RANGE's path).</summary>
internal enum TunePath
{
    /// <summary>Expert specialization's configurations (<see cref="TuneConfigurations"/>): SPECIALIZED lines.</summary>
    Specialized,

    /// <summary>Every non-swapped configuration of the registry, one for all experts: SINGLE lines.</summary>
    Single,
}

/// <summary>
/// The configurations one path of a sweep forces, narrowest first: short labels for the tables and registry names.
/// The crossover fit (<see cref="Crossovers.Analyze(IEnumerable{TunePoint}, IReadOnlyList{string})"/>) works over them in
/// this order; the last one takes every larger rows value.
/// </summary>
internal sealed record TuneConfigurationSet(TunePath Path, IReadOnlyList<string> Labels, IReadOnlyList<string> Names)
{
    /// <summary>Expert specialization's three: swapped 128x32, swapped 128x64, 128x128.</summary>
    public static readonly TuneConfigurationSet Specialized = new(TunePath.Specialized, TuneConfigurations.Labels, TuneConfigurations.Names);

    public int Count => Names.Count;

    /// <summary>The path's word in MC_KERNEL_RANGE lines and result files: SPECIALIZED or SINGLE.</summary>
    public string Word => PathWord(Path);

    public static string PathWord(TunePath path) => path == TunePath.Single ? "SINGLE" : "SPECIALIZED";

    /// <summary>"specialized" or "single": the path as result records name it.</summary>
    public static string RecordName(TunePath path) => path == TunePath.Single ? "single" : "specialized";

    /// <summary>
    /// The SINGLE path's configurations: every registry configuration that does not swap the operands (the single
    /// path's candidates; the swapped ones exist for specialization's small experts), ordered by width along the rows,
    /// i.e. tile M (then tile N, then registry index). Labelled "64x128" by tile; a label two of them would share is
    /// replaced by the registry name.
    /// </summary>
    public static TuneConfigurationSet Single(IEnumerable<KernelConfiguration> registry)
    {
        KernelConfiguration[] chosen = [.. registry.Where(c => !c.SwapAB).OrderBy(c => c.TileM).ThenBy(c => c.TileN).ThenBy(c => c.Index)];
        string[] tiles = [.. chosen.Select(c => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{c.TileM}x{c.TileN}"))];
        string[] labels = [.. chosen.Select((c, i) => tiles.Count(t => t == tiles[i]) > 1 ? c.Name : tiles[i])];
        return new TuneConfigurationSet(TunePath.Single, labels, [.. chosen.Select(c => c.Name)]);
    }

    /// <summary>Equal when the lists are (a list compares by reference otherwise).</summary>
    public bool Equals(TuneConfigurationSet? other) =>
        other is not null && Path == other.Path && Labels.SequenceEqual(other.Labels) && Names.SequenceEqual(other.Names);

    public override int GetHashCode() => HashCode.Combine(Path, Count);
}
