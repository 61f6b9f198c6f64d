namespace MoeCutlass.Cli.Tune;

/// <summary>The median times of the configurations at one rows-per-expert value; null where one failed.</summary>
/// <param name="Rows">Rows per expert (every expert has this many).</param>
/// <param name="TimesUs">Median µs by configuration index (<see cref="TuneConfigurations"/>), one per configuration.</param>
internal sealed record TunePoint(int Rows, IReadOnlyList<double?> TimesUs)
{
    public TunePoint(int rows, double? swap32Us, double? swap64Us, double? wideUs)
        : this(rows, [swap32Us, swap64Us, wideUs])
    {
    }

    /// <summary>Whether every configuration was measured (the fit also checks there is one time per configuration).</summary>
    public bool Complete => TimesUs.Count > 0 && TimesUs.All(t => t is > 0);

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
