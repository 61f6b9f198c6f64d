using System.CommandLine;
using System.CommandLine.Invocation;
using MoeCutlass.Cli.Commands;
using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli;

/// <summary>
/// Entry point of <c>moecutlass</c>. Exit codes: 0 success, 1 library/runtime failure, 2 usage error
/// (bad option, unknown case, missing suite), 3 verification failed (see <see cref="ExitCodes"/>).
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        RootCommand root = BuildRootCommand();
        ParseResult parseResult = root.Parse(args);

        // Parse errors (unknown option, bad number, missing subcommand) are user errors: one line, exit 2,
        // instead of System.CommandLine's default of the error plus the whole help text.
        if (parseResult.Action is ParseErrorAction && parseResult.Errors.Count > 0)
        {
            ErrorReporter.WriteError(ParseErrorMessage(root, parseResult) + " (see 'moecutlass --help')");
            return ExitCodes.UsageError;
        }

        // Commands handle their own exceptions (CommandEnvironment.Run); anything escaping is reported the same way.
        try
        {
            return parseResult.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception ex)
        {
            return ErrorReporter.Report(ex, parseResult.GetValue(CommonOptions.Verbose));
        }
    }

    /// <summary>
    /// The one-line message for a parse error. At the root, a word that is no command is named as an unknown command
    /// and a missing command says so, both with the list of commands (System.CommandLine's first error there is
    /// "Required command was not provided.", which does not help a typo).
    /// </summary>
    internal static string ParseErrorMessage(RootCommand root, ParseResult parseResult)
    {
        if (parseResult.CommandResult.Command == root)
        {
            string commands = string.Join(", ", root.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
            string? word = parseResult.UnmatchedTokens.FirstOrDefault(t => !t.StartsWith('-'));
            if (word is not null)
            {
                return $"unknown command '{word}'; commands: {commands}";
            }

            return parseResult.UnmatchedTokens.Count == 0
                ? $"no command given; commands: {commands}"
                : $"unknown option '{parseResult.UnmatchedTokens[0]}' before the command; commands: {commands}";
        }

        return parseResult.Errors[0].Message;
    }

    internal static RootCommand BuildRootCommand()
    {
        var root = new RootCommand(
            "MoeCutlass: FP8 blockwise-scaled grouped GEMM for Mixture-of-Experts layers on NVIDIA Hopper. "
            + "Native library: set MOECUTLASS_NATIVE_PATH to use a specific libmoecutlass.")
        {
            CommonOptions.Verbose,
            InfoCommand.Create(),
            BenchCommand.Create(),
            TuneCommand.Create(),
            VerifyCommand.Create(),
            PlotCommand.Create(),
            ScaleCommand.Create(),
            ScaleCommand.CreateRank(),
        };
        return root;
    }
}
