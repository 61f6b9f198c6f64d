using System.Diagnostics;
using System.Globalization;

namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// One grouped-GEMM correctness case: N, K, how the rows per expert are drawn (from the test's seeded random), and the
/// rows before offsets[0] and after offsets[E] that belong to no expert.
/// </summary>
/// <param name="Name">The case's name in test names.</param>
/// <param name="N">Output columns per expert.</param>
/// <param name="K">Reduction depth.</param>
/// <param name="RowsPerExpert">Draws the rows of every expert (the array length is E).</param>
/// <param name="LeadingRows">Rows before offsets[0] (offsets[0] = LeadingRows).</param>
/// <param name="TrailingRows">Rows of the run after offsets[E].</param>
public sealed record GemmCase(string Name, int N, int K, Func<Random, int[]> RowsPerExpert, int LeadingRows = 0, int TrailingRows = 0)
{
    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>Rows-per-expert lists for the cases.</summary>
internal static class RowLists
{
    /// <summary>The edge list: empty, single, sub-tile, tile-aligned and tile+1 experts, and a large one.</summary>
    public static int[] Edges() => [0, 1, 7, 8, 33, 127, 128, 129, 1000];

    /// <summary>Every expert draws its rows uniformly from min .. max (inclusive).</summary>
    public static int[] Uniform(Random random, int experts, int min, int max) =>
        Enumerable.Range(0, experts).Select(_ => random.Next(min, max + 1)).ToArray();

    /// <summary>
    /// Skewed routing: <paramref name="emptyFraction"/> of the experts get no rows; the others, in random positions, get
    /// a zipf-like share: the i-th busiest has about head / i^exponent rows (at least 1).
    /// </summary>
    public static int[] Skewed(Random random, int experts, double emptyFraction, int head, double exponent = 1.1)
    {
        int active = Math.Max(1, (int)Math.Round(experts * (1 - emptyFraction)));
        int[] order = Enumerable.Range(0, experts).ToArray();
        random.Shuffle(order);
        var rows = new int[experts];
        for (int i = 0; i < active; i++)
        {
            rows[order[i]] = Math.Max(1, (int)Math.Round(head / Math.Pow(i + 1, exponent)));
        }

        return rows;
    }
}

/// <summary>
/// A grouped-GEMM problem held on the host: e4m3 A [rows, K] with fp32 scales [rows, ceil(K/128)], e4m3 B [E, N, K]
/// with fp32 scales [E, ceil(N/128), ceil(K/128)], and the expert offsets. The bytes come from the CPU context's
/// quantizers, so GPU tests that upload them do not depend on the GPU quantizer.
/// </summary>
/// <remarks>
/// The fp32 inputs are uniform in [-1, 1) times a random power of two in [2^-4, 2^4] that differs per (row, 128-column
/// block) of A and per (expert, 128-row band, 128-column block) of B: every scale differs from its neighbours, so a
/// kernel that reads a wrong scale (wrong row, band, K block or expert) is off by a large factor, not by rounding.
/// </remarks>
internal sealed class GemmProblem
{
    /// <summary>A NaN of both bf16 and fp16 that no kernel produces (their default NaNs are 0x7FC0 and 0x7E00).</summary>
    public const ushort Canary = 0x7FA5;

    /// <summary>Rows of D after the run's rows (the buffer's extra capacity) that must keep the canary.</summary>
    public const int DefaultGuardRows = 40;

    /// <summary>The scale block: 1x128 for A, 128x128 for B.</summary>
    private const int ScaleBlock = 128;

    /// <summary>fp32 weight elements quantized per CPU call, to bound host memory for ~1 GB weight stacks.</summary>
    public const long DefaultWeightChunkElements = 64L << 20;

    private GemmProblem(int n, int k, int[] rowsPerExpert, int[] offsets, int rows, int capacityRows, byte[] a, float[] aScales,
        byte[] b, float[] bScales)
    {
        N = n;
        K = k;
        RowsPerExpert = rowsPerExpert;
        Offsets = offsets;
        Rows = rows;
        CapacityRows = capacityRows;
        A = a;
        AScales = aScales;
        B = b;
        BScales = bScales;
    }

