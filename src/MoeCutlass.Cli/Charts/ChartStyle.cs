using ScottPlot;

namespace MoeCutlass.Cli.Charts;

/// <summary>
/// What every chart shares so they read alike at 100 % zoom: font sizes a little above ScottPlot's defaults, and
/// one color and marker per strategy, by its position in the file, so a strategy looks the same in every chart.
/// </summary>
internal static class ChartStyle
{
    public const float TitleSize = 20;
    public const float AxisLabelSize = 17;
    public const float TickLabelSize = 14;
    public const float LegendSize = 14;
    public const float NoteSize = 12;
    public const string FontName = "DejaVu Sans";

    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    /// <summary>Filled shapes that stay distinct when they overlap, in order of the strategies.</summary>
    private static readonly MarkerShape[] Markers =
    [
        MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond,
        MarkerShape.FilledTriangleDown, MarkerShape.OpenCircle, MarkerShape.OpenSquare, MarkerShape.OpenTriangleUp,
    ];

    /// <summary>
    /// Whether SkiaSharp finds any font on this machine. Without one (a bare server or container image without a font
    /// package) every chart is still written, but its titles, labels and legends are empty.
    /// </summary>
    public static bool FontsAvailable { get; } = CanDrawText();

    /// <summary>
    /// Whether the face the charts ask for (or SkiaSharp's fallback for it) has glyphs for plain Latin text. Counting
    /// font families is not enough: the GPU machine reports families and still draws every label empty.
    /// </summary>
    private static bool CanDrawText()
    {
        // The matched face is ours to dispose; SkiaSharp's default face is a shared instance.
        using SkiaSharp.SKTypeface? matched = SkiaSharp.SKFontManager.Default.MatchFamily(FontName);
        SkiaSharp.SKTypeface? typeface = matched ?? SkiaSharp.SKTypeface.Default;
        if (typeface is null || typeface.GlyphCount == 0)
        {
            return false;
        }

        using var font = new SkiaSharp.SKFont(typeface, 12);
        return font.GetGlyphs("Ag").All(glyph => glyph != 0) && font.MeasureText("Ag") > 0;
    }

    /// <summary>What <c>plot</c> and <c>bench --plot</c> print when <see cref="FontsAvailable"/> is false.</summary>
    public const string NoFontsWarning =
        "no fonts found on this machine (fontconfig lists none): the charts are drawn without any text. Install a font " +
        "package (e.g. fonts-dejavu-core) and draw them again, or copy the result files to a machine that has fonts " +
        "and run `moecutlass plot` there";

    public static Color StrategyColor(int index) => Palette.GetColor(index);

    public static MarkerShape StrategyMarker(int index) => Markers[index % Markers.Length];

    /// <summary>Title (two lines: what, then whose run), axis labels and tick sizes.</summary>
    public static void Apply(Plot plot, string title, string identity, string xLabel, string yLabel)
    {
        // A sans-serif face reads better at small sizes than ScottPlot's pick here (DejaVu Serif); where it is
        // missing, SkiaSharp falls back to a default face.
        plot.Font.Set(FontName);
        plot.Title(title + "\n" + identity, TitleSize);
        plot.XLabel(xLabel, AxisLabelSize);
        plot.YLabel(yLabel, AxisLabelSize);
        plot.Axes.Bottom.TickLabelStyle.FontSize = TickLabelSize;
        plot.Axes.Left.TickLabelStyle.FontSize = TickLabelSize;
        plot.Legend.FontSize = LegendSize;
    }
}
