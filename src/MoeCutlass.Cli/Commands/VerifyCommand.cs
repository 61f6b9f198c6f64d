using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Logging;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;
using MoeCutlass.Cli.Verify;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass verify</c>: checks the chosen backend against a reference on suite cases.
/// On CUDA: the CUDA output against the library's CPU reference backend on the same quantized inputs
/// (full case shapes unless <c>--scale</c>). On the CPU backend: the CPU backend's output against an
/// independent managed double-precision dequantize-and-multiply, on reduced cases.
/// </summary>
internal static class VerifyCommand
{
    public static Command Create()
    {
        Option<string?> suite = CommonOptions.Suite();
        Option<string[]> cases = CommonOptions.Cases();
        Option<string[]> strategies = CommonOptions.Strategies("all");
        Option<string> backend = CommonOptions.Backend();
        Option<int> device = CommonOptions.Device();
        Option<int> cpuThreads = CommonOptions.CpuThreads();
        Option<string> dtype = CommonOptions.OutputDType();
        Option<ulong> seed = CommonOptions.Seed();
        var scale = new Option<bool>("--scale")
        {
            Description = "Run reduced cases on CUDA too (as the CPU backend always does); the full cases make the CPU reference slow",
        };

        var layer = new Option<bool>("--layer")
        {
            Description = "Check the whole MoE layer on the suite's \"layers\" cases (--case names layer cases then), scaled down, against the "
                + "CPU layer on the same FP8 weights and inputs; also that two forward calls give the same bits",
        };

        var command = new Command("verify", "Check a backend's grouped GEMM (or with --layer the whole MoE layer) against a reference on suite cases")
        {
            suite, cases, strategies, backend, device, cpuThreads, dtype, scale, seed, layer,
        };

        command.SetAction(parseResult => CommandEnvironment.Run(
            parseResult.GetValue(CommonOptions.Verbose),
            environment => (parseResult.GetValue(layer) ? (Func<CommandEnvironment, VerifyRequest, int>)LayerVerify.Execute : Execute)(environment, new VerifyRequest(
                SuitePath: parseResult.GetValue(suite),
                Cases: parseResult.GetValue(cases),
                Strategies: StrategySelection.Parse(parseResult.GetValue(strategies), StrategySelection.All),
                Backend: BackendSelection.Parse(parseResult.GetValue(backend)),
                Device: OptionChecks.AtLeast(parseResult.GetValue(device), "--device", 0),
                CpuThreads: OptionChecks.AtLeast(parseResult.GetValue(cpuThreads), "--cpu-threads", 0),
                OutputDType: OutputDTypeSelection.Parse(parseResult.GetValue(dtype)),
                Scale: parseResult.GetValue(scale),
                Seed: parseResult.GetValue(seed)))));
        return command;
    }

