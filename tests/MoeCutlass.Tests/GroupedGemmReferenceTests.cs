namespace MoeCutlass.Tests;

/// <summary>
/// The CPU grouped GEMM against a managed double-precision reference built from the library's own quantized data:
/// the CPU backend accumulates in double and rounds once, so every element must be within half an ulp of the output
/// dtype of the reference (plus slack for summation order), and rows outside offsets[0] .. offsets[E] stay untouched.
/// </summary>
[TestFixture]
public sealed class GroupedGemmReferenceTests : NativeTestBase
{
    private const int LeadingRows = 3;
    private const int TrailingRows = 5;

    private static IEnumerable<TestCaseData> Cases()
    {
        yield return new TestCaseData(new[] { 33 }, 200, 272, DType.BFloat16, GemmStrategy.Auto);
        yield return new TestCaseData(new[] { 0, 7, 129 }, 200, 272, DType.Float16, GemmStrategy.Single);
        yield return new TestCaseData(new[] { 1, 0, 33, 7, 0 }, 200, 272, DType.BFloat16, GemmStrategy.ExpertSpecialized);
        yield return new TestCaseData(new[] { 129, 1, 0, 33, 7, 0, 1, 2 }, 64, 144, DType.Float16, GemmStrategy.Auto);
        yield return new TestCaseData(new[] { 65, 0 }, 136, 16, DType.BFloat16, GemmStrategy.Single);
        yield return new TestCaseData(new[] { 0, 0, 0 }, 8, 16, DType.Float16, GemmStrategy.Auto);
        // cuBLAS's strategy is the same math: the CPU reference runs it like the others (its GPU path: CudaCublas).
        yield return new TestCaseData(new[] { 1, 0, 33, 7, 0 }, 200, 272, DType.BFloat16, GemmStrategy.Cublas);
        yield return new TestCaseData(new[] { 0, 7, 129 }, 136, 144, DType.Float16, GemmStrategy.Cublas);
    }

    [TestCaseSource(nameof(Cases))]
    public void CpuGroupedGemm_MatchesDoubleReferenceWithinOutputRounding(int[] rowsPerExpert, int n, int k, DType outputDType, GemmStrategy strategy)
    {
        var random = NewRandom();
        int experts = rowsPerExpert.Length;
        int realRows = rowsPerExpert.Sum();
        int rows = LeadingRows + realRows + TrailingRows;
        int kBlocks = MoeContext.ScaleBlocks(k);
        int nBlocks = MoeContext.ScaleBlocks(n);
        var offsets = new int[experts + 1];
        offsets[0] = LeadingRows;
        for (int e = 0; e < experts; e++)
        {
            offsets[e + 1] = offsets[e] + rowsPerExpert[e];
        }

        // Per-row and per-expert magnitudes differ so the scales differ.
        var activations = new float[rows * k];
        for (int r = 0; r < rows; r++)
        {
            double rowScale = Math.ScaleB(1.0, random.Next(-3, 4));
            for (int c = 0; c < k; c++)
            {
                activations[r * k + c] = (float)(Numerics.Gaussian(random) * rowScale);
            }
        }

        var weights = new float[experts * n * k];
        for (int i = 0; i < weights.Length; i++)
        {
            weights[i] = (float)(Numerics.Gaussian(random) * Math.ScaleB(1.0, (i / (n * k)) % 3 - 4));
        }

        using var context = MoeContext.CreateCpu();
        using var plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(experts, n, k, outputDType, strategy, rows + 4));
        using var aInput = context.Upload<float>(activations);
        using var a = context.Allocate<byte>((long)rows * k);
        using var aScales = context.Allocate<float>((long)rows * kBlocks);
        context.QuantizeActivations(aInput, rows, k, a, aScales);
        using var bInput = context.Upload<float>(weights);
        using var b = context.Allocate<byte>((long)experts * n * k);
        using var bScales = context.Allocate<float>((long)experts * nBlocks * kBlocks);
        context.QuantizeWeights(bInput, experts, n, k, b, bScales);
        using var expertOffsets = context.Upload<int>(offsets);
        using var d = context.Allocate<ushort>((long)rows * n);
        const ushort canary = 0x7E57;
        d.Fill(canary);

        plan.Run(rows, a, aScales, b, bScales, expertOffsets, d);

