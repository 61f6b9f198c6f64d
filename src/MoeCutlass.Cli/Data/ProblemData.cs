using System.Runtime.CompilerServices;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Data;

/// <summary>
/// The inputs and output of one grouped GEMM in a context's memory, laid out as DESIGN.md section 3 says:
/// A e4m3 [rows, K] with fp32 scales [rows, ceil(K/128)]; B e4m3 [E, N, K] with fp32 scales
/// [E, ceil(N/128), ceil(K/128)]; int32 expert offsets [E+1]; D bf16|fp16 [rows, N].
/// <para>
/// A and B start as bf16 values from a seeded counter-based generator (<see cref="CounterRandom"/>):
/// uniform in [-1, 1) times a power of two in 2^-2..2^2 chosen per scale block (per 1x128 block of A,
/// per 128x128 block of B), so the blockwise scales genuinely differ. They are uploaded to the context
/// in chunks and quantized there by the library (<see cref="MoeContext.QuantizeActivations"/>,
/// <see cref="MoeContext.QuantizeWeights"/>); the bf16 staging buffers are freed afterwards.
/// </para>
/// </summary>
internal sealed class ProblemData : IDisposable
{
    /// <summary>Host chunk used for uploads and downloads (elements).</summary>
    private const int ChunkElements = 16 << 20;

    /// <summary>Block magnitudes are 2^(h mod 5 - 2): 0.25 .. 4.</summary>
    private static readonly float[] BlockMagnitudes = [0.25f, 0.5f, 1f, 2f, 4f];

    /// <summary>False for a view made by <see cref="ShareInputs"/>: it frees only its own offsets.</summary>
    private readonly bool _ownsInputs;

    private ProblemData(
        ProblemShape shape,
        DType outputDType,
        DeviceBuffer<byte> a,
        DeviceBuffer<float> aScales,
        DeviceBuffer<byte> b,
        DeviceBuffer<float> bScales,
        DeviceBuffer<int> offsets,
        DeviceBuffer output,
        bool ownsInputs = true)
    {
        _ownsInputs = ownsInputs;
        Shape = shape;
        OutputDType = outputDType;
        A = a;
        AScales = aScales;
        B = b;
        BScales = bScales;
        Offsets = offsets;
        Output = output;
    }

    public ProblemShape Shape { get; }

    public DType OutputDType { get; }

    public DeviceBuffer<byte> A { get; }

    public DeviceBuffer<float> AScales { get; }

    public DeviceBuffer<byte> B { get; }

    public DeviceBuffer<float> BScales { get; }

    public DeviceBuffer<int> Offsets { get; }

    public DeviceBuffer Output { get; }

    /// <summary>Generates and quantizes the inputs of <paramref name="shape"/> in <paramref name="context"/>.</summary>
    /// <param name="seed">Run seed; each case derives its own streams from it and its name.</param>
    public static ProblemData Create(MoeContext context, ProblemShape shape, DType outputDType, ulong seed, MoeStream stream)
    {
        int rows = shape.TotalRows;
        int n = shape.N;
        int k = shape.K;
        int e = shape.Experts;
        int kBlocks = MoeContext.ScaleBlocks(k);
        int nBlocks = MoeContext.ScaleBlocks(n);
        ulong caseSeed = CounterRandom.Derive(seed, shape.Case.Name);

        var owned = new List<IDisposable>();
        try
        {
            DeviceBuffer<byte> a = Track(owned, context.Allocate<byte>(Math.Max(1L, (long)rows * k)));
            DeviceBuffer<float> aScales = Track(owned, context.Allocate<float>(Math.Max(1L, (long)rows * kBlocks)));
            DeviceBuffer<byte> b = Track(owned, context.Allocate<byte>((long)e * n * k));
            DeviceBuffer<float> bScales = Track(owned, context.Allocate<float>((long)e * nBlocks * kBlocks));
            DeviceBuffer<int> offsets = Track(owned, context.Upload<int>(shape.ExpertOffsets()));
            DeviceBuffer output = Track(owned, AllocateOutput(context, outputDType, Math.Max(1L, (long)rows * n)));

            if (rows > 0)
            {
                using DeviceBuffer<BFloat16> staging = context.Allocate<BFloat16>((long)rows * k);
                ulong valueSeed = CounterRandom.Derive(caseSeed, "A.values");
                ulong blockSeed = CounterRandom.Derive(caseSeed, "A.blocks");
                UploadGenerated(staging, rows, k, valueSeed, blockSeed, (row, kb) => ((ulong)row * (ulong)kBlocks) + (ulong)kb);
                context.QuantizeActivations(staging, rows, k, a, aScales, stream);
                stream.Synchronize();
            }

            using (DeviceBuffer<BFloat16> staging = context.Allocate<BFloat16>((long)e * n * k))
            {
                ulong valueSeed = CounterRandom.Derive(caseSeed, "B.values");
                ulong blockSeed = CounterRandom.Derive(caseSeed, "B.blocks");

                // Row r of the [E*N, K] view is expert r / N, output column r % N.
                UploadGenerated(staging, (long)e * n, k, valueSeed, blockSeed, (row, kb) =>
                {
                    long expert = row / n;
                    long nBlock = (row % n) / 128;
                    return (ulong)((((expert * nBlocks) + nBlock) * kBlocks) + kb);
                });
                context.QuantizeWeights(staging, e, n, k, b, bScales, stream);
                stream.Synchronize();
            }

            owned.Clear();
            return new ProblemData(shape, outputDType, a, aScales, b, bScales, offsets, output);
        }
        finally
        {
            foreach (IDisposable buffer in owned)
            {
                buffer.Dispose();
            }
        }
    }

