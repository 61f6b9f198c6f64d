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
    string? CsvPath)
{
    /// <summary>The paths to tune, in the order they are measured (<c>--path</c>; default both).</summary>
    public IReadOnlyList<TunePath> Paths { get; init; } = TuneSelection.DefaultPaths;

    /// <summary>Rows per expert swept on the SINGLE path (<c>--rows</c> when given, else <see cref="TuneSelection.DefaultSingleRows"/>).</summary>
    public IReadOnlyList<int> SingleRows { get; init; } = TuneSelection.DefaultSingleRows;

    /// <summary>The K values of <c>--k</c> (every shape swept once per value), or null.</summary>
    public IReadOnlyList<int>? KValues { get; init; }

    public bool Tunes(TunePath path) => Paths.Contains(path);

    /// <summary>The rows values swept on <paramref name="path"/>.</summary>
    public IReadOnlyList<int> RowsOf(TunePath path) => path == TunePath.Single ? SingleRows : Rows;
}

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
        Description = $"Rows per expert to time, on every path tuned (repeatable or a comma list) [default: specialized "
            + $"{string.Join(',', TuneSelection.DefaultRows)}; single {string.Join(',', TuneSelection.DefaultSingleRows)}]",
        HelpName = "M,...",
        Arity = ArgumentArity.OneOrMore,
    };

    private readonly Option<string?> _path = new("--path")
    {
        Description = "Which selection path to tune: specialized (expert specialization's 128x32, 128x64, 128x128 per expert's rows), "
            + "single (every non-swapped configuration of the registry per average rows per expert, lines grouped by K) or both [default: both]",
        HelpName = "specialized|single|both",
    };

    private readonly Option<string[]> _k = new("--k")
    {
        Description = "Replace the K of every shape by each of these values (E and N kept), e.g. --k 256,2048,7168 to cover short and "
            + "long K (repeatable or a comma list)",
        HelpName = "K,...",
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
    public IReadOnlyList<Option> All => [_shapes, _cases, _suite, _k, _path, _rows, _dtype, _iterations, _warmup, _device, _json, _csv];

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

        string[]? rows = parseResult.GetValue(_rows);
        IReadOnlyList<int>? ks = TuneSelection.ParseK(parseResult.GetValue(_k));
        return new TuneRequest(
            Shapes: TuneSelection.WithK(TuneSelection.Shapes(parseResult.GetValue(_shapes), selectedCases), ks),
            SuitePath: loadedSuite?.Path,
            Rows: TuneSelection.ParseRows(rows),
            OutputDType: OutputDTypeSelection.Parse(parseResult.GetValue(_dtype)),
            Iterations: OptionChecks.AtLeast(parseResult.GetValue(_iterations), "--iterations", 1),
            Warmup: OptionChecks.AtLeast(parseResult.GetValue(_warmup), "--warmup", 0),
            Device: OptionChecks.AtLeast(parseResult.GetValue(_device), "--device", 0),
            JsonPath: OptionChecks.OutputFile(parseResult.GetValue(_json), "--json"),
            CsvPath: OptionChecks.OutputFile(parseResult.GetValue(_csv), "--csv"))
        {
            Paths = TuneSelection.ParsePath(parseResult.GetValue(_path)),
            SingleRows = TuneSelection.ParseRows(rows, TuneSelection.DefaultSingleRows),
            KValues = ks,
        };
    }
}
