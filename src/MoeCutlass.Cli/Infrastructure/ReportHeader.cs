using Spectre.Console;

namespace MoeCutlass.Cli.Infrastructure;

/// <summary>"key:  value" lines printed above a report, keys padded to one column so they read as a block.</summary>
internal sealed class ReportHeader(IAnsiConsole console)
{
    private const int KeyWidth = 12;

    public void Add(string key, string value) =>
        console.WriteLine((key + ":").PadRight(KeyWidth) + value);
}