    public int Experts => RowsPerExpert.Length;

    public int N { get; }

    public int K { get; }

    public int KBlocks => MoeContext.ScaleBlocks(K);

    public int NBlocks => MoeContext.ScaleBlocks(N);

    /// <summary>Rows of each expert (offsets[e+1] - offsets[e]).</summary>
    public int[] RowsPerExpert { get; }

    /// <summary>The E+1 expert offsets.</summary>
    public int[] Offsets { get; }

    /// <summary>The rows passed to Run (capacity of A; leading + expert + trailing rows).</summary>
    public int Rows { get; }

    /// <summary>Rows of the D allocation: <see cref="Rows"/> plus the guard rows; also the plans' MaxRows.</summary>
    public int CapacityRows { get; }

    /// <summary>e4m3 [Rows, K].</summary>
    public byte[] A { get; }

    /// <summary>fp32 [Rows, ceil(K/128)].</summary>
    public float[] AScales { get; }

    /// <summary>e4m3 [E, N, K].</summary>
    public byte[] B { get; }

    /// <summary>fp32 [E, ceil(N/128), ceil(K/128)].</summary>
    public float[] BScales { get; }

    /// <summary>Rows that belong to an expert.</summary>
    public long RealRows => Offsets[Experts] - Offsets[0];

    /// <summary>Floating-point operations of one run (real rows only), the cost of the CPU reference.</summary>
    public double Flops => 2.0 * RealRows * N * K;

    /// <summary>Options of a plan for this problem (MaxRows = the D capacity, larger than the rows of a run).</summary>
    public GroupedGemmOptions Options(DType outputDType, GemmStrategy strategy) =>
        new(Experts, N, K, outputDType, strategy, CapacityRows);

    /// <summary>Draws and quantizes a problem on the CPU context.</summary>
    /// <param name="cpu">A CPU context (its quantizers make the e4m3 bytes and scales).</param>
    /// <param name="random">The test's seeded random; everything drawn follows from it.</param>
    /// <param name="n">N.</param>
    /// <param name="k">K.</param>
    /// <param name="rowsPerExpert">Rows of each expert (E = its length).</param>
    /// <param name="leadingRows">Rows before offsets[0].</param>
    /// <param name="trailingRows">Rows of the run after offsets[E].</param>
    /// <param name="guardRows">Rows of D after the run's rows.</param>
    /// <param name="weightChunkElements">fp32 weight elements generated and quantized per CPU call (whole experts, at least one).</param>
    public static GemmProblem Create(MoeContext cpu, Random random, int n, int k, int[] rowsPerExpert, int leadingRows = 0,
        int trailingRows = 0, int guardRows = DefaultGuardRows, long weightChunkElements = DefaultWeightChunkElements)
    {
        Assert.That(cpu.Backend, Is.EqualTo(Backend.Cpu), "problems are quantized on the CPU reference context");
        int experts = rowsPerExpert.Length;
        var offsets = new int[experts + 1];
        offsets[0] = leadingRows;
        for (int e = 0; e < experts; e++)
        {
            offsets[e + 1] = checked(offsets[e] + rowsPerExpert[e]);
        }

        int rows = checked(offsets[experts] + trailingRows);
        ulong activationSeed = (ulong)random.NextInt64();
        ulong weightSeed = (ulong)random.NextInt64();
        var (a, aScales) = QuantizedActivations(cpu, activationSeed, rows, k);
        var (b, bScales) = QuantizedWeights(cpu, weightSeed, experts, n, k, weightChunkElements);
        return new GemmProblem(n, k, rowsPerExpert, offsets, rows, checked(rows + guardRows), a, aScales, b, bScales);
    }

    /// <summary>The same weights, offsets and rows with freshly drawn activations.</summary>
    public GemmProblem WithNewActivations(MoeContext cpu, Random random)
    {
        var (a, aScales) = QuantizedActivations(cpu, (ulong)random.NextInt64(), Rows, K);
        return new GemmProblem(N, K, RowsPerExpert, Offsets, Rows, CapacityRows, a, aScales, B, BScales);
    }

