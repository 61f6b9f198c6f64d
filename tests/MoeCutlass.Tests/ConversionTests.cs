namespace MoeCutlass.Tests;

[TestFixture]
public sealed class ConversionTests : NativeTestBase
{
    private MoeContext _context = null!;

    [OneTimeSetUp]
    public void CreateContext() => _context = MoeContext.CreateCpu(threads: 2);

    [OneTimeTearDown]
    public void DisposeContext() => _context.Dispose();

    [Test]
    public void AllE4M3Codes_DecodeExactly_AndRoundTrip()
    {
        byte[] codes = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        using var source = _context.Upload<byte>(codes);
        using var decoded = _context.Allocate<float>(256);
        using var encoded = _context.Allocate<byte>(256);
        _context.Convert(source, DType.Float8E4M3, decoded, DType.Float32, 256);
        _context.Convert(decoded, DType.Float32, encoded, DType.Float8E4M3, 256);
        float[] values = decoded.ToArray();
        byte[] back = encoded.ToArray();
        using (Assert.EnterMultipleScope())
        {
            for (int code = 0; code < 256; code++)
            {
                double expected = Numerics.DecodeE4M3((byte)code);
                if (Numerics.IsE4M3NaN((byte)code))
                {
                    Assert.That(float.IsNaN(values[code]), Is.True, $"0x{code:x2} decodes to NaN");
                    Assert.That(Numerics.IsE4M3NaN(back[code]), Is.True, $"0x{code:x2} stays NaN");
                }
                else
                {
                    Assert.That(BitConverter.SingleToUInt32Bits(values[code]), Is.EqualTo(BitConverter.SingleToUInt32Bits((float)expected)),
                        $"0x{code:x2} decodes to {expected}");
                    Assert.That(back[code], Is.EqualTo((byte)code), $"0x{code:x2} encodes back");
                }
            }
        }

        Assert.That(values.Where(float.IsFinite).Max(), Is.EqualTo(448f));
        Assert.That(values.Where(v => v > 0).Min(), Is.EqualTo(MathF.ScaleB(1f, -9)));
    }

    [TestCase(448f, (byte)0x7E, TestName = "largest finite")]
    [TestCase(-448f, (byte)0xFE, TestName = "largest negative")]
    [TestCase(0.001953125f, (byte)0x01, TestName = "smallest subnormal 2^-9")]
    [TestCase(0.015625f, (byte)0x08, TestName = "smallest normal 2^-6")]
    [TestCase(1f, (byte)0x38, TestName = "one")]
    [TestCase(1.0625f, (byte)0x38, TestName = "tie 1+1/16 to even 1")]
    [TestCase(1.1875f, (byte)0x3A, TestName = "tie 1+3/16 to even 1.25")]
    [TestCase(1.07f, (byte)0x39, TestName = "above the tie rounds up")]
    [TestCase(0.0009765625f, (byte)0x00, TestName = "tie 2^-10 to even 0")]
    [TestCase(0.0029296875f, (byte)0x02, TestName = "tie 3*2^-10 to even 2^-8")]
    [TestCase(464f, (byte)0x7E, TestName = "just beyond 448 saturates")]
    [TestCase(1000f, (byte)0x7E, TestName = "1000 saturates to 448")]
    [TestCase(-1000f, (byte)0xFE, TestName = "-1000 saturates to -448")]
    [TestCase(float.PositiveInfinity, (byte)0x7E, TestName = "infinity saturates")]
    [TestCase(0f, (byte)0x00, TestName = "zero")]
    [TestCase(-0f, (byte)0x80, TestName = "negative zero")]
    [TestCase(240f, (byte)0x77, TestName = "240")]
    public void KnownValues_EncodeToE4M3(float value, byte expected)
    {
        using var source = _context.Upload<float>([value]);
        using var encoded = _context.Allocate<byte>(1);
        _context.Convert(source, DType.Float32, encoded, DType.Float8E4M3, 1);
        Assert.That(encoded.ToArray()[0], Is.EqualTo(expected), $"{value:R}");
    }

