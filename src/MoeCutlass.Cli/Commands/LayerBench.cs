using System.Globalization;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass bench --layer</c>: times the whole MoE layer on the suite's <c>layers</c> cases for each strategy, next to
/// its two GEMMs alone (the overhead ratio), its weight stream in TB/s and its per-stage times.
/// </summary>
internal static class LayerBench
{
    public static int Execute(CommandEnvironment environment, BenchCommand.BenchRequest request, BenchSettingsDefaults defaults)
    {
        DateTimeOffset started = DateTimeOffset.UtcNow;
        if (request.Configs.Length > 0)
        {
            throw new UsageException("--config: forced configurations are timed by the GEMM bench only; leave out --layer or --config");
        }

        if (request.CublasStatic)
        {
            throw new UsageException("--cublas-static: the layer's cublas GEMMs always keep their weights dequantized (a layer's "
                + "weights stay unchanged while it exists); leave out --layer or --cublas-static");
        }

        if (request.CsvPath is not null)
        {
            throw new UsageException("--csv: the layer bench writes --json only (stage times do not fit one CSV row)");
        }

        if (request.PlotDirectory is not null)
        {
            throw new UsageException("--plot: there are no layer charts yet; leave out --plot with --layer");
        }

        BenchSuite suite = BenchSuite.Load(SuiteLocator.Locate(request.SuitePath));
        IReadOnlyList<LayerCase> cases = suite.SelectLayers(request.Cases);

        environment.InitializeLibrary();
        (Backend backend, string reason) = BackendSelection.Resolve(request.Backend);
        using MoeContext context = BackendSelection.CreateContext(backend, request.Device, request.CpuThreads, environment.LoggerFactory);
        bool cuda = context.Backend == Backend.Cuda;
        bool graphMode = request.Graph && context.SupportsGraphs;
        var settings = new BenchSettings(
            request.Iterations ?? (cuda ? defaults.CudaIterations : defaults.CpuIterations),
            request.Warmup ?? (cuda ? defaults.CudaWarmup : defaults.CpuWarmup),
            DType.BFloat16,
            graphMode);
        DeviceInfo? deviceInfo = cuda ? context.DeviceInfo : null;
        RooflineCeilings? ceilings = RooflineCeilings.Of(deviceInfo);

        IAnsiConsole console = environment.Console;
        var header = new ReportHeader(console);
        header.Add("backend", $"{BackendSelection.Describe(context)}: {reason}");
        header.Add("library", LibraryDescription.Text);
        header.Add("suite", $"{suite.Path} ({cases.Count} of {suite.Layers.Count} layer cases)");
        header.Add("strategies", string.Join(", ", request.Strategies.Select(StrategySelection.Name)));
        header.Add("timing", $"{settings.Iterations} timed iterations after {settings.Warmup} warm-up, per-iteration event times; "
            + $"bf16 hidden states and output, fp32 router logits (zipf: s = {LayerRouting.ZipfExponent.ToString(CultureInfo.InvariantCulture)}); "
            + $"seed {request.Seed.ToString(CultureInfo.InvariantCulture)}");
        header.Add("graph mode", graphMode ? "on: one forward call captured into a CUDA graph and its replay timed (--no-graph to skip)"
            : request.Graph ? "needs the CUDA backend; only eager runs are timed" : "off");
        header.Add("bandwidth", ceilings is not null
            ? string.Create(CultureInfo.InvariantCulture, $"{ceilings.GpuClass} {ceilings.Source}, {ceilings.MemoryGbps / 1000:0.00} TB/s (no measured copy bandwidth)")
            : deviceInfo is null ? "none (CPU backend)" : $"none (no known figures for {deviceInfo.Name})");
        string? cpuNote = cuda ? null : LayerShape.CpuNote;
        if (cpuNote is not null)
        {
            header.Add("note", cpuNote);
        }

        console.WriteLine();
        LayerShape[] shapes = cases.Select(c => cuda ? LayerShape.Full(c) : LayerShape.Scale(c)).ToArray();
        IReadOnlyList<LayerShape> runOrder = LayerWeightCache.Order(shapes);
        var runner = new LayerBenchRunner(context, settings, ceilings, environment.Logger);
        var failures = new List<string>();
        using var cache = new LayerWeightCache(context, request.Seed, shapes);

        List<LayerResult> measured = WorkProgress.Run(environment, "bench --layer", shapes.Length * request.Strategies.Count, progress =>
        {
            var results = new List<LayerResult>();
            foreach (LayerShape shape in runOrder)
            {
                MeasureCase(context, runner, cache, shape, request, progress, results, failures);
            }

            return results;
        });

        // Report in the order the cases were asked for.
        var final = shapes.SelectMany(s => measured.Where(r => r.Case == s.Case.Name)).ToList();
        console.WriteLine();
        LayerResultTable.Write(console, final, ceilings);
        console.WriteLine(LayerResultTable.Footnote(ceilings));
        console.WriteLine($"weights: {cache.Generations} set(s) generated for {shapes.Length} case(s) (cases of one model and H, I share a set)");
        foreach (string failure in failures)
        {
            ErrorReporter.WriteError(failure);
        }

        if (request.JsonPath is not null)
        {
            var metadata = BenchRunMetadata.Of(started, context, cuda, settings, request.Seed, suite.Path, graphMode, request.Graph,
                ceilings, cpuNote);
            var info = new LayerRunInfo(cache.Generations, ceilings?.MemoryGbps, ceilings?.Source, LayerRouting.ZipfExponent);
            LayerResultWriter.Write(request.JsonPath, new LayerReport(metadata, info, final));
            console.WriteLine($"wrote {request.JsonPath}");
        }

        return failures.Count == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }

