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
    public static string All => "all " + (Count < NumberWords.Length ? NumberWords[Count] : Count.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The largest rows per expert a sweep point may ask for (keeps one point's buffers to a few GB).</summary>
    public const int MaxRowsPerExpert = 100000;

    private static readonly string[] NumberWords = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight"];
}