    /// <summary>
    /// The same quantized inputs copied into another context (e.g. CUDA data into a CPU reference context),
    /// with a fresh output buffer. Goes through host memory in chunks, so tensors of any size work.
    /// </summary>
    public ProblemData CopyInto(MoeContext target)
    {
        var owned = new List<IDisposable>();
        try
        {
            DeviceBuffer<byte> a = Track(owned, Copy(A, target));
            DeviceBuffer<float> aScales = Track(owned, Copy(AScales, target));
            DeviceBuffer<byte> b = Track(owned, Copy(B, target));
            DeviceBuffer<float> bScales = Track(owned, Copy(BScales, target));
            DeviceBuffer<int> offsets = Track(owned, Copy(Offsets, target));
            DeviceBuffer output = Track(owned, AllocateOutput(target, OutputDType, Output.Length));
            owned.Clear();
            return new ProblemData(Shape, OutputDType, a, aScales, b, bScales, offsets, output);
        }
        finally
        {
            foreach (IDisposable buffer in owned)
            {
                buffer.Dispose();
            }
        }
    }

    /// <summary>
    /// A view of this data for <paramref name="shape"/>, which has the same E, N and K and at most as many rows: A, the
    /// scales, B and D are shared (the first rows of A and D), only the expert offsets are the view's own. A is
    /// generated row by row from the case name, so when <paramref name="shape"/> has the same name its first rows are
    /// exactly what <see cref="Create"/> would generate for it; <c>tune</c> sweeps rows per expert without generating B
    /// again. Dispose the view before this data; disposing it frees only its offsets.
    /// </summary>
    public ProblemData ShareInputs(MoeContext context, ProblemShape shape)
    {
        if (shape.Experts != Shape.Experts || shape.N != Shape.N || shape.K != Shape.K || shape.TotalRows > Shape.TotalRows)
        {
            throw new ArgumentException(
                $"a view needs E={Shape.Experts}, N={Shape.N}, K={Shape.K} and at most {Shape.TotalRows} rows "
                + $"(got E={shape.Experts}, N={shape.N}, K={shape.K}, {shape.TotalRows} rows)",
                nameof(shape));
        }

        DeviceBuffer<int> offsets = context.Upload<int>(shape.ExpertOffsets());
        return new ProblemData(shape, OutputDType, A, AScales, B, BScales, offsets, Output, ownsInputs: false);
    }

    /// <summary>Enqueues one grouped GEMM over this data.</summary>
    public void Run(GroupedGemmPlan plan, MoeStream stream) =>
        plan.Run(Shape.TotalRows, A, AScales, B, BScales, Offsets, Output, stream);

    /// <summary>Fills D with NaN so rows a kernel fails to write cannot pass a comparison.</summary>
    public void PoisonOutput(MoeStream stream)
    {
        switch (Output)
        {
            case DeviceBuffer<BFloat16> bf16:
                bf16.Fill((BFloat16)float.NaN, stream);
                break;
            case DeviceBuffer<Half> fp16:
                fp16.Fill(Half.NaN, stream);
                break;
        }
    }

