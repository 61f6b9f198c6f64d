using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Scale;
using MoeCutlass.Cli.Suite;
using MoeCutlass.Cli.Verify;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass scale</c>: the multi-rank layer benchmark (issue 16 slice 4). For each layer case, parallel mode (tp, ep) and
/// world size W it launches W child processes of this tool (the hidden <c>scale-rank</c> command, one per GPU: rank r on
/// device r, as NCCL needs), hands them an NCCL unique id through a file in a temporary directory it owns, waits for them with
/// a timeout (killing the rest when one fails), and reports per (case, mode, W) the latency (max over ranks of the median
/// forward), the speedup and scaling efficiency against the one-GPU layer, the collectives' share, and whether every rank's
/// output is within <see cref="LayerTolerance"/> of the one-GPU layer's. A command of its own rather than a <c>bench</c>
/// option: bench's strategies, graph mode, CSV and charts do not apply, and it has options of its own (world sizes, timeout).
/// </summary>
internal static class ScaleCommand
{
    private const int DefaultIterations = 20;
    private const int DefaultWarmup = 5;
    private const int DefaultTimeoutSeconds = 1800;

    /// <summary>The hidden per-rank command's name.</summary>
    public const string RankCommandName = "scale-rank";

    public static Command Create()
    {
        Option<string?> suite = CommonOptions.Suite();
        Option<string[]> cases = CommonOptions.Cases();
        Option<string> backend = CommonOptions.Backend();
        Option<ulong> seed = CommonOptions.Seed();
        Option<string[]> parallel = Parallel();
        Option<string[]> world = World();
        Option<int?> iterations = CommonOptions.OptionalCount("--iterations", "-n", $"Timed iterations per rank [default: {DefaultIterations}]");
        Option<int?> warmup = CommonOptions.OptionalCount("--warmup", "-w", $"Untimed warm-up forwards per rank [default: {DefaultWarmup}]");
        Option<int?> timeout = CommonOptions.OptionalCount("--timeout", "-t",
            $"Seconds one (case, mode, W) may take before its ranks are killed [default: {DefaultTimeoutSeconds}]");
        var json = new Option<string?>("--json") { Description = "Write results (with run metadata and every rank's figures) as JSON", HelpName = "PATH" };

        var command = new Command("scale", "Multi-GPU layer benchmark: tensor- and expert-parallel layers over W ranks (one process per GPU, "
            + "NCCL) against the one-GPU layer: latency, speedup, scaling efficiency, collectives' share, tolerance")
        {
            suite, cases, parallel, world, backend, iterations, warmup, timeout, seed, json,
        };
        command.SetAction(parseResult => CommandEnvironment.Run(
            parseResult.GetValue(CommonOptions.Verbose),
            environment => Execute(environment, new ScaleRequest(
                parseResult.GetValue(suite),
                parseResult.GetValue(cases),
                ScalePlan.ParseModes(parseResult.GetValue(parallel)),
                ScalePlan.ParseWorlds(parseResult.GetValue(world)),
                BackendSelection.Parse(parseResult.GetValue(backend)),
                OptionChecks.AtLeast(parseResult.GetValue(iterations), "--iterations", 1) ?? DefaultIterations,
                OptionChecks.AtLeast(parseResult.GetValue(warmup), "--warmup", 0) ?? DefaultWarmup,
                OptionChecks.AtLeast(parseResult.GetValue(timeout), "--timeout", 1) ?? DefaultTimeoutSeconds,
                parseResult.GetValue(seed),
                OptionChecks.OutputFile(parseResult.GetValue(json), "--json"),
                parseResult.GetValue(CommonOptions.Verbose)))));
        return command;
    }

