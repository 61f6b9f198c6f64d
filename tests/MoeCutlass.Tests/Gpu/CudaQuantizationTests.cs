using System.Globalization;
using MoeCutlass.Interop;
using MoeCutlass.Internal;

namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// The CUDA quantizers and conversions against the CPU reference on the same input bytes: the e4m3 codes and the
/// bit patterns of the fp32 scales (and every converted element) must be EQUAL, not merely close. Inputs are fp32,
/// bf16 and fp16 with a different kind of data per 128-wide scale block: zeros (signed), values near the dtype's
/// smallest subnormal, exact e4m3 codes and exact ties under a power-of-two scale, 24 binades within one block,
/// values crowding 448 after scaling (saturation), NaN/±inf (an infinite amax makes the block's finite values ±0 and
/// the infinities NaN), all-NaN blocks and values near the dtype's largest finite. Shapes have partial blocks at the
/// right and bottom edges, and one case per quantizer has more than 2^24 elements (an index computed in fp32 anywhere
/// would collide there).
/// </summary>
/// <remarks>
/// NaN is compared bit for bit too, deliberately: the conversions handle NaN only by bit manipulation (no arithmetic
/// ever produces one), so the payload and sign are deterministic, and the quantizers' one arithmetic NaN -- the
/// quotient inf / inf, whose sign differs between x86 and GPUs -- is mapped to 0x7F by rule on both backends.
/// Runs on the GPU machine (ignored without a device, failed with MOECUTLASS_REQUIRE_GPU=1).
/// </remarks>
[TestFixture, Category("Gpu"), NonParallelizable]
public sealed unsafe class CudaQuantizationTests : GpuTestBase
{
    private const int Block = 128;
    private const uint ScaleCanaryBits = 0xC2A5A5A5; // -82.8: negative, so never a scale
    private const byte ByteCanary = 0xA5;

    private static readonly DType[] InputDTypes = [DType.Float32, DType.BFloat16, DType.Float16];
    private static readonly DType[] AllDTypes = [DType.Float32, DType.BFloat16, DType.Float16, DType.Float8E4M3];

    private enum BlockKind
    {
        Zero,
        Tiny,
        ExactCodes,
        Ties,
        WideRange,
        Gaussian,
        NearSaturation,
        Specials,
        AllNaN,
        Huge,
    }

    private static IEnumerable<TestCaseData> ActivationCases()
    {
        foreach (var dtype in InputDTypes)
        {
            foreach (int rows in new[] { 1, 7, 129 })
            {
                foreach (int cols in new[] { 16, 144, 7168 + 16 })
                {
                    yield return new TestCaseData(dtype, rows, cols);
                }
            }
        }

        // More than 2^24 elements (16,818,176): fp32 index arithmetic would alias neighbouring elements here.
        yield return new TestCaseData(DType.BFloat16, 2053, 8192);
    }

    private static IEnumerable<TestCaseData> WeightCases()
    {
        foreach (var dtype in InputDTypes)
        {
            yield return new TestCaseData(dtype, 3, 136, 272);
            yield return new TestCaseData(dtype, 1, 8, 16);
            yield return new TestCaseData(dtype, 5, 520, 1040 + 16);
        }

        // More than 2^24 elements (16,842,752) over two experts; the second expert starts past 2^23.
        yield return new TestCaseData(DType.Float16, 2, 2056, 4096);
    }

    private static IEnumerable<TestCaseData> ConversionPairs()
    {
        foreach (var source in AllDTypes)
        {
            foreach (var destination in AllDTypes)
            {
                yield return new TestCaseData(source, destination);
            }
        }
    }

