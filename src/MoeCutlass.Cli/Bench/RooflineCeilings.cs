using System.Globalization;
using System.Text.Json.Serialization;

namespace MoeCutlass.Cli.Bench;

/// <summary>
/// The compute and memory ceilings a bench run's roofline is drawn against, for the GPU it runs on. Written as-is
/// to the JSON run metadata (null there when the run has no roofline).
/// </summary>
/// <param name="GpuClass">The device class the ceilings belong to, as the library names it, e.g. "H200 (132 SMs, HBM3e)".</param>
/// <param name="Source">Where the figures come from: "datasheet" (the library's per-class table).</param>
/// <param name="PeakTflops">Dense FP8 tensor-core peak, TFLOP/s.</param>
/// <param name="MemoryGbps">Memory bandwidth, GB/s (10^9 bytes per second).</param>
internal sealed record RooflineCeilings(string GpuClass, string Source, double PeakTflops, double MemoryGbps)
{
    /// <summary>
    /// The ceilings of <paramref name="device"/>'s class, or null without a device (CPU backend) or for a class the
    /// library knows no ceilings for: a percentage of a guessed peak would read as a measurement and mislead.
    /// </summary>
    public static RooflineCeilings? Of(DeviceInfo? device) =>
        device is { HasCeilings: true }
            ? new RooflineCeilings(device.GpuClass, "datasheet", device.PeakFp8DenseTflops, device.DatasheetBandwidthGBps)
            : null;

    [JsonIgnore]
    public double PeakFlopsPerSecond => PeakTflops * 1e12;

    [JsonIgnore]
    public double MemoryBytesPerSecond => MemoryGbps * 1e9;

    /// <summary>The class's first word ("H200", "H100"): short enough for a table column.</summary>
    [JsonIgnore]
    public string ShortName => GpuClass.Split(' ', 2)[0];

    /// <summary>The bench table's percent column, naming whose roofline it is.</summary>
    [JsonIgnore]
    public string ColumnHeader => $"% of {ShortName} roofline";

    /// <summary>"H200 (132 SMs, HBM3e) datasheet, 1979 TFLOP/s dense FP8, 4.80 TB/s".</summary>
    [JsonIgnore]
    public string Description => string.Create(
        CultureInfo.InvariantCulture,
        $"{GpuClass} {Source}, {PeakTflops:0} TFLOP/s dense FP8, {MemoryGbps / 1000:0.00} TB/s");

    /// <summary>
    /// The bench header's roofline line: the ceilings used, or why there are none (<paramref name="device"/> null
    /// means the CPU backend).
    /// </summary>
    public static string HeaderText(RooflineCeilings? ceilings, DeviceInfo? device) =>
        ceilings is not null ? ceilings.Description
        : device is null ? "none (CPU backend: no device ceilings)"
        : $"none (no known ceilings for {ClassOrName(device)})";

    /// <summary>The note printed under the bench table: how the percentages were computed, or why there are none.</summary>
    public static string FootnoteText(RooflineCeilings? ceilings, DeviceInfo? device) =>
        ceilings is not null
            ? string.Create(CultureInfo.InvariantCulture,
                $"{ceilings.ColumnHeader}: max(FLOPs / {ceilings.PeakTflops:0} TFLOP/s, bytes / {ceilings.MemoryGbps / 1000:0.00} TB/s) / median time "
                + $"({ceilings.Source} ceilings of {ceilings.GpuClass}); bytes = B and B scales of experts with rows + A + A scales + D.")
            : device is null
                ? "No roofline on the CPU backend. Every strategy runs the same reference kernel there, so 'vs single' shows only timing noise."
                : $"No roofline: the library knows no ceilings for {ClassOrName(device)}.";

    private static string ClassOrName(DeviceInfo device) =>
        string.IsNullOrWhiteSpace(device.GpuClass) ? device.Name : $"{device.Name}, class {device.GpuClass}";
}
