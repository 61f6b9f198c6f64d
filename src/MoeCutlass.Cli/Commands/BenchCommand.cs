using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Logging;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Charts;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass bench</c>: times the grouped GEMM on suite cases for each requested strategy and reports
/// time, TFLOP/s, GB/s, the fraction of the roofline of the GPU it runs on (its class's datasheet ceilings, as the
/// library reports them) and the speedup over <c>single</c>.
/// </summary>
internal static class BenchCommand
{
    private const int CudaDefaultIterations = 20;
    private const int CudaDefaultWarmup = 5;
    private const int CpuDefaultIterations = 3;
    private const int CpuDefaultWarmup = 1;

    private static readonly IReadOnlyList<GemmStrategy> DefaultStrategies = [GemmStrategy.Single, GemmStrategy.ExpertSpecialized];

    public static Command Create()
    {
        Option<string?> suite = CommonOptions.Suite();
        Option<string[]> cases = CommonOptions.Cases();
        Option<string[]> strategies = CommonOptions.Strategies("single,expert_specialized");
        Option<string> backend = CommonOptions.Backend();
        Option<int> device = CommonOptions.Device();
        Option<int> cpuThreads = CommonOptions.CpuThreads();
        Option<string> dtype = CommonOptions.OutputDType();
        Option<ulong> seed = CommonOptions.Seed();
        Option<int?> iterations = CommonOptions.OptionalCount(
            "--iterations",
            "-n",
            $"Timed iterations per case and strategy [default: {CudaDefaultIterations} on CUDA, {CpuDefaultIterations} on CPU]");
        Option<int?> warmup = CommonOptions.OptionalCount(
            "--warmup",
            "-w",
            $"Untimed warm-up runs [default: {CudaDefaultWarmup} on CUDA, {CpuDefaultWarmup} on CPU]");
        var graph = new Option<bool>("--graph")
        {
            Description = "Also time CUDA-graph replay of one captured run, next to the eager times [default: on; needs the CUDA backend]",
        };
        var noGraph = new Option<bool>("--no-graph") { Description = "Time eager launches only (no CUDA-graph mode)" };
        var json = new Option<string?>("--json") { Description = "Write results (with run metadata) as JSON (the directory must exist; checked before the run)", HelpName = "PATH" };
        var csv = new Option<string?>("--csv") { Description = "Write results as CSV, one row per case and strategy (the directory must exist)", HelpName = "PATH" };
        var configs = new Option<string[]>("--config")
        {
            Description = "Also time these registry configurations, each forced for every expert (GroupedGemmOptions.Forcing), "
                + "reported under their names; a name prefixed 'persistent:' forces it in the persistent kernel instead; "
                + "comma-separated or repeated (moecutlass info lists them)",
            HelpName = "NAME",
            AllowMultipleArgumentsPerToken = true,
        };

        var plot = new Option<string?>("--plot")
        {
            Description = "At the end, draw the charts of `moecutlass plot` (roofline, time vs single) into this directory",
            HelpName = "DIR",
        };

        var cublasStatic = new Option<bool>("--cublas-static")
        {
            Description = "Also time cublas_static: the cublas strategy with GroupedGemmOptions.StaticWeights, B dequantized once per "
                + "plan (bf16 weights resident, as a MegaBlocks-style cuBLAS layer keeps them), next to cublas, which dequantizes "
                + "the experts with rows on every run; their difference is the dequantization's cost",
        };

        var layer = new Option<bool>("--layer")
        {
            Description = "Time the whole MoE layer on the suite's \"layers\" cases (--case names layer cases then): layer vs its two GEMMs "
                + "alone, weight-stream TB/s and per-stage times",
        };

        var command = new Command("bench", "Benchmark the grouped GEMM (or with --layer the whole MoE layer) on the shape suite")
        {
            suite, cases, strategies, backend, device, cpuThreads, iterations, warmup, graph, noGraph, dtype, seed, json, csv, configs, plot, layer,
            cublasStatic,
        };

        command.SetAction(parseResult => CommandEnvironment.Run(
            parseResult.GetValue(CommonOptions.Verbose),
            environment => (parseResult.GetValue(layer) ? (Func<CommandEnvironment, BenchRequest, int>)ExecuteLayers : Execute)(environment, new BenchRequest(
                SuitePath: parseResult.GetValue(suite),
                Cases: parseResult.GetValue(cases),
                Strategies: StrategySelection.Parse(parseResult.GetValue(strategies), DefaultStrategies),
                Backend: BackendSelection.Parse(parseResult.GetValue(backend)),
                Device: OptionChecks.AtLeast(parseResult.GetValue(device), "--device", 0),
                CpuThreads: OptionChecks.AtLeast(parseResult.GetValue(cpuThreads), "--cpu-threads", 0),
                Iterations: OptionChecks.AtLeast(parseResult.GetValue(iterations), "--iterations", 1),
                Warmup: OptionChecks.AtLeast(parseResult.GetValue(warmup), "--warmup", 0),
                Graph: GraphRequested(parseResult.GetValue(graph), parseResult.GetValue(noGraph)),
                OutputDType: OutputDTypeSelection.Parse(parseResult.GetValue(dtype)),
                Seed: parseResult.GetValue(seed),
                JsonPath: OptionChecks.OutputFile(parseResult.GetValue(json), "--json"),
                CsvPath: OptionChecks.OutputFile(parseResult.GetValue(csv), "--csv"),
                PlotDirectory: parseResult.GetValue(plot) is { } plotDirectory ? PlotCommand.OutputDirectory(plotDirectory, "--plot") : null,
                Configs: OptionLists.Split(parseResult.GetValue(configs)).Distinct().ToArray(),
                CublasStatic: parseResult.GetValue(cublasStatic)))));
        return command;
    }