    [TestCaseSource(nameof(ActivationCases)), CancelAfter(300_000)]
    public void Activations_CudaEqualsCpu_BitForBit(DType dtype, int rows, int cols)
    {
        var random = NewRandom();
        int blocks = MoeContext.ScaleBlocks(cols);
        var input = InputData.Create(random, dtype, (long)rows * cols, rows * blocks, i => (int)(i / cols * blocks + i % cols / Block));

        using var cudaInput = input.Upload(Cuda);
        using var cpuInput = input.Upload(Cpu);
        using var cudaCodes = Canaried(Cuda, (long)rows * cols);
        using var cpuCodes = Canaried(Cpu, (long)rows * cols);
        using var cudaScales = CanariedScales(Cuda, rows * blocks);
        using var cpuScales = CanariedScales(Cpu, rows * blocks);
        Cuda.QuantizeActivations(cudaInput, rows, cols, cudaCodes, cudaScales);
        Cpu.QuantizeActivations(cpuInput, rows, cols, cpuCodes, cpuScales);

        string Element(long i) => $"row {i / cols} col {i % cols} (input {input.Describe(i)})";
        string ScaleBlock(long i) => $"row {i / blocks} block {i % blocks} ({input.Kind((int)i)})";
        AssertEqualCodes(cudaCodes.ToArray(), cpuCodes.ToArray(), Element);
        AssertEqualScales(cudaScales.ToArray(), cpuScales.ToArray(), ScaleBlock);
    }

    [TestCaseSource(nameof(WeightCases)), CancelAfter(300_000)]
    public void Weights_CudaEqualsCpu_BitForBit(DType dtype, int experts, int n, int k)
    {
        var random = NewRandom();
        int nb = MoeContext.ScaleBlocks(n);
        int kb = MoeContext.ScaleBlocks(k);
        long count = (long)experts * n * k;
        int BlockOf(long i)
        {
            long column = i % k;
            long row = i / k % n;
            long expert = i / ((long)n * k);
            return (int)((expert * nb + row / Block) * kb + column / Block);
        }

        var input = InputData.Create(random, dtype, count, experts * nb * kb, BlockOf);
        using var cudaInput = input.Upload(Cuda);
        using var cpuInput = input.Upload(Cpu);
        using var cudaCodes = Canaried(Cuda, count);
        using var cpuCodes = Canaried(Cpu, count);
        using var cudaScales = CanariedScales(Cuda, experts * nb * kb);
        using var cpuScales = CanariedScales(Cpu, experts * nb * kb);
        Cuda.QuantizeWeights(cudaInput, experts, n, k, cudaCodes, cudaScales);
        Cpu.QuantizeWeights(cpuInput, experts, n, k, cpuCodes, cpuScales);

        string Element(long i) =>
            $"expert {i / ((long)n * k)} row {i / k % n} col {i % k} (input {input.Describe(i)})";
        string ScaleBlock(long i) =>
            $"expert {i / ((long)nb * kb)} block ({i / kb % nb}, {i % kb}) ({input.Kind((int)i)})";
        AssertEqualCodes(cudaCodes.ToArray(), cpuCodes.ToArray(), Element);
        AssertEqualScales(cudaScales.ToArray(), cpuScales.ToArray(), ScaleBlock);
    }

    /// <summary>All 16 dtype pairs (same dtype: a bit copy) over every e4m3 code, every bf16/fp16 bit pattern, fp32 specials and random bits.</summary>
    [TestCaseSource(nameof(ConversionPairs)), CancelAfter(120_000)]
    public void Convert_CudaEqualsCpu_BitForBit(DType source, DType destination)
    {
        var random = NewRandom();
        byte[] input = ConversionInput(random, source);
        long count = input.Length / Size(source);
        using var cudaSource = Cuda.Upload<byte>(input);
        using var cpuSource = Cpu.Upload<byte>(input);
        using var cudaOutput = Canaried(Cuda, count * Size(destination));
        using var cpuOutput = Canaried(Cpu, count * Size(destination));
        Cuda.Convert(cudaSource, source, cudaOutput, destination, count);
        Cpu.Convert(cpuSource, source, cpuOutput, destination, count);
        AssertEqualElements(cudaOutput.ToArray(), cpuOutput.ToArray(), input, source, destination);
    }

