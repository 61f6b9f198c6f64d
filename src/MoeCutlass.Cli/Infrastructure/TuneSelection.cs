using System.Globalization;
using MoeCutlass.Cli.Suite;
using MoeCutlass.Cli.Tune;

namespace MoeCutlass.Cli.Infrastructure;

/// <summary>A GEMM shape that <c>tune</c> sweeps.</summary>
/// <param name="Label">How reports name it: "E=32, N=7168, K=2048", or the case name followed by that.</param>
/// <param name="Experts">E.</param>
/// <param name="N">Output columns per expert.</param>
/// <param name="K">Reduction depth.</param>
/// <param name="Case">The suite case it came from (<c>--case</c>), else null.</param>
internal sealed record TuneShape(string Label, int Experts, int N, int K, string? Case)
{
    /// <summary>"E=32, N=7168, K=2048".</summary>
    public string Dimensions => Describe(Experts, N, K);

    /// <summary>The name the synthetic problems of this shape carry; it seeds their data, so it depends on E, N, K only.</summary>
    public string DataName => string.Create(CultureInfo.InvariantCulture, $"tune-e{Experts}-n{N}-k{K}");

    public static TuneShape Of(int experts, int n, int k) => new(Describe(experts, n, k), experts, n, k, null);

    public static TuneShape Of(BenchCase benchCase) =>
        new($"{benchCase.Name} ({Describe(benchCase.Experts, benchCase.N, benchCase.K)})", benchCase.Experts, benchCase.N, benchCase.K, benchCase.Name);

    /// <summary>
    /// This shape with K replaced (<c>--k</c>): E and N kept; a suite case's label says the K is not the case's own.
    /// </summary>
    public TuneShape WithK(int k)
    {
        if (k == K)
        {
            return this;
        }

        string dimensions = Describe(Experts, N, k);
        return new TuneShape(Case is null ? dimensions : string.Create(CultureInfo.InvariantCulture, $"{Case} with K={k} ({dimensions})"), Experts, N, k, Case);
    }

    private static string Describe(int experts, int n, int k) => string.Create(CultureInfo.InvariantCulture, $"E={experts}, N={n}, K={k}");
}

/// <summary>Parses and checks <c>tune</c>'s <c>--shape</c> and <c>--rows</c>; every problem is a one-line <see cref="UsageException"/>.</summary>
internal static class TuneSelection
{
    /// <summary>The ABI's limit on experts (MC_MAX_EXPERTS).</summary>
    public const int MaxExperts = 4096;

    /// <summary>The ABI's limit on N and K (MC_MAX_DIM).</summary>
    public const int MaxDimension = 1 << 20;

    /// <summary>The DeepSeek-V3 shapes of the hand sweep in bench/results/README.md: gate_up E=32, down TP8 E=256, down E=32.</summary>
    public static readonly IReadOnlyList<TuneShape> DefaultShapes = [TuneShape.Of(32, 7168, 2048), TuneShape.Of(256, 7168, 256), TuneShape.Of(32, 4096, 7168)];

    public const string DefaultShapesText = "32,7168,2048 and 256,7168,256 and 32,4096,7168";

    /// <summary>Rows per expert swept by default: dense where the swapped 32- and 64-row tiles fill up, sparse beyond.</summary>
    public static readonly IReadOnlyList<int> DefaultRows = [4, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 128, 192];

    /// <summary>
    /// Rows per expert swept on the SINGLE path by default: the single path's crossovers lie further out (the H200's
    /// 64x128 -> 128x128 at 40-96 rows, 128x128 -> 256x128 near 512), so the sweep reaches 1024.
    /// </summary>
    public static readonly IReadOnlyList<int> DefaultSingleRows = [8, 16, 24, 32, 40, 48, 64, 80, 96, 128, 192, 256, 384, 512, 768, 1024];

    /// <summary>The paths tuned by default: both.</summary>
    public static readonly IReadOnlyList<TunePath> DefaultPaths = [TunePath.Specialized, TunePath.Single];

    /// <summary>Parses <c>--path specialized|single|both</c> (null: both), in the order they are measured.</summary>
    public static IReadOnlyList<TunePath> ParsePath(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "both" => DefaultPaths,
        "specialized" => [TunePath.Specialized],
        "single" => [TunePath.Single],
        _ => throw new UsageException($"--path '{text}': expected specialized, single or both"),
    };

