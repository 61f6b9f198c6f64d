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

/// <summary>A plan configuration timed by <see cref="BenchRunner"/>: the label it is reported under and its options.</summary>
/// <param name="Label">Strategy name (bench) or configuration name such as "128x32" (tune).</param>
/// <param name="Options">The options the plan is created with; their MaxRows must cover the data's rows.</param>
internal sealed record MeasuredConfiguration(string Label, GroupedGemmOptions Options);

/// <summary>
/// Times the strategies of one problem. Each plan is created once; <see cref="BenchSettings.Warmup"/> runs
/// are discarded; then every timed iteration is bracketed by its own pair of events on one stream. The
/// iterations are enqueued back to back (no host synchronization between them, at most
/// <see cref="EventBatch"/> in flight), so on CUDA the GPU never idles between iterations and an
/// iteration's time does not include the host's launch latency; its cost is measured separately as
/// the host time of each Run call (a Stopwatch around the call alone). The strategies take turns in
/// rounds, so drift over a long case is shared (<see cref="MeasureInterleaved"/>).
/// <para>
/// Graph mode (<see cref="BenchSettings.Graph"/>): after the eager timings, ONE Run per strategy is captured into
/// a CUDA graph on the same stream, launched <see cref="BenchSettings.Warmup"/> times untimed (the first launch
/// uploads it), then timed with the same event-bracketed loop in rounds. A graph failure is recorded in
/// <see cref="BenchResult.GraphError"/> and keeps the eager timings. <see cref="GemmStrategy.Cublas"/> is not captured
/// (it synchronises with the host by design), so its graph columns stay empty.
/// </para>
/// </summary>
internal sealed class BenchRunner
{
    /// <summary>Event pairs in flight before the host waits and reads them.</summary>
    private const int EventBatch = 64;

    private readonly MoeContext _context;
    private readonly BenchSettings _settings;
    private readonly ILogger _logger;

    /// <summary>The ceilings of the context's GPU; null on the CPU backend or for a class without known ceilings.</summary>
    private readonly RooflineCeilings? _ceilings;

    public BenchRunner(MoeContext context, BenchSettings settings, ILogger logger)
    {
        _context = context;
        _settings = settings;
        _logger = logger;
        _ceilings = RooflineCeilings.Of(context.DeviceInfo);
    }

    /// <summary>Rounds the timed iterations are split into when several strategies are measured on one case.</summary>
    private const int InterleaveRounds = 4;

    /// <summary>
    /// Measures every strategy on <paramref name="data"/> with the iterations split into rounds, each round timing
    /// every strategy in turn (eager, then graph mode the same way). Clock and thermal drift over a long case then
    /// falls on all strategies alike instead of on the one measured last: on an H100, sustained FP8 work lowers
    /// the clock enough that the third strategy of a compute-bound case read up to 15% slower running the very
    /// same kernel. A strategy whose plan or runs fail gets a failed result; the others go on.
    /// </summary>
    public IReadOnlyList<BenchResult> MeasureInterleaved(ProblemData data, IReadOnlyList<GemmStrategy> strategies)
    {
        var shape = data.Shape;
        return MeasureInterleaved(
            data,
            strategies.Select(strategy => new MeasuredConfiguration(
                StrategySelection.Name(strategy),
                new GroupedGemmOptions(shape.Experts, shape.N, shape.K, _settings.OutputDType, strategy, shape.TotalRows))).ToList());
    }