    private static int Execute(CommandEnvironment environment, VerifyRequest request)
    {
        BenchSuite suite = BenchSuite.Load(SuiteLocator.Locate(request.SuitePath));
        IReadOnlyList<BenchCase> cases = suite.Select(request.Cases);

        environment.InitializeLibrary();
        (Backend backend, string reason) = BackendSelection.Resolve(request.Backend);
        using MoeContext context = BackendSelection.CreateContext(backend, request.Device, request.CpuThreads, environment.LoggerFactory);
        bool cuda = context.Backend == Backend.Cuda;
        bool scaled = !cuda || request.Scale;
        using MoeContext? referenceContext = cuda ? MoeContext.CreateCpu(request.CpuThreads, environment.LoggerFactory) : null;

        double tolerance = ReferenceCheck.Tolerance(request.OutputDType);
        ScaleLimits limits = ScaleLimits.Verify;
        IAnsiConsole console = environment.Console;
        var header = new ReportHeader(console);
        header.Add("backend", $"{BackendSelection.Describe(context)}: {reason}");
        header.Add("library", LibraryDescription.Text);
        header.Add("suite", $"{suite.Path} ({cases.Count} of {suite.Cases.Count} cases)");
        header.Add("comparison", cuda
            ? "CUDA backend vs the library's CPU reference backend (double accumulation) on the same quantized inputs"
            : "CPU reference backend vs an independent managed double-precision reference (dequantize A and B with their scales, multiply)");
        header.Add("metric", $"max over experts of the relative Frobenius error ||D_e - R_e|| / ||R_e||; tolerance {Format(tolerance)} for {OutputDTypeSelection.Name(request.OutputDType)} output");
        header.Add("shapes", scaled
            ? $"cases reduced to at most {limits.MaxExperts} experts and {limits.MaxRows} rows (same K, N halved where a run would exceed {limits.MaxFlops / 1e9:0.#} GFLOP)"
            : "full case shapes (use --scale for reduced ones: the CPU reference is slow on large cases)");
        console.WriteLine();

        ProblemShape[] shapes = cases.Select(c => scaled ? CaseScaler.Scale(c, limits) : ProblemShape.Full(c)).ToArray();
        var failures = new List<string>();
        List<VerifyRow> rows = WorkProgress.Run(environment, "verify", shapes.Length * request.Strategies.Count, progress =>
        {
            var results = new List<VerifyRow>();
            foreach (ProblemShape shape in shapes)
            {
                VerifyCase(context, referenceContext, shape, request, tolerance, progress, results, failures, environment.Logger);
            }

            return results;
        });

        console.WriteLine();
        WriteTable(console, rows, tolerance);
        int passed = rows.Count(r => r.Passed == true);
        int failed = rows.Count(r => r.Passed == false);
        int errors = rows.Count(r => r.Passed is null);
        console.WriteLine($"{passed} passed, {failed} failed, {errors} error(s) of {rows.Count} checks");
        foreach (string failure in failures)
        {
            ErrorReporter.WriteError(failure);
        }

        return failed > 0 ? ExitCodes.VerificationFailed : errors > 0 ? ExitCodes.Failure : ExitCodes.Success;
    }

    private static void VerifyCase(
        MoeContext context,
        MoeContext? referenceContext,
        ProblemShape shape,
        VerifyRequest request,
        double tolerance,
        IWorkProgress progress,
        List<VerifyRow> results,
        List<string> failures,
        ILogger logger)
    {
        string caseName = shape.Case.Name;
        progress.Begin($"{caseName} (inputs and reference)");
        using MoeStream stream = context.CreateStream();
        ProblemData data;
        Func<float[], Comparison> compare;
        try
        {
            data = ProblemData.Create(context, shape, request.OutputDType, request.Seed, stream);
            try
            {
                compare = referenceContext is null ? ManagedComparison(data) : BackendComparison(data, referenceContext);
            }
            catch
            {
                data.Dispose();
                throw;
            }
        }
        catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
        {
            string message = ErrorReporter.DescribeLibraryError(ex);
            failures.Add($"case {caseName}: cannot prepare inputs or reference: {message}");
            foreach (GemmStrategy strategy in request.Strategies)
            {
                results.Add(new VerifyRow(shape, strategy, null, null));
                progress.Complete($"{caseName} {StrategySelection.Name(strategy)}", "error");
            }

            return;
        }

        using (data)
        {
            foreach (GemmStrategy strategy in request.Strategies)
            {
                string item = $"{caseName} {StrategySelection.Name(strategy)}";
                progress.Begin(item);
                VerifyRow row;
                try
                {
                    using GroupedGemmPlan plan = context.CreateGroupedGemmPlan(
                        new GroupedGemmOptions(shape.Experts, shape.N, shape.K, request.OutputDType, strategy, shape.TotalRows));
                    data.PoisonOutput(stream);
                    data.Run(plan, stream);
                    stream.Synchronize();
                    var flags = context.QueryDeviceErrors(reset: true);
                    if (flags != 0)
                    {
                        failures.Add($"case {caseName}, strategy {StrategySelection.Name(strategy)}: device error flags {flags} after the run");
                    }

                    Comparison comparison = compare(data.ReadOutput());
                    row = new VerifyRow(shape, strategy, comparison, comparison.Passes(tolerance) && flags == 0);
                }
                catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
                {
                    string message = ErrorReporter.DescribeLibraryError(ex);
                    logger.LogDebug(ex, "{Item} failed", item);
                    failures.Add($"case {caseName}, strategy {StrategySelection.Name(strategy)}: {message}");
                    row = new VerifyRow(shape, strategy, null, null);
                }

                results.Add(row);
                progress.Complete(item, row.Passed switch
                {
                    true => $"PASS (max rel. error {Format(row.Comparison!.Value.MaxRelativeError)})",
                    false => row.Comparison is { } c ? $"FAIL (max rel. error {Format(c.MaxRelativeError)}, {c.NonFinite} non-finite)" : "FAIL",
                    null => "error",
                });
            }
        }
    }

