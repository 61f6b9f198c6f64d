using Microsoft.Extensions.Logging;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Bench;

/// <summary>
/// Times one layer case for one strategy, the way <see cref="BenchRunner"/> times a grouped GEMM (warm-up runs first, then
/// each iteration between its own pair of events, enqueued back to back): (a) the whole forward call, eager; (b) one
/// captured forward call replayed as a CUDA graph (graph mode); (c) the stages, from <see cref="MoeLayer.ForwardTimed"/>
/// (each timed call is waited for before its 8 events are read); (d) GEMM1 and GEMM2 alone, as grouped-GEMM plans of the
/// same strategy over the routed rows and the host routing's expert offsets. A library failure is recorded in the result.
/// </summary>
internal sealed class LayerBenchRunner(MoeContext context, BenchSettings settings, RooflineCeilings? ceilings, ILogger logger)
{
    private const int EventBatch = 64;

    public LayerResult Measure(LayerData data, LayerWeights weights, GemmStrategy strategy, bool weightsGenerated)
    {
        LayerResult result = Describe(data, strategy, weightsGenerated);
        LayerShape shape = data.Shape;
        MoeLayerOptions options = shape.Options(strategy);
        using MoeStream stream = context.CreateStream();
        using var events = new EventPairs(context, Math.Min(EventBatch, settings.Iterations));
        try
        {
            using MoeLayer layer = context.CreateMoeLayer(options, weights.W13, weights.W13Scales, weights.W2, weights.W2Scales);
            void Forward() => layer.Forward(shape.Tokens, data.Hidden, data.Logits, data.Output, stream);
            for (int i = 0; i < settings.Warmup; i++)
            {
                Forward();
            }

            stream.Synchronize();
            (double[] device, double[] host) = BenchRunner.TimeIterations(stream, events, settings.Iterations, Forward);
            TimingSummary eager = TimingSummary.Of(device);
            result = result with
            {
                LayerMedianUs = Round(eager.Median),
                LayerMinUs = Round(eager.Min),
                LayerP90Us = Round(eager.P90),
                LayerHostMedianUs = Round(TimingSummary.Of(host).Median),
                Gemm1Kernels = layer.Gemm1KernelList,
                Gemm2Kernels = layer.Gemm2KernelList,
            };

            // cublas refuses capture by design (host-side offsets): no graph timing for it, and no failure either.
            if (settings.Graph && strategy != GemmStrategy.Cublas)
            {
                result = result with { GraphMedianUs = null };
                try
                {
                    using MoeGraph graph = BenchRunner.Capture(stream, Forward);
                    for (int i = 0; i < Math.Max(1, settings.Warmup); i++)
                    {
                        graph.Launch(stream);
                    }

                    stream.Synchronize();
                    (double[] graphDevice, _) = BenchRunner.TimeIterations(stream, events, settings.Iterations, () => graph.Launch(stream));
                    result = result with { GraphMedianUs = Round(TimingSummary.Of(graphDevice).Median) };
                }
                catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
                {
                    logger.LogDebug(ex, "{Case} {Strategy}: CUDA-graph capture of the layer failed", shape.Case.Name, strategy);
                    result = result with { GraphError = ErrorReporter.DescribeLibraryError(ex) };
                }
            }

            result = WithStages(result, layer, data, stream);
            result = WithGemms(result, data, weights, options, stream, events);
        }
        catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
        {
            logger.LogDebug(ex, "{Case} {Strategy}: layer bench failed", shape.Case.Name, strategy);
            return result with { Error = ErrorReporter.DescribeLibraryError(ex) };
        }

        return Rates(result);
    }

    /// <summary>The record of a case whose data could not be prepared.</summary>
    public LayerResult Failed(LayerData? data, LayerShape shape, GemmStrategy strategy, string error) => new()
    {
        Case = shape.Case.Name,
        Model = shape.Case.Model,
        Backend = Backend,
        Strategy = StrategySelection.Name(strategy),
        Router = shape.Case.RouterName,
        Tokens = shape.Tokens,
        Experts = shape.Experts,
        FirstExpert = shape.FirstExpert,
        RouterExperts = shape.RouterExperts,
        Hidden = shape.Hidden,
        Intermediate = shape.Intermediate,
        Topk = shape.TopK,
        Scaled = shape.Scaled,
        ScaleNote = shape.ScaleNote,
        ActiveExperts = data?.Routing.ActiveExperts ?? 0,
        RoutedRows = data?.Routing.Rows ?? 0,
        Iterations = settings.Iterations,
        Warmup = settings.Warmup,
        WeightBytes = data is null ? 0 : shape.Options(strategy).WeightStreamBytes(data.Routing.ActiveExperts),
        WeightsGenerated = false,
        Error = error,
    };

