using System.Runtime.InteropServices;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;
using MoeCutlass.Cli.Verify;

namespace MoeCutlass.Cli.Scale;

/// <summary>The parsed command line of the hidden <c>scale-rank</c> command (one rank of <c>moecutlass scale</c>).</summary>
internal sealed record RankRequest(
    string? SuitePath, string Case, MoeParallelMode Mode, int World, int Rank, string IdFile, string JsonPath, int Iterations, int Warmup,
    ulong Seed, BackendRequest Backend);

/// <summary>
/// One rank: joins the communicator (device = rank), generates the case's full FP8 weights and inputs from the seed (as
/// <c>bench --layer</c> does), runs the one-GPU layer on its own device (the reference output and the one-GPU time: every
/// rank computes it, which needs no transfer between ranks; a DeepSeek-V3 e256 set is about 11 GB and fits an H200 next to
/// the rank's slice), cuts its slice from the same weights (tp: rows of w13's gate and up and columns of w2, I/W each; ep:
/// experts [r E/W, (r+1) E/W) and tokens [r T/W, (r+1) T/W)), times the parallel forward (with its collectives) and its
/// pipeline alone (ForwardTimed's events 0 to 7), compares its output with the one-GPU layer's rows under
/// <see cref="LayerTolerance"/>, and writes a <see cref="RankResult"/>. Every rank makes the same number of forward calls,
/// so the collectives always pair up.
/// </summary>
internal static class RankRunner
{
    /// <summary>Elements staged through the host at once when slicing (64 Mi).</summary>
    private const long ChunkElements = 64L << 20;