    private static int ExecuteLayers(CommandEnvironment environment, BenchRequest request) =>
        LayerBench.Execute(environment, request, new BenchSettingsDefaults(CudaDefaultIterations, CudaDefaultWarmup, CpuDefaultIterations, CpuDefaultWarmup));

    private static int Execute(CommandEnvironment environment, BenchRequest request)
    {
        DateTimeOffset started = DateTimeOffset.UtcNow;

        // User errors first: they need neither the native library nor a device.
        BenchSuite suite = BenchSuite.Load(SuiteLocator.Locate(request.SuitePath));
        IReadOnlyList<BenchCase> cases = suite.Select(request.Cases);

        environment.InitializeLibrary();
        foreach (string label in request.Configs)
        {
            string name = ForcedConfiguration.Name(label);
            if (!MoeCutlassLibrary.KernelConfigurations.Any(c => c.Name == name))
            {
                throw new UsageException($"--config: '{name}' is not a kernel configuration; valid: "
                    + string.Join(", ", MoeCutlassLibrary.KernelConfigurations.Select(c => c.Name)));
            }
        }

        (Backend backend, string reason) = BackendSelection.Resolve(request.Backend);
        using MoeContext context = BackendSelection.CreateContext(backend, request.Device, request.CpuThreads, environment.LoggerFactory);
        bool cuda = context.Backend == Backend.Cuda;
        bool graphMode = request.Graph && context.SupportsGraphs;
        var settings = new BenchSettings(
            request.Iterations ?? (cuda ? CudaDefaultIterations : CpuDefaultIterations),
            request.Warmup ?? (cuda ? CudaDefaultWarmup : CpuDefaultWarmup),
            request.OutputDType,
            graphMode);

        IAnsiConsole console = environment.Console;
        var header = new ReportHeader(console);
        header.Add("backend", $"{BackendSelection.Describe(context)}: {reason}");
        header.Add("library", LibraryDescription.Text);
        header.Add("suite", $"{suite.Path} ({cases.Count} of {suite.Cases.Count} cases)");
        header.Add("strategies", string.Join(", ", request.StrategyLabels.Concat(request.Configs.Select(c => $"{c} (forced)"))));
        header.Add("timing", $"{settings.Iterations} timed iterations after {settings.Warmup} warm-up, per-iteration event times; "
            + $"output {OutputDTypeSelection.Name(settings.OutputDType)}; seed {request.Seed.ToString(CultureInfo.InvariantCulture)}");
        if (graphMode)
        {
            header.Add("graph mode", "on: after the eager timings, one run is captured into a CUDA graph and its replay is timed the same way "
                + "(--no-graph to skip)");
        }
        else if (request.Graph)
        {
            header.Add("graph mode", "needs the CUDA backend; only eager runs are timed");
        }

        // The roofline of the GPU the run is on: a percentage of another GPU's ceilings would mislead (an H200's
        // bandwidth over an H100's ceiling read 136 %).
        DeviceInfo? deviceInfo = cuda ? context.DeviceInfo : null;
        RooflineCeilings? ceilings = RooflineCeilings.Of(deviceInfo);
        header.Add("roofline", RooflineCeilings.HeaderText(ceilings, deviceInfo));

        string? cpuNote = null;
        if (!cuda)
        {
            ScaleLimits limits = ScaleLimits.CpuBench;
            cpuNote = $"CPU reference backend: cases scaled to at most {limits.MaxExperts} experts and {limits.MaxRows} rows "
                + "(experts picked across each case's load distribution, rows scaled proportionally, same K, "
                + $"N halved where one run would exceed {limits.MaxFlops / 1e9:0} GFLOP); times are CPU times, not GPU performance";
            header.Add("note", cpuNote);
        }

        console.WriteLine();
        ProblemShape[] shapes = cases
            .Select(c => cuda ? ProblemShape.Full(c) : CaseScaler.Scale(c, ScaleLimits.CpuBench))
            .ToArray();
        var runner = new BenchRunner(context, settings, environment.Logger);
        var failures = new List<string>();

        List<BenchResult> measured = WorkProgress.Run(environment, "bench", shapes.Length * (request.StrategyLabels.Count + request.Configs.Length), progress =>
        {
            var results = new List<BenchResult>();
            foreach (ProblemShape shape in shapes)
            {
                MeasureCase(context, runner, shape, request, settings, progress, results, failures, environment.Logger);
            }

            return results;
        });

        IReadOnlyList<BenchResult> final = Speedups.Apply(measured);
        console.WriteLine();
        ResultTable.Write(console, final, ceilings);
        console.WriteLine(RooflineCeilings.FootnoteText(ceilings, deviceInfo));
        if (graphMode)
        {
            console.WriteLine("Graph µs / Graph TFLOP/s: one captured run replayed as a CUDA graph, event-timed like the eager runs; "
                + "roofline and 'vs single' use the eager median.");
        }

        foreach (string failure in failures)
        {
            ErrorReporter.WriteError(failure);
        }

        if (request.JsonPath is not null || request.PlotDirectory is not null)
        {
            var metadata = BenchRunMetadata.Of(started, context, cuda, settings, request.Seed, suite.Path, graphMode, request.Graph,
                ceilings, cpuNote);
            var report = new BenchReport(metadata, final);
            if (request.JsonPath is not null)
            {
                ResultWriters.WriteJson(request.JsonPath, report);
                console.WriteLine($"wrote {request.JsonPath}");
            }

            if (request.PlotDirectory is not null)
            {
                DrawCharts(console, report, request);
            }
        }

        if (request.CsvPath is not null)
        {
            ResultWriters.WriteCsv(request.CsvPath, final);
            console.WriteLine($"wrote {request.CsvPath}");
        }

        return failures.Count == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }

