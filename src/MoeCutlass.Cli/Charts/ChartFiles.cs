using System.Text;
using System.Text.RegularExpressions;
using MoeCutlass.Cli.Infrastructure;
using ScottPlot;

namespace MoeCutlass.Cli.Charts;

/// <summary>
/// Writes one chart as PNG (for the README and a quick look) and SVG (scales without blur and keeps every label as
/// text, so a case name can be searched for). Same data, same bytes: nothing time- or machine-dependent is drawn.
/// </summary>
internal static partial class ChartFiles
{
    public static IReadOnlyList<string> Write(Plot plot, string directory, string stem, int width, int height)
    {
        string png = Path.Combine(directory, stem + ".png");
        string svg = Path.Combine(directory, stem + ".svg");
        try
        {
            Directory.CreateDirectory(directory);
            plot.SavePng(png, width, height);
            File.WriteAllText(svg, NumberClipPaths(plot.GetSvgXml(width, height)), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot write {png} (the charts directory): {ex.Message}", ex);
        }

        return [png, svg];
    }

    /// <summary>
    /// SkiaSharp's SVG canvas names clip paths from a counter that runs for the whole process ("cl_4" in the first
    /// chart, "cl_2a" in a later one), so the same chart drawn second would differ. Numbering them per file, in order
    /// of appearance, keeps the output a function of the data alone.
    /// </summary>
    internal static string NumberClipPaths(string svg)
    {
        var numbers = new Dictionary<string, string>(StringComparer.Ordinal);
        return ClipPathId().Replace(svg, match =>
        {
            if (!numbers.TryGetValue(match.Value, out string? id))
            {
                id = "clip" + numbers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
                numbers.Add(match.Value, id);
            }

            return id;
        });
    }

    [GeneratedRegex(@"\bcl_[0-9a-f]+\b")]
    private static partial Regex ClipPathId();
}
