using System.Text.Json;
using System.Text.Encodings.Web;
using System.Text.Json.Serialization;

namespace MoeCutlass.Cli.Bench;

/// <summary>One (layer case, strategy) of <c>bench --layer</c>; times in µs, medians of the timed iterations.</summary>
internal sealed record LayerResult
{
    public required string Case { get; init; }

    public required string Model { get; init; }

    public required string Backend { get; init; }

    public required string Strategy { get; init; }

    /// <summary>"uniform" or "zipf".</summary>
    public required string Router { get; init; }

    /// <summary>The layer as run (scaled on the CPU backend).</summary>
    public required int Tokens { get; init; }

    public required int Experts { get; init; }

    public required int FirstExpert { get; init; }

    public required int RouterExperts { get; init; }

    public required int Hidden { get; init; }

    public required int Intermediate { get; init; }

    public required int Topk { get; init; }

    public required bool Scaled { get; init; }

    public string? ScaleNote { get; init; }

    /// <summary>Local experts that received at least one row (host routing of the same logits).</summary>
    public required int ActiveExperts { get; init; }

    /// <summary>Token-expert pairs routed to local experts: the rows of both GEMMs.</summary>
    public required int RoutedRows { get; init; }

    public required int Iterations { get; init; }

    public required int Warmup { get; init; }

    /// <summary>Whole forward call, eager launches.</summary>
    public double? LayerMedianUs { get; init; }

    public double? LayerMinUs { get; init; }

    public double? LayerP90Us { get; init; }

    /// <summary>Host time of one Forward call (its enqueue cost on CUDA).</summary>
    public double? LayerHostMedianUs { get; init; }

    /// <summary>One captured forward call replayed as a CUDA graph; null without graph mode.</summary>
    public double? GraphMedianUs { get; init; }

    public string? GraphError { get; init; }

    /// <summary>GEMM1 (N = 2I, K = H) alone over the routed rows, same strategy and expert offsets.</summary>
    public double? Gemm1MedianUs { get; init; }

    /// <summary>GEMM2 (N = H, K = I) alone.</summary>
    public double? Gemm2MedianUs { get; init; }

    /// <summary>Gemm1MedianUs + Gemm2MedianUs: the denominator of <see cref="Overhead"/>.</summary>
    public double? GemmsMedianUs { get; init; }

    /// <summary>LayerMedianUs / GemmsMedianUs: what routing, permutation, gather, activation and combine add to the GEMMs.</summary>
    public double? Overhead { get; init; }

    /// <summary>Weights the forward call streams: W13, W2 and their scales of every active expert.</summary>
    public required long WeightBytes { get; init; }

    /// <summary>WeightBytes / LayerMedianUs in TB/s.</summary>
    public double? WeightTbps { get; init; }

    /// <summary>WeightTbps as a percentage of the run's memory bandwidth (run metadata layer.bandwidth_gbps); null without one.</summary>
    public double? BandwidthPercent { get; init; }

    /// <summary>Median of each stage of the timed forward calls (ForwardTimed), keys route, permute, gather, gemm1, act, gemm2, combine.</summary>
    public Dictionary<string, double>? StageMedianUs { get; init; }

    /// <summary>Median of the timed calls' first-to-last event time (the stages together).</summary>
    public double? StagesTotalMedianUs { get; init; }

    public string? Gemm1Kernels { get; init; }

    public string? Gemm2Kernels { get; init; }

    /// <summary>Whether this case's weights were generated for it (false: reused from an earlier case of the same model).</summary>
    public required bool WeightsGenerated { get; init; }

    public string? Error { get; init; }
}

/// <summary>Layer-run facts the GEMM bench's metadata has no place for.</summary>
/// <param name="WeightGenerations">Weight sets generated in the run (cases of one model share one).</param>
/// <param name="BandwidthGbps">The bandwidth bandwidth_percent is relative to, GB/s; null without one (CPU backend, unknown GPU).</param>
/// <param name="BandwidthSource">Where it comes from: "datasheet" (the library's per-class figure; the bench measures no copy bandwidth).</param>
/// <param name="ZipfExponent">s of the "zipf" router's bias -s·ln(rank + 1).</param>
internal sealed record LayerRunInfo(int WeightGenerations, double? BandwidthGbps, string? BandwidthSource, double ZipfExponent);

/// <summary>The <c>bench --layer --json</c> file.</summary>
internal sealed record LayerReport(BenchRunMetadata Run, LayerRunInfo Layer, IReadOnlyList<LayerResult> Results);

[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(LayerReport))]
internal sealed partial class LayerJsonContext : JsonSerializerContext;

/// <summary>Writes the <c>bench --layer --json</c> file (relaxed escaping, as <see cref="ResultWriters"/> writes bench files).</summary>
internal static class LayerResultWriter
{
    private static readonly LayerJsonContext FileContext = new(new JsonSerializerOptions(LayerJsonContext.Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static string ToJson(LayerReport report) => JsonSerializer.Serialize(report, FileContext.LayerReport);

    public static void Write(string path, LayerReport report) => ResultWriters.WriteText(path, ToJson(report) + Environment.NewLine);
}