    /// <summary>Reference = managed double computation over host copies of the quantized inputs.</summary>
    private static Func<float[], Comparison> ManagedComparison(ProblemData data)
    {
        double[] reference = ManagedReference.Compute(
            data.Shape,
            ProblemData.Download(data.A),
            ProblemData.Download(data.AScales),
            ProblemData.Download(data.B),
            ProblemData.Download(data.BScales));
        return output => ReferenceCheck.Compare(data.Shape, output, reference);
    }

    /// <summary>Reference = the library's CPU backend run on a copy of the same quantized inputs.</summary>
    private static Func<float[], Comparison> BackendComparison(ProblemData data, MoeContext referenceContext)
    {
        using ProblemData copy = data.CopyInto(referenceContext);
        using MoeStream stream = referenceContext.CreateStream();
        using GroupedGemmPlan plan = referenceContext.CreateGroupedGemmPlan(
            new GroupedGemmOptions(data.Shape.Experts, data.Shape.N, data.Shape.K, data.OutputDType, GemmStrategy.Single, data.Shape.TotalRows));
        copy.PoisonOutput(stream);
        copy.Run(plan, stream);
        stream.Synchronize();
        float[] reference = copy.ReadOutput();
        return output => ReferenceCheck.Compare(data.Shape, output, reference);
    }

    private static void WriteTable(IAnsiConsole console, IReadOnlyList<VerifyRow> rows, double tolerance)
    {
        var columns = new List<ColumnSpec<VerifyRow>>
        {
            new("Case", r => Markup.Escape(r.Shape.Case.Name)),
            new("Strategy", r => Markup.Escape(StrategySelection.Name(r.Strategy))),
            new("E", r => Int(r.Shape.Experts), DropPriority: 3, RightAligned: true),
            new("N", r => Int(r.Shape.N), DropPriority: 3, RightAligned: true),
            new("K", r => Int(r.Shape.K), DropPriority: 3, RightAligned: true),
            new("Rows", r => Int(r.Shape.TotalRows), DropPriority: 3, RightAligned: true),
            new("Max rel. error", r => r.Comparison is { } c ? Format(c.MaxRelativeError) + (c.NonFinite > 0 ? $" ({c.NonFinite} non-finite)" : "") : "", RightAligned: true),
            new("Worst expert", r => r.Comparison is { WorstExpert: >= 0 } w ? Int(w.WorstExpert) : "", DropPriority: 4, RightAligned: true),
            new("Tolerance", _ => Format(tolerance), RightAligned: true),
            new("Result", r => r.Passed switch { true => "[green]PASS[/]", false => "[red]FAIL[/]", null => "[red]ERROR[/]" }),
        };
        if (rows.Any(r => r.Shape.Scaled))
        {
            columns.Add(new("Scaled (run of case)", r => Markup.Escape(r.Shape.ScaleNote ?? "not scaled"), DropPriority: 5));
        }

        console.Write(FittedTable.Build(console, columns, rows, out IReadOnlyList<string> omitted));
        if (omitted.Count > 0)
        {
            console.WriteLine($"(narrow terminal: {string.Join(", ", omitted)} left out)");
        }
    }

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Format(double value) => double.IsFinite(value)
        ? value.ToString("0.000e0", CultureInfo.InvariantCulture)
        : value.ToString(CultureInfo.InvariantCulture);

    /// <summary>One (case, strategy) check; <see cref="Passed"/> is null when it could not run.</summary>
    private sealed record VerifyRow(ProblemShape Shape, GemmStrategy Strategy, Comparison? Comparison, bool? Passed);

    /// <summary>The parsed command line of <c>verify</c>.</summary>
    internal sealed record VerifyRequest(
        string? SuitePath,
        string[]? Cases,
        IReadOnlyList<GemmStrategy> Strategies,
        BackendRequest Backend,
        int Device,
        int CpuThreads,
        DType OutputDType,
        bool Scale,
        ulong Seed);
}
