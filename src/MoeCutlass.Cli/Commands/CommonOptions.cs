using System.CommandLine;
using System.Globalization;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Commands;

/// <summary>Options shared by several commands (each command gets its own instances).</summary>
internal static class CommonOptions
{
    /// <summary><c>--verbose</c>: Debug-level library logging on stderr and full exception details. Global.</summary>
    public static readonly Option<bool> Verbose = new("--verbose", "-v")
    {
        Description = "Log the library at Debug level (stderr) and print full exception details",
        Recursive = true,
    };

    public static Option<string?> Suite() => new("--suite")
    {
        Description = $"Benchmark suite file [default: ${SuiteLocator.EnvironmentVariable}, else shared/bench/suite.json found upward from here or from the tool]",
        HelpName = "PATH",
    };

    public static Option<string[]> Cases() => new("--case", "-c")
    {
        Description = "Suite case to run (exact name; repeatable or a comma list) [default: all cases]",
        HelpName = "NAME",
        Arity = ArgumentArity.OneOrMore,
    };

    public static Option<string[]> Strategies(string defaultText) => new("--strategy", "-s")
    {
        Description = $"Grouped-GEMM strategy: {StrategySelection.OptionValues} (repeatable or a comma list; {StrategySelection.AllNote}) [default: {defaultText}]",
        HelpName = "NAME",
        Arity = ArgumentArity.OneOrMore,
    };

    public static Option<string> Backend() => new("--backend", "-b")
    {
        Description = $"Backend: {BackendSelection.OptionValues} (auto = cuda when a device exists, else cpu)",
        HelpName = "NAME",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<int> Device() => new("--device", "-d")
    {
        Description = "CUDA device index",
        HelpName = "INDEX",
        DefaultValueFactory = _ => 0,
    };

    public static Option<int> CpuThreads() => new("--cpu-threads")
    {
        Description = "Worker threads of the CPU reference backend (0 = all hardware threads)",
        HelpName = "COUNT",
        DefaultValueFactory = _ => 0,
    };

    public static Option<string> OutputDType() => new("--dtype")
    {
        Description = $"Output dtype of the grouped GEMM: {OutputDTypeSelection.OptionValues}",
        HelpName = "TYPE",
        DefaultValueFactory = _ => "bf16",
    };

    public static Option<ulong> Seed() => new("--seed")
    {
        Description = "Seed of the random inputs (each case derives its own data from it and its name)",
        HelpName = "N",
        DefaultValueFactory = _ => 20261121UL,
    };

    /// <summary>An optional integer option whose default depends on the backend (so it has none here).</summary>
    public static Option<int?> OptionalCount(string name, string alias, string description) => new(name, alias)
    {
        Description = description,
        HelpName = "COUNT",
        CustomParser = result =>
        {
            string text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
            if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
            {
                return value;
            }

            result.AddError($"{name} expects an integer (got '{text}')");
            return null;
        },
    };
}
