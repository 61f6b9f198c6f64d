using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli.Bench;

/// <summary>Timing parameters of a bench run.</summary>
internal sealed record BenchSettings(int Iterations, int Warmup, DType OutputDType);

/// <summary>
/// Times one strategy on one problem. The plan is created once; <see cref="BenchSettings.Warmup"/> runs
/// are discarded; then every timed iteration is bracketed by its own pair of events on one stream. The
/// iterations are enqueued back to back (no host synchronization between them, at most
/// <see cref="EventBatch"/> in flight), so on CUDA the GPU never idles between iterations and an
/// iteration's time does not include the host's launch latency; its cost is measured separately as
/// the host time of each Run call (a Stopwatch around the call alone).
/// </summary>
internal sealed class BenchRunner
{
    /// <summary>Event pairs in flight before the host waits and reads them.</summary>
    private const int EventBatch = 64;

    private readonly MoeContext _context;
    private readonly BenchSettings _settings;
    private readonly ILogger _logger;

    public BenchRunner(MoeContext context, BenchSettings settings, ILogger logger)
    {
        _context = context;
        _settings = settings;
        _logger = logger;
    }

    /// <summary>Measures <paramref name="strategy"/> on <paramref name="data"/>; library failures propagate.</summary>
    public BenchResult Measure(ProblemData data, GemmStrategy strategy)
    {
        var shape = data.Shape;
        using MoeStream stream = _context.CreateStream();
        using GroupedGemmPlan plan = _context.CreateGroupedGemmPlan(
            new GroupedGemmOptions(shape.Experts, shape.N, shape.K, _settings.OutputDType, strategy, shape.TotalRows));
        string kernels = string.Join(";", plan.Kernels);
        _logger.LogDebug(
            "{Case} {Strategy}: plan with kernels [{Kernels}], workspace {Workspace} bytes",
            shape.Case.Name,
            StrategySelection.Name(strategy),
            kernels,
            plan.WorkspaceBytes);

        for (int i = 0; i < _settings.Warmup; i++)
        {
            data.Run(plan, stream);
        }

        stream.Synchronize();

        double[] deviceUs = new double[_settings.Iterations];
        double[] hostUs = new double[_settings.Iterations];
        int batch = Math.Min(EventBatch, _settings.Iterations);
        var starts = new MoeEvent[batch];
        var ends = new MoeEvent[batch];
        try
        {
            for (int i = 0; i < batch; i++)
            {
                starts[i] = _context.CreateEvent();
                ends[i] = _context.CreateEvent();
            }

            var stopwatch = new Stopwatch();
            for (int first = 0; first < _settings.Iterations; first += batch)
            {
                int count = Math.Min(batch, _settings.Iterations - first);
                for (int j = 0; j < count; j++)
                {
                    starts[j].Record(stream);
                    stopwatch.Restart();
                    data.Run(plan, stream);
                    stopwatch.Stop();
                    ends[j].Record(stream);
                    hostUs[first + j] = stopwatch.Elapsed.TotalMicroseconds;
                }

                stream.Synchronize();
                for (int j = 0; j < count; j++)
                {
                    deviceUs[first + j] = MoeEvent.ElapsedMilliseconds(starts[j], ends[j]) * 1000.0;
                }
            }
        }
        finally
        {
            foreach (MoeEvent? e in starts.Concat(ends))
            {
                e?.Dispose();
            }
        }

        var flags = _context.QueryDeviceErrors(reset: true);
        if (flags != 0)
        {
            _logger.LogWarning("{Case} {Strategy}: the device reported offset errors (flags {Flags})", shape.Case.Name, StrategySelection.Name(strategy), flags);
        }

        return Summarize(data, strategy, TimingSummary.Of(deviceUs), TimingSummary.Of(hostUs), kernels);
    }

    /// <summary>The result record of a (case, strategy) that could not be measured.</summary>
    public BenchResult Failed(Suite.ProblemShape shape, GemmStrategy strategy, string error) =>
        Describe(shape, strategy) with { Error = error };

    private BenchResult Summarize(ProblemData data, GemmStrategy strategy, TimingSummary device, TimingSummary host, string kernels)
    {
        BenchResult result = Describe(data.Shape, strategy);
        double seconds = device.Median * 1e-6;
        WorkEstimate work = Roofline.Estimate(data.Shape);
        double? roofline = null;
        if (_context.Backend == Backend.Cuda && seconds > 0)
        {
            roofline = Roofline.SpeedOfLight(work).Seconds / seconds * 100.0;
        }

        return result with
        {
            TimeMedianUs = Nanosecond(device.Median),
            TimeMinUs = Nanosecond(device.Min),
            TimeP90Us = Nanosecond(device.P90),
            TimeMeanUs = Nanosecond(device.Mean),
            HostMedianUs = Nanosecond(host.Median),
            Tflops = seconds > 0 ? work.Flops / seconds / 1e12 : null,
            Gbps = seconds > 0 ? work.Bytes / seconds / 1e9 : null,
            RooflinePercent = roofline,
            Kernels = kernels,
        };
    }

    /// <summary>Event times come from float milliseconds; more than nanosecond digits would be noise.</summary>
    private static double Nanosecond(double microseconds) => Math.Round(microseconds, 3);

    private BenchResult Describe(Suite.ProblemShape shape, GemmStrategy strategy)
    {
        WorkEstimate work = Roofline.Estimate(shape);
        return new BenchResult
        {
            Case = shape.Case.Name,
            Model = shape.Case.Model,
            Gemm = shape.Case.Gemm,
            Backend = _context.Backend == Backend.Cuda ? "cuda" : "cpu",
            Strategy = StrategySelection.Name(strategy),
            OutputDtype = OutputDTypeSelection.Name(_settings.OutputDType),
            Experts = shape.Experts,
            ActiveExperts = shape.ActiveExperts,
            N = shape.N,
            K = shape.K,
            Rows = shape.TotalRows,
            Scaled = shape.Scaled,
            ScaleNote = shape.ScaleNote,
            CaseExperts = shape.OriginalExperts,
            CaseN = shape.OriginalN,
            CaseRows = shape.OriginalRows,
            Iterations = _settings.Iterations,
            Warmup = _settings.Warmup,
            Flops = work.Flops,
            Bytes = work.Bytes,
            RooflineBound = Roofline.SpeedOfLight(work).Bound,
        };
    }
}
