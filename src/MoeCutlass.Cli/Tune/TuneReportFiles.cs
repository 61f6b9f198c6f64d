using System.Runtime.InteropServices;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Infrastructure;
using Spectre.Console;

namespace MoeCutlass.Cli.Tune;

/// <summary>Writes the files <c>tune</c> was asked for (<c>--json</c>, <c>--csv</c>) and says where.</summary>
internal static class TuneReportFiles
{
    public static void Write(
        IAnsiConsole console,
        TuneRequest request,
        DeviceInfo info,
        BenchSettings settings,
        DateTimeOffset started,
        IReadOnlyList<TuneResult> results,
        IReadOnlyList<TuneShapeSummary> summaries,
        TuneSuggestion? suggestion,
        TuneSingleSuggestion? singleSuggestion = null)
    {
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
                LibraryPath = RecordedPath.Of(MoeCutlassLibrary.LoadedPath),
                Backend = "cuda",
                Device = info.Name,
                DeviceMultiprocessors = info.Multiprocessors,
                DevicePeakBandwidthGbps = info.PeakMemoryBandwidthGBps,
                Iterations = settings.Iterations,
                Warmup = settings.Warmup,
                Seed = TuneRunner.Seed,
                OutputDtype = OutputDTypeSelection.Name(settings.OutputDType),
                Suite = request.SuitePath is null ? null : RecordedPath.Of(request.SuitePath),
                RowsPerExpert = request.Rows,
                Paths = [.. request.Paths.Select(TuneConfigurationSet.RecordName)],
                SingleRowsPerExpert = request.Tunes(TunePath.Single) ? request.SingleRows : null,
                KValues = request.KValues,
            };
            TuneResultWriters.WriteJson(request.JsonPath, new TuneReport(metadata, results, summaries, suggestion, singleSuggestion));
            console.WriteLine($"wrote {request.JsonPath}");
        }

        if (request.CsvPath is not null)
        {
            TuneResultWriters.WriteCsv(request.CsvPath, results);
            console.WriteLine($"wrote {request.CsvPath}");
        }
    }
}