    private string Backend => context.Backend == MoeCutlass.Backend.Cuda ? "cuda" : "cpu";

    private LayerResult Describe(LayerData data, GemmStrategy strategy, bool weightsGenerated) =>
        Failed(data, data.Shape, strategy, "") with { Error = null, WeightsGenerated = weightsGenerated };

    /// <summary>Per-stage medians of <see cref="BenchSettings.Iterations"/> timed forward calls, each waited for.</summary>
    private LayerResult WithStages(LayerResult result, MoeLayer layer, LayerData data, MoeStream stream)
    {
        using var stageEvents = new MoeLayerStageEvents(context);
        int stageCount = MoeLayerStageEvents.StageNames.Count;
        var samples = Enumerable.Range(0, stageCount).Select(_ => new List<double>()).ToArray();
        var totals = new List<double>();
        for (int i = 0; i < settings.Iterations; i++)
        {
            layer.ForwardTimed(data.Shape.Tokens, data.Hidden, data.Logits, data.Output, stageEvents, stream);
            stream.Synchronize();
            float[] stages = stageEvents.StageMilliseconds();
            for (int s = 0; s < stageCount; s++)
            {
                samples[s].Add(stages[s] * 1000.0);
            }

            totals.Add(stageEvents.TotalMilliseconds() * 1000.0);
        }

        return result with
        {
            StageMedianUs = MoeLayerStageEvents.StageNames.Select((name, s) => (name, s))
                .ToDictionary(p => p.name, p => Round(TimingSummary.Of(samples[p.s]).Median)),
            StagesTotalMedianUs = Round(TimingSummary.Of(totals).Median),
        };
    }

    /// <summary>GEMM1 and GEMM2 alone: each plan warmed up, then timed like the layer.</summary>
    private LayerResult WithGemms(LayerResult result, LayerData data, LayerWeights weights, MoeLayerOptions options, MoeStream stream,
        EventPairs events)
    {
        int rows = data.Routing.Rows;
        int maxRows = Math.Max(1, rows);
        // StaticWeights as the layer's own GEMMs have it (the layer's weights never change between forwards): without it
        // the cublas strategy's GEMMs alone would dequantize the weights on every run, which the layer does once.
        using GroupedGemmPlan gemm1 = context.CreateGroupedGemmPlan(options.Gemm1Options with { MaxRows = maxRows, StaticWeights = true });
        using GroupedGemmPlan gemm2 = context.CreateGroupedGemmPlan(options.Gemm2Options with { MaxRows = maxRows, StaticWeights = true });
        void Run1() => gemm1.Run(rows, data.A1, data.A1Scales, weights.W13, weights.W13Scales, data.Offsets, data.D1, stream);
        void Run2() => gemm2.Run(rows, data.A2, data.A2Scales, weights.W2, weights.W2Scales, data.Offsets, data.D2, stream);
        for (int i = 0; i < settings.Warmup; i++)
        {
            Run1();
            Run2();
        }

        stream.Synchronize();
        double first = TimingSummary.Of(BenchRunner.TimeIterations(stream, events, settings.Iterations, Run1).Device).Median;
        double second = TimingSummary.Of(BenchRunner.TimeIterations(stream, events, settings.Iterations, Run2).Device).Median;
        return result with { Gemm1MedianUs = Round(first), Gemm2MedianUs = Round(second), GemmsMedianUs = Round(first + second) };
    }

    /// <summary>Overhead, weight-stream rate and its share of the bandwidth, from the measured medians.</summary>
    private LayerResult Rates(LayerResult result)
    {
        double? layer = result.LayerMedianUs;
        double? tbps = layer > 0 ? result.WeightBytes / (layer.Value * 1e-6) / 1e12 : null;
        return result with
        {
            Overhead = layer is not null && result.GemmsMedianUs > 0 ? Math.Round(layer.Value / result.GemmsMedianUs.Value, 4) : null,
            WeightTbps = tbps is null ? null : Math.Round(tbps.Value, 6),
            BandwidthPercent = tbps is not null && ceilings is not null ? Math.Round(tbps.Value * 1e3 / ceilings.MemoryGbps * 100, 2) : null,
        };
    }

    private static double Round(double microseconds) => Math.Round(microseconds, 3);
}