    [Test]
    public void NaN_EncodesToE4M3NaN()
    {
        using var source = _context.Upload<float>([float.NaN, -float.NaN]);
        using var encoded = _context.Allocate<byte>(2);
        _context.Convert(source, DType.Float32, encoded, DType.Float8E4M3, 2);
        Assert.That(encoded.ToArray().Select(Numerics.IsE4M3NaN), Is.All.True);
    }

    [Test]
    public void Float32ToBFloat16AndHalf_MatchTheManagedConversions()
    {
        var random = NewRandom();
        var values = new float[4096];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = i % 4 == 0
                ? BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)) // any bit pattern, NaN included
                : Numerics.RandomValue(random, -30, 20);
        }

        values[0] = 65520f; // rounds to fp16 infinity
        values[1] = 65519.99f; // rounds to fp16 max
        values[2] = MathF.ScaleB(1f, -25); // fp16 tie to zero
        using var source = _context.Upload<float>(values);
        using var bf16 = _context.Allocate<BFloat16>(values.Length);
        using var fp16 = _context.Allocate<Half>(values.Length);
        _context.Convert(source, DType.Float32, bf16, DType.BFloat16, values.Length);
        _context.Convert(source, DType.Float32, fp16, DType.Float16, values.Length);
        var gotBf16 = bf16.ToArray();
        var gotFp16 = fp16.ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            if (float.IsNaN(values[i]))
            {
                Assert.That(gotBf16[i].IsNaN && Half.IsNaN(gotFp16[i]), Is.True, $"NaN at {i}");
                continue;
            }

            Assert.That(gotBf16[i].Bits, Is.EqualTo(((BFloat16)values[i]).Bits), $"bf16 of {values[i]:R}");
            Assert.That(BitConverter.HalfToUInt16Bits(gotFp16[i]), Is.EqualTo(BitConverter.HalfToUInt16Bits((Half)values[i])),
                $"fp16 of {values[i]:R}");
        }
    }

    [Test]
    public void BFloat16AndHalf_WidenExactly()
    {
        var bits = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        using var bf16 = _context.Upload<BFloat16>(bits.Select(BFloat16.FromBits).ToArray());
        using var fp16 = _context.Upload<Half>(bits.Select(BitConverter.UInt16BitsToHalf).ToArray());
        using var wideBf16 = _context.Allocate<float>(bits.Length);
        using var wideFp16 = _context.Allocate<float>(bits.Length);
        _context.Convert(bf16, DType.BFloat16, wideBf16, DType.Float32, bits.Length);
        _context.Convert(fp16, DType.Float16, wideFp16, DType.Float32, bits.Length);
        var gotBf16 = wideBf16.ToArray();
        var gotFp16 = wideFp16.ToArray();
        for (int i = 0; i < bits.Length; i++)
        {
            float expectedBf16 = (float)BFloat16.FromBits(bits[i]);
            float expectedFp16 = (float)BitConverter.UInt16BitsToHalf(bits[i]);
            bool ok = (float.IsNaN(expectedBf16) ? float.IsNaN(gotBf16[i]) : gotBf16[i].Equals(expectedBf16) && float.IsNegative(gotBf16[i]) == float.IsNegative(expectedBf16))
                && (float.IsNaN(expectedFp16) ? float.IsNaN(gotFp16[i]) : gotFp16[i].Equals(expectedFp16) && float.IsNegative(gotFp16[i]) == float.IsNegative(expectedFp16));
            if (!ok)
            {
                Assert.Fail($"bits 0x{bits[i]:x4}: bf16 {gotBf16[i]:R} vs {expectedBf16:R}, fp16 {gotFp16[i]:R} vs {expectedFp16:R}");
            }
        }
    }
}
