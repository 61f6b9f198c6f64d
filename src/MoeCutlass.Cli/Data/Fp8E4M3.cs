namespace MoeCutlass.Cli.Data;

/// <summary>
/// Managed decoding of OCP FP8 E4M3 ("e4m3fn", as in CUDA's __nv_fp8_e4m3): 1 sign, 4 exponent bits
/// (bias 7), 3 mantissa bits, no infinities, S.1111.111 is NaN, largest finite 448. Written from the format
/// definition so the managed reference does not depend on the library's own conversion.
/// </summary>
internal static class Fp8E4M3
{
    private static readonly double[] Table = BuildTable();

    /// <summary>The exact value of an e4m3 byte.</summary>
    public static double ToDouble(byte bits) => Table[bits];

    private static double[] BuildTable()
    {
        double[] table = new double[256];
        for (int bits = 0; bits < 256; bits++)
        {
            int sign = bits >> 7;
            int exponent = (bits >> 3) & 0xF;
            int mantissa = bits & 0x7;
            double magnitude;
            if (exponent == 0xF && mantissa == 0x7)
            {
                magnitude = double.NaN;
            }
            else if (exponent == 0)
            {
                magnitude = mantissa / 8.0 * Math.Pow(2, -6); // subnormal
            }
            else
            {
                magnitude = (1 + (mantissa / 8.0)) * Math.Pow(2, exponent - 7);
            }

            table[bits] = sign == 1 ? -magnitude : magnitude;
        }

        return table;
    }
}