    /// <summary>
    /// Slices at every element offset (mc_convert_async needs only element alignment): the vector path's head and tail
    /// and the scalar fallback when source and destination cannot be aligned together; bytes around the slice stay untouched.
    /// </summary>
    [TestCaseSource(nameof(ConversionPairs)), CancelAfter(120_000)]
    public void Convert_UnalignedSlices_CudaEqualsCpu(DType source, DType destination)
    {
        var random = NewRandom();
        const int MaxCount = 1029;
        const int Slack = 8;
        byte[] input = new byte[(MaxCount + Slack) * Size(source)];
        random.NextBytes(input);
        using var cudaSource = Cuda.Upload<byte>(input);
        using var cpuSource = Cpu.Upload<byte>(input);
        using var cudaOutput = Cuda.Allocate<byte>((MaxCount + Slack) * Size(destination));
        using var cpuOutput = Cpu.Allocate<byte>((MaxCount + Slack) * Size(destination));
        foreach (int count in new[] { 1, 3, 8, 17, MaxCount })
        {
            for (int sourceOffset = 0; sourceOffset < 4; sourceOffset++)
            {
                for (int destinationOffset = 0; destinationOffset < 4; destinationOffset++)
                {
                    cudaOutput.Fill(ByteCanary);
                    cpuOutput.Fill(ByteCanary);
                    RawConvert(Cuda, cudaSource, sourceOffset * Size(source), source, cudaOutput, destinationOffset * Size(destination),
                        destination, count);
                    RawConvert(Cpu, cpuSource, sourceOffset * Size(source), source, cpuOutput, destinationOffset * Size(destination),
                        destination, count);
                    byte[] got = cudaOutput.ToArray();
                    byte[] expected = cpuOutput.ToArray();
                    if (!got.AsSpan().SequenceEqual(expected))
                    {
                        int first = got.AsSpan().CommonPrefixLength(expected);
                        Assert.Fail($"count {count}, source offset {sourceOffset}, destination offset {destinationOffset}: first differing " +
                            $"destination byte {first} (element {first / Size(destination) - destinationOffset}): CUDA 0x{got[first]:x2}, CPU 0x{expected[first]:x2}");
                    }
                }
            }
        }
    }

    [Test, CancelAfter(60_000)]
    public void ZeroSizedWork_LaunchesNothingAndWritesNothing()
    {
        using var input = Cuda.Upload<float>(new float[256]);
        using var codes = Canaried(Cuda, 256);
        using var scales = CanariedScales(Cuda, 2);
        Cuda.QuantizeActivations(input, 0, 128, codes, scales);
        Cuda.Convert(input, DType.Float32, codes, DType.Float8E4M3, 0);
        Cuda.Synchronize();
        Assert.That(codes.ToArray(), Is.All.EqualTo(ByteCanary));
        Assert.That(scales.ToArray().Select(BitConverter.SingleToUInt32Bits), Is.All.EqualTo(ScaleCanaryBits));
    }

    private static void RawConvert(MoeContext context, DeviceBuffer source, int sourceByteOffset, DType sourceType, DeviceBuffer destination,
        int destinationByteOffset, DType destinationType, long count)
    {
        using var lease = context.Lease();
        NativeStatus.Check(NativeMethods.mc_convert_async(lease.Raw, (void*)(source.Pointer + sourceByteOffset), (int)sourceType,
            (void*)(destination.Pointer + destinationByteOffset), (int)destinationType, count, 0));
    }

    private static DeviceBuffer<byte> Canaried(MoeContext context, long bytes)
    {
        var buffer = context.Allocate<byte>(bytes);
        buffer.Fill(ByteCanary);
        return buffer;
    }

    private static DeviceBuffer<float> CanariedScales(MoeContext context, long count)
    {
        var buffer = context.Allocate<float>(count);
        buffer.Fill(BitConverter.UInt32BitsToSingle(ScaleCanaryBits));
        return buffer;
    }

    private static int Size(DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        DType.BFloat16 or DType.Float16 => 2,
        _ => 1,
    };

