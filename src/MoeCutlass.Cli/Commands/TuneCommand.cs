using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass tune</c>: times expert specialization's three kernel configurations (swapped 128x32, swapped 128x64,
/// 128x128), each forced for every expert, on uniform problems of m rows per expert, and reports where they cross over
/// and the bucket thresholds that follow for this GPU (range lines of native/src/core/kernel_configs.def).
/// </summary>
internal static class TuneCommand
{
    private const int DefaultIterations = 10;
    private const int DefaultWarmup = 3;

    /// <summary>bench's default seed: the same inputs whichever command generates them.</summary>
    private const ulong Seed = 20261121UL;

    /// <summary>The native override that would replace the thresholds tune forces on every plan.</summary>

    private const string ThresholdsFile = "native/src/core/kernel_configs.def";

    public static Command Create()
    {
        var shapes = new Option<string[]>("--shape")
        {
            Description = $"GEMM shape E,N,K to sweep (repeatable; E 1..4096, N a multiple of 8, K a multiple of 16) "
                + $"[default without --shape and --case: {TuneSelection.DefaultShapesText}]",
            HelpName = "E,N,K",
            Arity = ArgumentArity.OneOrMore,
        };
        Option<string[]> cases = CommonOptions.Cases();
        cases.Description = "Sweep the E, N, K of a suite case (exact name; repeatable or a comma list)";
        Option<string?> suite = CommonOptions.Suite();
        var rows = new Option<string[]>("--rows", "-m")
        {
            Description = $"Rows per expert to time (repeatable or a comma list) [default: {string.Join(',', TuneSelection.DefaultRows)}]",
            HelpName = "M,...",
            Arity = ArgumentArity.OneOrMore,
        };
        Option<string> dtype = CommonOptions.OutputDType();
        var iterations = new Option<int>("--iterations", "-n")
        {
            Description = "Timed iterations per rows value and configuration",
            HelpName = "COUNT",
            DefaultValueFactory = _ => DefaultIterations,
        };
        var warmup = new Option<int>("--warmup", "-w")
        {
            Description = "Untimed warm-up runs per rows value and configuration",
            HelpName = "COUNT",
            DefaultValueFactory = _ => DefaultWarmup,
        };
        Option<int> device = CommonOptions.Device();
        var json = new Option<string?>("--json") { Description = "Write results, crossovers and the suggestion (with run metadata) as JSON", HelpName = "PATH" };
        var csv = new Option<string?>("--csv") { Description = "Write results as CSV, one row per shape, rows value and configuration", HelpName = "PATH" };

        var command = new Command(
            "tune",
            "Time expert specialization's configurations (128x32, 128x64, 128x128) per rows per expert and print the crossovers "
            + "and suggested bucket thresholds (needs a CUDA device)")
        {
            shapes, cases, suite, rows, dtype, iterations, warmup, device, json, csv,
        };

        command.SetAction(parseResult => CommandEnvironment.Run(
            parseResult.GetValue(CommonOptions.Verbose),
            environment =>
            {
                // User errors first: they need neither the native library nor a device.
                string[]? caseNames = parseResult.GetValue(cases);
                BenchSuite? loadedSuite = null;
                IReadOnlyList<BenchCase> selectedCases = [];
                if (OptionLists.Split(caseNames).Any())
                {
                    loadedSuite = BenchSuite.Load(SuiteLocator.Locate(parseResult.GetValue(suite)));
                    selectedCases = loadedSuite.Select(caseNames);
                }

                var request = new TuneRequest(
                    Shapes: TuneSelection.Shapes(parseResult.GetValue(shapes), selectedCases),
                    SuitePath: loadedSuite?.Path,
                    Rows: TuneSelection.ParseRows(parseResult.GetValue(rows)),
                    OutputDType: OutputDTypeSelection.Parse(parseResult.GetValue(dtype)),
                    Iterations: OptionChecks.AtLeast(parseResult.GetValue(iterations), "--iterations", 1),
                    Warmup: OptionChecks.AtLeast(parseResult.GetValue(warmup), "--warmup", 0),
                    Device: OptionChecks.AtLeast(parseResult.GetValue(device), "--device", 0),
                    JsonPath: OptionChecks.OutputFile(parseResult.GetValue(json), "--json"),
                    CsvPath: OptionChecks.OutputFile(parseResult.GetValue(csv), "--csv"));
                return Execute(environment, request);
            }));
        return command;
    }