    /// <summary>The hidden command one rank runs (started by <c>scale</c>, not by users).</summary>
    public static Command CreateRank()
    {
        Option<string?> suite = CommonOptions.Suite();
        var layerCase = new Option<string>("--case") { Required = true };
        var mode = new Option<string>("--parallel") { Required = true };
        var world = new Option<int>("--world") { Required = true };
        var rank = new Option<int>("--rank") { Required = true };
        var idFile = new Option<string>("--id-file") { Required = true };
        var json = new Option<string>("--json") { Required = true };
        var iterations = new Option<int>("--iterations") { DefaultValueFactory = _ => DefaultIterations };
        var warmup = new Option<int>("--warmup") { DefaultValueFactory = _ => DefaultWarmup };
        Option<ulong> seed = CommonOptions.Seed();
        Option<string> backend = CommonOptions.Backend();
        var command = new Command(RankCommandName, "One rank of `moecutlass scale` (internal)")
        {
            suite, layerCase, mode, world, rank, idFile, json, iterations, warmup, seed, backend,
        };
        command.Hidden = true;
        command.SetAction(parseResult => CommandEnvironment.Run(
            parseResult.GetValue(CommonOptions.Verbose),
            environment =>
            {
                IReadOnlyList<MoeParallelMode> modes = ScalePlan.ParseModes([parseResult.GetValue(mode)!]);
                int w = ScalePlan.ParseWorlds([parseResult.GetValue(world).ToString(CultureInfo.InvariantCulture)])[0];
                int r = parseResult.GetValue(rank);
                if (r < 0 || r >= w)
                {
                    throw new UsageException($"--rank {r}: must be 0 .. W-1 = {w - 1}");
                }

                return RankRunner.Execute(environment, new RankRequest(parseResult.GetValue(suite), parseResult.GetValue(layerCase)!,
                    modes[0], w, r, parseResult.GetValue(idFile)!, parseResult.GetValue(json)!,
                    OptionChecks.AtLeast(parseResult.GetValue(iterations), "--iterations", 1),
                    OptionChecks.AtLeast(parseResult.GetValue(warmup), "--warmup", 0), parseResult.GetValue(seed),
                    BackendSelection.Parse(parseResult.GetValue(backend))));
            }));
        return command;
    }

    private static Option<string[]> Parallel() => new("--parallel", "-p")
    {
        Description = $"Parallel modes: {ScalePlan.ModeValues} (repeatable or a comma list) [default: tp,ep]",
        HelpName = "MODE",
        Arity = ArgumentArity.OneOrMore,
    };

    private static Option<string[]> World() => new("--world", "-W")
    {
        Description = "World sizes W: ranks, one process per GPU on devices 0..W-1 (repeatable or a comma list; at most the CUDA devices) [default: 1]",
        HelpName = "W",
        Arity = ArgumentArity.OneOrMore,
    };

