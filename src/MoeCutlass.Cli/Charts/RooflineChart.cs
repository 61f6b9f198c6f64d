using System.Globalization;
using ScottPlot;

namespace MoeCutlass.Cli.Charts;

/// <summary>
/// The roofline of one run: arithmetic intensity against achieved TFLOP/s, both log, one marker per case and
/// strategy (the legend names the strategies), each case numbered once beside its fastest marker (a key names them), and the file's
/// ceilings drawn as the roof (memory slope up to the ridge, compute peak after it) with their figures.
/// </summary>
internal static class RooflineChart
{
    public const int Width = 1500;
    public const int Height = 950;

    public static Plot Build(PlotRun run)
    {
        var plot = new Plot();
        PlotRecord[] timed = run.Records.Where(r => r.Tflops is > 0).ToArray();
        string ceilingsNote = run.Ceilings is null
            ? "no ceilings: the file records none for this device"
            : $"ceilings: {run.Ceilings.Label}";
        ChartStyle.Apply(
            plot,
            $"Roofline, FP8 grouped GEMM ({ceilingsNote})",
            run.Identity,
            "arithmetic intensity (FLOP per byte moved, real rows)",
            "achieved TFLOP/s (FLOP / median time)");

        IReadOnlyList<string> strategies = run.Strategies;
        for (int s = 0; s < strategies.Count; s++)
        {
            PlotRecord[] points = timed.Where(r => r.Strategy == strategies[s]).ToArray();
            if (points.Length == 0)
            {
                continue;
            }

            var scatter = plot.Add.ScatterPoints(
                points.Select(r => LogAxis.ToLog(r.Intensity)).ToArray(),
                points.Select(r => LogAxis.ToLog(r.Tflops!.Value)).ToArray(),
                ChartStyle.StrategyColor(s));
            scatter.MarkerShape = ChartStyle.StrategyMarker(s);
            scatter.MarkerSize = 9;
            scatter.LegendText = strategies[s];
        }

        (double xMin, double xMax) = Range(timed.Select(r => r.Intensity), run.Ceilings?.RidgeIntensity);
        (double yMin, double yMax) = Range(timed.Select(r => r.Tflops!.Value), run.Ceilings?.PeakTflops);
        if (run.Ceilings is { } ceilings)
        {
            AddCeilings(plot, ceilings, xMin, xMax);
        }

        AddCaseKey(plot, run.Cases, timed, new LogBox(xMin, xMax, yMin, yMax));
        LogAxis.Apply(plot.Axes.Bottom);
        LogAxis.Apply(plot.Axes.Left);
        plot.Axes.SetLimits(LogAxis.ToLog(xMin), LogAxis.ToLog(xMax), LogAxis.ToLog(yMin), LogAxis.ToLog(yMax));
        plot.ShowLegend(Alignment.LowerRight);
        return plot;
    }

    /// <summary>The memory slope up to the ridge point, then the compute peak, each labelled with its figure.</summary>
    private static void AddCeilings(Plot plot, PlotCeilings ceilings, double xMin, double xMax)
    {
        double ridge = ceilings.RidgeIntensity;
        Color roof = Colors.DimGray;
        var memory = plot.Add.Line(
            LogAxis.ToLog(xMin), LogAxis.ToLog(xMin * ceilings.MemoryGbps / 1000), LogAxis.ToLog(ridge), LogAxis.ToLog(ceilings.PeakTflops));
        memory.Color = roof;
        memory.LineWidth = 2;
        memory.LinePattern = LinePattern.Dashed;
        memory.LegendText = string.Create(CultureInfo.InvariantCulture, $"memory ceiling {ceilings.MemoryGbps / 1000:0.00} TB/s");

        var compute = plot.Add.Line(LogAxis.ToLog(ridge), LogAxis.ToLog(ceilings.PeakTflops), LogAxis.ToLog(xMax), LogAxis.ToLog(ceilings.PeakTflops));
        compute.Color = roof;
        compute.LineWidth = 2;
        compute.LegendText = string.Create(CultureInfo.InvariantCulture, $"compute ceiling {ceilings.PeakTflops:0} TFLOP/s");

        Label(plot, compute.LegendText, LogAxis.ToLog(xMax), LogAxis.ToLog(ceilings.PeakTflops), Alignment.LowerRight, roof);
        // Halfway up the slope (in log): at its foot the label would sit on the lowest-intensity cases.
        double middle = Math.Sqrt(xMin * ridge);
        Label(plot, memory.LegendText, LogAxis.ToLog(middle), LogAxis.ToLog(middle * ceilings.MemoryGbps / 1000), Alignment.LowerRight, roof);
    }

