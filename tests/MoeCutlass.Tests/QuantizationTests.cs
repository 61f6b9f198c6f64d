namespace MoeCutlass.Tests;

/// <summary>FP8 quantizer numerics: exact scales, half-ulp element error, zero blocks, for every input dtype.</summary>
[TestFixture]
public sealed class QuantizationTests : NativeTestBase
{
    private static readonly double HalfUlpRelative = Math.ScaleB(1.0, -4);
    private static readonly double MinNormalE4M3 = Math.ScaleB(1.0, -6);

    private MoeContext _context = null!;

    [OneTimeSetUp]
    public void CreateContext() => _context = MoeContext.CreateCpu(threads: 2);

    [OneTimeTearDown]
    public void DisposeContext() => _context.Dispose();

    [TestCase(DType.Float32)]
    [TestCase(DType.BFloat16)]
    [TestCase(DType.Float16)]
    public void Activations_ScalesAreAmaxOver448_AndValuesWithinHalfUlp(DType dtype)
    {
        const int rows = 9;
        const int cols = 272; // 3 blocks per row, the last 16 wide
        int blocks = MoeContext.ScaleBlocks(cols);
        var random = NewRandom();
        float[] values = MakeValues(random, rows * cols, cols, dtype);
        // Row 2's middle block is all zero; row 5 holds a single nonzero value per block.
        Array.Clear(values, 2 * cols + 128, 128);
        for (int c = 0; c < cols; c++)
        {
            if (c % 128 != 7)
            {
                values[5 * cols + c] = 0;
            }
        }

        using var input = Upload(values, dtype);
        using var output = _context.Allocate<byte>(rows * cols);
        using var scales = _context.Allocate<float>(rows * blocks);
        _context.QuantizeActivations(input, rows, cols, output, scales);
        byte[] q = output.ToArray();
        float[] s = scales.ToArray();

        for (int r = 0; r < rows; r++)
        {
            for (int b = 0; b < blocks; b++)
            {
                var indices = Enumerable.Range(b * 128, Math.Min(128, cols - b * 128)).Select(c => r * cols + c).ToArray();
                CheckBlock(values, q, indices, s[r * blocks + b], $"row {r} block {b}");
            }
        }

        Assert.That(s[2 * blocks + 1], Is.EqualTo(1f), "an all-zero block has scale 1");
    }

    [TestCase(DType.Float32)]
    [TestCase(DType.BFloat16)]
    [TestCase(DType.Float16)]
    public void Weights_ScalesArePer128x128Block_AndValuesWithinHalfUlp(DType dtype)
    {
        const int experts = 3;
        const int n = 200; // 2 row blocks, the last 72 high
        const int k = 144; // 2 column blocks, the last 16 wide
        int nb = MoeContext.ScaleBlocks(n);
        int kb = MoeContext.ScaleBlocks(k);
        var random = NewRandom();
        float[] values = MakeValues(random, experts * n * k, 128, dtype);
        // Expert 1's block (1, 0) is all zero.
        for (int r = 128; r < n; r++)
        {
            Array.Clear(values, (1 * n + r) * k, 128);
        }

        using var input = Upload(values, dtype);
        using var output = _context.Allocate<byte>(experts * n * k);
        using var scales = _context.Allocate<float>(experts * nb * kb);
        _context.QuantizeWeights(input, experts, n, k, output, scales);
        byte[] q = output.ToArray();
        float[] s = scales.ToArray();

        for (int e = 0; e < experts; e++)
        {
            for (int bn = 0; bn < nb; bn++)
            {
                for (int bk = 0; bk < kb; bk++)
                {
                    var indices = new List<int>();
                    for (int r = bn * 128; r < Math.Min(n, bn * 128 + 128); r++)
                    {
                        for (int c = bk * 128; c < Math.Min(k, bk * 128 + 128); c++)
                        {
                            indices.Add((e * n + r) * k + c);
                        }
                    }

                    CheckBlock(values, q, [.. indices], s[(e * nb + bn) * kb + bk], $"expert {e} block ({bn}, {bk})");
                }
            }
        }

        Assert.That(s[(1 * nb + 1) * kb + 0], Is.EqualTo(1f), "an all-zero block has scale 1");
    }

    [Test]
    public void UnsupportedInputElementType_IsRejectedBeforeTheNativeCall()
    {
        using var input = _context.Allocate<int>(128);
        using var output = _context.Allocate<byte>(128);
        using var scales = _context.Allocate<float>(1);
        var ex = Assert.Throws<ArgumentException>(() => _context.QuantizeActivations(input, 1, 128, output, scales));
        Assert.That(ex!.ParamName, Is.EqualTo("input"));
    }

    /// <summary>
    /// Checks one scale block: scale == fp32(amax / 448) exactly (1 for an all-zero block), the largest element hits
    /// ±448 exactly, and every dequantized value is within half an e4m3 ulp of the input (relative 2^-4 in the
    /// normal range, 2^-10 * scale absolute in the subnormal range).
    /// </summary>
    private static void CheckBlock(float[] values, byte[] q, int[] indices, float scale, string where)
    {
        float amax = indices.Max(i => MathF.Abs(values[i]));
        float expectedScale = amax / 448f;
        if (expectedScale == 0)
        {
            expectedScale = 1f;
        }

        Assert.That(BitConverter.SingleToUInt32Bits(scale), Is.EqualTo(BitConverter.SingleToUInt32Bits(expectedScale)),
            $"{where}: scale {scale:R} vs amax/448 = {expectedScale:R}");
        foreach (int i in indices)
        {
            double x = values[i];
            double dequantized = Numerics.DecodeE4M3(q[i]) * scale;
            double scaled = Math.Abs(x / scale);
            double bound = scaled >= MinNormalE4M3 ? HalfUlpRelative * Math.Abs(x) : Math.ScaleB(scale, -10);
            if (!(Math.Abs(dequantized - x) <= bound * (1 + 1e-6)))
            {
                Assert.Fail($"{where}: element {i} = {x:R} quantized to 0x{q[i]:x2} = {dequantized:R} (scale {scale:R}), error {Math.Abs(dequantized - x):R} > {bound:R}");
            }

            if (amax != 0 && Math.Abs(x) == amax && (q[i] & 0x7F) != 0x7E)
            {
                Assert.Fail($"{where}: the block maximum {x:R} must quantize to ±448, got 0x{q[i]:x2}");
            }
        }
    }

    /// <summary>Values spread over many binades (some land in e4m3's subnormal range after scaling), already rounded to <paramref name="dtype"/>.</summary>
    private static float[] MakeValues(Random random, int count, int blockWidth, DType dtype)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            // A different base magnitude per block, then up to 2^-12 below it within the block.
            int block = i / blockWidth;
            int top = (block % 7) - 3;
            float v = random.Next(50) == 0 ? 0f : Numerics.RandomValue(random, top - 12, top + 1);
            values[i] = dtype switch
            {
                DType.BFloat16 => (float)(BFloat16)v,
                DType.Float16 => (float)(Half)v,
                _ => v,
            };
        }

        return values;
    }

    private DeviceBuffer Upload(float[] values, DType dtype) => dtype switch
    {
        DType.Float32 => _context.Upload<float>(values),
        DType.BFloat16 => _context.Upload<BFloat16>(values.Select(v => (BFloat16)v).ToArray()),
        DType.Float16 => _context.Upload<Half>(values.Select(v => (Half)v).ToArray()),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
    };
}