    public static int Execute(CommandEnvironment environment, RankRequest request)
    {
        BenchSuite suite = BenchSuite.Load(SuiteLocator.Locate(request.SuitePath));
        LayerCase layerCase = suite.SelectLayers([request.Case])[0];
        byte[] id = File.ReadAllBytes(request.IdFile);
        environment.InitializeLibrary();
        using MoeContext context = request.Backend == BackendRequest.Cpu
            ? MoeContext.CreateCpu(0, environment.LoggerFactory)
            : MoeContext.CreateCuda(request.Rank, environment.LoggerFactory);
        using MoeCommunicator communicator = MoeCommunicator.Create(context, id, request.World, request.Rank);
        LayerShape shape = LayerShape.Full(layerCase);
        if (ScalePlan.SplitProblem(shape, request.Mode, request.World) is { } problem)
        {
            throw new UsageException(problem);
        }

        int w = request.World, r = request.Rank;
        int tokensPerRank = request.Mode == MoeParallelMode.Expert ? shape.Tokens / w : shape.Tokens;
        int firstRow = request.Mode == MoeParallelMode.Expert ? r * tokensPerRank : 0;
        using MoeStream stream = context.CreateStream();
        using var events = new EventPairs(context, Math.Min(64, request.Iterations));
        LayerWeights full = LayerWeights.Generate(context, LayerWeights.KeyOf(shape), shape.Experts, shape.Hidden, shape.Intermediate,
            request.Seed, stream);
        LayerData? data = null;
        try
        {
            data = LayerData.Create(context, shape, request.Seed, stream);

            // The one-GPU layer: its time and the reference output.
            double singleUs;
            double[] reference;
            MoeLayerOptions plainOptions = shape.Options(GemmStrategy.Auto);
            using (MoeLayer plain = context.CreateMoeLayer(plainOptions, full.W13, full.W13Scales, full.W2, full.W2Scales))
            {
                void Plain() => plain.Forward(shape.Tokens, data.Hidden, data.Logits, data.Output, stream);
                singleUs = Time(stream, events, request, Plain).Median;
                LayerOutput.Poison(data.Output, stream);
                Plain();
                stream.Synchronize();
                reference = LayerOutput.Values(data.Output);
            }

            // This rank's slice of the same weights, then the full set is freed.
            (DeviceBuffer<byte> w13, DeviceBuffer<float> w13s, DeviceBuffer<byte> w2, DeviceBuffer<float> w2s, MoeLayerOptions options) =
                Slice(context, shape, full, request.Mode, w, r, communicator);
            full.Dispose();
            using var owned = new Owned(w13, w13s, w2, w2s);
            using MoeLayer layer = context.CreateMoeLayer(options, w13, w13s, w2, w2s);

            using DeviceBuffer<BFloat16> hidden = request.Mode == MoeParallelMode.Expert
                ? Range(context, data.Hidden, (long)firstRow * shape.Hidden, (long)tokensPerRank * shape.Hidden)
                : Range(context, data.Hidden, 0, data.Hidden.Length);
            using DeviceBuffer<float> logits = context.Upload<float>(data.Routing.Logits.AsSpan(firstRow * shape.RouterExperts,
                tokensPerRank * shape.RouterExperts));
            using DeviceBuffer<BFloat16> output = context.Allocate<BFloat16>((long)tokensPerRank * shape.Hidden);
            void Forward() => layer.Forward(tokensPerRank, hidden, logits, output, stream);
            TimingSummary forward = Time(stream, events, request, Forward);

            using var stageEvents = new MoeLayerStageEvents(context);
            var pipeline = new List<double>();
            for (int i = 0; i < request.Iterations; i++)
            {
                layer.ForwardTimed(tokensPerRank, hidden, logits, output, stageEvents, stream);
                stream.Synchronize();
                pipeline.Add(stageEvents.TotalMilliseconds() * 1000.0);
            }

            LayerOutput.Poison(output, stream);
            Forward();
            stream.Synchronize();
            double[] got = LayerOutput.Values(output);
            double[] expected = reference.AsSpan(firstRow * shape.Hidden, tokensPerRank * shape.Hidden).ToArray();
            LayerComparison comparison = LayerTolerance.Compare(got, expected, shape.Hidden, DType.BFloat16);
            DeviceErrorFlags flags = context.QueryDeviceErrors(reset: true);

            var result = new RankResult(shape.Case.Name, ScalePlan.Name(request.Mode), w, r, communicator.Device,
                BackendSelection.DeviceName(context), communicator.NcclVersion, tokensPerRank, options.LocalExperts, options.Intermediate,
                w13.SizeInBytes + w13s.SizeInBytes + w2.SizeInBytes + w2s.SizeInBytes, request.Iterations, request.Warmup,
                Math.Round(forward.Median, 3), Math.Round(forward.Min, 3), Math.Round(TimingSummary.Of(pipeline).Median, 3), Math.Round(singleUs, 3),
                tokensPerRank, comparison.RelativeRms, comparison.WorstRatio, comparison.WorstElement, comparison.NonFinite,
                comparison.Passes && flags == DeviceErrorFlags.None);
            ScaleJson.WriteRank(request.JsonPath, result);
            return ExitCodes.Success;
        }
        finally
        {
            data?.Dispose();
            full.Dispose();
        }
    }

    /// <summary>Warm-up, then the event-timed iterations enqueued back to back (as the bench times a layer).</summary>
    private static TimingSummary Time(MoeStream stream, EventPairs events, RankRequest request, Action enqueue)
    {
        for (int i = 0; i < request.Warmup; i++)
        {
            enqueue();
        }

        stream.Synchronize();
        return TimingSummary.Of(BenchRunner.TimeIterations(stream, events, request.Iterations, enqueue).Device);
    }

