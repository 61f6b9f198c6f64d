using System.CommandLine;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Tune;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass tune</c>: times expert specialization's three kernel configurations (swapped 128x32, swapped 128x64,
/// 128x128) and, for the SINGLE path, every non-swapped configuration of the registry, each forced for every expert, on
/// uniform problems of m rows per expert, and reports where they cross over and the range lines that follow for this
/// GPU (SPECIALIZED and SINGLE MC_KERNEL_RANGE lines of native/src/core/kernel_configs.def, the SINGLE ones grouped by K). The options
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
            "Time expert specialization's configurations (128x32, 128x64, 128x128) and the single path's (every non-swapped "
            + "configuration) per rows per expert and print the crossovers and suggested SPECIALIZED and SINGLE range lines (needs a CUDA device)");
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
        catch (Exception ex) when (ex is IMoeCutlassException and not MoeCutlassDeviceFaultException)
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
        TuneConfigurationSet? singleSet = request.Tunes(TunePath.Single) ? TuneConfigurationSet.Single(MoeCutlassLibrary.KernelConfigurations) : null;
        if (singleSet is { Count: < 2 })
        {
            ErrorReporter.WriteError($"--path single needs at least two non-swapped configurations in the registry; this library has {singleSet.Count}");
            return ExitCodes.Failure;
        }

        var sweeps = new List<TuneSweep>();
        if (request.Tunes(TunePath.Specialized))
        {
            sweeps.Add(new TuneSweep(TuneConfigurationSet.Specialized, request.Rows));
        }

        if (singleSet is not null)
        {
            sweeps.Add(new TuneSweep(singleSet, request.SingleRows));
        }

        TuneConsoleReport.WriteHeader(console, info, context.Device, request, settings, [.. sweeps.Select(s => s.Set)]);

        var runner = new TuneRunner(context, settings, environment.Logger);
        var failures = new List<string>();
        List<TuneResult> results = WorkProgress.Run(environment, "tune", request.Shapes.Count * sweeps.Sum(s => s.Rows.Count), progress =>
        {
            var measured = new List<TuneResult>();
            foreach (TuneShape shape in request.Shapes)
            {
                runner.MeasureShape(shape, sweeps, progress, measured, failures);
            }

            return measured;
        });

        IReadOnlyList<ShapeCrossovers>? specialized = request.Tunes(TunePath.Specialized) ? TuneFit.Fit(request.Shapes, results, TuneConfigurationSet.Specialized) : null;
        IReadOnlyList<ShapeCrossovers>? single = singleSet is null ? null : TuneFit.Fit(request.Shapes, results, singleSet);
        IReadOnlyList<TuneShapeSummary> summaries = TuneFit.Summaries(request.Shapes, specialized, single, singleSet);
        console.WriteLine();
        for (int s = 0; s < request.Shapes.Count; s++)
        {
            if (specialized is not null)
            {
                TuneConsoleReport.WriteShape(console, request.Shapes[s], results, specialized[s], TuneConfigurationSet.Specialized);
            }

            if (single is not null)
            {
                TuneConsoleReport.WriteShape(console, request.Shapes[s], results, single[s], singleSet!);
            }
        }

        TuneSuggestion? suggestion = specialized is null ? null : TuneConsoleReport.WriteSuggestion(console, Crossovers.Suggest(specialized), info);
        TuneSingleSuggestion? singleSuggestion = single is null ? null : TuneConsoleReport.WriteSingleSuggestion(console, singleSet!, request.Shapes, single, info);
        foreach (string failure in failures)
        {
            ErrorReporter.WriteError(failure);
        }

        TuneReportFiles.Write(console, request, info, settings, started, results, summaries, suggestion, singleSuggestion);
        return failures.Count == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }
}