    private static int Execute(CommandEnvironment environment, TuneRequest request)
    {
        DateTimeOffset started = DateTimeOffset.UtcNow;
        environment.InitializeLibrary();
        if (NoDeviceReason(request.Device) is { } reason)
        {
            ErrorReporter.WriteError($"tune measures CUDA kernel configurations and needs a CUDA device (none found: {reason})");
            return ExitCodes.Failure;
        }

        MoeContext context;
        try
        {
            context = BackendSelection.CreateContext(Backend.Cuda, request.Device, 0, environment.LoggerFactory);
        }
        catch (MoeCutlassException ex) when (ex is MoeCutlassNoDeviceException or MoeCutlassUnsupportedException)
        {
            ErrorReporter.WriteError($"tune measures CUDA kernel configurations and needs a CUDA device (none found: {ErrorReporter.DescribeLibraryError(ex)})");
            return ExitCodes.Failure;
        }

        using (context)
        {
            return Measure(environment, context, request, started);
        }
    }

    /// <summary>Why this process has no usable CUDA device, or null when it has one.</summary>
    private static string? NoDeviceReason(int device)
    {
        if (!MoeCutlassLibrary.BuildInfo.HasCuda)
        {
            return "the native library was built without CUDA";
        }

        int count;
        try
        {
            count = MoeCutlassLibrary.DeviceCount;
        }
        catch (MoeCutlassException ex) when (ex is not MoeCutlassDeviceFaultException)
        {
            return ErrorReporter.DescribeLibraryError(ex);
        }

        if (count == 0)
        {
            return "the CUDA runtime reports no device";
        }

        return device >= count ? throw new UsageException($"--device {device} does not exist (this machine has {count} CUDA device(s))") : null;
    }