    /// <summary>D widened to float (exact for bf16 and fp16), [rows, N] row-major. Call after the work is complete.</summary>
    public float[] ReadOutput()
    {
        long count = (long)Shape.TotalRows * Shape.N;
        float[] result = new float[count];
        switch (Output)
        {
            case DeviceBuffer<BFloat16> bf16:
                ReadChunked(bf16, result, static v => (float)v);
                break;
            case DeviceBuffer<Half> fp16:
                ReadChunked(fp16, result, static v => (float)v);
                break;
            default:
                throw new InvalidOperationException($"unexpected output buffer type {Output.GetType().Name}");
        }

        return result;
    }

    /// <summary>Host copy of a (small) input tensor, for the managed reference.</summary>
    public static T[] Download<T>(DeviceBuffer<T> buffer)
        where T : unmanaged => buffer.ToArray();

    public void Dispose()
    {
        Offsets.Dispose();
        if (!_ownsInputs)
        {
            return;
        }

        Output.Dispose();
        BScales.Dispose();
        B.Dispose();
        AScales.Dispose();
        A.Dispose();
    }

    private static DeviceBuffer AllocateOutput(MoeContext context, DType dtype, long length) => dtype switch
    {
        DType.BFloat16 => context.Allocate<BFloat16>(length),
        DType.Float16 => context.Allocate<Half>(length),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "the grouped GEMM writes bf16 or fp16"),
    };

    private static T Track<T>(List<IDisposable> owned, T item)
        where T : IDisposable
    {
        owned.Add(item);
        return item;
    }

    /// <summary>
    /// Generates a [rows, cols] bf16 matrix chunk by chunk on the host (rows in parallel) and copies each
    /// chunk into <paramref name="target"/>.
    /// </summary>
    internal static void UploadGenerated(
        DeviceBuffer<BFloat16> target,
        long rows,
        int cols,
        ulong valueSeed,
        ulong blockSeed,
        Func<long, int, ulong> blockKey)
    {
        long rowsPerChunk = Math.Max(1, ChunkElements / cols);
        BFloat16[] host = new BFloat16[Math.Min(rows, rowsPerChunk) * cols];
        for (long first = 0; first < rows; first += rowsPerChunk)
        {
            int count = (int)Math.Min(rowsPerChunk, rows - first);
            long firstRow = first;
            Parallel.For(0, count, r =>
            {
                long row = firstRow + r;
                Span<BFloat16> destination = host.AsSpan(r * cols, cols);
                ulong rowCounter = (ulong)row * (ulong)cols;
                for (int kb = 0, start = 0; start < cols; kb++, start += 128)
                {
                    float magnitude = BlockMagnitudes[CounterRandom.Hash(blockSeed, blockKey(row, kb)) % 5];
                    int end = Math.Min(cols, start + 128);
                    for (int c = start; c < end; c++)
                    {
                        destination[c] = (BFloat16)(CounterRandom.SignedUnit(valueSeed, rowCounter + (ulong)c) * magnitude);
                    }
                }
            });
            target.CopyFrom(host.AsSpan(0, count * cols), first * cols);
        }
    }

    private static DeviceBuffer<T> Copy<T>(DeviceBuffer<T> source, MoeContext target)
        where T : unmanaged
    {
        DeviceBuffer<T> destination = target.Allocate<T>(source.Length);
        try
        {
            int chunk = (int)Math.Min(source.Length, Math.Max(1, (64 << 20) / Unsafe.SizeOf<T>()));
            T[] host = new T[chunk];
            for (long offset = 0; offset < source.Length; offset += chunk)
            {
                int count = (int)Math.Min(chunk, source.Length - offset);
                source.CopyTo(host.AsSpan(0, count), offset);
                destination.CopyFrom(host.AsSpan(0, count), offset);
            }

            return destination;
        }
        catch
        {
            destination.Dispose();
            throw;
        }
    }

    private static void ReadChunked<T>(DeviceBuffer<T> source, float[] destination, Func<T, float> widen)
        where T : unmanaged
    {
        long count = destination.LongLength;
        T[] host = new T[Math.Min(count, ChunkElements)];
        for (long offset = 0; offset < count; offset += host.Length)
        {
            int n = (int)Math.Min(host.Length, count - offset);
            source.CopyTo(host.AsSpan(0, n), offset);
            for (int i = 0; i < n; i++)
            {
                destination[offset + i] = widen(host[i]);
            }
        }
    }
}
