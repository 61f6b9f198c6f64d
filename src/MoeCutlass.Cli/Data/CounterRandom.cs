using System.Runtime.CompilerServices;

namespace MoeCutlass.Cli.Data;

/// <summary>
/// A counter-based generator: value i of a stream is a pure function of (stream seed, i), so data can be
/// generated in parallel, in any chunking, and is identical from run to run and machine to machine.
/// Uses the SplitMix64 finalizer (Steele, Lea, Flood 2014), which passes BigCrush as a counter hash.
/// </summary>
internal static class CounterRandom
{
    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    /// <summary>A 64-bit hash of (<paramref name="seed"/>, <paramref name="counter"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Hash(ulong seed, ulong counter)
    {
        ulong z = seed + ((counter + 1) * Golden);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [-1, 1) with 24 random bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SignedUnit(ulong seed, ulong counter) =>
        ((Hash(seed, counter) >> 40) * (1.0f / (1 << 23))) - 1.0f;

    /// <summary>A seed for an independent sub-stream (e.g. one tensor of one case).</summary>
    public static ulong Derive(ulong seed, string label)
    {
        // FNV-1a over the label: stable across processes (string.GetHashCode is randomized per process).
        ulong h = 0xCBF29CE484222325UL;
        foreach (char c in label)
        {
            h = (h ^ c) * 0x100000001B3UL;
        }

        return Hash(seed, h);
    }
}
