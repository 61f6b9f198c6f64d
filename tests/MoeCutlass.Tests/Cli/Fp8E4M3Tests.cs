using MoeCutlass.Cli.Data;

namespace MoeCutlass.Tests.Cli;

/// <summary>The CLI's managed e4m3 decoder (used by the managed verify reference).</summary>
[TestFixture]
public sealed class Fp8E4M3Tests : NativeTestBase
{
    [TestCase((byte)0x00, 0.0)]
    [TestCase((byte)0x01, 0.001953125)] // 2^-9, smallest subnormal
    [TestCase((byte)0x07, 0.013671875)] // 7 * 2^-9, largest subnormal
    [TestCase((byte)0x08, 0.015625)] // 2^-6, smallest normal
    [TestCase((byte)0x38, 1.0)]
    [TestCase((byte)0x39, 1.125)]
    [TestCase((byte)0x40, 2.0)]
    [TestCase((byte)0x77, 240.0)]
    [TestCase((byte)0x7E, 448.0)] // largest finite
    [TestCase((byte)0xB8, -1.0)]
    [TestCase((byte)0x81, -0.001953125)]
    [TestCase((byte)0xFE, -448.0)]
    public void ToDouble_KnownCodes(byte code, double expected)
    {
        Assert.That(Fp8E4M3.ToDouble(code), Is.EqualTo(expected));
    }

    [TestCase((byte)0x7F)]
    [TestCase((byte)0xFF)]
    public void ToDouble_AllOnesExponentAndMantissa_IsNaN(byte code)
    {
        Assert.That(Fp8E4M3.ToDouble(code), Is.NaN);
    }

    [Test]
    public void ToDouble_NegativeZero_KeepsItsSign()
    {
        double value = Fp8E4M3.ToDouble(0x80);

        Assert.That(double.IsNegative(value) && value == 0, Is.True, $"0x80 decodes to {value}");
    }

    [Test]
    public void ToDouble_OnlyTwoCodesAreNaN_AndNoneIsInfinite()
    {
        double[] all = [.. Enumerable.Range(0, 256).Select(c => Fp8E4M3.ToDouble((byte)c))];

        using (Assert.EnterMultipleScope())
        {
            Assert.That(all.Count(double.IsNaN), Is.EqualTo(2));
            Assert.That(all, Has.None.Matches<double>(double.IsInfinity));
        }
    }

    [Test]
    public void ToDouble_AgreesWithTheNativeConversion_ForAll256Codes()
    {
        byte[] codes = [.. Enumerable.Range(0, 256).Select(i => (byte)i)];
        using MoeContext context = MoeContext.CreateCpu(threads: 1);
        using DeviceBuffer<byte> source = context.Upload<byte>(codes);
        using DeviceBuffer<float> decoded = context.Allocate<float>(256);
        using MoeStream stream = context.CreateStream();

        context.Convert(source, DType.Float8E4M3, decoded, DType.Float32, 256, stream);
        stream.Synchronize();
        float[] native = decoded.ToArray();

        using (Assert.EnterMultipleScope())
        {
            for (int code = 0; code < 256; code++)
            {
                double managed = Fp8E4M3.ToDouble((byte)code);
                if (double.IsNaN(managed))
                {
                    Assert.That(native[code], Is.NaN, $"0x{code:X2}");
                }
                else
                {
                    Assert.That((double)native[code], Is.EqualTo(managed), $"0x{code:X2}");
                    Assert.That(double.IsNegative(native[code]), Is.EqualTo(double.IsNegative(managed)), $"0x{code:X2}: sign");
                }
            }
        }
    }
}
