using System.CommandLine;
using MoeCutlass.Cli.Commands;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Tune;

/// <summary>The parsed command line of <c>tune</c>.</summary>
internal sealed record TuneRequest(
    IReadOnlyList<TuneShape> Shapes,
    string? SuitePath,
    IReadOnlyList<int> Rows,
    DType OutputDType,
    int Iterations,
    int Warmup,
    int Device,
    string? JsonPath,
    string? CsvPath);

/// <summary><c>tune</c>'s options, and their parsing into a <see cref="TuneRequest"/> (user errors as <see cref="UsageException"/>).</summary>
internal sealed class TuneOptions
{
    public const int DefaultIterations = 10;
    public const int DefaultWarmup = 3;

    private readonly Option<string[]> _shapes = new("--shape")
    {
        Description = $"GEMM shape E,N,K to sweep (repeatable; E 1..4096, N a multiple of 8, K a multiple of 16) "
            + $"[default without --shape and --case: {TuneSelection.DefaultShapesText}]",
        HelpName = "E,N,K",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<string[]> _cases = CommonOptions.Cases();
    private readonly Option<string?> _suite = CommonOptions.Suite();

    private readonly Option<string[]> _rows = new("--rows", "-m")
    {
        Description = $"Rows per expert to time (repeatable or a comma list) [default: {string.Join(',', TuneSelection.DefaultRows)}]",
        HelpName = "M,...",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<string> _dtype = CommonOptions.OutputDType();

    private readonly Option<int> _iterations = new("--iterations", "-n")
    {
        Description = "Timed iterations per rows value and configuration",
        HelpName = "COUNT",
        DefaultValueFactory = _ => DefaultIterations,
    };

    private readonly Option<int> _warmup = new("--warmup", "-w")
    {
        Description = "Untimed warm-up runs per rows value and configuration",
        HelpName = "COUNT",
        DefaultValueFactory = _ => DefaultWarmup,
    };

    private readonly Option<int> _device = CommonOptions.Device();

    private readonly Option<string?> _json = new("--json")
    {
        Description = "Write results, crossovers and the suggestion (with run metadata) as JSON (the directory must exist)",
        HelpName = "PATH",
    };

    private readonly Option<string?> _csv = new("--csv")
    {
        Description = "Write results as CSV, one row per shape, rows value and configuration (the directory must exist)",
        HelpName = "PATH",
    };

    public TuneOptions()
    {
        _cases.Description = "Sweep the E, N, K of a suite case (exact name; repeatable or a comma list)";
    }

    /// <summary>The options in the order help lists them.</summary>
    public IReadOnlyList<Option> All => [_shapes, _cases, _suite, _rows, _dtype, _iterations, _warmup, _device, _json, _csv];

    /// <summary>
    /// The request of <paramref name="parseResult"/>. User errors surface here, before the native library or a device
    /// is needed; the suite is only read when <c>--case</c> names cases from it.
    /// </summary>
    public TuneRequest Parse(ParseResult parseResult)
    {
        string[]? caseNames = parseResult.GetValue(_cases);
        BenchSuite? loadedSuite = null;
        IReadOnlyList<BenchCase> selectedCases = [];
        if (OptionLists.Split(caseNames).Any())
        {
            loadedSuite = BenchSuite.Load(SuiteLocator.Locate(parseResult.GetValue(_suite)));
            selectedCases = loadedSuite.Select(caseNames);
        }

        return new TuneRequest(
            Shapes: TuneSelection.Shapes(parseResult.GetValue(_shapes), selectedCases),
            SuitePath: loadedSuite?.Path,
            Rows: TuneSelection.ParseRows(parseResult.GetValue(_rows)),
            OutputDType: OutputDTypeSelection.Parse(parseResult.GetValue(_dtype)),
            Iterations: OptionChecks.AtLeast(parseResult.GetValue(_iterations), "--iterations", 1),
            Warmup: OptionChecks.AtLeast(parseResult.GetValue(_warmup), "--warmup", 0),
            Device: OptionChecks.AtLeast(parseResult.GetValue(_device), "--device", 0),
            JsonPath: OptionChecks.OutputFile(parseResult.GetValue(_json), "--json"),
            CsvPath: OptionChecks.OutputFile(parseResult.GetValue(_csv), "--csv"));
    }
}