    /// <summary>The same data with other (valid) offsets over the same rows.</summary>
    public GemmProblem WithOffsets(int[] offsets)
    {
        Assert.That(offsets, Has.Length.EqualTo(Experts + 1));
        Assert.That(offsets[0], Is.GreaterThanOrEqualTo(0));
        Assert.That(offsets[Experts], Is.LessThanOrEqualTo(Rows));
        var rowsPerExpert = new int[Experts];
        for (int e = 0; e < Experts; e++)
        {
            rowsPerExpert[e] = offsets[e + 1] - offsets[e];
            Assert.That(rowsPerExpert[e], Is.GreaterThanOrEqualTo(0), "offsets must be monotonic");
        }

        return new GemmProblem(N, K, rowsPerExpert, (int[])offsets.Clone(), Rows, CapacityRows, A, AScales, B, BScales);
    }

    /// <summary>
    /// The CPU reference: the CPU context's grouped-GEMM plan (double accumulation, one rounding) on the same bytes.
    /// Returns D [CapacityRows, N] as raw bf16/fp16 bits (rows outside the experts hold the canary).
    /// </summary>
    public ushort[] Reference(MoeContext cpu, DType outputDType)
    {
        Assert.That(cpu.Backend, Is.EqualTo(Backend.Cpu));
        var watch = Stopwatch.StartNew();
        using var operands = new GemmOperands(cpu, this);
        using var plan = cpu.CreateGroupedGemmPlan(Options(outputDType, GemmStrategy.Single));
        double uploadSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        operands.Run(plan);
        double runSeconds = watch.Elapsed.TotalSeconds;
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"CPU reference {outputDType}: {Flops / 1e9:F2} GFLOP in {runSeconds:F2} s ({Flops / 1e9 / Math.Max(runSeconds, 1e-9):F0} GFLOP/s), copy {uploadSeconds:F2} s"));
        return operands.ReadOutput();
    }

    /// <inheritdoc/>
    public override string ToString()
    {
        int empty = RowsPerExpert.Count(r => r == 0);
        string rows = Experts <= 16 ? "[" + string.Join(", ", RowsPerExpert) + "]" : $"{empty} of {Experts} experts empty, max {RowsPerExpert.Max()}";
        return string.Create(CultureInfo.InvariantCulture,
            $"E={Experts} N={N} K={K} rows={Rows} (offsets {Offsets[0]}..{Offsets[Experts]}, capacity {CapacityRows}) rows per expert {rows}; " +
            $"{Flops / 1e9:F2} GFLOP, weights {B.LongLength / 1e6:F0} MB");
    }

    private static (byte[] Codes, float[] Scales) QuantizedActivations(MoeContext cpu, ulong seed, int rows, int k)
    {
        int kBlocks = MoeContext.ScaleBlocks(k);
        if (rows == 0)
        {
            return ([], []);
        }

        var values = new float[(long)rows * k];
        Parallel.For(0, rows, r =>
        {
            var rng = new SplitMix64(seed, (ulong)r);
            Span<float> factors = stackalloc float[kBlocks];
            for (int kb = 0; kb < kBlocks; kb++)
            {
                factors[kb] = rng.NextPowerOfTwo(-4, 4);
            }

            var row = values.AsSpan((int)((long)r * k), k);
            for (int c = 0; c < k; c++)
            {
                row[c] = rng.NextSigned() * factors[c / ScaleBlock];
            }
        });

        using var input = cpu.Upload<float>(values);
        using var codes = cpu.Allocate<byte>((long)rows * k);
        using var scales = cpu.Allocate<float>((long)rows * kBlocks);
        cpu.QuantizeActivations(input, rows, k, codes, scales);
        return (codes.ToArray(), scales.ToArray());
    }

    private static (byte[] Codes, float[] Scales) QuantizedWeights(MoeContext cpu, ulong seed, int experts, int n, int k, long chunkElements)
    {
        int nBlocks = MoeContext.ScaleBlocks(n);
        int kBlocks = MoeContext.ScaleBlocks(k);
        long perExpert = (long)n * k;
        long perExpertScales = (long)nBlocks * kBlocks;
        var codes = new byte[experts * perExpert];
        var scales = new float[experts * perExpertScales];
        int chunkExperts = (int)Math.Clamp(chunkElements / perExpert, 1, experts);
        var values = new float[chunkExperts * perExpert];
        using var input = cpu.Allocate<float>(values.LongLength);
        using var chunkCodes = cpu.Allocate<byte>(values.LongLength);
        using var chunkScales = cpu.Allocate<float>(chunkExperts * perExpertScales);
        for (int first = 0; first < experts; first += chunkExperts)
        {
            int count = Math.Min(chunkExperts, experts - first);
            int firstExpert = first;
            // One task per (expert, 128-row band): the band draws its K-block magnitudes, then its values.
            Parallel.For(0, count * nBlocks, task =>
            {
                int local = task / nBlocks;
                int band = task % nBlocks;
                var rng = new SplitMix64(seed, (ulong)((long)(firstExpert + local) * nBlocks + band));
                Span<float> factors = stackalloc float[kBlocks];
                for (int kb = 0; kb < kBlocks; kb++)
                {
                    factors[kb] = rng.NextPowerOfTwo(-4, 4);
                }

                int rowEnd = Math.Min(n, (band + 1) * ScaleBlock);
                for (int r = band * ScaleBlock; r < rowEnd; r++)
                {
                    var row = values.AsSpan((int)(local * perExpert + (long)r * k), k);
                    for (int c = 0; c < k; c++)
                    {
                        row[c] = rng.NextSigned() * factors[c / ScaleBlock];
                    }
                }
            });

            int elements = (int)(count * perExpert);
            input.CopyFrom(values.AsSpan(0, elements));
            cpu.QuantizeWeights(input, count, n, k, chunkCodes, chunkScales);
            chunkCodes.CopyTo(codes.AsSpan((int)(first * perExpert), elements));
            chunkScales.CopyTo(scales.AsSpan((int)(first * perExpertScales), (int)(count * perExpertScales)));
        }

        return (codes, scales);
    }

    /// <summary>A small, fast, splittable generator (SplitMix64): one independent stream per row or band.</summary>
    private struct SplitMix64(ulong seed, ulong stream)
    {
        private ulong _state = seed ^ (stream * 0xD1B54A32D192ED03UL) ^ 0x5851F42D4C957F2DUL;

        private ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in [-1, 1) with 24 random bits (exact in fp32).</summary>
        public float NextSigned() => (Next() >> 40) * (1f / (1 << 23)) - 1f;

        /// <summary>2^e for e uniform in min .. max.</summary>
        public float NextPowerOfTwo(int min, int max) => MathF.ScaleB(1f, min + (int)((Next() >> 33) % (ulong)(max - min + 1)));
    }
}