    private static int Measure(CommandEnvironment environment, MoeContext context, TuneRequest request, DateTimeOffset started)
    {
        DeviceInfo info = context.DeviceInfo ?? MoeCutlassLibrary.GetDeviceInfo(context.Device);
        var settings = new BenchSettings(request.Iterations, request.Warmup, request.OutputDType, Graph: false);
        IAnsiConsole console = environment.Console;
        var header = new ReportHeader(console);
        header.Add("device", $"{info.Name} (device {context.Device}, {info.Multiprocessors} SMs, {Bandwidth(info)} GB/s peak)");
        header.Add("library", LibraryDescription.Text);
        header.Add("shapes", string.Join("; ", request.Shapes.Select(s => s.Label)) + (request.SuitePath is null ? "" : $" (cases from {request.SuitePath})"));
        header.Add("rows", "per expert, every expert alike: " + string.Join(", ", request.Rows.Select(Int)));
        header.Add("configs", "every expert forced into one registry configuration (GroupedGemmOptions.Forcing): "
            + string.Join(", ", Enumerable.Range(0, TuneConfigurations.Count).Select(c => $"{TuneConfigurations.Labels[c]} = {TuneConfigurations.Names[c]}")));
        header.Add("timing", $"{settings.Iterations} timed iterations after {settings.Warmup} warm-up per configuration, taking turns in rounds; "
            + $"median of per-iteration event times; output {OutputDTypeSelection.Name(settings.OutputDType)}; seed {Seed.ToString(CultureInfo.InvariantCulture)}");
        console.WriteLine();

        var runner = new BenchRunner(context, settings, environment.Logger);
        var failures = new List<string>();
        List<TuneResult> results = WorkProgress.Run(environment, "tune", request.Shapes.Count * request.Rows.Count, progress =>
        {
            var measured = new List<TuneResult>();
            foreach (TuneShape shape in request.Shapes)
            {
                MeasureShape(context, runner, shape, request, settings, progress, measured, failures, environment.Logger);
            }

            return measured;
        });

        // Crossovers per shape, then the fitted configuration of every record.
        var summaries = new List<TuneShapeSummary>();
        var analyses = new List<ShapeCrossovers>();
        foreach (TuneShape shape in request.Shapes)
        {
            ShapeCrossovers crossovers = Crossovers.Analyze(Points(results, shape));
            analyses.Add(crossovers);
            summaries.Add(new TuneShapeSummary
            {
                Shape = shape.Label,
                Case = shape.Case,
                Experts = shape.Experts,
                N = shape.N,
                K = shape.K,
                Crossovers = crossovers.Description,
                Swap32MaxRows = crossovers.Swap32MaxRows,
                Swap64MaxRows = crossovers.Swap64MaxRows,
                Regret = crossovers.Regret,
                Incomplete = crossovers.Incomplete,
            });
            for (int i = 0; i < results.Count; i++)
            {
                TuneResult r = results[i];
                if (r.Shape == shape.Label)
                {
                    results[i] = r with { Fitted = crossovers.AssignedAt(r.RowsPerExpert) is { } c && TuneConfigurations.Labels[c] == r.Configuration };
                }
            }
        }

        console.WriteLine();
        for (int s = 0; s < request.Shapes.Count; s++)
        {
            WriteShape(console, request.Shapes[s], results, analyses[s]);
        }

        ThresholdSuggestion? suggestion = Crossovers.Suggest(analyses);
        TuneSuggestion? suggested = null;
        if (suggestion is not null)
        {
            string row = string.Join(Environment.NewLine,
                Crossovers.TableRows(Crossovers.GpuClassWord(info.Name), suggestion.Swap32MaxRows, suggestion.Swap64MaxRows));
            suggested = new TuneSuggestion
            {
                Swap32MaxRows = suggestion.Swap32MaxRows,
                Swap64MaxRows = suggestion.Swap64MaxRows,
                Shapes = suggestion.Shapes,
                TableRow = row,
            };
            console.WriteLine($"suggested thresholds for {info.Name} ({info.Multiprocessors} SMs, {Bandwidth(info)} GB/s peak): "
                + $"swap32_max_rows = {Int(suggestion.Swap32MaxRows)}, swap64_max_rows = {Int(suggestion.Swap64MaxRows)} "
                + $"(median over {Int(suggestion.Shapes)} shape(s) of the crossover midpoints)");
            console.WriteLine($"as range lines of {ThresholdsFile} (the library picks the class by SM count and peak bandwidth):");
            foreach (string line in row.Split(Environment.NewLine))
            {
                console.WriteLine("  " + line);
            }
        }
        else
        {
            console.WriteLine("no suggestion: no shape has a rows value with all three configurations measured");
        }

        foreach (string failure in failures)
        {
            ErrorReporter.WriteError(failure);
        }

        if (request.JsonPath is not null)
        {
            var metadata = new TuneRunMetadata
            {
                TimestampUtc = started,
                Machine = Environment.MachineName,
                Os = RuntimeInformation.OSDescription,
                Runtime = RuntimeInformation.FrameworkDescription,
                ToolVersion = ToolVersion.Text,
                LibraryVersion = MoeCutlassLibrary.BuildInfo.Version,
                LibraryGitCommit = MoeCutlassLibrary.BuildInfo.GitCommit,
                LibraryAbiVersion = MoeCutlassLibrary.BuildInfo.AbiVersion,
                LibraryPath = MoeCutlassLibrary.LoadedPath,
                Backend = "cuda",
                Device = info.Name,
                DeviceMultiprocessors = info.Multiprocessors,
                DevicePeakBandwidthGbps = info.PeakMemoryBandwidthGBps,
                Iterations = settings.Iterations,
                Warmup = settings.Warmup,
                Seed = Seed,
                OutputDtype = OutputDTypeSelection.Name(settings.OutputDType),
                Suite = request.SuitePath,
                RowsPerExpert = request.Rows,
            };
            TuneResultWriters.WriteJson(request.JsonPath, new TuneReport(metadata, results, summaries, suggested));
            console.WriteLine($"wrote {request.JsonPath}");
        }

        if (request.CsvPath is not null)
        {
            TuneResultWriters.WriteCsv(request.CsvPath, results);
            console.WriteLine($"wrote {request.CsvPath}");
        }

        return failures.Count == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }

