using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using MoeCutlass.Cli.Bench;

namespace MoeCutlass.Cli.Scale;

/// <summary>What one rank measured (the file a <c>scale-rank</c> child writes).</summary>
/// <param name="ForwardMedianUs">The parallel forward with its collectives: median of the event-timed iterations.</param>
/// <param name="PipelineMedianUs">The rank's pipeline alone: median of event 0 to event 7 of <see cref="MoeLayer.ForwardTimed"/> (the
/// collectives fall outside those events).</param>
/// <param name="SingleGpuMedianUs">The one-GPU layer (all experts, full I, all T tokens) on this rank's device, same inputs.</param>
/// <param name="ComparedRows">Output rows compared with the one-GPU layer (T for tp, the rank's T/W for ep).</param>
internal sealed record RankResult(
    string Case,
    string Mode,
    int World,
    int Rank,
    int Device,
    string DeviceName,
    int NcclVersion,
    int Tokens,
    int LocalExperts,
    int Intermediate,
    long WeightBytes,
    int Iterations,
    int Warmup,
    double ForwardMedianUs,
    double ForwardMinUs,
    double PipelineMedianUs,
    double SingleGpuMedianUs,
    int ComparedRows,
    double RelativeRms,
    double WorstRatio,
    string? WorstElement,
    long NonFinite,
    bool Passed);

/// <summary>One (case, mode, W) of <c>moecutlass scale</c>, aggregated over its ranks.</summary>
/// <param name="LatencyUs">Max over ranks of the forward median: the step takes as long as its slowest rank.</param>
/// <param name="PipelineUs">The slowest rank's pipeline median (the forward without the collectives).</param>
/// <param name="CollectiveShare">1 - PipelineUs / LatencyUs: the collectives' (and their staging's) share of the step.</param>
/// <param name="SingleGpuUs">Rank 0's median of the one-GPU layer on the same case.</param>
/// <param name="Speedup">SingleGpuUs / LatencyUs.</param>
/// <param name="Efficiency">Speedup / W.</param>
/// <param name="TolerancePassed">Every rank's output within <see cref="Verify.LayerTolerance"/> of the one-GPU layer's.</param>
internal sealed record ScaleRow(
    string Case,
    string Model,
    string Mode,
    int World,
    int Tokens,
    int Experts,
    int Hidden,
    int Intermediate,
    int TopK,
    double? LatencyUs,
    int? SlowestRank,
    double? PipelineUs,
    double? CollectiveShare,
    double? SingleGpuUs,
    double? Speedup,
    double? Efficiency,
    bool? TolerancePassed,
    double? WorstRelativeRms,
    double? WorstRatio,
    IReadOnlyList<RankResult> Ranks,
    string? Error)
{
    /// <summary>The row of a (case, mode, W) from its ranks' results, or a failed row when <paramref name="error"/> is set.</summary>
    public static ScaleRow Of(Suite.LayerShape shape, MoeParallelMode mode, int world, IReadOnlyList<RankResult> ranks, string? error)
    {
        var row = new ScaleRow(shape.Case.Name, shape.Case.Model, ScalePlan.Name(mode), world, shape.Tokens, shape.Experts, shape.Hidden,
            shape.Intermediate, shape.TopK, null, null, null, null, null, null, null, null, null, null, ranks, error);
        if (error is not null || ranks.Count == 0)
        {
            return row with { Error = error ?? "no rank reported a result" };
        }

        if (ranks.Count != world || ranks.Select(r => r.Rank).Order().SequenceEqual(Enumerable.Range(0, world)) is false)
        {
            return row with { Error = $"expected ranks 0..{world - 1}, got {string.Join(", ", ranks.Select(r => r.Rank))}" };
        }

        RankResult slowest = ranks.MaxBy(r => r.ForwardMedianUs)!;
        double latency = slowest.ForwardMedianUs;
        double single = ranks.First(r => r.Rank == 0).SingleGpuMedianUs;
        double? speedup = latency > 0 ? single / latency : null;
        return row with
        {
            LatencyUs = Round(latency),
            SlowestRank = slowest.Rank,
            PipelineUs = Round(slowest.PipelineMedianUs),
            CollectiveShare = latency > 0 ? Math.Round(Math.Max(0, 1 - (slowest.PipelineMedianUs / latency)), 4) : null,
            SingleGpuUs = Round(single),
            Speedup = speedup is null ? null : Math.Round(speedup.Value, 4),
            Efficiency = speedup is null ? null : Math.Round(speedup.Value / world, 4),
            TolerancePassed = ranks.All(r => r.Passed),
            WorstRelativeRms = ranks.Max(r => r.RelativeRms),
            WorstRatio = ranks.Max(r => r.WorstRatio),
        };
    }

    private static double Round(double us) => Math.Round(us, 3);
}

/// <summary>Run facts of a <c>moecutlass scale</c> report.</summary>
internal sealed record ScaleRunInfo(
    string Tool,
    string Started,
    string Backend,
    string Suite,
    ulong Seed,
    int Iterations,
    int Warmup,
    int TimeoutSeconds,
    string NcclNvlsEnable,
    string Reference,
    string Tolerance);

/// <summary>The <c>scale --json</c> file.</summary>
internal sealed record ScaleReport(ScaleRunInfo Run, IReadOnlyList<ScaleRow> Results);

[JsonSourceGenerationOptions(
    WriteIndented = true,
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ScaleReport))]
[JsonSerializable(typeof(RankResult))]
internal sealed partial class ScaleJsonContext : JsonSerializerContext;

/// <summary>Reads and writes the rank files and the report.</summary>
internal static class ScaleJson
{
    private static readonly ScaleJsonContext FileContext = new(new JsonSerializerOptions(ScaleJsonContext.Default.Options)
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static void WriteReport(string path, ScaleReport report) =>
        ResultWriters.WriteText(path, JsonSerializer.Serialize(report, FileContext.ScaleReport) + Environment.NewLine);

    public static void WriteRank(string path, RankResult result) =>
        ResultWriters.WriteText(path, JsonSerializer.Serialize(result, FileContext.RankResult) + Environment.NewLine);

    public static RankResult ReadRank(string path) =>
        JsonSerializer.Deserialize(File.ReadAllText(path), FileContext.RankResult)
        ?? throw new InvalidDataException($"{path}: empty rank result");
}
