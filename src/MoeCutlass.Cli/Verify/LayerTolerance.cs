using System.Globalization;

namespace MoeCutlass.Cli.Verify;

/// <summary>Outcome of comparing a layer output with the CPU layer's on the same FP8 weights and inputs.</summary>
/// <param name="RelativeRms">||got - expected|| / ||expected|| over all elements (the absolute norm when expected is all zeros;
/// +inf when an element of either is not finite).</param>
/// <param name="WorstRatio">max over elements of |got - expected| / bound, bound = <see cref="LayerTolerance.RowFraction"/> x the
/// token row's largest |expected| + 2 output ulps of expected: at most 1 passes (+inf for a non-finite element).</param>
/// <param name="WorstElement">Where <see cref="WorstRatio"/> is, e.g. "token 3 column 17: 0.5 vs 0.25 (row max 1, bound 0.13)"; null when there are no elements.</param>
/// <param name="NonFinite">Elements of either output that are NaN or infinite.</param>
internal readonly record struct LayerComparison(double RelativeRms, double WorstRatio, string? WorstElement, long NonFinite)
{
    /// <summary>Whether the outputs agree under <see cref="LayerTolerance"/>'s rule.</summary>
    public bool Passes => NonFinite == 0 && RelativeRms < LayerTolerance.RmsLimit && WorstRatio <= 1;
}

/// <summary>
/// The rule a layer output must meet against the CPU layer run on the same FP8 weights, hidden states and router logits
/// (routing is exact on both, so they differ only where a GEMM rounds): relative RMS difference below
/// <see cref="RmsLimit"/> (2^-5), and every element within <see cref="RowFraction"/> (2^-3) of its token row's largest
/// |value| plus two output ulps. Why these bounds (a one-ulp GEMM1 difference can flip an FP8 code of h or move its block's
/// scale, which shifts an output element by a fraction of its row's magnitude, not of the element) is written out in
/// tests/MoeCutlass.Tests/Gpu/CudaMoeLayerTests.cs, which applies the same rule. A wrong expert, weight or gate/up order is
/// off by the row's whole magnitude.
/// </summary>
internal static class LayerTolerance
{
    /// <summary>Largest relative RMS difference over all outputs: 2^-5.</summary>
    public const double RmsLimit = 1.0 / 32;

    /// <summary>Per-element bound as a fraction of the token row's largest |value|: 2^-3.</summary>
    public const double RowFraction = 1.0 / 8;

    /// <summary>Compares <paramref name="got"/> with <paramref name="expected"/>, both [tokens, <paramref name="hidden"/>] of
    /// <paramref name="outputDType"/> (bf16 or fp16: the ulp of the bound; fp32 uses the bf16 ulp, a looser bound).</summary>
    public static LayerComparison Compare(ReadOnlySpan<double> got, ReadOnlySpan<double> expected, int hidden, DType outputDType)
    {
        if (got.Length != expected.Length || hidden <= 0 || got.Length % hidden != 0)
        {
            throw new ArgumentException($"outputs of {got.Length} and {expected.Length} elements are not both [tokens, {hidden}]");
        }

        double error2 = 0, reference2 = 0, worstRatio = 0;
        long nonFinite = 0;
        string? worst = null;
        for (int row = 0; row < got.Length / hidden; row++)
        {
            ReadOnlySpan<double> g = got.Slice(row * hidden, hidden);
            ReadOnlySpan<double> e = expected.Slice(row * hidden, hidden);
            double rowMax = 0;
            foreach (double v in e)
            {
                rowMax = Math.Max(rowMax, Math.Abs(v));
            }

            for (int c = 0; c < hidden; c++)
            {
                if (!double.IsFinite(g[c]) || !double.IsFinite(e[c]))
                {
                    nonFinite++;
                }

                double diff = Math.Abs(g[c] - e[c]);
                error2 += diff * diff;
                reference2 += e[c] * e[c];
                double bound = (RowFraction * rowMax) + (2 * Ulp(e[c], outputDType));
                double ratio = double.IsFinite(diff) ? diff / bound : double.PositiveInfinity;
                if (worst is null || ratio > worstRatio)
                {
                    worstRatio = ratio;
                    worst = string.Create(CultureInfo.InvariantCulture,
                        $"token {row} column {c}: {g[c]:G6} vs {e[c]:G6} (row max {rowMax:G4}, bound {bound:G4})");
                }
            }
        }

        double rms = nonFinite > 0 ? double.PositiveInfinity : reference2 == 0 ? Math.Sqrt(error2) : Math.Sqrt(error2 / reference2);
        return new LayerComparison(rms, worstRatio, worst, nonFinite);
    }

    /// <summary>The spacing of <paramref name="outputDType"/> values at |x| (its subnormal spacing near zero).</summary>
    public static double Ulp(double x, DType outputDType)
    {
        (int minExponent, int mantissaBits) = outputDType == DType.Float16 ? (-14, 10) : (-126, 7);
        int exponent = x == 0 || !double.IsFinite(x) ? minExponent : Math.Max(Math.ILogB(Math.Abs(x)), minExponent);
        return Math.ScaleB(1.0, exponent - mantissaBits);
    }
}