/// <summary>A problem's operands in one context's memory (CUDA or CPU), with D pre-filled with the canary.</summary>
internal sealed class GemmOperands : IDisposable
{
    /// <param name="context">Where to allocate.</param>
    /// <param name="problem">The problem to upload (the same bytes on every context).</param>
    /// <param name="frontGuardRows">Rows of D before row 0 of the run: Run then passes a pointer into D, and rows before it
    /// must keep the canary.</param>
    public GemmOperands(MoeContext context, GemmProblem problem, int frontGuardRows = 0)
    {
        Context = context;
        Problem = problem;
        FrontGuardRows = frontGuardRows;
        int allocatedRows = Math.Max(problem.Rows, 1);
        try
        {
            A = context.Allocate<byte>((long)allocatedRows * problem.K);
            AScales = context.Allocate<float>((long)allocatedRows * problem.KBlocks);
            UploadActivations(problem);
            B = context.Upload<byte>(problem.B);
            BScales = context.Upload<float>(problem.BScales);
            Offsets = context.Upload<int>(problem.Offsets);
            D = context.Allocate<ushort>((long)(frontGuardRows + problem.CapacityRows) * problem.N);
            D.Fill(GemmProblem.Canary);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public MoeContext Context { get; }

    public GemmProblem Problem { get; private set; }

    public int FrontGuardRows { get; }

    public DeviceBuffer<byte> A { get; } = null!;

    public DeviceBuffer<float> AScales { get; } = null!;

    public DeviceBuffer<byte> B { get; } = null!;

    public DeviceBuffer<float> BScales { get; } = null!;

    public DeviceBuffer<int> Offsets { get; } = null!;

    /// <summary>bf16/fp16 bits [FrontGuardRows + CapacityRows, N].</summary>
    public DeviceBuffer<ushort> D { get; } = null!;

    /// <summary>The address of row 0 of the run's D.</summary>
    public nint OutputPointer => D.Pointer + (nint)((long)FrontGuardRows * Problem.N * sizeof(ushort));

    /// <summary>
    /// Enqueues the plan on the problem's rows: through the <see cref="DeviceBuffer"/> overload, or the raw-pointer one
    /// when D has front guard rows or other offsets are given.
    /// </summary>
    public void Run(GroupedGemmPlan plan, MoeStream? stream = null, DeviceBuffer<int>? offsets = null)
    {
        if (FrontGuardRows == 0)
        {
            plan.Run(Problem.Rows, A, AScales, B, BScales, offsets ?? Offsets, D, stream);
        }
        else
        {
            plan.Run(Problem.Rows, A.Pointer, AScales.Pointer, B.Pointer, BScales.Pointer, (offsets ?? Offsets).Pointer, OutputPointer, stream);
        }
    }

    /// <summary>Refills D (guards included) with the canary, on a stream.</summary>
    public void ResetOutput(MoeStream? stream = null) => D.Fill(GemmProblem.Canary, stream);

    /// <summary>Copies another problem's activations and offsets (same rows, K and E) into these buffers; synchronous.</summary>
    public void Replace(GemmProblem problem)
    {
        Assert.That((problem.Rows, problem.K, problem.Experts, problem.N), Is.EqualTo((Problem.Rows, Problem.K, Problem.Experts, Problem.N)));
        UploadActivations(problem);
        Offsets.CopyFrom(problem.Offsets);
        Problem = problem;
    }

    /// <summary>D of the run's rows and the guard after them, [CapacityRows, N] (synchronous; waits for the context).</summary>
    public ushort[] ReadOutput() => ReadAll()[(FrontGuardRows * Problem.N)..];

    /// <summary>All of D, front guard included (synchronous).</summary>
    public ushort[] ReadAll() => D.ToArray();

    public void Dispose()
    {
        A?.Dispose();
        AScales?.Dispose();
        B?.Dispose();
        BScales?.Dispose();
        Offsets?.Dispose();
        D?.Dispose();
    }

    private void UploadActivations(GemmProblem problem)
    {
        if (problem.Rows > 0)
        {
            A.CopyFrom(problem.A);
            AScales.CopyFrom(problem.AScales);
        }
    }
}

/// <summary>Comparisons of grouped-GEMM outputs (raw bf16/fp16 bits) against the CPU reference.</summary>
internal static class GemmCheck
{
    /// <summary>Largest relative Frobenius error per expert: bf16 4e-3, fp16 1e-3.</summary>
    public static double Tolerance(DType outputDType) => outputDType == DType.BFloat16 ? 4e-3 : 1e-3;

    /// <summary>
    /// The cuBLAS strategy's tolerance, either dtype: 8e-3. It rounds both dequantized operands to bf16 (relative error
    /// up to u = 2^-9 each, about u/sqrt(3) rms), so a product is off by about u sqrt(2/3) rms; over a sum whose signs
    /// are random that stays about 1.6e-3 of its magnitude. The bf16 result (fp16 output converts it) and the
    /// reference's own rounding add about 1.1e-3 rms each, about 2.2e-3 in all; 8e-3 leaves room for experts with few
    /// rows while a wrong expert, row or scale block is off by order one.
    /// </summary>
    public const double CublasTolerance = 8e-3;

    public static double Decode(ushort bits, DType outputDType) =>
        outputDType == DType.BFloat16 ? BitConverter.UInt32BitsToSingle((uint)bits << 16) : (double)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>
    /// Compares every non-empty expert's rows: relative Frobenius error ||actual - reference|| / ||reference|| within the
    /// dtype's tolerance (NaN, e.g. a row left at the canary, fails). Null when all pass, else a message naming the
    /// worst expert. Both arrays are [rows, N] from row 0 of the run.
    /// </summary>
    public static string? CompareExperts(GemmProblem problem, ReadOnlySpan<ushort> reference, ReadOnlySpan<ushort> actual, DType outputDType,
        out double worstError, double? tolerance = null)
    {
        double limit = tolerance ?? Tolerance(outputDType);
        int n = problem.N;
        worstError = 0;
        double worstRank = -1;
        int failing = 0, compared = 0;
        string worstDetail = string.Empty;
        for (int e = 0; e < problem.Experts; e++)
        {
            int begin = problem.Offsets[e], end = problem.Offsets[e + 1];
            if (begin == end)
            {
                continue; // an empty expert owns no rows: nothing to compare
            }

            compared++;
            double errorSquares = 0, referenceSquares = 0, largest = -1;
            int largestIndex = -1;
            for (long i = (long)begin * n; i < (long)end * n; i++)
            {
                double want = Decode(reference[(int)i], outputDType);
                double got = Decode(actual[(int)i], outputDType);
                double difference = got - want;
                errorSquares += difference * difference;
                referenceSquares += want * want;
                double magnitude = double.IsNaN(difference) ? double.PositiveInfinity : Math.Abs(difference);
                if (magnitude > largest)
                {
                    largest = magnitude;
                    largestIndex = (int)i;
                }
            }

            if (!(referenceSquares > 0))
            {
                return $"expert {e} (rows {begin}..{end - 1}): the reference is all zero or not finite (||ref||^2 = {referenceSquares}); " +
                    "the problem generator is broken";
            }

            double relative = Math.Sqrt(errorSquares / referenceSquares);
            bool ok = relative <= limit;
            if (!ok)
            {
                failing++;
            }

            double rank = double.IsNaN(relative) ? double.PositiveInfinity : relative;
            if (rank > worstRank)
            {
                worstRank = rank;
                worstError = relative;
                int row = largestIndex / n, col = largestIndex % n;
                worstDetail = string.Create(CultureInfo.InvariantCulture,
                    $"expert {e} (rows {begin}..{end - 1}, {end - begin} rows) relative Frobenius error {relative:G4} " +
                    $"(||err|| {Math.Sqrt(errorSquares):G4}, ||ref|| {Math.Sqrt(referenceSquares):G4}); largest element error at row {row} col {col}: " +
                    $"got {Decode(actual[largestIndex], outputDType):G6} (0x{actual[largestIndex]:x4}), " +
                    $"reference {Decode(reference[largestIndex], outputDType):G6} (0x{reference[largestIndex]:x4})");
            }
        }

        if (failing == 0)
        {
            return null;
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"{failing} of {compared} non-empty experts exceed the {outputDType} tolerance {limit:G2}; worst: {worstDetail}");
    }

    /// <summary>
    /// Null when every element of the rows for which <paramref name="mayBeWritten"/> is false still holds the canary;
    /// otherwise names the first overwritten element and counts them.
    /// </summary>
    public static string? CheckCanary(ReadOnlySpan<ushort> output, int n, Func<int, bool> mayBeWritten, string what)
    {
        int rows = output.Length / n;
        long overwritten = 0;
        string? first = null;
        for (int r = 0; r < rows; r++)
        {
            if (mayBeWritten(r))
            {
                continue;
            }

            var row = output.Slice(r * n, n);
            for (int c = 0; c < n; c++)
            {
                if (row[c] != GemmProblem.Canary)
                {
                    overwritten++;
                    first ??= $"row {r} col {c} = 0x{row[c]:x4}";
                }
            }
        }

        return first is null ? null : $"{overwritten} elements of {what} were written (canary 0x{GemmProblem.Canary:x4}); first: {first}";
    }

    /// <summary>Checks that rows outside offsets[0] .. offsets[E] (leading, trailing and guard rows) keep the canary.</summary>
    public static string? CheckRowsOutsideExperts(GemmProblem problem, ReadOnlySpan<ushort> output) =>
        CheckCanary(output, problem.N, r => r >= problem.Offsets[0] && r < problem.Offsets[problem.Experts],
            $"the rows outside offsets[0] .. offsets[E] = {problem.Offsets[0]} .. {problem.Offsets[problem.Experts]} (D has {problem.CapacityRows} rows)");
}
