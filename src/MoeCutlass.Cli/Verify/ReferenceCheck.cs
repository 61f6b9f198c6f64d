using System.Numerics;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Verify;

/// <summary>Outcome of comparing one output with its reference.</summary>
/// <param name="MaxRelativeError">Largest per-expert relative Frobenius error (+inf when an output or reference element is not finite).</param>
/// <param name="WorstExpert">The expert with that error (-1 when no expert has rows).</param>
/// <param name="NonFinite">Output elements that are NaN or infinite (e.g. rows the kernel never wrote: D is pre-filled with NaN).</param>
/// <param name="ExpertsCompared">Experts with at least one row.</param>
internal readonly record struct Comparison(double MaxRelativeError, int WorstExpert, long NonFinite, int ExpertsCompared)
{
    public bool Passes(double tolerance) => NonFinite == 0 && MaxRelativeError <= tolerance;
}

/// <summary>
/// Per-expert relative Frobenius error: for each expert e with rows,
/// <c>||D_e - R_e||_F / ||R_e||_F</c> over its rows of D (all N columns); the absolute
/// <c>||D_e - R_e||_F</c> when <c>R_e</c> is all zeros. The check reports the maximum over experts, so one
/// wrong expert cannot hide behind many right ones.
/// </summary>
internal static class ReferenceCheck
{
    /// <summary>Tolerance for <paramref name="outputDType"/>: output rounding (bf16 keeps 8 significant bits, fp16 11) plus accumulation-order differences.</summary>
    public static double Tolerance(DType outputDType) => outputDType switch
    {
        DType.BFloat16 => 4e-3,
        DType.Float16 => 1e-3,
        _ => throw new ArgumentOutOfRangeException(nameof(outputDType), outputDType, "the grouped GEMM writes bf16 or fp16"),
    };

    public static Comparison Compare<T>(ProblemShape shape, float[] actual, T[] reference)
        where T : INumberBase<T>
    {
        long expected = (long)shape.TotalRows * shape.N;
        if (actual.LongLength < expected || reference.LongLength < expected)
        {
            throw new ArgumentException($"output has {actual.LongLength} and reference {reference.LongLength} elements; expected {expected}");
        }

        int n = shape.N;
        int[] offsets = shape.ExpertOffsets();
        var errors = new double[shape.Experts];
        var nonFinite = new long[shape.Experts];
        Parallel.For(0, shape.Experts, e =>
        {
            double diff = 0;
            double norm = 0;
            long bad = 0;
            long badReference = 0;
            long end = (long)offsets[e + 1] * n;
            for (long i = (long)offsets[e] * n; i < end; i++)
            {
                double d = actual[i];
                double r = double.CreateTruncating(reference[i]);
                if (!double.IsFinite(d))
                {
                    bad++;
                    continue;
                }

                if (!double.IsFinite(r))
                {
                    // A reference the kernel did not compute (NaN-poisoned rows of the CPU reference): the expert
                    // cannot be verified. Without this its error would be NaN, which the max below never picks.
                    badReference++;
                    continue;
                }

                diff += (d - r) * (d - r);
                norm += r * r;
            }

            nonFinite[e] = bad;
            errors[e] = bad > 0 || badReference > 0 ? double.PositiveInfinity : norm > 0 ? Math.Sqrt(diff / norm) : Math.Sqrt(diff);
        });

        double worst = 0;
        int worstExpert = -1;
        int compared = 0;
        for (int e = 0; e < shape.Experts; e++)
        {
            if (offsets[e + 1] == offsets[e])
            {
                continue;
            }

            compared++;
            if (worstExpert < 0 || errors[e] > worst)
            {
                worst = errors[e];
                worstExpert = e;
            }
        }

        return new Comparison(worst, worstExpert, nonFinite.Sum(), compared);
    }
}
