using System.Globalization;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace MoeCutlass.Cli.Charts;

/// <summary>
/// ScottPlot 5 draws linear axes only: a log axis is data in log10 with ticks at the decades, minor ticks between
/// them, and labels written back in the data's units. Every log axis of the charts is made here.
/// </summary>
internal static class LogAxis
{
    public static double ToLog(double value) => Math.Log10(value);

    public static double FromLog(double value) => Math.Pow(10, value);

    /// <summary>Puts log ticks on <paramref name="axis"/>; labels 0.1, 1, 10, 100, 1,000 (no exponents to decode).</summary>
    public static void Apply(IAxis axis) => axis.TickGenerator = new NumericAutomatic
    {
        MinorTickGenerator = new LogMinorTickGenerator(),
        IntegerTicksOnly = true,
        LabelFormatter = Label,
    };

    private static string Label(double logValue)
    {
        double value = FromLog(logValue);
        return value >= 1
            ? value.ToString("#,0", CultureInfo.InvariantCulture)
            : value.ToString("0.###", CultureInfo.InvariantCulture);
    }
}