    /// <summary>
    /// Generates the inputs of one shape once, for its largest rows value, and times the three configurations on a
    /// view of them per rows value (the same data a separate generation would give: A is generated row by row). A
    /// library failure is recorded and the sweep goes on; a sticky device fault ends the run.
    /// </summary>
    private static void MeasureShape(
        MoeContext context,
        BenchRunner runner,
        TuneShape shape,
        TuneRequest request,
        BenchSettings settings,
        IWorkProgress progress,
        List<TuneResult> results,
        List<string> failures,
        ILogger logger)
    {
        ProblemShape largest = ProblemShape.Uniform(shape.DataName, shape.Experts, shape.N, shape.K, request.Rows[^1]);
        ProblemData data;
        progress.Begin($"{shape.Label} (generating inputs)");
        try
        {
            using MoeStream stream = context.CreateStream();
            data = ProblemData.Create(context, largest, settings.OutputDType, Seed, stream);
        }
        catch (MoeCutlassException ex) when (ex is not MoeCutlassDeviceFaultException)
        {
            string message = ErrorReporter.DescribeLibraryError(ex);
            logger.LogDebug(ex, "{Shape}: cannot prepare inputs", shape.Label);
            foreach (int m in request.Rows)
            {
                results.AddRange(Enumerable.Range(0, TuneConfigurations.Count).Select(c => Record(shape, m, c, settings, null, message)));
                progress.Complete($"{shape.Label} m={Int(m)}", "failed");
            }

            failures.Add($"shape {shape.Label}: cannot prepare inputs: {message}");
            return;
        }

        using (data)
        {
            foreach (int m in request.Rows)
            {
                string item = $"{shape.Label} m={Int(m)}";
                progress.Begin(item);
                ProblemShape problem = ProblemShape.Uniform(shape.DataName, shape.Experts, shape.N, shape.K, m);
                IReadOnlyList<BenchResult> measured;
                try
                {
                    using ProblemData view = data.ShareInputs(context, problem);
                    measured = runner.MeasureInterleaved(view, Configurations(problem, settings.OutputDType));
                }
                catch (MoeCutlassException ex) when (ex is not MoeCutlassDeviceFaultException)
                {
                    string message = ErrorReporter.DescribeLibraryError(ex);
                    measured = Enumerable.Range(0, TuneConfigurations.Count).Select(c => runner.Failed(problem, TuneConfigurations.Labels[c], message)).ToList();
                }

                var records = new List<TuneResult>();
                for (int c = 0; c < TuneConfigurations.Count; c++)
                {
                    BenchResult result = measured[c];
                    if (result.Error is not null)
                    {
                        failures.Add($"shape {shape.Label}, m={Int(m)}, {TuneConfigurations.Labels[c]}: {result.Error}");
                    }

                    records.Add(Record(shape, m, c, settings, result, result.Error));
                }

                int? winner = new TunePoint(m, records.Select(r => r.Error is null ? r.TimeMedianUs : null).ToArray()).Winner;
                for (int c = 0; c < records.Count; c++)
                {
                    records[c] = records[c] with { Fastest = winner == c };
                }

                results.AddRange(records);
                progress.Complete(item, string.Join(", ", records.Select(r => $"{r.Configuration} {(r.Error is null ? NumberFormat.Microseconds(r.TimeMedianUs) + " µs" : "failed")}"))
                    + (winner is { } w ? $"; fastest {TuneConfigurations.Labels[w]}" : ""));
            }
        }
    }

    /// <summary>The three forced configurations for <paramref name="problem"/>, narrowest first.</summary>
    internal static IReadOnlyList<MeasuredConfiguration> Configurations(ProblemShape problem, DType outputDType) =>
        Enumerable.Range(0, TuneConfigurations.Count)
            .Select(c => new MeasuredConfiguration(
                TuneConfigurations.Labels[c],
                new GroupedGemmOptions(problem.Experts, problem.N, problem.K, outputDType, GemmStrategy.Single, problem.TotalRows)
                    .Forcing(TuneConfigurations.Names[c])))
            .ToList();