    /// <summary>The rank's weights and layer options. tp: every expert, I/W of the intermediate; ep: E/W experts, T/W tokens.</summary>
    private static (DeviceBuffer<byte>, DeviceBuffer<float>, DeviceBuffer<byte>, DeviceBuffer<float>, MoeLayerOptions) Slice(MoeContext context,
        LayerShape shape, LayerWeights full, MoeParallelMode mode, int w, int r, MoeCommunicator communicator)
    {
        int e = shape.Experts, h = shape.Hidden, i = shape.Intermediate;
        int hb = MoeContext.ScaleBlocks(h), ib = MoeContext.ScaleBlocks(i);
        MoeLayerOptions options = shape.Options(GemmStrategy.Auto);
        if (mode == MoeParallelMode.Tensor)
        {
            int iw = i / w, iwb = iw / 128;
            // w13 [E, 2I, H] as 2E rows (gate, up) of I*H: columns [r I/W H, (r+1) I/W H); its scales likewise in 128-blocks.
            // w2 [E, H, I] as E*H rows of I: columns [r I/W, (r+1) I/W); its scales [E, H/128, I/128] likewise.
            return (Columns(context, full.W13, 2L * e, (long)i * h, (long)r * iw * h, (long)iw * h),
                Columns(context, full.W13Scales, 2L * e, (long)ib * hb, (long)r * iwb * hb, (long)iwb * hb),
                Columns(context, full.W2, (long)e * h, i, (long)r * iw, iw),
                Columns(context, full.W2Scales, (long)e * hb, ib, (long)r * iwb, iwb),
                options with { Intermediate = iw, Parallel = new MoeParallelism(MoeParallelMode.Tensor, communicator) });
        }

        int local = e / w, first = r * local, tokens = shape.Tokens / w;
        long w13Expert = 2L * i * h, w13sExpert = 2L * ib * hb, w2Expert = (long)h * i, w2sExpert = (long)hb * ib;
        return (Range(context, full.W13, first * w13Expert, local * w13Expert),
            Range(context, full.W13Scales, first * w13sExpert, local * w13sExpert),
            Range(context, full.W2, first * w2Expert, local * w2Expert),
            Range(context, full.W2Scales, first * w2sExpert, local * w2sExpert),
            options with
            {
                FirstExpert = first,
                LocalExperts = local,
                MaxTokens = tokens,
                Parallel = new MoeParallelism(MoeParallelMode.Expert, communicator) { TokensPerRank = tokens },
            });
    }

    /// <summary>Elements [offset, offset + length) of <paramref name="source"/> in a new buffer, staged through the host in chunks.</summary>
    internal static DeviceBuffer<T> Range<T>(MoeContext context, DeviceBuffer<T> source, long offset, long length)
        where T : unmanaged => Columns(context, source, 1, length, 0, length, offset);

    /// <summary>
    /// <paramref name="source"/> read as <paramref name="rows"/> rows of <paramref name="rowLength"/> elements (from element
    /// <paramref name="offset"/>): columns [<paramref name="firstColumn"/>, + <paramref name="columns"/>) of every row, packed into a
    /// new [rows, columns] buffer. Staged through the host: whole rows in chunks of about <see cref="ChunkElements"/> where a row
    /// fits one, else each row's column range in chunks.
    /// </summary>
    internal static DeviceBuffer<T> Columns<T>(MoeContext context, DeviceBuffer<T> source, long rows, long rowLength, long firstColumn,
        long columns, long offset = 0)
        where T : unmanaged
    {
        DeviceBuffer<T> target = context.Allocate<T>(Math.Max(1, rows * columns));
        try
        {
            if (rowLength <= ChunkElements)
            {
                long rowsPerChunk = Math.Max(1, ChunkElements / rowLength);
                T[] staging = new T[Math.Min(rows, rowsPerChunk) * rowLength];
                T[] packed = new T[Math.Min(rows, rowsPerChunk) * columns];
                for (long row = 0; row < rows; row += rowsPerChunk)
                {
                    int n = (int)Math.Min(rowsPerChunk, rows - row);
                    source.CopyTo(staging.AsSpan(0, (int)(n * rowLength)), offset + (row * rowLength));
                    for (int k = 0; k < n; k++)
                    {
                        staging.AsSpan((int)((k * rowLength) + firstColumn), (int)columns).CopyTo(packed.AsSpan((int)(k * columns)));
                    }

                    target.CopyFrom(packed.AsSpan(0, (int)(n * columns)), row * columns);
                }
            }
            else
            {
                T[] staging = new T[Math.Min(columns, ChunkElements)];
                for (long row = 0; row < rows; row++)
                {
                    for (long done = 0; done < columns; done += staging.Length)
                    {
                        int n = (int)Math.Min(staging.Length, columns - done);
                        source.CopyTo(staging.AsSpan(0, n), offset + (row * rowLength) + firstColumn + done);
                        target.CopyFrom(staging.AsSpan(0, n), (row * columns) + done);
                    }
                }
            }

            return target;
        }
        catch
        {
            target.Dispose();
            throw;
        }
    }

    private sealed class Owned(params IDisposable[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (IDisposable item in items)
            {
                item.Dispose();
            }
        }
    }
}
