using System.Globalization;
using Microsoft.Extensions.Logging;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;
using MoeCutlass.Cli.Verify;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass verify --layer</c>: runs each of the suite's <c>layers</c> cases, scaled down (<see cref="LayerShape.Scale"/>),
/// on the chosen context and on a CPU reference context with the same FP8 weights, hidden states and router logits, and
/// compares the outputs under <see cref="LayerTolerance"/>; also that two forward calls give the same bits and that the
/// context's device error flags stay clear.
/// </summary>
internal static class LayerVerify
{
    public static int Execute(CommandEnvironment environment, VerifyCommand.VerifyRequest request)
    {
        if (request.Scale)
        {
            throw new UsageException("--scale: layer cases are always scaled down for the CPU reference; leave out --scale with --layer");
        }

        if (request.OutputDType != DType.BFloat16)
        {
            // The generated layer data (like the bench's) reaches magnitudes beyond fp16's 65504: both sides would be infinite.
            throw new UsageException("--dtype: the layer check writes bf16 output only (the generated layer data overflows fp16)");
        }

        BenchSuite suite = BenchSuite.Load(SuiteLocator.Locate(request.SuitePath));
        IReadOnlyList<LayerCase> cases = suite.SelectLayers(request.Cases);

        environment.InitializeLibrary();
        (Backend backend, string reason) = BackendSelection.Resolve(request.Backend);
        using MoeContext context = BackendSelection.CreateContext(backend, request.Device, request.CpuThreads, environment.LoggerFactory);
        using MoeContext reference = MoeContext.CreateCpu(request.CpuThreads, environment.LoggerFactory);
        bool cuda = context.Backend == Backend.Cuda;

        IAnsiConsole console = environment.Console;
        var header = new ReportHeader(console);
        header.Add("backend", $"{BackendSelection.Describe(context)}: {reason}");
        header.Add("library", LibraryDescription.Text);
        header.Add("suite", $"{suite.Path} ({cases.Count} of {suite.Layers.Count} layer cases)");
        header.Add("comparison", cuda
            ? "CUDA layer vs the library's CPU reference layer on the same FP8 weights, hidden states and router logits (bytes copied through the host)"
            : "CPU vs CPU: the checked backend is the CPU reference itself, so this checks determinism and the plumbing (weights, "
              + "inputs and outputs copied between two contexts), not the numerics; run it on a CUDA device to check the GPU layer");
        header.Add("rule", string.Create(CultureInfo.InvariantCulture,
            $"relative RMS difference < {LayerTolerance.RmsLimit} (2^-5) and every element within {LayerTolerance.RowFraction} (2^-3) of its token "
            + $"row's max |value| + 2 ulps (worst ratio <= 1); two forward calls bit-identical; device error flags 0; "
            + $"{OutputDTypeSelection.Name(request.OutputDType)} output, bf16 hidden states, fp32 logits, seed {request.Seed}"));
        header.Add("shapes", LayerShape.ScaleDescription);
        console.WriteLine();

        LayerShape[] shapes = cases.Select(LayerShape.Scale).ToArray();
        var failures = new List<string>();
        List<LayerVerifyRow> rows = WorkProgress.Run(environment, "verify --layer", shapes.Length * request.Strategies.Count, progress =>
        {
            var results = new List<LayerVerifyRow>();
            foreach (LayerShape shape in shapes)
            {
                VerifyCase(context, reference, shape, request, progress, results, failures, environment.Logger);
            }

            return results;
        });

        console.WriteLine();
        LayerVerifyTable.Write(console, rows);
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

    private static void VerifyCase(MoeContext context, MoeContext reference, LayerShape shape, VerifyCommand.VerifyRequest request,
        IWorkProgress progress, List<LayerVerifyRow> results, List<string> failures, ILogger logger)
    {
        string name = shape.Case.Name;
        progress.Begin($"{name} (inputs and CPU reference)");
        LayerCheck check;
        try
        {
            check = LayerCheck.Prepare(context, reference, shape, request.OutputDType, request.Seed);
        }
        catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
        {
            failures.Add($"layer case {name}: cannot prepare inputs or reference: {ErrorReporter.DescribeLibraryError(ex)}");
            foreach (GemmStrategy strategy in request.Strategies)
            {
                results.Add(new LayerVerifyRow(shape, strategy, 0, 0, null, null, DeviceErrorFlags.None, null));
                progress.Complete($"{name} {StrategySelection.Name(strategy)}", "error");
            }

            return;
        }

        using (check)
        {
            foreach (GemmStrategy strategy in request.Strategies)
            {
                string item = $"{name} {StrategySelection.Name(strategy)}";
                progress.Begin(item);
                LayerVerifyRow row;
                try
                {
                    row = check.Run(strategy);
                    if (row.Flags != DeviceErrorFlags.None)
                    {
                        failures.Add($"layer case {name}, strategy {StrategySelection.Name(strategy)}: device error flags {row.Flags} after the forward calls");
                    }

                    if (row.Deterministic == false)
                    {
                        failures.Add($"layer case {name}, strategy {StrategySelection.Name(strategy)}: two forward calls gave different bits");
                    }

                    if (row.Comparison is { Passes: false } c)
                    {
                        failures.Add($"layer case {name}, strategy {StrategySelection.Name(strategy)}: outside the tolerance; worst element {c.WorstElement}");
                    }
                }
                catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
                {
                    logger.LogDebug(ex, "{Item} failed", item);
                    failures.Add($"layer case {name}, strategy {StrategySelection.Name(strategy)}: {ErrorReporter.DescribeLibraryError(ex)}");
                    row = new LayerVerifyRow(shape, strategy, 0, 0, null, null, DeviceErrorFlags.None, null);
                }

                results.Add(row);
                progress.Complete(item, row.Passed switch
                {
                    true => $"PASS (rel. RMS {LayerVerifyTable.Format(row.Comparison!.Value.RelativeRms)}, worst ratio {LayerVerifyTable.Ratio(row.Comparison.Value.WorstRatio)})"
                        + (shape.Scaled ? $" (scaled: {shape.ScaleNote})" : ""),
                    false => "FAIL",
                    null => "error",
                });
            }
        }
    }
}
