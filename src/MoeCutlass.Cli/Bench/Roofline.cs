using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Bench;

/// <summary>Work of one grouped GEMM: useful FLOPs and the bytes it must move at least once.</summary>
/// <param name="Flops">2 x real rows x N x K (rows that experts own; no padding counted).</param>
/// <param name="Bytes">See <see cref="Roofline.Estimate"/>.</param>
internal readonly record struct WorkEstimate(double Flops, double Bytes);

/// <summary>
/// Roofline of the FP8 blockwise grouped GEMM against the ceilings of the GPU it ran on
/// (<see cref="RooflineCeilings"/>: the datasheet figures the library reports for the device's class).
/// <para>
/// The fraction reported is <c>max(flops / compute ceiling, bytes / memory ceiling) / measured time</c>:
/// 100 % means the kernel runs at the speed of light of whichever resource bounds it. No kernel reaches the
/// datasheet bandwidth (a device-to-device copy measured about 3.0 of the 3.35 TB/s on our H100), so a
/// memory-bound case at the practical limit reads about 90 %, not 100 %.
/// </para>
/// </summary>
internal static class Roofline
{
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

    /// <summary>The speed-of-light time of <paramref name="work"/> under <paramref name="ceilings"/> in seconds, and which ceiling bounds it.</summary>
    public static (double Seconds, string Bound) SpeedOfLight(WorkEstimate work, RooflineCeilings ceilings)
    {
        double compute = work.Flops / ceilings.PeakFlopsPerSecond;
        double memory = work.Bytes / ceilings.MemoryBytesPerSecond;
        return compute >= memory ? (compute, "compute") : (memory, "memory");
    }

    /// <summary>
    /// Speed-of-light time / <paramref name="seconds"/> in percent, and the bounding ceiling; both null without
    /// ceilings (CPU backend, unknown GPU class), the percent also null without a positive time (a failed run).
    /// </summary>
    public static (double? Percent, string? Bound) Fraction(WorkEstimate work, double? seconds, RooflineCeilings? ceilings)
    {
        if (ceilings is null)
        {
            return (null, null);
        }

        (double light, string bound) = SpeedOfLight(work, ceilings);
        return (seconds is > 0 ? light / seconds.Value * 100.0 : null, bound);
    }
}
