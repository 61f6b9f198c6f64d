using System.Numerics;
using System.Runtime.InteropServices;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Verify;

/// <summary>
/// An independent managed reference for the grouped GEMM (DESIGN.md section 3): dequantize A and B with
/// their scales (e4m3 decoded by <see cref="Fp8E4M3"/>, not by the library) and multiply in double
/// precision. Each dequantized value (4 significant bits times an fp32 scale) is exact in double.
/// Meant for reduced cases: it holds A and one row of B per thread as doubles.
/// </summary>
internal static class ManagedReference
{
    /// <summary>D [rows, N] in double for the quantized inputs of <paramref name="shape"/>.</summary>
    public static double[] Compute(ProblemShape shape, byte[] a, float[] aScales, byte[] b, float[] bScales)
    {
        int rows = shape.TotalRows;
        int n = shape.N;
        int k = shape.K;
        int kBlocks = MoeContext.ScaleBlocks(k);
        int nBlocks = MoeContext.ScaleBlocks(n);
        int[] offsets = shape.ExpertOffsets();

        double[] aDequantized = new double[(long)rows * k];
        Parallel.For(0, rows, r =>
        {
            for (int c = 0; c < k; c++)
            {
                long i = ((long)r * k) + c;
                aDequantized[i] = Fp8E4M3.ToDouble(a[i]) * aScales[((long)r * kBlocks) + (c / 128)];
            }
        });

        double[] d = new double[(long)rows * n];
        for (int e = 0; e < shape.Experts; e++)
        {
            int first = offsets[e];
            int last = offsets[e + 1];
            if (first == last)
            {
                continue;
            }

            int expert = e;
            Parallel.For(
                0,
                n,
                () => new double[k],
                (column, _, bRow) =>
                {
                    long bBase = (((long)expert * n) + column) * k;
                    long scaleBase = (((long)expert * nBlocks) + (column / 128)) * kBlocks;
                    for (int c = 0; c < k; c++)
                    {
                        bRow[c] = Fp8E4M3.ToDouble(b[bBase + c]) * bScales[scaleBase + (c / 128)];
                    }

                    for (int r = first; r < last; r++)
                    {
                        d[((long)r * n) + column] = Dot(aDequantized.AsSpan((int)((long)r * k), k), bRow);
                    }

                    return bRow;
                },
                static _ => { });
        }

        return d;
    }

    private static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        var sum = Vector<double>.Zero;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            ReadOnlySpan<Vector<double>> vx = MemoryMarshal.Cast<double, Vector<double>>(x);
            ReadOnlySpan<Vector<double>> vy = MemoryMarshal.Cast<double, Vector<double>>(y);
            for (int v = 0; v < vx.Length; v++)
            {
                sum += vx[v] * vy[v];
            }

            i = vx.Length * Vector<double>.Count;
        }

        double total = Vector.Sum(sum);
        for (; i < x.Length; i++)
        {
            total += x[i] * y[i];
        }

        return total;
    }
}
