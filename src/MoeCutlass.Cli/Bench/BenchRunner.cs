using System.Diagnostics;
using Microsoft.Extensions.Logging;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli.Bench;

/// <summary>Timing parameters of a bench run.</summary>
/// <param name="Iterations">Timed iterations per mode.</param>
/// <param name="Warmup">Untimed runs (eager) and launches (graph) before each mode's timed iterations.</param>
/// <param name="OutputDType">The dtype of D.</param>
/// <param name="Graph">Whether to time CUDA-graph replay too; only set where the context supports graphs.</param>
internal sealed record BenchSettings(int Iterations, int Warmup, DType OutputDType, bool Graph = false);

/// <summary>
/// Times one strategy on one problem. The plan is created once; <see cref="BenchSettings.Warmup"/> runs
/// are discarded; then every timed iteration is bracketed by its own pair of events on one stream. The
/// iterations are enqueued back to back (no host synchronization between them, at most
/// <see cref="EventBatch"/> in flight), so on CUDA the GPU never idles between iterations and an
/// iteration's time does not include the host's launch latency; its cost is measured separately as
/// the host time of each Run call (a Stopwatch around the call alone).
/// <para>
/// Graph mode (<see cref="BenchSettings.Graph"/>): after the eager timings, ONE Run is captured into a
/// CUDA graph on the same stream, the graph is launched <see cref="BenchSettings.Warmup"/> times
/// untimed (the first launch uploads it), then timed with the same event-bracketed loop. A graph
/// failure is recorded in <see cref="BenchResult.GraphError"/> and keeps the eager timings.
/// </para>
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

    /// <summary>Measures <paramref name="strategy"/> on <paramref name="data"/>; library failures of eager runs propagate.</summary>
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

        using var events = new EventPairs(_context, Math.Min(EventBatch, _settings.Iterations));
        (TimingSummary device, TimingSummary host) = TimeIterations(stream, events, () => data.Run(plan, stream));
        BenchResult result = Summarize(data, strategy, device, host, kernels);

        if (_settings.Graph)
        {
            result = MeasureGraph(data, plan, stream, events, strategy, result);
        }

        var flags = _context.QueryDeviceErrors(reset: true);
        if (flags != 0)
        {
            _logger.LogWarning("{Case} {Strategy}: the device reported offset errors (flags {Flags})", shape.Case.Name, StrategySelection.Name(strategy), flags);
        }

        return result;
    }

    /// <summary>The result record of a (case, strategy) that could not be measured.</summary>
    public BenchResult Failed(Suite.ProblemShape shape, GemmStrategy strategy, string error) =>
        Describe(shape, strategy) with { Error = error };

    /// <summary>
    /// Captures one Run into a CUDA graph on <paramref name="stream"/> and times its replay; adds the graph
    /// fields to <paramref name="eager"/>. Library failures (other than a sticky device fault) become
    /// <see cref="BenchResult.GraphError"/>.
    /// </summary>
    private BenchResult MeasureGraph(ProblemData data, GroupedGemmPlan plan, MoeStream stream, EventPairs events, GemmStrategy strategy,
        BenchResult eager)
    {
        string item = $"{data.Shape.Case.Name} {StrategySelection.Name(strategy)}";
        try
        {
            using MoeGraph graph = Capture(stream, () => data.Run(plan, stream));
            for (int i = 0; i < Math.Max(1, _settings.Warmup); i++)
            {
                graph.Launch(stream);
            }

            stream.Synchronize();
            (TimingSummary device, TimingSummary host) = TimeIterations(stream, events, () => graph.Launch(stream));
            double seconds = device.Median * 1e-6;
            return eager with
            {
                GraphTimeMedianUs = Nanosecond(device.Median),
                GraphTimeMinUs = Nanosecond(device.Min),
                GraphTimeP90Us = Nanosecond(device.P90),
                GraphTimeMeanUs = Nanosecond(device.Mean),
                GraphHostMedianUs = Nanosecond(host.Median),
                GraphTflops = seconds > 0 ? eager.Flops / seconds / 1e12 : null,
                GraphSpeedupVsEager = device.Median > 0 && eager.TimeMedianUs is > 0 ? eager.TimeMedianUs.Value / device.Median : null,
            };
        }
        catch (MoeCutlassException ex) when (ex is not MoeCutlassDeviceFaultException)
        {
            _logger.LogDebug(ex, "{Item}: CUDA-graph timing failed", item);
            return eager with { GraphError = ErrorReporter.DescribeLibraryError(ex) };
        }
    }

    /// <summary>Captures the work <paramref name="enqueue"/> puts on <paramref name="stream"/>; ends the capture whatever happens.</summary>
    private static MoeGraph Capture(MoeStream stream, Action enqueue)
    {
        stream.BeginCapture();
        try
        {
            enqueue();
        }
        catch
        {
            try
            {
                stream.EndCapture().Dispose();
            }
            catch (MoeCutlassException)
            {
                // The capture failure is reported; the first exception says why.
            }

            throw;
        }

        return stream.EndCapture();
    }

    /// <summary>
    /// The timed loop shared by both modes: <see cref="BenchSettings.Iterations"/> calls of
    /// <paramref name="enqueue"/>, each between its own pair of events, enqueued back to back in batches.
    /// Returns the per-iteration device times and host times of the call, in µs.
    /// </summary>
    private (TimingSummary Device, TimingSummary Host) TimeIterations(MoeStream stream, EventPairs events, Action enqueue)
    {
        double[] deviceUs = new double[_settings.Iterations];
        double[] hostUs = new double[_settings.Iterations];
        int batch = events.Count;
        var stopwatch = new Stopwatch();
        for (int first = 0; first < _settings.Iterations; first += batch)
        {
            int count = Math.Min(batch, _settings.Iterations - first);
            for (int j = 0; j < count; j++)
            {
                events.Starts[j].Record(stream);
                stopwatch.Restart();
                enqueue();
                stopwatch.Stop();
                events.Ends[j].Record(stream);
                hostUs[first + j] = stopwatch.Elapsed.TotalMicroseconds;
            }

            stream.Synchronize();
            for (int j = 0; j < count; j++)
            {
                deviceUs[first + j] = MoeEvent.ElapsedMilliseconds(events.Starts[j], events.Ends[j]) * 1000.0;
            }
        }

        return (TimingSummary.Of(deviceUs), TimingSummary.Of(hostUs));
    }

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

/// <summary>Start and end events for one batch of timed iterations, created once per measurement.</summary>
internal sealed class EventPairs : IDisposable
{
    public EventPairs(MoeContext context, int count)
    {
        Starts = new MoeEvent[count];
        Ends = new MoeEvent[count];
        try
        {
            for (int i = 0; i < count; i++)
            {
                Starts[i] = context.CreateEvent();
                Ends[i] = context.CreateEvent();
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Count => Starts.Length;

    public MoeEvent[] Starts { get; }

    public MoeEvent[] Ends { get; }

    public void Dispose()
    {
        foreach (MoeEvent? e in Starts.Concat(Ends))
        {
            e?.Dispose();
        }
    }
}