    /// <summary>
    /// Every strategy of a case has the same intensity, so a case is one column of markers. Its number goes once,
    /// beside the fastest marker, and a key in the empty corner above the memory slope names the numbers: full
    /// names at the markers overlap where cases share an intensity.
    /// </summary>
    private static void AddCaseKey(Plot plot, IReadOnlyList<string> cases, IReadOnlyList<PlotRecord> timed, LogBox box)
    {
        var key = new List<string>();
        var placed = new List<(double X, double Y)>();
        for (int c = 0; c < cases.Count; c++)
        {
            string number = (c + 1).ToString(CultureInfo.InvariantCulture);
            key.Add($"{number,2}  {cases[c]}");
            PlotRecord? best = timed.Where(r => r.Case == cases[c]).MaxBy(r => r.Tflops!.Value);
            if (best is null)
            {
                continue;
            }

            var text = plot.Add.Text(number, LogAxis.ToLog(best.Intensity), LogAxis.ToLog(best.Tflops!.Value));
            text.LabelFontSize = ChartStyle.NoteSize;
            text.LabelBold = true;
            text.LabelAlignment = Alignment.LowerLeft;
            text.OffsetX = 5 + NumberShift(box, best, placed);
            text.OffsetY = -5;
        }

        var legend = plot.Add.Text("cases\n" + string.Join("\n", key), LogAxis.ToLog(box.XMin), LogAxis.ToLog(box.YMax));
        legend.LabelFontSize = ChartStyle.NoteSize;
        legend.LabelAlignment = Alignment.UpperLeft;
        legend.LabelFontName = Fonts.Monospace;
        legend.LabelBackgroundColor = Colors.White.WithAlpha(0.85);
        legend.LabelBorderColor = Colors.Gray;
        legend.LabelPadding = 6;
        legend.OffsetX = 8;
        legend.OffsetY = 8;
    }

    /// <summary>
    /// How far right (pixels) a case number must move so it does not print over one already placed: cases of
    /// nearly the same intensity and speed (the e32-m256 and mixtral cases) would otherwise read as one number.
    /// Positions are estimated from the axis limits and the figure size, before ScottPlot lays the chart out.
    /// </summary>
    private static float NumberShift(LogBox box, PlotRecord best, List<(double X, double Y)> placed)
    {
        const double DataWidth = Width - 200;
        const double DataHeight = Height - 200;
        double x = (LogAxis.ToLog(best.Intensity) - LogAxis.ToLog(box.XMin)) / (LogAxis.ToLog(box.XMax) - LogAxis.ToLog(box.XMin)) * DataWidth;
        double y = (LogAxis.ToLog(best.Tflops!.Value) - LogAxis.ToLog(box.YMin)) / (LogAxis.ToLog(box.YMax) - LogAxis.ToLog(box.YMin)) * DataHeight;
        float shift = 0;
        while (placed.Any(p => Math.Abs(p.X - (x + shift)) < 20 && Math.Abs(p.Y - y) < 14))
        {
            shift += 20;
        }

        placed.Add((x + shift, y));
        return shift;
    }

    /// <summary>The axis limits of the chart, in data units (not log).</summary>
    private readonly record struct LogBox(double XMin, double XMax, double YMin, double YMax);

    private static void Label(Plot plot, string? content, double x, double y, Alignment alignment, Color color)
    {
        var text = plot.Add.Text(content ?? "", x, y);
        text.LabelFontSize = ChartStyle.NoteSize + 1;
        text.LabelFontColor = color;
        text.LabelAlignment = alignment;
        text.OffsetY = -4;
    }

    /// <summary>A range that holds every value (and the ceiling's point, where there is one) with room around it.</summary>
    private static (double Min, double Max) Range(IEnumerable<double> values, double? alsoShow)
    {
        double[] all = [.. values, .. alsoShow is { } extra ? new[] { extra } : []];
        return all.Length == 0 ? (1, 1000) : (all.Min() / 2, all.Max() * 3);
    }
}
