using System.Reflection;

namespace MoeCutlass.Cli.Infrastructure;

/// <summary>
/// Turns failures into one <c>error: ...</c> line on stderr and an exit code. Full exception details
/// (type and stack trace) are printed only with <c>--verbose</c>.
/// </summary>
internal static class ErrorReporter
{
    /// <summary>Writes <c>error: message</c> as a single line to stderr.</summary>
    public static void WriteError(string message) =>
        Console.Error.WriteLine("error: " + OneLine(message));

    /// <summary>Writes <c>warning: message</c> as a single line to stderr.</summary>
    public static void WriteWarning(string message) =>
        Console.Error.WriteLine("warning: " + OneLine(message));

    /// <summary>Reports <paramref name="exception"/> and returns the exit code the process should end with.</summary>
    public static int Report(Exception exception, bool verbose)
    {
        Exception ex = Unwrap(exception);
        switch (ex)
        {
            case UsageException usage:
                WriteError(usage.Message);
                return ExitCodes.UsageError;

            case IMoeCutlassException:
                WriteError(DescribeLibraryError(ex));
                WriteDetails(ex, verbose);
                return ExitCodes.Failure;

            case OperationCanceledException:
                WriteError("cancelled");
                return ExitCodes.Failure;

            default:
                WriteError(verbose ? ex.Message : ex.Message + " (run with --verbose for details)");
                WriteDetails(ex, verbose);
                return ExitCodes.Failure;
        }
    }

    /// <summary>A one-line, type-less description of a library exception.</summary>
    public static string DescribeLibraryError(Exception exception) => OneLine(exception.Message);

    /// <summary>Collapses a possibly multi-line message to one line ("; " between lines, a space after a colon).</summary>
    public static string OneLine(string message)
    {
        string[] parts = message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0)
        {
            return "(no message)";
        }

        var line = new System.Text.StringBuilder(parts[0]);
        for (int i = 1; i < parts.Length; i++)
        {
            line.Append(parts[i - 1].EndsWith(':') ? " " : "; ").Append(parts[i]);
        }

        return line.ToString();
    }

    private static void WriteDetails(Exception exception, bool verbose)
    {
        if (verbose)
        {
            Console.Error.WriteLine(exception.ToString());
        }
    }

    private static Exception Unwrap(Exception exception)
    {
        Exception current = exception;
        while (true)
        {
            switch (current)
            {
                case TypeInitializationException { InnerException: { } inner }:
                    current = inner;
                    continue;
                case TargetInvocationException { InnerException: { } inner }:
                    current = inner;
                    continue;
                case AggregateException aggregate when aggregate.InnerExceptions.Count == 1:
                    current = aggregate.InnerExceptions[0];
                    continue;
                default:
                    return current;
            }
        }
    }
}