    private static int Execute(CommandEnvironment environment, ScaleRequest request)
    {
        DateTimeOffset started = DateTimeOffset.UtcNow;
        string suitePath = SuiteLocator.Locate(request.SuitePath);
        BenchSuite suite = BenchSuite.Load(suitePath);
        if (suite.Layers.Count == 0)
        {
            throw new UsageException($"suite file {suite.Path} has no \"layers\" list; scale runs layer cases");
        }

        IReadOnlyList<LayerCase> cases = suite.SelectLayers(request.Cases);
        environment.InitializeLibrary();
        (Backend backend, string reason) = BackendSelection.Resolve(request.Backend);
        bool cuda = backend == Backend.Cuda;
        if (cuda)
        {
            ScalePlan.CheckDevices(request.Worlds, MoeCutlassLibrary.DeviceCount);
        }

        // The cases as they are: the split rules are about the real layer, and the CPU backend runs none (it has no communicator).
        LayerShape[] shapes = cases.Select(LayerShape.Full).ToArray();
        ScalePlan.CheckSplits(shapes, request.Modes, request.Worlds);

        string nvls = NvlsSetting(Environment.GetEnvironmentVariable(NvlsVariable));
        IAnsiConsole console = environment.Console;
        var header = new ReportHeader(console);
        header.Add("backend", $"{(cuda ? "cuda" : "cpu")}: {reason}" + (cuda ? "" : " (the parallel layer needs CUDA and NCCL; the CPU backend has no communicator)"));
        header.Add("library", LibraryDescription.Text);
        header.Add("suite", $"{suite.Path} ({cases.Count} of {suite.Layers.Count} layer cases)");
        header.Add("runs", $"modes {string.Join(", ", request.Modes.Select(ScalePlan.Name))}; W {string.Join(", ", request.Worlds)}; one process per rank, "
            + $"rank r on device r; NCCL_NVLS_ENABLE={nvls} in the ranks");
        header.Add("timing", $"per rank {request.Iterations} timed forwards after {request.Warmup} warm-up (CUDA events, median); seed "
            + request.Seed.ToString(CultureInfo.InvariantCulture));
        console.WriteLine();

        var rows = new List<ScaleRow>();
        foreach (LayerShape shape in shapes)
        {
            foreach (MoeParallelMode mode in request.Modes)
            {
                foreach (int world in request.Worlds)
                {
                    console.WriteLine($"{shape.Case.Name} {ScalePlan.Name(mode)} W={world}: {world} rank(s)...");
                    ScaleRow row = RunGroup(shape, mode, world, request, nvls);
                    console.WriteLine(row.Error is not null
                        ? $"{shape.Case.Name} {ScalePlan.Name(mode)} W={world}: failed"
                        : string.Create(CultureInfo.InvariantCulture,
                            $"{shape.Case.Name} {ScalePlan.Name(mode)} W={world}: {row.LatencyUs:0.0} µs, speedup {row.Speedup:0.00}x, "
                            + $"tolerance {(row.TolerancePassed == true ? "passed" : "FAILED")}"));
                    rows.Add(row);
                }
            }
        }

        console.WriteLine();
        WriteTable(console, rows);
        console.WriteLine("Latency: max over ranks of the median forward (with its collectives). 1-GPU: the one-GPU layer on the same case "
            + "(rank 0's device). Efficiency: speedup / W. Collectives: 1 - pipeline / forward of the slowest rank (the pipeline is "
            + "ForwardTimed's events 0 to 7; the collectives and their staging fall outside them). Tolerance: every rank's output "
            + "(ep: its rows) against the one-GPU layer's, LayerTolerance (relative RMS < 2^-5, each element within 2^-3 of its row's max).");
        foreach (ScaleRow row in rows.Where(r => r.Error is not null))
        {
            ErrorReporter.WriteError($"layer case {row.Case}, {row.Mode} at W={row.World}: {row.Error}");
        }

        if (request.JsonPath is not null)
        {
            var info = new ScaleRunInfo(ToolVersion.Text, started.ToString("O", CultureInfo.InvariantCulture), cuda ? "cuda" : "cpu", suite.Path,
                request.Seed, request.Iterations, request.Warmup, request.TimeoutSeconds, nvls,
                "the one-GPU layer (all experts, full I, all tokens) on each rank's own device, same FP8 weights and inputs from the seed",
                $"LayerTolerance: relative RMS < {LayerTolerance.RmsLimit}, |diff| <= {LayerTolerance.RowFraction} x row max + 2 ulps");
            ScaleJson.WriteReport(request.JsonPath, new ScaleReport(info, rows));
            console.WriteLine($"wrote {request.JsonPath}");
        }

        if (rows.Any(r => r.Error is not null))
        {
            return ExitCodes.Failure;
        }

        return rows.All(r => r.TolerancePassed == true) ? ExitCodes.Success : ExitCodes.VerificationFailed;
    }