    /// <summary>
    /// Measures every configuration on <paramref name="data"/> the way <see cref="MeasureInterleaved(ProblemData, IReadOnlyList{GemmStrategy})"/>
    /// measures strategies (rounds, then graph mode when enabled). Each result's <see cref="BenchResult.Strategy"/> is the
    /// configuration's label. <c>tune</c> uses this to time forced expert-specialization thresholds against each other.
    /// </summary>
    public IReadOnlyList<BenchResult> MeasureInterleaved(ProblemData data, IReadOnlyList<MeasuredConfiguration> configurations)
    {
        var shape = data.Shape;
        using MoeStream stream = _context.CreateStream();
        var entries = new List<Entry>();
        try
        {
            foreach (MeasuredConfiguration configuration in configurations)
            {
                var entry = new Entry(configuration.Label);
                entries.Add(entry);
                try
                {
                    entry.Plan = _context.CreateGroupedGemmPlan(configuration.Options);
                    entry.Kernels = string.Join(";", entry.Plan.Kernels);
                    for (int i = 0; i < _settings.Warmup; i++)
                    {
                        data.Run(entry.Plan, stream);
                    }

                    stream.Synchronize();
                }
                catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
                {
                    entry.Fail(ex, _logger, shape.Case.Name);
                }
            }

            using var events = new EventPairs(_context, Math.Min(EventBatch, _settings.Iterations));
            TimeInRounds(entries, stream, events, (entry, s) => data.Run(entry.Plan!, s), graph: false);

            if (_settings.Graph)
            {
                // cublas reads the offsets on the host and refuses capture by design: it has no graph timing, which
                // is not a failure of the run.
                foreach (Entry entry in entries.Where(e => e.Error is null && e.Plan!.Options.Strategy != GemmStrategy.Cublas))
                {
                    try
                    {
                        entry.Graph = Capture(stream, () => data.Run(entry.Plan!, stream));
                        for (int i = 0; i < Math.Max(1, _settings.Warmup); i++)
                        {
                            entry.Graph.Launch(stream);
                        }

                        stream.Synchronize();
                    }
                    catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
                    {
                        _logger.LogDebug(ex, "{Case} {Strategy}: CUDA-graph capture failed", shape.Case.Name, entry.Label);
                        entry.GraphError = ErrorReporter.DescribeLibraryError(ex);
                    }
                }

                TimeInRounds(entries.Where(e => e.Graph is not null).ToList(), stream, events, (entry, s) => entry.Graph!.Launch(s), graph: true);
            }

            var flags = _context.QueryDeviceErrors(reset: true);
            if (flags != 0)
            {
                _logger.LogWarning("{Case}: the device reported offset errors (flags {Flags})", shape.Case.Name, flags);
            }

            return entries.Select(entry => Result(data, entry)).ToList();
        }
        finally
        {
            foreach (Entry entry in entries)
            {
                entry.Graph?.Dispose();
                entry.Plan?.Dispose();
            }
        }
    }

    private void TimeInRounds(IReadOnlyList<Entry> entries, MoeStream stream, EventPairs events, Action<Entry, MoeStream> enqueue, bool graph)
    {
        // Each round ends with a host wait, and the GPU re-boosts during that short idle, so whichever entry opens
        // a round runs slightly faster: on an H100 the same kernel read 4-6% faster as the first of three. The
        // order therefore rotates every round, over a whole number of rotations, so every entry opens equally often.
        int rotations = Math.Max(1, (InterleaveRounds + entries.Count - 1) / Math.Max(1, entries.Count));
        int rounds = Math.Min(rotations * Math.Max(1, entries.Count), _settings.Iterations);
        for (int round = 0; round < rounds; round++)
        {
            int count = _settings.Iterations / rounds + (round < _settings.Iterations % rounds ? 1 : 0);
            for (int turn = 0; turn < entries.Count; turn++)
            {
                Entry entry = entries[(turn + round) % entries.Count];
                if (entry.Error is not null || (graph && entry.GraphError is not null))
                {
                    continue;
                }

                try
                {
                    (double[] device, double[] host) = TimeIterations(stream, events, count, () => enqueue(entry, stream));
                    (graph ? entry.GraphDevice : entry.Device).AddRange(device);
                    (graph ? entry.GraphHost : entry.Host).AddRange(host);
                }
                catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
                {
                    if (graph)
                    {
                        entry.GraphError = ErrorReporter.DescribeLibraryError(ex);
                    }
                    else
                    {
                        entry.Fail(ex, _logger, "run");
                    }
                }
            }
        }
    }