    private static void AssertEqualCodes(byte[] cuda, byte[] cpu, Func<long, string> where)
    {
        Assert.That(cuda, Has.Length.EqualTo(cpu.Length));
        if (cuda.AsSpan().SequenceEqual(cpu))
        {
            return;
        }

        var lines = new List<string>();
        long mismatches = 0;
        for (long i = 0; i < cuda.LongLength; i++)
        {
            if (cuda[i] != cpu[i] && ++mismatches <= 10)
            {
                lines.Add($"  {where(i)}: CUDA 0x{cuda[i]:x2}, CPU 0x{cpu[i]:x2}");
            }
        }

        Assert.Fail($"{mismatches} of {cuda.LongLength} e4m3 codes differ (0x{ByteCanary:x2} = never written); first:\n{string.Join('\n', lines)}");
    }

    private static void AssertEqualScales(float[] cuda, float[] cpu, Func<long, string> where)
    {
        Assert.That(cuda, Has.Length.EqualTo(cpu.Length));
        var lines = new List<string>();
        long mismatches = 0;
        for (long i = 0; i < cuda.LongLength; i++)
        {
            uint got = BitConverter.SingleToUInt32Bits(cuda[i]);
            uint expected = BitConverter.SingleToUInt32Bits(cpu[i]);
            if (got != expected && ++mismatches <= 10)
            {
                lines.Add(string.Create(CultureInfo.InvariantCulture,
                    $"  {where(i)}: CUDA 0x{got:x8} ({cuda[i]:R}), CPU 0x{expected:x8} ({cpu[i]:R})"));
            }
        }

        if (mismatches != 0)
        {
            Assert.Fail($"{mismatches} of {cuda.LongLength} scales differ (0x{ScaleCanaryBits:x8} = never written); first:\n{string.Join('\n', lines)}");
        }
    }

    private static void AssertEqualElements(byte[] cuda, byte[] cpu, byte[] input, DType source, DType destination)
    {
        Assert.That(cuda, Has.Length.EqualTo(cpu.Length));
        if (cuda.AsSpan().SequenceEqual(cpu))
        {
            return;
        }

        int inSize = Size(source);
        int outSize = Size(destination);
        var lines = new List<string>();
        long mismatches = 0;
        for (int element = 0; element < cuda.Length / outSize; element++)
        {
            var got = cuda.AsSpan(element * outSize, outSize);
            var expected = cpu.AsSpan(element * outSize, outSize);
            if (!got.SequenceEqual(expected) && ++mismatches <= 10)
            {
                lines.Add($"  element {element}: input {Hex(input.AsSpan(element * inSize, inSize))}, CUDA {Hex(got)}, CPU {Hex(expected)}");
            }
        }

        Assert.Fail($"{source} -> {destination}: {mismatches} of {cuda.Length / outSize} elements differ; first (little-endian hex):\n{string.Join('\n', lines)}");
    }

