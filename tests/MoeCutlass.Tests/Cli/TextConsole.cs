using Spectre.Console;

namespace MoeCutlass.Tests.Cli;

/// <summary>A wide, colourless Spectre console that renders into a string, for asserting on tables.</summary>
internal static class TextConsole
{
    /// <summary>What <paramref name="write"/> prints, 400 columns wide so that no column is dropped.</summary>
    public static string Render(Action<IAnsiConsole> write)
    {
        var writer = new StringWriter();
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(writer),
        });
        console.Profile.Width = 400;
        write(console);
        return writer.ToString();
    }
}
