using System.Globalization;

namespace MoeCutlass;

/// <summary>
/// A bfloat16 value (1 sign, 8 exponent, 7 mantissa bits: the upper half of an IEEE binary32), since .NET has
/// no built-in type for it. Used as the element type of bf16 <see cref="DeviceBuffer{T}"/>s.
/// </summary>
/// <remarks>
/// Conversion from <see cref="float"/> rounds to nearest, ties to even, overflows to infinity and keeps NaN a NaN
/// (sign and upper payload bits kept, quiet bit set). Conversion to <see cref="float"/> is exact.
/// <see cref="Equals(BFloat16)"/> follows <see cref="float.Equals(float)"/> (NaN equals NaN, +0 equals -0), while
/// the <c>==</c> operator follows IEEE 754 (NaN is unequal to everything).
/// </remarks>
public readonly struct BFloat16 : IEquatable<BFloat16>, IComparable<BFloat16>, IFormattable
{
    private readonly ushort _bits;

    private BFloat16(ushort bits) => _bits = bits;

    /// <summary>The raw bit pattern.</summary>
    public ushort Bits => _bits;

    /// <summary>Positive zero.</summary>
    public static BFloat16 Zero => new(0x0000);

    /// <summary>One.</summary>
    public static BFloat16 One => new(0x3F80);

    /// <summary>A quiet NaN.</summary>
    public static BFloat16 NaN => new(0x7FC0);

    /// <summary>Positive infinity.</summary>
    public static BFloat16 PositiveInfinity => new(0x7F80);

    /// <summary>Negative infinity.</summary>
    public static BFloat16 NegativeInfinity => new(0xFF80);

    /// <summary>The largest finite value, about 3.39e38.</summary>
    public static BFloat16 MaxValue => new(0x7F7F);

    /// <summary>The smallest positive normal value, 2^-126.</summary>
    public static BFloat16 MinNormal => new(0x0080);

    /// <summary>The difference between 1 and the next larger value, 2^-7.</summary>
    public static BFloat16 Epsilon => new(0x3C00);

    /// <summary>Creates a value from its raw bit pattern.</summary>
    /// <param name="bits">The 16-bit pattern.</param>
    /// <returns>The value with exactly these bits.</returns>
    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>Whether this value is a NaN.</summary>
    public bool IsNaN => (_bits & 0x7FFF) > 0x7F80;

    /// <summary>Whether this value is positive or negative infinity.</summary>
    public bool IsInfinity => (_bits & 0x7FFF) == 0x7F80;

    /// <summary>Whether this value is finite (not infinite, not NaN).</summary>
    public bool IsFinite => (_bits & 0x7F80) != 0x7F80;

    /// <summary>Converts a <see cref="float"/> with round-to-nearest-even; NaN stays NaN, overflow gives infinity.</summary>
    /// <param name="value">The value to convert.</param>
    public static explicit operator BFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
        {
            // NaN: truncate and force the quiet bit so a NaN whose payload sits in the low half stays a NaN.
            return new BFloat16((ushort)((bits >> 16) | 0x0040));
        }

        uint roundingBias = 0x7FFFu + ((bits >> 16) & 1u);
        return new BFloat16((ushort)((bits + roundingBias) >> 16));
    }

    /// <summary>Converts to <see cref="float"/> exactly.</summary>
    /// <param name="value">The value to convert.</param>
    public static explicit operator float(BFloat16 value) => BitConverter.UInt32BitsToSingle((uint)value._bits << 16);

    /// <summary>Converts to <see cref="double"/> exactly.</summary>
    /// <param name="value">The value to convert.</param>
    public static explicit operator double(BFloat16 value) => (float)value;

    /// <summary>IEEE equality: NaN is unequal to everything, +0 equals -0.</summary>
    /// <param name="left">The left operand.</param>
    /// <param name="right">The right operand.</param>
    /// <returns>Whether the values compare equal.</returns>
    public static bool operator ==(BFloat16 left, BFloat16 right) => (float)left == (float)right;

    /// <summary>IEEE inequality: NaN is unequal to everything, +0 equals -0.</summary>
    /// <param name="left">The left operand.</param>
    /// <param name="right">The right operand.</param>
    /// <returns>Whether the values compare unequal.</returns>
    public static bool operator !=(BFloat16 left, BFloat16 right) => (float)left != (float)right;

    /// <summary>IEEE less-than.</summary>
    /// <param name="left">The left operand.</param>
    /// <param name="right">The right operand.</param>
    /// <returns>Whether <paramref name="left"/> is less than <paramref name="right"/>.</returns>
    public static bool operator <(BFloat16 left, BFloat16 right) => (float)left < (float)right;

    /// <summary>IEEE greater-than.</summary>
    /// <param name="left">The left operand.</param>
    /// <param name="right">The right operand.</param>
    /// <returns>Whether <paramref name="left"/> is greater than <paramref name="right"/>.</returns>
    public static bool operator >(BFloat16 left, BFloat16 right) => (float)left > (float)right;

    /// <summary>IEEE less-than-or-equal.</summary>
    /// <param name="left">The left operand.</param>
    /// <param name="right">The right operand.</param>
    /// <returns>Whether <paramref name="left"/> is at most <paramref name="right"/>.</returns>
    public static bool operator <=(BFloat16 left, BFloat16 right) => (float)left <= (float)right;

    /// <summary>IEEE greater-than-or-equal.</summary>
    /// <param name="left">The left operand.</param>
    /// <param name="right">The right operand.</param>
    /// <returns>Whether <paramref name="left"/> is at least <paramref name="right"/>.</returns>
    public static bool operator >=(BFloat16 left, BFloat16 right) => (float)left >= (float)right;

    /// <summary>Equality like <see cref="float.Equals(float)"/>: NaN equals NaN, +0 equals -0.</summary>
    /// <param name="other">The value to compare with.</param>
    /// <returns>Whether the values are equal.</returns>
    public bool Equals(BFloat16 other) => ((float)this).Equals((float)other);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => ((float)this).GetHashCode();

    /// <summary>Total order like <see cref="float.CompareTo(float)"/> (NaN sorts first).</summary>
    /// <param name="other">The value to compare with.</param>
    /// <returns>Negative, zero or positive.</returns>
    public int CompareTo(BFloat16 other) => ((float)this).CompareTo((float)other);

    /// <inheritdoc/>
    public override string ToString() => ((float)this).ToString(CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public string ToString(string? format, IFormatProvider? formatProvider) => ((float)this).ToString(format, formatProvider);
}
