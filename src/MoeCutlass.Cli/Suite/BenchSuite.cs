using MoeCutlass.Cli.Infrastructure;
using System.Text.Json;

namespace MoeCutlass.Cli.Suite;

/// <summary>The benchmark suite (<c>shared/bench/suite.json</c>), loaded and validated.</summary>
internal sealed class BenchSuite
{
    /// <summary>The ABI's limit on N and K (MC_MAX_DIM).</summary>
    private const int MaxDimension = 1 << 20;

    /// <summary>The ABI's limit on experts (MC_MAX_EXPERTS).</summary>
    private const int MaxExperts = 4096;

    private BenchSuite(string path, string? description, IReadOnlyList<BenchCase> cases, IReadOnlyList<LayerCase> layers)
    {
        Path = path;
        Description = description;
        Cases = cases;
        Layers = layers;
    }

    /// <summary>Absolute path of the file the suite came from.</summary>
    public string Path { get; }

    public string? Description { get; }

    /// <summary>Cases in file order.</summary>
    public IReadOnlyList<BenchCase> Cases { get; }

    /// <summary>Whole-MoE-layer cases (<c>bench --layer</c>) in file order; empty when the file has no "layers".</summary>
    public IReadOnlyList<LayerCase> Layers { get; }

    /// <summary>Reads and validates a suite file; every problem is a one-line <see cref="UsageException"/>.</summary>
    public static BenchSuite Load(string path)
    {
        string fullPath = System.IO.Path.GetFullPath(path);
        string text;
        try
        {
            text = File.ReadAllText(fullPath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read suite file {fullPath}: {ex.Message}", ex);
        }

        SuiteDocument? document;
        try
        {
            document = JsonSerializer.Deserialize(text, SuiteJsonContext.Default.SuiteDocument);
        }
        catch (JsonException ex)
        {
            throw new UsageException($"suite file {fullPath} is not valid: {ex.Message}", ex);
        }

        if (document?.Cases is not { Count: > 0 } rawCases)
        {
            throw new UsageException($"suite file {fullPath} has no cases");
        }

        var layers = new List<LayerCase>();
        foreach ((SuiteLayerJson raw, int i) in (document.Layers ?? []).Select((l, i) => (l, i)))
        {
            LayerCase layer = LayerCase.Validate(raw, i, fullPath);
            if (layers.Any(l => l.Name == layer.Name))
            {
                throw new UsageException($"suite file {fullPath}: layer name '{layer.Name}' appears more than once");
            }

            layers.Add(layer);
        }

        var cases = new List<BenchCase>(rawCases.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < rawCases.Count; i++)
        {
            BenchCase validated = Validate(rawCases[i], i, document.Models, fullPath);
            if (!names.Add(validated.Name))
            {
                throw new UsageException($"suite file {fullPath}: case name '{validated.Name}' appears more than once");
            }

            cases.Add(validated);
        }

        return new BenchSuite(fullPath, document.Description, cases, layers);
    }

    /// <summary>
    /// The cases named by <paramref name="requested"/> (exact names, repeatable or comma lists), in the
    /// order given; all cases when nothing is requested. An unknown name lists the valid ones.
    /// </summary>
    public IReadOnlyList<BenchCase> Select(IEnumerable<string>? requested)
    {
        string[] names = OptionLists.Split(requested).ToArray();
        if (names.Length == 0)
        {
            return Cases;
        }

        var byName = Cases.ToDictionary(c => c.Name, StringComparer.Ordinal);
        var selected = new List<BenchCase>();
        foreach (string name in names)
        {
            if (!byName.TryGetValue(name, out BenchCase? found))
            {
                throw new UsageException(
                    $"unknown case '{name}'; valid cases: {string.Join(", ", Cases.Select(c => c.Name))}");
            }

            if (!selected.Contains(found))
            {
                selected.Add(found);
            }
        }

        return selected;
    }

    /// <summary>
    /// The layer cases named by <paramref name="requested"/> (as <see cref="Select"/> does for GEMM cases); all of them
    /// when nothing is requested. A suite without layers, or an unknown name, is a usage error.
    /// </summary>
    public IReadOnlyList<LayerCase> SelectLayers(IEnumerable<string>? requested)
    {
        if (Layers.Count == 0)
        {
            throw new UsageException($"--layer: suite file {Path} has no \"layers\" list");
        }

        string[] names = OptionLists.Split(requested).Distinct().ToArray();
        if (names.Length == 0)
        {
            return Layers;
        }

        return names.Select(name => Layers.FirstOrDefault(l => l.Name == name)
            ?? throw new UsageException($"--case: unknown layer case '{name}'; valid layer cases: {string.Join(", ", Layers.Select(l => l.Name))}"))
            .ToList();
    }

    private static BenchCase Validate(SuiteCaseJson raw, int index, Dictionary<string, SuiteModelJson>? models, string path)
    {
        string label = string.IsNullOrWhiteSpace(raw.Name) ? $"case #{index + 1}" : $"case '{raw.Name}'";
        UsageException Invalid(string problem) => new($"suite file {path}: {label}: {problem}");

        if (string.IsNullOrWhiteSpace(raw.Name))
        {
            throw Invalid("missing \"name\"");
        }

        if (raw.Experts is < 1 or > MaxExperts)
        {
            throw Invalid($"\"experts\" must be 1..{MaxExperts} (got {raw.Experts})");
        }

        if (raw.N is < 1 or > MaxDimension || raw.N % 8 != 0)
        {
            throw Invalid($"\"n\" must be a positive multiple of 8 up to {MaxDimension} (got {raw.N})");
        }

        if (raw.K is < 1 or > MaxDimension || raw.K % 16 != 0)
        {
            throw Invalid($"\"k\" must be a positive multiple of 16 up to {MaxDimension} (got {raw.K})");
        }

        if (raw.RowsPerExpert is null)
        {
            throw Invalid("missing \"rows_per_expert\"");
        }

        if (raw.RowsPerExpert.Length != raw.Experts)
        {
            throw Invalid($"\"rows_per_expert\" has {raw.RowsPerExpert.Length} entries but \"experts\" is {raw.Experts}");
        }

        if (raw.RowsPerExpert.Any(r => r < 0))
        {
            throw Invalid("\"rows_per_expert\" has a negative entry");
        }

        long sum = raw.RowsPerExpert.Sum(r => (long)r);
        if (sum > int.MaxValue)
        {
            throw Invalid($"the rows add up to {sum}, more than int32 expert offsets can hold");
        }

        if (raw.Rows != 0 && raw.Rows != sum)
        {
            throw Invalid($"\"rows\" is {raw.Rows} but \"rows_per_expert\" adds up to {sum}");
        }

        if (sum == 0)
        {
            throw Invalid("no expert has any rows");
        }

        string model = raw.Model ?? "";
        if (model.Length > 0 && models is not null && !models.ContainsKey(model))
        {
            throw Invalid($"model '{model}' is not listed under \"models\"");
        }

        return new BenchCase(raw.Name, model, raw.Gemm ?? "", raw.Experts, raw.N, raw.K, raw.RowsPerExpert.ToArray(), raw.Note);
    }
}