    /// <summary>
    /// Generates one case's data once, then measures every strategy on it. A library failure of one case or
    /// strategy is recorded and the run goes on; a sticky device fault ends the run (the context is unusable).
    /// </summary>
    private static void MeasureCase(
        MoeContext context,
        BenchRunner runner,
        ProblemShape shape,
        BenchRequest request,
        BenchSettings settings,
        IWorkProgress progress,
        List<BenchResult> results,
        List<string> failures,
        ILogger logger)
    {
        string caseName = shape.Case.Name;
        ProblemData data;
        progress.Begin($"{caseName} (generating inputs)");
        try
        {
            using MoeStream stream = context.CreateStream();
            data = ProblemData.Create(context, shape, settings.OutputDType, request.Seed, stream);
        }
        catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
        {
            string message = ErrorReporter.DescribeLibraryError(ex);
            foreach (string label in request.StrategyLabels.Concat(request.Configs))
            {
                results.Add(runner.Failed(shape, label, message));
                progress.Complete($"{caseName} {label}", "failed");
            }

            failures.Add($"case {caseName}: cannot prepare inputs: {message}");
            return;
        }

        using (data)
        {
            // Strategies are timed interleaved in rounds (BenchRunner.MeasureInterleaved), so they are measured
            // together and reported one by one.
            progress.Begin($"{caseName} ({string.Join(", ", request.StrategyLabels.Concat(request.Configs))})");
            var shape0 = data.Shape;
            var options = new GroupedGemmOptions(shape0.Experts, shape0.N, shape0.K, settings.OutputDType, GemmStrategy.Auto, shape0.TotalRows);
            var configurations = request.Strategies
                .Select(strategy => new MeasuredConfiguration(StrategySelection.Name(strategy), options with { Strategy = strategy }))
                .Concat(request.CublasStatic
                    ? [new MeasuredConfiguration(CublasStaticLabel, options with { Strategy = GemmStrategy.Cublas, StaticWeights = true })]
                    : [])
                .Concat(request.Configs.Select(label => new MeasuredConfiguration(label, ForcedConfiguration.Options(options, label))))
                .ToList();
            IReadOnlyList<BenchResult> measured = runner.MeasureInterleaved(data, configurations);
            foreach (BenchResult result in measured)
            {
                string item = $"{caseName} {result.Strategy}";
                if (result.Error is not null)
                {
                    failures.Add($"case {caseName}, strategy {result.Strategy}: {result.Error}");
                }

                if (result.GraphError is not null)
                {
                    failures.Add($"case {caseName}, strategy {result.Strategy}, CUDA graph: {result.GraphError}");
                }

                results.Add(result);
                progress.Complete(item, Summary(result));
            }
        }
    }

