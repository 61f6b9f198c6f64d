namespace MoeCutlass.Cli.Charts;

/// <summary>
/// One bench result file as the charts need it: what names the run in a title, the ceilings to draw, and the
/// measured records. Read back from JSON by <see cref="ResultFileLoader"/> for both <c>plot</c> and
/// <c>bench --plot</c>, so a chart never depends on which of the two produced it.
/// </summary>
/// <param name="Name">File-name stem of the charts ("h200-suite-k-2026-12-03").</param>
/// <param name="Source">Where the run was read from (a path, or "this bench run").</param>
/// <param name="Device">run.device, e.g. "NVIDIA H200".</param>
/// <param name="Commit">run.library_git_commit.</param>
/// <param name="Timestamp">run.timestamp_utc.</param>
/// <param name="Ceilings">The ceilings to draw, or null when the file records none.</param>
/// <param name="Records">Every (case, strategy) record, in file order.</param>
internal sealed record PlotRun(
    string Name,
    string Source,
    string Device,
    string Commit,
    DateTimeOffset Timestamp,
    PlotCeilings? Ceilings,
    IReadOnlyList<PlotRecord> Records)
{
    /// <summary>Case names in file order, each once.</summary>
    public IReadOnlyList<string> Cases => Records.Select(r => r.Case).Distinct(StringComparer.Ordinal).ToArray();

    /// <summary>Strategy names in file order, each once.</summary>
    public IReadOnlyList<string> Strategies => Records.Select(r => r.Strategy).Distinct(StringComparer.Ordinal).ToArray();

    /// <summary>"NVIDIA H200, library 903c14c+wip, 2026-12-03 10:35 UTC": the line every chart title carries.</summary>
    public string Identity => $"{Device}, library {Commit}, {Timestamp.UtcDateTime:yyyy-MM-dd HH:mm} UTC";
}

/// <summary>
/// One measured (case, strategy); a failed measurement has no time. Flops and bytes are the file's own
/// (real rows only, see Roofline.Estimate), so the intensity plotted is the one the run's percentages used.
/// </summary>
internal sealed record PlotRecord(string Case, string Strategy, double Flops, double Bytes, double? TimeMedianUs, double? Tflops)
{
    /// <summary>FLOP per byte moved.</summary>
    public double Intensity => Flops / Bytes;
}

/// <summary>
/// Roofline ceilings as a result file recorded them, with the label that says what they are: the GPU class's
/// datasheet figures in new files, the constants an older CLI applied to every GPU in old ones.
/// </summary>
/// <param name="PeakTflops">Compute ceiling, TFLOP/s.</param>
/// <param name="MemoryGbps">Memory ceiling, GB/s.</param>
/// <param name="Label">Where the figures come from, e.g. "H200 (132 SMs, HBM3e) datasheet".</param>
internal sealed record PlotCeilings(double PeakTflops, double MemoryGbps, string Label)
{
    /// <summary>The intensity (FLOP/byte) where the two ceilings meet.</summary>
    public double RidgeIntensity => PeakTflops * 1e12 / (MemoryGbps * 1e9);
}
