using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Bench;

/// <summary>Work of one grouped GEMM: useful FLOPs and the bytes it must move at least once.</summary>
/// <param name="Flops">2 x real rows x N x K (rows that experts own; no padding counted).</param>
/// <param name="Bytes">See <see cref="Roofline.Estimate"/>.</param>
internal readonly record struct WorkEstimate(double Flops, double Bytes);

/// <summary>
/// H100 roofline for the FP8 blockwise grouped GEMM.
/// <para>
/// Ceilings (from ../shared/research/anchors-performance.md):
/// compute 1979 TFLOP/s dense FP8, the H100 SXM datasheet figure quoted in section 3 "Physical limits"
/// and in "Measured on our H100" ("Limits of this H100: 1979 TFLOP/s dense FP8 (datasheet)");
/// memory 3.0 TB/s, the device-to-device copy bandwidth measured on our H100 80GB HBM3 (section 3
/// "Measured on our H100 / H200 test machines": "device-to-device copy ≈ 3.0 TB/s (read+write)"), used
/// instead of the 3.35 TB/s datasheet HBM3 number because no kernel reaches the datasheet figure.
/// </para>
/// <para>
/// The fraction reported is <c>max(flops / compute ceiling, bytes / memory ceiling) / measured time</c>:
/// 100 % means the kernel runs at the speed of light of whichever resource bounds it.
/// </para>
/// </summary>
internal static class Roofline
{
    /// <summary>Dense FP8 tensor-core peak of an H100 SXM5, FLOP/s (datasheet; anchors-performance.md section 3).</summary>
    public const double H100PeakFp8FlopsPerSecond = 1979e12;

    /// <summary>Measured device-to-device copy bandwidth of our H100 80GB HBM3, bytes/s (anchors-performance.md section 3).</summary>
    public const double H100MemoryBytesPerSecond = 3.0e12;

    /// <summary>
    /// FLOPs and minimum bytes of one grouped GEMM over <paramref name="shape"/>. Bytes counted:
    /// <list type="bullet">
    /// <item>B (e4m3, N x K bytes) and its fp32 128x128 block scales (ceil(N/128) x ceil(K/128) x 4 bytes)
    /// of the experts that own at least one row: an expert with no rows needs no weights, and a
    /// kernel that streams them anyway is charged for it by a lower fraction, not credited with bandwidth;</item>
    /// <item>A (e4m3, rows x K bytes) and its fp32 1x128 scales (rows x ceil(K/128) x 4 bytes);</item>
    /// <item>D written (rows x N x 2 bytes, bf16 or fp16).</item>
    /// </list>
    /// The int32 expert offsets (4 x (E+1) bytes) are left out: they are read once per CTA from L2, not streamed.
    /// Every tensor is counted once, i.e. perfect reuse through shared memory and L2 is assumed.
    /// </summary>
    public static WorkEstimate Estimate(ProblemShape shape)
    {
        double rows = shape.TotalRows;
        double n = shape.N;
        double k = shape.K;
        double kBlocks = MoeContext.ScaleBlocks(shape.K);
        double nBlocks = MoeContext.ScaleBlocks(shape.N);
        double activeExperts = shape.ActiveExperts;

        double weightBytes = activeExperts * ((n * k) + (nBlocks * kBlocks * sizeof(float)));
        double activationBytes = (rows * k) + (rows * kBlocks * sizeof(float));
        double outputBytes = rows * n * 2;
        return new WorkEstimate(2.0 * rows * n * k, weightBytes + activationBytes + outputBytes);
    }

    /// <summary>The H100 speed-of-light time of <paramref name="work"/> in seconds, and which ceiling bounds it.</summary>
    public static (double Seconds, string Bound) SpeedOfLight(WorkEstimate work)
    {
        double compute = work.Flops / H100PeakFp8FlopsPerSecond;
        double memory = work.Bytes / H100MemoryBytesPerSecond;
        return compute >= memory ? (compute, "compute") : (memory, "memory");
    }
}
