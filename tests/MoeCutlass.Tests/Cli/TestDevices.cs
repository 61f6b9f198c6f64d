namespace MoeCutlass.Tests.Cli;

/// <summary>
/// Device descriptions as the library reports them on our GPU machines (and on a GPU no class was tuned for), so
/// the CLI's per-device behaviour can be checked without a GPU.
/// </summary>
internal static class TestDevices
{
    /// <summary>An H100 SXM: 132 SMs, 3352 GB/s from its clocks, datasheet 1979 TFLOP/s dense FP8 and 3.35 TB/s.</summary>
    public static readonly DeviceInfo H100 = new(
        0, "NVIDIA H100 80GB HBM3", 9, 0, 132, 85_045_870_592, 52_428_800, 232_448, 5120, 2_619_000, 3352.3,
        "H100 SXM (132 SMs, HBM3)", 1979, 3350, HasSm90a: true);

    /// <summary>An H200: 132 SMs, 4814 GB/s from its clocks, datasheet 1979 TFLOP/s dense FP8 and 4.8 TB/s.</summary>
    public static readonly DeviceInfo H200 = new(
        0, "NVIDIA H200", 9, 0, 132, 150_110_011_392, 62_914_560, 232_448, 6144, 3_134_000, 4813.8,
        "H200 (132 SMs, HBM3e)", 1979, 4800, HasSm90a: true);

    /// <summary>A GPU of no known class and without SM90a (compute capability 8.0): no ceilings, no SM90a kernels.</summary>
    public static readonly DeviceInfo A100 = new(
        0, "NVIDIA A100-SXM4-80GB", 8, 0, 108, 85_100_000_000, 41_943_040, 166_912, 5120, 1_593_000, 2039.0,
        "other GPU (tile-width thresholds)", 0, 0, HasSm90a: false);
}