    private static void MeasureCase(MoeContext context, LayerBenchRunner runner, LayerWeightCache cache, LayerShape shape,
        BenchCommand.BenchRequest request, IWorkProgress progress, List<LayerResult> results, List<string> failures)
    {
        string name = shape.Case.Name;
        progress.Begin($"{name} (generating inputs)");
        LayerData data;
        LayerWeights weights;
        bool generated;
        try
        {
            using MoeStream stream = context.CreateStream();
            (weights, generated) = cache.For(shape, stream);
            data = LayerData.Create(context, shape, request.Seed, stream);
        }
        catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
        {
            string message = ErrorReporter.DescribeLibraryError(ex);
            foreach (GemmStrategy strategy in request.Strategies)
            {
                results.Add(runner.Failed(null, shape, strategy, message));
                progress.Complete($"{name} {StrategySelection.Name(strategy)}", "failed");
            }

            failures.Add($"layer case {name}: cannot prepare inputs: {message}");
            return;
        }

        using (data)
        {
            foreach (GemmStrategy strategy in request.Strategies)
            {
                string label = StrategySelection.Name(strategy);
                progress.Begin($"{name} {label}");
                LayerResult result = runner.Measure(data, weights, strategy, generated);
                generated = false; // the first strategy's record says the set was generated for this case
                if (result.Error is not null)
                {
                    failures.Add($"layer case {name}, strategy {label}: {result.Error}");
                }

                if (result.GraphError is not null)
                {
                    failures.Add($"layer case {name}, strategy {label}, CUDA graph: {result.GraphError}");
                }

                results.Add(result);
                progress.Complete($"{name} {label}", result.Error is not null ? "failed"
                    : $"layer {NumberFormat.Microseconds(result.LayerMedianUs)} µs, GEMMs {NumberFormat.Microseconds(result.GemmsMedianUs)} µs, "
                      + $"overhead {NumberFormat.Ratio(result.Overhead)}, {NumberFormat.Readable(result.WeightTbps)} TB/s"
                      + (result.Scaled ? $" (scaled: {result.ScaleNote})" : ""));
            }
        }
    }
}

/// <summary>The bench's default iteration and warm-up counts, shared by the GEMM and the layer bench.</summary>
internal sealed record BenchSettingsDefaults(int CudaIterations, int CudaWarmup, int CpuIterations, int CpuWarmup);
