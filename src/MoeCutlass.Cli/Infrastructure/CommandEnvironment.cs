using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Spectre.Console;

namespace MoeCutlass.Cli.Infrastructure;

/// <summary>
/// What every command needs: the logger factory handed to the facade (Debug with <c>--verbose</c>,
/// Warning otherwise, always written to stderr so stdout stays a clean report), and the console the
/// report is rendered on.
/// </summary>
internal sealed class CommandEnvironment : IDisposable
{
    /// <summary>Console width used when stdout is not a terminal: wide enough that neither tables nor lines wrap in CI logs.</summary>
    private const int RedirectedConsoleWidth = 1000;

    private CommandEnvironment(bool verbose)
    {
        Verbose = verbose;
        LoggerFactory = Microsoft.Extensions.Logging.LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(verbose ? LogLevel.Debug : LogLevel.Warning);
            builder.AddConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.TimestampFormat = "HH:mm:ss.fff ";
                options.ColorBehavior = System.Console.IsErrorRedirected ? LoggerColorBehavior.Disabled : LoggerColorBehavior.Default;
            });
        });
        Logger = LoggerFactory.CreateLogger("moecutlass");

        Console = CreateConsole(out bool interactive);
        Interactive = interactive;
    }

    /// <summary><c>--verbose</c> was given.</summary>
    public bool Verbose { get; }

    /// <summary>Logger factory passed to <see cref="MoeCutlassLibrary.Initialize"/> and to contexts.</summary>
    public ILoggerFactory LoggerFactory { get; }

    /// <summary>The tool's own logger.</summary>
    public ILogger Logger { get; }

    /// <summary>Where reports are written (stdout).</summary>
    public IAnsiConsole Console { get; }

    /// <summary>True when stdout is an interactive terminal: progress bars instead of one line per item.</summary>
    public bool Interactive { get; }

    /// <summary>
    /// Runs <paramref name="body"/> with a fresh environment and converts any exception into one error
    /// line and an exit code (see <see cref="ErrorReporter"/>).
    /// </summary>
    public static int Run(bool verbose, Func<CommandEnvironment, int> body)
    {
        CommandEnvironment? environment = null;
        try
        {
            environment = new CommandEnvironment(verbose);
            return body(environment);
        }
        catch (Exception ex)
        {
            // Flush pending log lines first so they do not land after the error line.
            environment?.Dispose();
            environment = null;
            return ErrorReporter.Report(ex, verbose);
        }
        finally
        {
            environment?.Dispose();
        }
    }

    /// <summary>Loads the native library (once per process) with this environment's logger factory.</summary>
    public void InitializeLibrary() => MoeCutlassLibrary.Initialize(LoggerFactory);

    public void Dispose() => LoggerFactory.Dispose();

    /// <summary>
    /// stdout as a Spectre console: colors, ANSI and interaction when it is a terminal (NO_COLOR is honored);
    /// plain text at a fixed wide width when it is redirected to a file or a CI log.
    /// </summary>
    private static IAnsiConsole CreateConsole(out bool interactive)
    {
        bool redirected = System.Console.IsOutputRedirected;
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = redirected ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = redirected ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = redirected ? InteractionSupport.No : InteractionSupport.Detect,
            Out = new AnsiConsoleOutput(System.Console.Out),
        });
        if (redirected)
        {
            console.Profile.Width = RedirectedConsoleWidth;
        }

        interactive = !redirected && console.Profile.Capabilities.Interactive;
        return console;
    }
}
