using System.CommandLine;
using System.Globalization;
using MoeCutlass.Cli.Infrastructure;
using Spectre.Console;

namespace MoeCutlass.Cli.Commands;

/// <summary>
/// <c>moecutlass info</c>: the loaded library, its build, the CUDA devices and the grouped-GEMM strategies each runs,
/// and the backend bench would use.
/// </summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var command = new Command("info", "Show the native library, its build, CUDA devices and the backend bench would use");
        command.SetAction(parseResult => CommandEnvironment.Run(
            parseResult.GetValue(CommonOptions.Verbose),
            Execute));
        return command;
    }

    private static int Execute(CommandEnvironment environment)
    {
        environment.InitializeLibrary();
        BuildInfo build = MoeCutlassLibrary.BuildInfo;
        IAnsiConsole console = environment.Console;

        var library = new Grid().AddColumn(new GridColumn().NoWrap().PadRight(2)).AddColumn();
        library.AddRow("Library", Markup.Escape(MoeCutlassLibrary.LoadedPath));
        library.AddRow("Version", Markup.Escape(build.Version));
        library.AddRow("Git commit", Markup.Escape(Blank(build.GitCommit)));
        library.AddRow("ABI version", build.AbiVersion.ToString(CultureInfo.InvariantCulture));
        library.AddRow("CUDA compiled in", build.HasCuda
            ? $"yes (architectures {Markup.Escape(Blank(build.CudaArchitectures))})"
            : "no (CPU reference backend only)");
        library.AddRow("Compiler", Markup.Escape(Blank(build.Compiler)));
        library.AddRow("Tool", Markup.Escape(ToolVersion.Text));
        console.Write(library);
        console.WriteLine();

        int deviceCount = MoeCutlassLibrary.DeviceCount;
        console.MarkupLine($"CUDA devices: {deviceCount}");
        if (deviceCount > 0)
        {
            var devices = new Table().Border(TableBorder.Rounded);
            devices.AddColumn(new TableColumn("#").RightAligned());
            devices.AddColumn("Name");
            devices.AddColumn("Compute");
            devices.AddColumn("SM90a");
            devices.AddColumn(new TableColumn("SMs").RightAligned());
            devices.AddColumn(new TableColumn("Memory").RightAligned());
            devices.AddColumn(new TableColumn("L2").RightAligned());
            devices.AddColumn(new TableColumn("Peak bandwidth").RightAligned());
            var strategies = new List<string>();
            for (int i = 0; i < deviceCount; i++)
            {
                DeviceInfo info = MoeCutlassLibrary.GetDeviceInfo(i);
                strategies.Add($"Device {info.Index} strategies: {DeviceStrategies.Describe(info)}");
                devices.AddRow(
                    info.Index.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(info.Name),
                    $"sm_{info.ComputeMajor}{info.ComputeMinor}",
                    info.HasSm90a ? "yes" : "no",
                    info.Multiprocessors.ToString(CultureInfo.InvariantCulture),
                    $"{info.TotalMemoryBytes / (double)(1L << 30):0.0} GiB",
                    $"{info.L2CacheBytes / (double)(1 << 20):0} MiB",
                    $"{info.PeakMemoryBandwidthGBps:0} GB/s");
            }

            console.Write(devices);
            foreach (string line in strategies)
            {
                console.WriteLine(line);
            }
        }

        (Backend backend, string reason) = BackendSelection.Resolve(BackendRequest.Auto);
        string target = backend == Backend.Cuda
            ? $"cuda, device 0 ({MoeCutlassLibrary.GetDeviceInfo(0).Name})"
            : "cpu reference backend, suite cases scaled down";
        console.WriteLine($"bench would use: {target} ({reason})");
        return ExitCodes.Success;
    }

    private static string Blank(string? value) => string.IsNullOrWhiteSpace(value) ? "(unknown)" : value;
}