    /// <summary>One (case, mode, W): a fresh NCCL id in a temporary directory, W ranks, their results.</summary>
    private static ScaleRow RunGroup(LayerShape shape, MoeParallelMode mode, int world, ScaleRequest request, string nvls)
    {
        DirectoryInfo directory = Directory.CreateTempSubdirectory("moecutlass-scale-");
        try
        {
            string idFile = Path.Combine(directory.FullName, "nccl-unique-id.bin");
            File.WriteAllBytes(idFile, MoeCommunicator.GetUniqueId());
            IReadOnlyList<ProcessStartInfo> starts = RankStarts(shape, mode, world, idFile, directory.FullName, request, nvls);
            LaunchOutcome outcome = RankLauncher.Run(starts, TimeSpan.FromSeconds(request.TimeoutSeconds));
            if (outcome.Failure is not null)
            {
                return ScaleRow.Of(shape, mode, world, [], outcome.Failure);
            }

            var ranks = new List<RankResult>();
            for (int rank = 0; rank < world; rank++)
            {
                string file = RankFile(directory.FullName, rank);
                if (!File.Exists(file))
                {
                    return ScaleRow.Of(shape, mode, world, ranks, $"rank {rank} exited with 0 but wrote no result ({file})");
                }

                ranks.Add(ScaleJson.ReadRank(file));
            }

            return ScaleRow.Of(shape, mode, world, ranks, null);
        }
        finally
        {
            try
            {
                directory.Delete(recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>NCCL's NVLink-multicast switch, which must stay off on our machines.</summary>
    internal const string NvlsVariable = "NCCL_NVLS_ENABLE";

    /// <summary>The NCCL_NVLS_ENABLE the ranks get: the caller's where it is set, else 0 (NVLink multicast off).</summary>
    internal static string NvlsSetting(string? callerValue) => string.IsNullOrEmpty(callerValue) ? "0" : callerValue;

    /// <summary>The W child processes of one (case, mode, W): this tool's hidden rank command, rank r on device r.</summary>
    internal static IReadOnlyList<ProcessStartInfo> RankStarts(LayerShape shape, MoeParallelMode mode, int world, string idFile, string directory,
        ScaleRequest request, string nvls)
    {
        var starts = new List<ProcessStartInfo>();
        for (int rank = 0; rank < world; rank++)
        {
            ProcessStartInfo start = SelfStart();
            foreach (string argument in RankArguments(shape, mode, world, rank, idFile, RankFile(directory, rank), request))
            {
                start.ArgumentList.Add(argument);
            }

            start.Environment[NvlsVariable] = nvls;
            starts.Add(start);
        }

        return starts;
    }

    private static string RankFile(string directory, int rank) => Path.Combine(directory, $"rank{rank}.json");

    /// <summary>The command line of one rank (after the tool itself).</summary>
    internal static IReadOnlyList<string> RankArguments(LayerShape shape, MoeParallelMode mode, int world, int rank, string idFile, string json,
        ScaleRequest request)
    {
        var arguments = new List<string>
        {
            RankCommandName, "--case", shape.Case.Name, "--parallel", ScalePlan.Name(mode),
            "--world", world.ToString(CultureInfo.InvariantCulture), "--rank", rank.ToString(CultureInfo.InvariantCulture),
            "--id-file", idFile, "--json", json,
            "--iterations", request.Iterations.ToString(CultureInfo.InvariantCulture), "--warmup", request.Warmup.ToString(CultureInfo.InvariantCulture),
            "--seed", request.Seed.ToString(CultureInfo.InvariantCulture),
            "--backend", request.Backend switch { BackendRequest.Cpu => "cpu", BackendRequest.Cuda => "cuda", _ => "auto" },
            "--suite", Path.GetFullPath(SuiteLocator.Locate(request.SuitePath)),
        };
        if (request.Verbose)
        {
            arguments.Add("--verbose");
        }

        return arguments;
    }

    /// <summary>This tool as a child process: its apphost when it runs as one, else the dotnet host with this assembly.</summary>
    internal static ProcessStartInfo SelfStart()
    {
        string assembly = typeof(ScaleCommand).Assembly.Location;
        string? process = Environment.ProcessPath;
        string name = process is null ? "" : Path.GetFileNameWithoutExtension(process);
        if (process is not null && (name == "moecutlass" || name == Path.GetFileNameWithoutExtension(assembly)))
        {
            return new ProcessStartInfo(process);
        }

        string host = process is not null && name.Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? process
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } hostPath ? hostPath : "dotnet";
        var start = new ProcessStartInfo(host);
        start.ArgumentList.Add(assembly);
        return start;
    }

    private static void WriteTable(IAnsiConsole console, IReadOnlyList<ScaleRow> rows)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (string column in new[] { "Case", "Mode", "W", "Latency µs", "1-GPU µs", "Speedup", "Efficiency", "Collectives", "Tolerance", "Worst rel. RMS" })
        {
            table.AddColumn(new TableColumn(column));
        }

        foreach (ScaleRow row in rows)
        {
            string F(double? value, string format) => value is null ? "-" : value.Value.ToString(format, CultureInfo.InvariantCulture);
            table.AddRow(
                Markup.Escape(row.Case), row.Mode, row.World.ToString(CultureInfo.InvariantCulture), F(row.LatencyUs, "0.0"), F(row.SingleGpuUs, "0.0"),
                row.Speedup is null ? "-" : F(row.Speedup, "0.00") + "x", row.Efficiency is null ? "-" : F(row.Efficiency * 100, "0.0") + " %",
                row.CollectiveShare is null ? "-" : F(row.CollectiveShare * 100, "0.0") + " %",
                row.Error is not null ? "error" : row.TolerancePassed == true ? "passed" : "FAILED", F(row.WorstRelativeRms, "0.00e0"));
        }

        console.Write(table);
    }

    /// <summary>The parsed command line of <c>scale</c>.</summary>
    internal sealed record ScaleRequest(
        string? SuitePath,
        string[]? Cases,
        IReadOnlyList<MoeParallelMode> Modes,
        IReadOnlyList<int> Worlds,
        BackendRequest Backend,
        int Iterations,
        int Warmup,
        int TimeoutSeconds,
        ulong Seed,
        string? JsonPath,
        bool Verbose);
}
