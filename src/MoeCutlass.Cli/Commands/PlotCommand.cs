using System.CommandLine;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Charts;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass plot RESULTS.json [MORE.json ...] --out DIR [--baseline single] [--peer FILE]</c>: charts of saved
/// bench results (a roofline, time against a baseline strategy, time against DeepGEMM) as PNG and SVG. Needs
/// neither the native library nor a GPU.
/// </summary>
internal static class PlotCommand
{
    public const string DefaultBaseline = "single";

    public static Command Create()
    {
        var results = new Argument<string[]>("RESULTS")
        {
            Description = "Bench result files (bench --json); each gets its own charts, named after the file",
            Arity = ArgumentArity.OneOrMore,
        };
        var output = new Option<string>("--out", "-o")
        {
            Description = "Directory the PNG and SVG files are written to (created when missing)",
            HelpName = "DIR",
            Required = true,
        };
        var baseline = new Option<string>("--baseline")
        {
            Description = "Strategy the per-case time ratios are taken against",
            HelpName = "STRATEGY",
            DefaultValueFactory = _ => DefaultBaseline,
        };
        var peer = new Option<string?>("--peer")
        {
            Description = "Peer script output (bench/results/h200-peers-*.txt): adds DeepGEMM time / our time per case",
            HelpName = "FILE",
        };

        var command = new Command("plot", "Draw roofline and comparison charts (PNG, SVG) from bench result files")
        {
            results, output, baseline, peer,
        };
        command.SetAction(parseResult => CommandEnvironment.Run(
            parseResult.GetValue(CommonOptions.Verbose),
            environment => Execute(
                environment,
                parseResult.GetValue(results) ?? [],
                parseResult.GetValue(output)!,
                parseResult.GetValue(baseline) ?? DefaultBaseline,
                parseResult.GetValue(peer))));
        return command;
    }

    private static int Execute(CommandEnvironment environment, string[] resultFiles, string output, string baseline, string? peerFile)
    {
        // Every input is read and every chart planned before the first file is written: bad input writes nothing.
        string directory = OutputDirectory(output, "--out");
        if (string.IsNullOrWhiteSpace(baseline))
        {
            throw new UsageException("--baseline needs a strategy name, e.g. single");
        }

        PlotRun[] runs = resultFiles.Select(f => ResultFileLoader.Load(f, "RESULTS")).ToArray();
        PeerTimes? peer = peerFile is null ? null : PeerTimes.Load(peerFile, "--peer");
        Draw(environment.Console, runs, new ChartOptions(baseline, BaselineRequired: true, peer), directory);
        return ExitCodes.Success;
    }

    /// <summary>Plans, then writes the charts of <paramref name="runs"/> and lists the files (plot and bench --plot).</summary>
    internal static void Draw(IAnsiConsole console, IReadOnlyList<PlotRun> runs, ChartOptions options, string directory)
    {
        var notes = new List<string>();
        IReadOnlyList<PlannedChart> charts = ChartSet.Plan(runs, options, notes);
        foreach (string file in ChartSet.Write(charts, directory))
        {
            console.WriteLine($"wrote {file}");
        }

        foreach (string note in notes)
        {
            console.WriteLine($"note: {note}");
        }

        if (!ChartStyle.FontsAvailable)
        {
            console.WriteLine($"warning: {ChartStyle.NoFontsWarning}");
        }
    }

    /// <summary>The full path of an output directory; an existing file there is a usage error. Nothing is created yet.</summary>
    internal static string OutputDirectory(string? path, string option)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new UsageException($"{option} needs a directory");
        }

        string full = Path.GetFullPath(path);
        return File.Exists(full) ? throw new UsageException($"{option} {full} is a file, not a directory") : full;
    }
}
