using System.Globalization;

namespace MoeCutlass.Cli.Bench;

/// <summary>Invariant-culture number formatting for tables (readable) and files (round-trippable).</summary>
internal static class NumberFormat
{
    /// <summary>Three significant digits without exponents in the usual range (0.00531, 12.3, 456), thousands separators from 1000 (1,234).</summary>
    public static string Readable(double? value)
    {
        if (value is not { } v || double.IsNaN(v))
        {
            return "";
        }

        return Math.Abs(v) >= 1000
            ? v.ToString("#,0", CultureInfo.InvariantCulture)
            : v.ToString("G3", CultureInfo.InvariantCulture);
    }

    /// <summary>Microseconds with one decimal and thousands separators.</summary>
    public static string Microseconds(double? value) =>
        value is { } v ? v.ToString("#,0.0", CultureInfo.InvariantCulture) : "";

    /// <summary>A percentage with one decimal.</summary>
    public static string Percent(double? value) =>
        value is { } v ? v.ToString("0.0", CultureInfo.InvariantCulture) + "%" : "";

    /// <summary>A ratio such as a speedup ("1.23x").</summary>
    public static string Ratio(double? value) =>
        value is { } v ? v.ToString("0.00", CultureInfo.InvariantCulture) + "x" : "";

    /// <summary>Round-trippable invariant text for CSV cells.</summary>
    public static string Raw(double? value) =>
        value is { } v ? v.ToString("R", CultureInfo.InvariantCulture) : "";
}
