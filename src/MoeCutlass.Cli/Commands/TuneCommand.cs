using System.CommandLine;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Tune;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass tune</c>: times expert specialization's three kernel configurations (swapped 128x32, swapped 128x64,
/// 128x128), each forced for every expert, on uniform problems of m rows per expert, and reports where they cross over
/// and the bucket thresholds that follow for this GPU (range lines of native/src/core/kernel_configs.def). The options
/// (<see cref="TuneOptions"/>), the measurement (<see cref="TuneRunner"/>), the fit (<see cref="TuneFit"/>) and the
/// report (<see cref="TuneConsoleReport"/>, <see cref="TuneReportFiles"/>) live under Tune/; this is the sequence.
/// </summary>
internal static class TuneCommand
{
    public static Command Create()
    {
        var options = new TuneOptions();
        var command = new Command(
            "tune",
            "Time expert specialization's configurations (128x32, 128x64, 128x128) per rows per expert and print the crossovers "
            + "and suggested bucket thresholds (needs a CUDA device)");
        foreach (Option option in options.All)
        {
            command.Options.Add(option);
        }

        command.SetAction(parseResult => CommandEnvironment.Run(
            parseResult.GetValue(CommonOptions.Verbose),
            environment => Execute(environment, options.Parse(parseResult))));
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
        TuneConsoleReport.WriteHeader(console, info, context.Device, request, settings);

        var runner = new TuneRunner(context, settings, environment.Logger);
        var failures = new List<string>();
        List<TuneResult> results = WorkProgress.Run(environment, "tune", request.Shapes.Count * request.Rows.Count, progress =>
        {
            var measured = new List<TuneResult>();
            foreach (TuneShape shape in request.Shapes)
            {
                runner.MeasureShape(shape, request.Rows, progress, measured, failures);
            }

            return measured;
        });

        (IReadOnlyList<ShapeCrossovers> analyses, IReadOnlyList<TuneShapeSummary> summaries) = TuneFit.Apply(request.Shapes, results);
        console.WriteLine();
        for (int s = 0; s < request.Shapes.Count; s++)
        {
            TuneConsoleReport.WriteShape(console, request.Shapes[s], results, analyses[s]);
        }

        TuneSuggestion? suggestion = TuneConsoleReport.WriteSuggestion(console, Crossovers.Suggest(analyses), info);
        foreach (string failure in failures)
        {
            ErrorReporter.WriteError(failure);
        }

        TuneReportFiles.Write(console, request, info, settings, started, results, summaries, suggestion);
        return failures.Count == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }
}