    private static TuneResult Record(TuneShape shape, int m, int configuration, BenchSettings settings, BenchResult? result, string? error) => new()
    {
        Shape = shape.Label,
        Case = shape.Case,
        Experts = shape.Experts,
        N = shape.N,
        K = shape.K,
        RowsPerExpert = m,
        Rows = shape.Experts * m,
        Configuration = TuneConfigurations.Labels[configuration],
        ConfigurationName = TuneConfigurations.Names[configuration],
        Iterations = settings.Iterations,
        Warmup = settings.Warmup,
        TimeMedianUs = error is null ? result?.TimeMedianUs : null,
        TimeMinUs = error is null ? result?.TimeMinUs : null,
        TimeP90Us = error is null ? result?.TimeP90Us : null,
        HostMedianUs = error is null ? result?.HostMedianUs : null,
        Tflops = error is null ? result?.Tflops : null,
        Fastest = false,
        Fitted = false,
        Kernels = result?.Kernels,
        Error = error,
    };

    /// <summary>The shape's measurements as crossover points, ascending rows.</summary>
    private static IEnumerable<TunePoint> Points(IReadOnlyList<TuneResult> results, TuneShape shape) =>
        results.Where(r => r.Shape == shape.Label)
            .GroupBy(r => r.RowsPerExpert)
            .Select(g => new TunePoint(
                g.Key,
                Enumerable.Range(0, TuneConfigurations.Count)
                    .Select(c => g.FirstOrDefault(r => r.Configuration == TuneConfigurations.Labels[c]) is { Error: null } r ? r.TimeMedianUs : null)
                    .ToArray()))
            .OrderBy(p => p.Rows);

    private static void WriteShape(IAnsiConsole console, TuneShape shape, IReadOnlyList<TuneResult> results, ShapeCrossovers crossovers)
    {
        TunePoint[] points = Points(results, shape).ToArray();
        var columns = new List<ColumnSpec<TunePoint>> { new("Rows/expert", p => Int(p.Rows), RightAligned: true) };
        for (int c = 0; c < TuneConfigurations.Count; c++)
        {
            int configuration = c;
            columns.Add(new($"{TuneConfigurations.Labels[c]} µs", p => TimeCell(p, configuration), RightAligned: true));
        }

        columns.Add(new("Best", p => BestCell(p, crossovers)));
        console.MarkupLine($"[bold]{Markup.Escape(shape.Label)}[/]");
        console.Write(FittedTable.Build(console, columns, points, out _));
        console.WriteLine($"crossovers: {crossovers.Description}");
        if (crossovers.Swap32MaxRows is { } swap32 && crossovers.Swap64MaxRows is { } swap64)
        {
            console.WriteLine($"thresholds for this shape: swap32_max_rows = {Int(swap32)}, swap64_max_rows = {Int(swap64)}"
                + (crossovers.Regret > 0 ? $" (the fit overrules faster configurations at some m, {crossovers.Regret * 100:0.#}% in all: marked 'fit:')" : ""));
        }

        if (crossovers.Incomplete.Count > 0)
        {
            console.WriteLine($"left out of the fit (a configuration failed): m={string.Join(", ", crossovers.Incomplete.Select(Int))}");
        }

        console.WriteLine();
    }

    private static string TimeCell(TunePoint point, int configuration)
    {
        if (point.TimesUs[configuration] is not { } time)
        {
            return "[red]failed[/]";
        }

        string text = NumberFormat.Microseconds(time);
        return point.Winner == configuration ? $"[bold]{text}[/]" : text;
    }

    private static string BestCell(TunePoint point, ShapeCrossovers crossovers)
    {
        if (point.Winner is not { } winner)
        {
            return "";
        }

        string text = TuneConfigurations.Labels[winner];
        return crossovers.AssignedAt(point.Rows) is { } fitted && fitted != winner ? $"{text} (fit: {TuneConfigurations.Labels[fitted]})" : text;
    }

    private static string Bandwidth(DeviceInfo info) => info.PeakMemoryBandwidthGBps.ToString("0", CultureInfo.InvariantCulture);

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>The parsed command line of <c>tune</c>.</summary>
    private sealed record TuneRequest(
        IReadOnlyList<TuneShape> Shapes,
        string? SuitePath,
        IReadOnlyList<int> Rows,
        DType OutputDType,
        int Iterations,
        int Warmup,
        int Device,
        string? JsonPath,
        string? CsvPath);
}