        double[] aDequantized = Dequantize(a.ToArray(), aScales.ToArray(), rows, k, (r, c) => r * kBlocks + c / 128);
        double[] bDequantized = Dequantize(b.ToArray(), bScales.ToArray(), experts * n, k,
            (r, c) => ((r / n) * nBlocks + (r % n) / 128) * kBlocks + c / 128);
        ushort[] output = d.ToArray();
        Func<ushort, double> decode = outputDType == DType.BFloat16
            ? bits => (float)BFloat16.FromBits(bits)
            : bits => (double)BitConverter.UInt16BitsToHalf(bits);
        Func<double, double> ulp = outputDType == DType.BFloat16 ? Numerics.UlpBFloat16 : Numerics.UlpHalf;

        double largest = 0;
        int checkedElements = 0;
        for (int e = 0; e < experts; e++)
        {
            for (int r = offsets[e]; r < offsets[e + 1]; r++)
            {
                for (int j = 0; j < n; j++)
                {
                    double sum = 0, magnitude = 0;
                    for (int c = 0; c < k; c++)
                    {
                        double term = aDequantized[r * k + c] * bDequantized[(e * n + j) * k + c];
                        sum += term;
                        magnitude += Math.Abs(term);
                    }

                    double got = decode(output[r * n + j]);
                    double tolerance = 0.5 * ulp(sum) + 1e-12 * magnitude;
                    if (!(Math.Abs(got - sum) <= tolerance))
                    {
                        Assert.Fail($"expert {e} row {r} col {j}: got {got:R} (0x{output[r * n + j]:x4}), reference {sum:R}, " +
                            $"error {Math.Abs(got - sum):R} > {tolerance:R}");
                    }

                    largest = Math.Max(largest, Math.Abs(sum));
                    checkedElements++;
                }
            }
        }

        Assert.That(checkedElements, Is.EqualTo(realRows * n));
        if (realRows > 0)
        {
            Assert.That(largest, Is.GreaterThan(0.1), "the reference is not trivially zero");
        }

        for (int r = 0; r < rows; r++)
        {
            if (r >= offsets[0] && r < offsets[experts])
            {
                continue;
            }

            for (int j = 0; j < n; j++)
            {
                if (output[r * n + j] != canary)
                {
                    Assert.Fail($"row {r} (outside offsets {offsets[0]} .. {offsets[experts]}) col {j} was written: 0x{output[r * n + j]:x4}");
                }
            }
        }
    }

    [Test]
    public void TypedOutputBuffers_BFloat16AndHalf_GiveTheSameValues()
    {
        // The same problem run into DeviceBuffer<BFloat16> and DeviceBuffer<Half>: both are close to each other
        // within the coarser (bf16) rounding, so the element types reach the library as the right dtypes.
        var random = NewRandom();
        const int rows = 16, n = 32, k = 64;
        using var context = MoeContext.CreateCpu(threads: 1);
        using var aInput = context.Upload<float>(Enumerable.Range(0, rows * k).Select(_ => (float)Numerics.Gaussian(random)).ToArray());
        using var bInput = context.Upload<float>(Enumerable.Range(0, 2 * n * k).Select(_ => (float)Numerics.Gaussian(random)).ToArray());
        using var a = context.Allocate<byte>(rows * k);
        using var aScales = context.Allocate<float>(rows);
        using var b = context.Allocate<byte>(2 * n * k);
        using var bScales = context.Allocate<float>(2);
        context.QuantizeActivations(aInput, rows, k, a, aScales);
        context.QuantizeWeights(bInput, 2, n, k, b, bScales);
        using var offsets = context.Upload<int>([0, 9, rows]);
        using var bf16Plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(2, n, k, DType.BFloat16, GemmStrategy.Auto, rows));
        using var fp16Plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(2, n, k, DType.Float16, GemmStrategy.Auto, rows));
        using var bf16 = context.Allocate<BFloat16>(rows * n);
        using var fp16 = context.Allocate<Half>(rows * n);
        bf16Plan.Run(rows, a, aScales, b, bScales, offsets, bf16);
        fp16Plan.Run(rows, a, aScales, b, bScales, offsets, fp16);
        var x = bf16.ToArray();
        var y = fp16.ToArray();
        for (int i = 0; i < x.Length; i++)
        {
            double reference = (double)y[i];
            Assert.That((double)(float)x[i], Is.EqualTo(reference).Within(Numerics.UlpBFloat16(reference) + Numerics.UlpHalf(reference)), $"element {i}");
        }
    }

    private static double[] Dequantize(byte[] codes, float[] scales, int rows, int cols, Func<int, int, int> scaleIndex)
    {
        var result = new double[codes.Length];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                result[r * cols + c] = Numerics.DecodeE4M3(codes[r * cols + c]) * scales[scaleIndex(r, c)];
            }
        }

        return result;
    }
}
