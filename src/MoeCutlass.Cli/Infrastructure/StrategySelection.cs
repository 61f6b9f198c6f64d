namespace MoeCutlass.Cli.Infrastructure;

/// <summary>Parses <c>--strategy</c> values (repeatable, comma lists allowed) into grouped-GEMM strategies.</summary>
internal static class StrategySelection
{
    public const string OptionValues = "auto, single, expert_specialized, persistent, cublas, all";

    /// <summary>What <c>all</c> leaves out, for the option's help text.</summary>
    public const string AllNote = "all = every strategy but cublas, the baseline (name it to run it)";

    /// <summary>The order strategies are run and reported in.</summary>
    private static readonly IReadOnlyList<GemmStrategy> ReportOrder =
        [GemmStrategy.Single, GemmStrategy.ExpertSpecialized, GemmStrategy.Persistent, GemmStrategy.Cublas, GemmStrategy.Auto];

    /// <summary>
    /// The strategies <c>all</c> selects, in report order. Not <see cref="GemmStrategy.Cublas"/>: it is the baseline,
    /// run by name, and <c>all</c> is what verify runs by default, whose FP8 tolerance is not cuBLAS's bf16 one.
    /// </summary>
    public static readonly IReadOnlyList<GemmStrategy> All = ReportOrder.Where(s => s != GemmStrategy.Cublas).ToArray();

    /// <summary>Strategies selected by <paramref name="values"/>, or <paramref name="defaults"/> when none is given.</summary>
    public static IReadOnlyList<GemmStrategy> Parse(IEnumerable<string>? values, IReadOnlyList<GemmStrategy> defaults)
    {
        var selected = new HashSet<GemmStrategy>();
        bool any = false;
        foreach (string token in OptionLists.Split(values))
        {
            any = true;
            switch (token.ToLowerInvariant())
            {
                case "all":
                    selected.UnionWith(All);
                    break;
                case "auto":
                    selected.Add(GemmStrategy.Auto);
                    break;
                case "single":
                    selected.Add(GemmStrategy.Single);
                    break;
                case "expert_specialized" or "expert-specialized" or "es":
                    selected.Add(GemmStrategy.ExpertSpecialized);
                    break;
                case "persistent":
                    selected.Add(GemmStrategy.Persistent);
                    break;
                case "cublas":
                    selected.Add(GemmStrategy.Cublas);
                    break;
                default:
                    throw new UsageException($"unknown strategy '{token}' (valid: {OptionValues})");
            }
        }

        return any ? ReportOrder.Where(selected.Contains).ToArray() : defaults;
    }

    /// <summary>The name used on the command line and in reports.</summary>
    public static string Name(GemmStrategy strategy) => strategy switch
    {
        GemmStrategy.Auto => "auto",
        GemmStrategy.Single => "single",
        GemmStrategy.ExpertSpecialized => "expert_specialized",
        GemmStrategy.Persistent => "persistent",
        GemmStrategy.Cublas => "cublas",
        _ => strategy.ToString().ToLowerInvariant(),
    };
}