    private BenchResult Result(ProblemData data, Entry entry)
    {
        if (entry.Error is not null)
        {
            return Failed(data.Shape, entry.Label, entry.Error);
        }

        BenchResult eager = Summarize(data, entry.Label, TimingSummary.Of(entry.Device), TimingSummary.Of(entry.Host), entry.Kernels);
        if (entry.GraphError is not null)
        {
            return eager with { GraphError = entry.GraphError };
        }

        if (entry.GraphDevice.Count == 0)
        {
            return eager;
        }

        TimingSummary device = TimingSummary.Of(entry.GraphDevice);
        double seconds = device.Median * 1e-6;
        return eager with
        {
            // Graph warm-up is at least one launch: the first one uploads the graph.
            Graph = Timing.Measured(_settings.Iterations, Math.Max(1, _settings.Warmup), device, TimingSummary.Of(entry.GraphHost)),
            GraphTflops = seconds > 0 ? eager.Flops / seconds / 1e12 : null,
            GraphSpeedupVsEager = device.Median > 0 && eager.TimeMedianUs is > 0 ? eager.TimeMedianUs.Value / device.Median : null,
        };
    }

    /// <summary>One configuration's plan, graph and samples while a case is measured.</summary>
    private sealed class Entry(string label)
    {
        public string Label { get; } = label;
        public GroupedGemmPlan? Plan { get; set; }
        public MoeGraph? Graph { get; set; }
        public string Kernels { get; set; } = "";
        public string? Error { get; private set; }
        public string? GraphError { get; set; }
        public List<double> Device { get; } = [];
        public List<double> Host { get; } = [];
        public List<double> GraphDevice { get; } = [];
        public List<double> GraphHost { get; } = [];

        public void Fail(Exception ex, ILogger logger, string what)
        {
            logger.LogDebug(ex, "{Strategy} failed ({What})", Label, what);
            Error = ErrorReporter.DescribeLibraryError(ex);
        }
    }

    /// <summary>The result record of a (case, strategy) that could not be measured.</summary>
    public BenchResult Failed(Suite.ProblemShape shape, GemmStrategy strategy, string error) =>
        Failed(shape, StrategySelection.Name(strategy), error);

    /// <summary>The result record of a (case, configuration label) that could not be measured.</summary>
    public BenchResult Failed(Suite.ProblemShape shape, string label, string error) =>
        Describe(shape, label) with { Error = error };

    /// <summary>Captures the work <paramref name="enqueue"/> puts on <paramref name="stream"/>; ends the capture whatever happens.</summary>
    internal static MoeGraph Capture(MoeStream stream, Action enqueue)
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
            catch (Exception ex) when (ex is IMoeCutlassException)
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
    internal static (double[] Device, double[] Host) TimeIterations(MoeStream stream, EventPairs events, int iterations, Action enqueue)
    {
        double[] deviceUs = new double[iterations];
        double[] hostUs = new double[iterations];
        int batch = events.Count;
        var stopwatch = new Stopwatch();
        for (int first = 0; first < iterations; first += batch)
        {
            int count = Math.Min(batch, iterations - first);
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

        return (deviceUs, hostUs);
    }

    private BenchResult Summarize(ProblemData data, string label, TimingSummary device, TimingSummary host, string kernels)
    {
        BenchResult result = Describe(data.Shape, label);
        double seconds = device.Median * 1e-6;
        WorkEstimate work = Roofline.Estimate(data.Shape);
        return result with
        {
            Timing = Timing.Measured(_settings.Iterations, _settings.Warmup, device, host),
            Tflops = seconds > 0 ? work.Flops / seconds / 1e12 : null,
            Gbps = seconds > 0 ? work.Bytes / seconds / 1e9 : null,
            RooflinePercent = Roofline.Fraction(work, seconds, _ceilings).Percent,
            Kernels = kernels,
        };
    }

    private BenchResult Describe(Suite.ProblemShape shape, string label)
    {
        WorkEstimate work = Roofline.Estimate(shape);
        return new BenchResult
        {
            Case = shape.Case.Name,
            Model = shape.Case.Model,
            Gemm = shape.Case.Gemm,
            Backend = _context.Backend == Backend.Cuda ? "cuda" : "cpu",
            Strategy = label,
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
            Timing = Timing.NotMeasured(_settings.Iterations, _settings.Warmup),
            Flops = work.Flops,
            Bytes = work.Bytes,
            RooflineBound = Roofline.Fraction(work, null, _ceilings).Bound,
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