    private static string Hex(ReadOnlySpan<byte> bytes)
    {
        var text = new System.Text.StringBuilder("0x");
        for (int i = bytes.Length - 1; i >= 0; i--)
        {
            text.Append(bytes[i].ToString("x2", CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    /// <summary>Raw input bytes of <paramref name="dtype"/>, with every code / bit pattern where the dtype is small, and odd lengths.</summary>
    private static byte[] ConversionInput(Random random, DType dtype)
    {
        var bytes = new List<byte>();
        switch (dtype)
        {
            case DType.Float8E4M3:
                for (int repeat = 0; repeat < 4; repeat++)
                {
                    for (int code = 0; code < 256; code++)
                    {
                        bytes.Add((byte)code);
                    }
                }

                AddRandom(random, bytes, 1003);
                break;
            case DType.BFloat16:
            case DType.Float16:
                for (int bits = 0; bits < 65536; bits++)
                {
                    bytes.Add((byte)bits);
                    bytes.Add((byte)(bits >> 8));
                }

                AddRandom(random, bytes, 2 * 4099);
                break;
            default:
                foreach (uint bits in Float32Specials(random))
                {
                    bytes.AddRange(BitConverter.GetBytes(bits));
                }

                AddRandom(random, bytes, 4 * 50_001);
                break;
        }

        return [.. bytes];
    }

    private static void AddRandom(Random random, List<byte> bytes, int count)
    {
        var extra = new byte[count];
        random.NextBytes(extra);
        bytes.AddRange(extra);
    }

    /// <summary>fp32 bit patterns on and around every rounding and range boundary of bf16, fp16 and e4m3.</summary>
    private static IEnumerable<uint> Float32Specials(Random random)
    {
        uint[] fixedBits =
        [
            0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF,
            0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FBFFFFF, 0x7FFFFFFF, 0xFFFFFFFF,
            0x7F7F8000, 0x7F7F7FFF, 0x7F7FC000, // bf16: overflow tie to infinity, just below, above
            0x477FE000, 0x477FEFFF, 0x477FF000, 0x477FF001, 0x47800000, // fp16: 65504, below/at/above the 65520 overflow tie
            0x33000000, 0x33000001, 0x33400000, 0x337FFFFF, 0x387FC000, 0x38800000, // fp16 subnormal ties and boundaries
            0x43E00000, 0x43E7FFFF, 0x43E80000, 0x43F00000, 0x43DFFFFF, // e4m3: 448, up to the 464 midpoint, 480, below 448
            0x3A800000, 0x3A800001, 0x3B400000, 0x3C7FFFFF, 0x3C800000, 0x3C780000, // e4m3 subnormal ties, 2^-6 boundary
        ];
        foreach (uint bits in fixedBits)
        {
            yield return bits;
        }

        // Exact ties and their neighbours for every finite e4m3 interval, and bf16/fp16 tie patterns at random exponents.
        for (int code = 0; code < 0x7E; code++)
        {
            float low = (float)Numerics.DecodeE4M3((byte)code);
            float high = (float)Numerics.DecodeE4M3((byte)(code + 1));
            uint mid = BitConverter.SingleToUInt32Bits((low + high) / 2);
            yield return mid;
            yield return mid + 1;
            yield return mid - 1;
            yield return mid | 0x80000000;
        }

        for (int i = 0; i < 2000; i++)
        {
            uint exponent = (uint)random.Next(1, 255) << 23;
            uint sign = (uint)random.Next(2) << 31;
            uint mantissa = (uint)random.Next(1 << 23);
            yield return sign | exponent | (mantissa & 0x7F0000) | 0x8000; // bf16 tie
            yield return sign | exponent | (mantissa & 0x7FE000) | 0x1000; // fp16 tie (normal range)
            yield return sign | exponent | mantissa;
        }
    }

    /// <summary>A quantizer input: the same bits are uploaded to both contexts.</summary>
    private sealed class InputData
    {
        private readonly float[]? _float32;
        private readonly BFloat16[]? _bfloat16;
        private readonly Half[]? _float16;
        private readonly BlockKind[] _kinds;
        private readonly Func<long, int> _blockOf;

        private InputData(float[]? float32, BFloat16[]? bfloat16, Half[]? float16, BlockKind[] kinds, Func<long, int> blockOf)
        {
            _float32 = float32;
            _bfloat16 = bfloat16;
            _float16 = float16;
            _kinds = kinds;
            _blockOf = blockOf;
        }

        public static InputData Create(Random random, DType dtype, long count, int blockCount, Func<long, int> blockOf)
        {
            // Kinds cycle so that every small shape gets all of them; the exponents are random per block.
            var kinds = new BlockKind[blockCount];
            var exponents = new int[blockCount];
            int kindCount = Enum.GetValues<BlockKind>().Length;
            int offset = random.Next(kindCount);
            for (int b = 0; b < blockCount; b++)
            {
                kinds[b] = (BlockKind)((b + offset) % kindCount);
                exponents[b] = random.Next(-10, 6);
            }

            var values = new float[count];
            for (long i = 0; i < count; i++)
            {
                int block = blockOf(i);
                values[i] = Draw(random, dtype, kinds[block], exponents[block]);
            }

            return dtype switch
            {
                DType.Float32 => new InputData(values, null, null, kinds, blockOf),
                DType.BFloat16 => new InputData(null, Array.ConvertAll(values, v => (BFloat16)v), null, kinds, blockOf),
                DType.Float16 => new InputData(null, null, Array.ConvertAll(values, v => (Half)v), kinds, blockOf),
                _ => throw new ArgumentOutOfRangeException(nameof(dtype)),
            };
        }

        public DeviceBuffer Upload(MoeContext context) =>
            _float32 is not null ? context.Upload<float>(_float32)
            : _bfloat16 is not null ? context.Upload<BFloat16>(_bfloat16)
            : context.Upload<Half>(_float16!);

        public string Kind(int block) => block < _kinds.Length ? _kinds[block].ToString() : "?";

        public string Describe(long i)
        {
            string value = _float32 is not null ? $"0x{BitConverter.SingleToUInt32Bits(_float32[i]):x8}"
                : _bfloat16 is not null ? $"0x{_bfloat16[i].Bits:x4}"
                : $"0x{BitConverter.HalfToUInt16Bits(_float16![i]):x4}";
            return $"{value}, block kind {_kinds[_blockOf(i)]}";
        }

        private static float Draw(Random random, DType dtype, BlockKind kind, int exponent)
        {
            float sign = random.Next(2) == 0 ? 1f : -1f;
            switch (kind)
            {
                case BlockKind.Zero:
                    return sign * 0f;
                case BlockKind.Tiny:
                    {
                        // A few units of the dtype's smallest subnormal: the scale itself underflows (to 0, then 1) or is subnormal.
                        int smallest = dtype switch { DType.Float16 => -24, DType.BFloat16 => -133, _ => -149 };
                        return sign * MathF.ScaleB(random.Next(64), smallest + random.Next(6));
                    }

                case BlockKind.ExactCodes:
                case BlockKind.Ties:
                    {
                        // With one element of 448 * 2^e in the block the scale is exactly 2^e, so x / scale is the code itself,
                        // or the exact midpoint of two neighbouring codes (round half to even).
                        if (random.Next(128) == 0)
                        {
                            return sign * MathF.ScaleB(448f, exponent);
                        }

                        int code = random.Next(0x7E);
                        float low = (float)Numerics.DecodeE4M3((byte)code);
                        float value = kind == BlockKind.Ties ? (low + (float)Numerics.DecodeE4M3((byte)(code + 1))) / 2 : low;
                        return sign * MathF.ScaleB(value, exponent);
                    }

                case BlockKind.WideRange:
                    return sign * MathF.ScaleB(1f + random.NextSingle(), exponent - random.Next(25));
                case BlockKind.Gaussian:
                    return MathF.ScaleB((float)Numerics.Gaussian(random), exponent);
                case BlockKind.NearSaturation:
                    // Every value within 3% of the block maximum: quotients crowd 448, some a rounding error above it.
                    return sign * MathF.ScaleB(1f - (0.03f * random.NextSingle()), exponent);
                case BlockKind.Specials:
                    {
                        int pick = random.Next(40);
                        return pick switch
                        {
                            0 => float.PositiveInfinity,
                            1 => float.NegativeInfinity,
                            2 => float.NaN,
                            3 => -float.NaN,
                            _ => sign * MathF.ScaleB(1f + random.NextSingle(), exponent - random.Next(8)),
                        };
                    }

                case BlockKind.AllNaN:
                    return random.Next(2) == 0 ? float.NaN : -float.NaN;
                default:
                    {
                        // Up to the dtype's largest finite value: amax / 448 and x / scale far from 1.
                        float top = dtype switch { DType.Float16 => 65504f, DType.BFloat16 => 3.3e38f, _ => float.MaxValue };
                        return sign * top * (0.5f + (0.5f * random.NextSingle()));
                    }
            }
        }
    }
}
