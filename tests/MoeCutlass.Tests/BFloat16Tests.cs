namespace MoeCutlass.Tests;

[TestFixture]
public sealed class BFloat16Tests
{
    [TestCase(1.0f, (ushort)0x3F80)]
    [TestCase(-2.0f, (ushort)0xC000)]
    [TestCase(0.0f, (ushort)0x0000)]
    [TestCase(-0.0f, (ushort)0x8000)]
    [TestCase(float.PositiveInfinity, (ushort)0x7F80)]
    [TestCase(float.NegativeInfinity, (ushort)0xFF80)]
    [TestCase(float.MaxValue, (ushort)0x7F80)] // beyond the largest bf16 by more than half an ulp: overflow
    [TestCase(3.3895314e38f, (ushort)0x7F7F)] // largest finite bf16
    [TestCase(1.00390625f, (ushort)0x3F80)] // 1 + 2^-8: tie, even is 1.0
    [TestCase(1.01171875f, (ushort)0x3F82)] // 1 + 3*2^-8: tie, even is 1 + 2^-6
    [TestCase(1.0039064f, (ushort)0x3F81)] // just above the tie rounds up
    [TestCase(9.18355e-41f, (ushort)0x0001)] // smallest bf16 subnormal, 2^-133
    public void FromFloat_RoundsToNearestEven(float value, ushort expected) =>
        Assert.That(((BFloat16)value).Bits, Is.EqualTo(expected), $"0x{((BFloat16)value).Bits:x4}");

    [Test]
    public void NaN_StaysNaN_EvenWithPayloadOnlyInTheLowHalf()
    {
        float lowPayloadNaN = BitConverter.UInt32BitsToSingle(0x7F800001);
        float negativeNaN = BitConverter.UInt32BitsToSingle(0xFF800001);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(float.IsNaN(lowPayloadNaN), Is.True);
            Assert.That(((BFloat16)lowPayloadNaN).IsNaN, Is.True);
            Assert.That(float.IsNaN((float)(BFloat16)lowPayloadNaN), Is.True);
            Assert.That(((BFloat16)negativeNaN).Bits & 0x8000, Is.EqualTo(0x8000), "sign kept");
            Assert.That(((BFloat16)float.NaN).IsNaN, Is.True);
        }
    }

    [Test]
    public void EveryBitPattern_RoundTripsThroughFloat()
    {
        for (int bits = 0; bits <= 0xFFFF; bits++)
        {
            var value = BFloat16.FromBits((ushort)bits);
            var back = (BFloat16)(float)value;
            if (value.IsNaN)
            {
                Assert.That(back.IsNaN, Is.True, $"0x{bits:x4}");
            }
            else if (back.Bits != bits)
            {
                Assert.Fail($"0x{bits:x4} came back as 0x{back.Bits:x4}");
            }
        }
    }

    [Test]
    public void RandomFloats_MatchAReferenceRounding()
    {
        var random = new Random(12345);
        for (int i = 0; i < 100_000; i++)
        {
            float f = BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32));
            if (float.IsNaN(f))
            {
                continue;
            }

            // Reference: pick the nearer of the two bf16 neighbours (truncation and the next one up), ties to even.
            ushort down = (ushort)(BitConverter.SingleToUInt32Bits(f) >> 16);
            ushort up = (ushort)(down + 1);
            double exact = f;
            double dDown = Math.Abs(exact - (float)BFloat16.FromBits(down));
            // Above the largest finite bf16 the "next value" is 2^128 (unbounded exponent), which is what rounds to infinity.
            double upValue = (up & 0x7FFF) == 0x7F80 ? Math.CopySign(Math.ScaleB(1.0, 128), f) : (float)BFloat16.FromBits(up);
            double dUp = Math.Abs(upValue - exact);
            ushort expected = dDown < dUp ? down : dUp < dDown ? up : (down & 1) == 0 ? down : up;
            if ((BitConverter.SingleToUInt32Bits(f) & 0xFFFF) == 0)
            {
                expected = down;
            }

            Assert.That(((BFloat16)f).Bits, Is.EqualTo(expected), $"{f:R} (0x{BitConverter.SingleToUInt32Bits(f):x8})");
        }
    }

    [Test]
    public void Equality_FollowsFloatSemantics()
    {
        var nan = BFloat16.NaN;
        var plusZero = BFloat16.Zero;
        var minusZero = BFloat16.FromBits(0x8000);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(nan.Equals(nan), Is.True);
#pragma warning disable CS1718 // comparing a variable to itself is the point: IEEE NaN semantics
            Assert.That(nan == nan, Is.False);
#pragma warning restore CS1718
            Assert.That(plusZero == minusZero, Is.True);
            Assert.That(plusZero.Equals(minusZero), Is.True);
            Assert.That(plusZero.GetHashCode(), Is.EqualTo(minusZero.GetHashCode()));
            Assert.That((BFloat16)1.5f, Is.EqualTo(BFloat16.FromBits(0x3FC0)));
            Assert.That((BFloat16)1.5f < (BFloat16)2f, Is.True);
            Assert.That(BFloat16.One.ToString(), Is.EqualTo("1"));
        }
    }
}