    /// <summary>
    /// The charts of this run, read back through the result file's text so that they are the ones `plot` draws
    /// from the saved file. single may not have been run: the ratio chart is then left out with a note.
    /// </summary>
    private static void DrawCharts(IAnsiConsole console, BenchReport report, BenchRequest request)
    {
        string name = request.JsonPath is null ? "bench" : Path.GetFileNameWithoutExtension(request.JsonPath);
        PlotRun run = ResultFileLoader.Parse(ResultWriters.ToJson(report), name, "this bench run", "--plot");
        PlotCommand.Draw(console, [run], new ChartOptions(PlotCommand.DefaultBaseline, BaselineRequired: false, Peer: null), request.PlotDirectory!);
    }

    private static string Summary(BenchResult result) => result.Error is not null
        ? "failed"
        : $"median {NumberFormat.Microseconds(result.TimeMedianUs)} µs, {NumberFormat.Readable(result.Tflops)} TFLOP/s, "
          + $"{NumberFormat.Readable(result.Gbps)} GB/s"
          + (result.GraphTimeMedianUs is not null
              ? $"; graph {NumberFormat.Microseconds(result.GraphTimeMedianUs)} µs, {NumberFormat.Readable(result.GraphTflops)} TFLOP/s"
              : result.GraphError is not null ? "; graph failed" : "")
          + (result.Scaled ? $" (scaled: {result.ScaleNote})" : "");

    /// <summary>
    /// Graph mode is on unless <c>--no-graph</c> is given; <c>--graph</c> states the default explicitly, and
    /// both at once are a usage error.
    /// </summary>
    private static bool GraphRequested(bool graph, bool noGraph) =>
        graph && noGraph ? throw new UsageException("--graph and --no-graph contradict each other; give one of them") : !noGraph;

    /// <summary>The parsed command line of <c>bench</c>.</summary>
    internal sealed record BenchRequest(
        string? SuitePath,
        string[]? Cases,
        IReadOnlyList<GemmStrategy> Strategies,
        BackendRequest Backend,
        int Device,
        int CpuThreads,
        int? Iterations,
        int? Warmup,
        bool Graph,
        DType OutputDType,
        ulong Seed,
        string? JsonPath,
        string? CsvPath,
        string? PlotDirectory,
        string[] Configs,
        bool CublasStatic = false)
    {
        /// <summary>The reported labels of the strategies (and cublas_static with <c>--cublas-static</c>), in run order.</summary>
        public IReadOnlyList<string> StrategyLabels =>
            Strategies.Select(StrategySelection.Name).Concat(CublasStatic ? [CublasStaticLabel] : []).ToArray();
    }

    /// <summary>The label of <c>--cublas-static</c>'s measurement.</summary>
    internal const string CublasStaticLabel = "cublas_static";
}