    /// <summary>
    /// Parses <c>--k</c> (repeatable, comma lists): K values that replace every shape's K (each shape is swept once per
    /// value, E and N kept), ascending without duplicates; null when not given.
    /// </summary>
    public static IReadOnlyList<int>? ParseK(IEnumerable<string>? values)
    {
        if (values is null || !values.Any())
        {
            return null;
        }

        var ks = new SortedSet<int>();
        foreach (string token in OptionLists.Split(values))
        {
            if (!int.TryParse(token, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k))
            {
                throw new UsageException($"--k: '{token}' is not a whole number (e.g. --k 256,2048,7168)");
            }

            if (k is < 1 or > MaxDimension || k % 16 != 0)
            {
                throw new UsageException($"--k: K must be a positive multiple of 16 up to {MaxDimension} (got {k})");
            }

            ks.Add(k);
        }

        return ks.Count > 0 ? ks.ToArray() : throw new UsageException("--k needs at least one value (e.g. --k 256,2048,7168)");
    }

    /// <summary>Every shape once per K of <paramref name="ks"/> (E and N kept), shape by shape; as given when null.</summary>
    public static IReadOnlyList<TuneShape> WithK(IReadOnlyList<TuneShape> shapes, IReadOnlyList<int>? ks)
    {
        if (ks is null)
        {
            return shapes;
        }

        var selected = new List<TuneShape>();
        foreach (TuneShape shape in shapes.SelectMany(s => ks.Select(s.WithK)))
        {
            if (!selected.Any(s => s.Experts == shape.Experts && s.N == shape.N && s.K == shape.K))
            {
                selected.Add(shape);
            }
        }

        return selected;
    }

    /// <summary>Parses one <c>--shape E,N,K</c> value.</summary>
    public static TuneShape ParseShape(string text)
    {
        string[] parts = text.Split(',', StringSplitOptions.TrimEntries);
        int[] values = new int[3];
        if (parts.Length != 3 || !parts.Select((p, i) => int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out values[i])).All(ok => ok))
        {
            throw new UsageException($"--shape '{text}': expected E,N,K (three integers, e.g. 32,7168,2048)");
        }

        (int experts, int n, int k) = (values[0], values[1], values[2]);
        string shown = string.Join(',', values.Select(v => v.ToString(CultureInfo.InvariantCulture)));
        if (experts is < 1 or > MaxExperts)
        {
            throw new UsageException($"--shape {shown}: E must be 1..{MaxExperts} (got {experts})");
        }

        if (n is < 1 or > MaxDimension || n % 8 != 0)
        {
            throw new UsageException($"--shape {shown}: N must be a positive multiple of 8 up to {MaxDimension} (got {n})");
        }

        if (k is < 1 or > MaxDimension || k % 16 != 0)
        {
            throw new UsageException($"--shape {shown}: K must be a positive multiple of 16 up to {MaxDimension} (got {k})");
        }

        return TuneShape.Of(experts, n, k);
    }

    /// <summary>
    /// The shapes to sweep: every <c>--shape</c>, then every <c>--case</c> (E, N, K of the suite case), in the order
    /// given, a shape already listed left out; the DeepSeek defaults when neither option is given.
    /// </summary>
    public static IReadOnlyList<TuneShape> Shapes(IEnumerable<string>? shapes, IEnumerable<BenchCase>? cases)
    {
        var selected = new List<TuneShape>();
        foreach (TuneShape shape in (shapes ?? []).Select(ParseShape).Concat((cases ?? []).Select(TuneShape.Of)))
        {
            if (!selected.Any(s => s.Experts == shape.Experts && s.N == shape.N && s.K == shape.K))
            {
                selected.Add(shape);
            }
        }

        return selected.Count > 0 ? selected : DefaultShapes;
    }

    /// <summary>
    /// Parses <c>--rows</c> (repeatable, comma lists): rows per expert, 1 .. the forcing threshold, returned ascending
    /// without duplicates; the defaults when nothing is given.
    /// </summary>
    public static IReadOnlyList<int> ParseRows(IEnumerable<string>? values) => ParseRows(values, DefaultRows);

    /// <summary>Parses <c>--rows</c> as <see cref="ParseRows(IEnumerable{string})"/>, with <paramref name="defaults"/> when nothing is given.</summary>
    public static IReadOnlyList<int> ParseRows(IEnumerable<string>? values, IReadOnlyList<int> defaults)
    {
        if (values is null || !values.Any())
        {
            return defaults;
        }

        var rows = new SortedSet<int>();
        foreach (string token in OptionLists.Split(values))
        {
            if (!int.TryParse(token, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
            {
                throw new UsageException($"--rows: '{token}' is not a whole number (rows per expert, e.g. --rows 4,8,16,32)");
            }

            if (value is < 1 or > TuneConfigurations.MaxRowsPerExpert)
            {
                throw new UsageException($"--rows: {value} is out of range (rows per expert must be 1..{TuneConfigurations.MaxRowsPerExpert})");
            }

            rows.Add(value);
        }

        return rows.Count > 0 ? rows.ToArray() : throw new UsageException("--rows needs at least one value (e.g. --rows 4,8,16,32)");
    }
}
