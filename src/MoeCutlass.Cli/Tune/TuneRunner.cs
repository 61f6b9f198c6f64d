using System.Globalization;
using Microsoft.Extensions.Logging;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Tune;

/// <summary>
/// <c>tune</c>'s measurement loop: per shape, path and rows-per-expert value, a uniform problem timed with each of
/// the path's configurations (<see cref="TuneConfigurationSet"/>) forced for every expert, taking turns in rounds
/// (<see cref="BenchRunner"/>).
/// </summary>
internal sealed class TuneRunner
{
    /// <summary>bench's default seed: the same inputs whichever command generates them.</summary>
    public const ulong Seed = 20261121UL;

    private readonly MoeContext _context;
    private readonly BenchSettings _settings;
    private readonly ILogger _logger;
    private readonly BenchRunner _runner;

    public TuneRunner(MoeContext context, BenchSettings settings, ILogger logger)
    {
        _context = context;
        _settings = settings;
        _logger = logger;
        _runner = new BenchRunner(context, settings, logger);
    }

    /// <summary>
    /// Generates the inputs of one shape once, for its largest rows value, and times the configurations on a view of
    /// them per rows value (the same data a separate generation would give: A is generated row by row). A library
    /// failure is recorded (in the records and <paramref name="failures"/>) and the sweep goes on; a sticky device
    /// fault ends the run.
    /// </summary>
    public void MeasureShape(TuneShape shape, IReadOnlyList<int> rows, IWorkProgress progress, List<TuneResult> results, List<string> failures) =>
        MeasureShape(shape, [new TuneSweep(TuneConfigurationSet.Specialized, rows)], progress, results, failures);

    /// <summary>
    /// <see cref="MeasureShape(TuneShape, IReadOnlyList{int}, IWorkProgress, List{TuneResult}, List{string})"/> over
    /// several paths: the inputs generated once for the largest rows value of any sweep, then each sweep in turn.
    /// </summary>
    public void MeasureShape(TuneShape shape, IReadOnlyList<TuneSweep> sweeps, IWorkProgress progress, List<TuneResult> results, List<string> failures)
    {
        int largestRows = sweeps.Max(s => s.Rows[^1]);
        ProblemShape largest = ProblemShape.Uniform(shape.DataName, shape.Experts, shape.N, shape.K, largestRows);
        ProblemData data;
        progress.Begin($"{shape.Label} (generating inputs)");
        try
        {
            using MoeStream stream = _context.CreateStream();
            data = ProblemData.Create(_context, largest, _settings.OutputDType, Seed, stream);
        }
        catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
        {
            string message = ErrorReporter.DescribeLibraryError(ex);
            _logger.LogDebug(ex, "{Shape}: cannot prepare inputs", shape.Label);
            foreach (TuneSweep sweep in sweeps)
            {
                foreach (int m in sweep.Rows)
                {
                    results.AddRange(Enumerable.Range(0, sweep.Set.Count).Select(c => Record(shape, m, sweep.Set, c, null, message)));
                    progress.Complete($"{shape.Label} {sweep.Set.Word} m={Int(m)}", "failed");
                }
            }

            failures.Add($"shape {shape.Label}: cannot prepare inputs: {message}");
            return;
        }

        using (data)
        {
            foreach (TuneSweep sweep in sweeps)
            {
                foreach (int m in sweep.Rows)
                {
                    MeasureRows(shape, m, sweep.Set, data, progress, results, failures);
                }
            }
        }
    }

    /// <summary>The forced configurations of expert specialization for <paramref name="problem"/>, narrowest first.</summary>
    internal static IReadOnlyList<MeasuredConfiguration> Configurations(ProblemShape problem, DType outputDType) =>
        Configurations(problem, outputDType, TuneConfigurationSet.Specialized);

    /// <summary>The forced configurations of <paramref name="set"/> for <paramref name="problem"/>, narrowest first.</summary>
    internal static IReadOnlyList<MeasuredConfiguration> Configurations(ProblemShape problem, DType outputDType, TuneConfigurationSet set) =>
        Enumerable.Range(0, set.Count)
            .Select(c => new MeasuredConfiguration(
                set.Labels[c],
                new GroupedGemmOptions(problem.Experts, problem.N, problem.K, outputDType, GemmStrategy.Single, problem.TotalRows)
                    .Forcing(set.Names[c])))
            .ToList();

    private void MeasureRows(TuneShape shape, int m, TuneConfigurationSet set, ProblemData data, IWorkProgress progress, List<TuneResult> results, List<string> failures)
    {
        string item = $"{shape.Label} {set.Word} m={Int(m)}";
        progress.Begin(item);
        ProblemShape problem = ProblemShape.Uniform(shape.DataName, shape.Experts, shape.N, shape.K, m);
        IReadOnlyList<BenchResult> measured;
        try
        {
            using ProblemData view = data.ShareInputs(_context, problem);
            measured = _runner.MeasureInterleaved(view, Configurations(problem, _settings.OutputDType, set));
        }
        catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
        {
            string message = ErrorReporter.DescribeLibraryError(ex);
            measured = Enumerable.Range(0, set.Count).Select(c => _runner.Failed(problem, set.Labels[c], message)).ToList();
        }

        var records = new List<TuneResult>();
        for (int c = 0; c < set.Count; c++)
        {
            BenchResult result = measured[c];
            if (result.Error is not null)
            {
                failures.Add($"shape {shape.Label}, {set.Word}, m={Int(m)}, {set.Labels[c]}: {result.Error}");
            }

            records.Add(Record(shape, m, set, c, result, result.Error));
        }

        int? winner = new TunePoint(m, records.Select(r => r.Error is null ? r.TimeMedianUs : null).ToArray()).Winner;
        for (int c = 0; c < records.Count; c++)
        {
            records[c] = records[c] with { Fastest = winner == c };
        }

        results.AddRange(records);
        progress.Complete(item, string.Join(", ", records.Select(r => $"{r.Configuration} {(r.Error is null ? NumberFormat.Microseconds(r.TimeMedianUs) + " µs" : "failed")}"))
            + (winner is { } w ? $"; fastest {set.Labels[w]}" : ""));
    }

    /// <summary>The record of one configuration at one rows value; a failed one keeps how it was to be timed, with no times.</summary>
    private TuneResult Record(TuneShape shape, int m, TuneConfigurationSet set, int configuration, BenchResult? result, string? error) => new()
    {
        Shape = shape.Label,
        Case = shape.Case,
        Experts = shape.Experts,
        N = shape.N,
        K = shape.K,
        RowsPerExpert = m,
        Rows = shape.Experts * m,
        Configuration = set.Labels[configuration],
        ConfigurationName = set.Names[configuration],
        Timing = (error is null ? result?.Timing : null) ?? Timing.NotMeasured(_settings.Iterations, _settings.Warmup),
        Tflops = error is null ? result?.Tflops : null,
        Fastest = false,
        Fitted = false,
        Kernels = result?.Kernels,
        Error = error,
        Path = TuneConfigurationSet.RecordName(set.Path),
    };

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One path's part of a shape's sweep: its configurations and the rows values they are timed at (ascending).</summary>
internal sealed record TuneSweep(TuneConfigurationSet Set, IReadOnlyList<int> Rows);
