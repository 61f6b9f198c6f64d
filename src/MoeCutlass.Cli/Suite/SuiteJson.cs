using System.Text.Json.Serialization;

namespace MoeCutlass.Cli.Suite;

// The on-disk shape of shared/bench/suite.json. Everything is nullable/defaulted here; BenchSuite
// validates and turns it into immutable BenchCase records with clear one-line errors.

/// <summary>The suite file's top level: <c>description</c>, <c>models</c>, <c>cases</c>.</summary>
internal sealed class SuiteDocument
{
    public string? Description { get; set; }

    public Dictionary<string, SuiteModelJson>? Models { get; set; }

    public List<SuiteCaseJson>? Cases { get; set; }

    public List<SuiteLayerJson>? Layers { get; set; }
}

/// <summary>A model's MoE dimensions (informational; cases carry their own E, N, K).</summary>
internal sealed class SuiteModelJson
{
    public int Experts { get; set; }

    public int Topk { get; set; }

    public int Hidden { get; set; }

    public int MoeIntermediate { get; set; }
}

/// <summary>One benchmark case as written in the file.</summary>
internal sealed class SuiteCaseJson
{
    public string? Name { get; set; }

    public string? Model { get; set; }

    public string? Gemm { get; set; }

    public int Experts { get; set; }

    public int N { get; set; }

    public int K { get; set; }

    public long Rows { get; set; }

    public int[]? RowsPerExpert { get; set; }

    public string? Note { get; set; }
}

/// <summary>One whole-MoE-layer case (<c>bench --layer</c>) as written in the file.</summary>
internal sealed class SuiteLayerJson
{
    public string? Name { get; set; }

    public string? Model { get; set; }

    public int Experts { get; set; }

    public int FirstExpert { get; set; }

    public int RouterExperts { get; set; }

    public int Hidden { get; set; }

    public int Intermediate { get; set; }

    public int Topk { get; set; }

    public int Tokens { get; set; }

    public string? Router { get; set; }

    public string? Note { get; set; }
}

/// <summary>Source-generated (reflection-free, trim and AOT friendly) serializer metadata for the suite file.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(SuiteDocument))]
internal sealed partial class SuiteJsonContext : JsonSerializerContext;
