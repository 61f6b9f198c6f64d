using System.Globalization;

namespace MoeCutlass.Cli.Tune;

/// <summary>The fit's thresholds written as the range lines of <c>native/src/core/kernel_configs.def</c>.</summary>
internal static partial class Crossovers
{
    /// <summary>The registry file the printed lines belong in.</summary>
    public const string KernelConfigsFile = "native/src/core/kernel_configs.def";

    /// <summary>
    /// The SPECIALIZED range lines of <see cref="KernelConfigsFile"/> for a GPU class, e.g.
    /// <c>MC_KERNEL_RANGE(H200, SPECIALIZED, swap_128x32x128_c2x1_pingpong, 1, 36, 0)</c>, one per configuration that
    /// gets rows (one whose threshold equals the previous one's gets none; the narrowest none at 0), the widest taking
    /// every larger expert. The last argument is min_k, the smallest K a line applies to: tune fits thresholds over
    /// the shapes it swept together, so its lines apply to any K (0).
    /// </summary>
    /// <param name="gpuClass">The class word, e.g. H200 (<see cref="GpuClassWord"/>).</param>
    /// <param name="maxRows">The largest rows per expert of each configuration but the widest, narrowest first.</param>
    public static IReadOnlyList<string> TableRows(string gpuClass, params IReadOnlyList<int> maxRows)
    {
        var lines = new List<string>();
        int first = 1;
        for (int configuration = 0; configuration < maxRows.Count; configuration++)
        {
            int last = maxRows[configuration];
            if (last >= first)
            {
                lines.Add(Line(gpuClass, configuration, first, last));
                first = last + 1;
            }
        }

        lines.Add(Line(gpuClass, TuneConfigurations.Widest, first, ConfigurationRange.Unbounded));
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

    private static string Line(string gpuClass, int configuration, int first, int last) =>
        string.Create(CultureInfo.InvariantCulture,
            $"MC_KERNEL_RANGE({gpuClass}, SPECIALIZED, {TuneConfigurations.Names[configuration]}, {first}, {last}, 0)");
}
