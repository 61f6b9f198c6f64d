using System.Runtime.InteropServices;
using System.Text.Json.Serialization;
using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli.Bench;

/// <summary>
/// One (case, strategy) measurement: what ran, the timing statistics, and the derived rates. Written
/// as-is to the JSON and CSV result files (snake_case names); null means "not applicable" or "failed".
/// </summary>
internal sealed record BenchResult
{
    public required string Case { get; init; }

    public required string Model { get; init; }

    public required string Gemm { get; init; }

    /// <summary>"cuda" or "cpu".</summary>
    public required string Backend { get; init; }

    /// <summary>The strategy's name (StrategySelection.Name: auto, single, expert_specialized, persistent, cublas) or a forced configuration's.</summary>
    public required string Strategy { get; init; }

    /// <summary>bf16 or fp16.</summary>
    public required string OutputDtype { get; init; }

    /// <summary>Experts run (after scaling).</summary>
    public required int Experts { get; init; }

    /// <summary>Experts with at least one row.</summary>
    public required int ActiveExperts { get; init; }

    public required int N { get; init; }

    public required int K { get; init; }

    /// <summary>Real rows run: the sum of rows per expert (after scaling).</summary>
    public required int Rows { get; init; }

    /// <summary>True when the case was reduced for the CPU reference backend (see CaseScaler).</summary>
    public required bool Scaled { get; init; }

    /// <summary>What the reduction kept, e.g. "E=8 of 32, rows=256 of 8192, N=2048 of 4096".</summary>
    public string? ScaleNote { get; init; }

    public required int CaseExperts { get; init; }

    public required int CaseN { get; init; }

    public required int CaseRows { get; init; }

    /// <summary>
    /// The eager timing, written flat as the fields below (the file layout predates the shared record). Set by every
    /// producer, yet not <c>required</c>: System.Text.Json rejects a required member that it does not read back.
    /// </summary>
    [JsonIgnore]
    public Timing Timing { get; init; } = null!;

    public int Iterations => Timing.Iterations;

    public int Warmup => Timing.Warmup;

    /// <summary>Median of the per-iteration event times, µs.</summary>
    public double? TimeMedianUs => Timing.MedianUs;

    public double? TimeMinUs => Timing.MinUs;

    public double? TimeP90Us => Timing.P90Us;

    public double? TimeMeanUs => Timing.MeanUs;

    /// <summary>Median host time of one Run call (enqueue cost on CUDA; the whole GEMM on the synchronous CPU backend), µs.</summary>
    public double? HostMedianUs => Timing.HostMedianUs;

    /// <summary>2 x rows x N x K (real rows only).</summary>
    public required double Flops { get; init; }

    /// <summary>Minimum bytes moved (see Roofline.Estimate).</summary>
    public required double Bytes { get; init; }

    /// <summary>Flops / median time, in TFLOP/s.</summary>
    public double? Tflops { get; init; }

    /// <summary>Bytes / median time, in GB/s (10^9 bytes per second).</summary>
    public double? Gbps { get; init; }

    /// <summary>
    /// Speed-of-light time under the run's roofline ceilings (<see cref="RooflineCeilings"/>) / median time, in
    /// percent; null without ceilings (CPU backend, a GPU class with none known) or without a time.
    /// </summary>
    public double? RooflinePercent { get; init; }

    /// <summary>"compute" or "memory": the ceiling that bounds this shape on the run's GPU; null without ceilings.</summary>
    public required string? RooflineBound { get; init; }

    /// <summary>Median time of the single strategy / this median, same case and run; null when single was not run.</summary>
    public double? SpeedupVsSingle { get; init; }

    /// <summary>
    /// CUDA-graph mode: the timing of replaying one captured Run; null when graph mode was off or unavailable
    /// (CPU backend), or failed (see <see cref="GraphError"/>). Written flat as the graph_* fields below.
    /// </summary>
    [JsonIgnore]
    public Timing? Graph { get; init; }

    /// <summary>Median of the per-iteration event times of the graph replays, µs.</summary>
    public double? GraphTimeMedianUs => Graph?.MedianUs;

    public double? GraphTimeMinUs => Graph?.MinUs;

    public double? GraphTimeP90Us => Graph?.P90Us;

    public double? GraphTimeMeanUs => Graph?.MeanUs;

    /// <summary>Median host time of one graph launch call (its enqueue cost), µs.</summary>
    public double? GraphHostMedianUs => Graph?.HostMedianUs;

    /// <summary>Flops / graph median time, in TFLOP/s.</summary>
    public double? GraphTflops { get; init; }

    /// <summary>Eager median / graph median: above 1 when replaying the graph is faster.</summary>
    public double? GraphSpeedupVsEager { get; init; }

    /// <summary>Why the CUDA-graph timing failed (the eager timings are still valid).</summary>
    public string? GraphError { get; init; }

    /// <summary>Kernel configurations the plan may launch, ';'-separated.</summary>
    public string? Kernels { get; init; }

    /// <summary>The failure, when this (case, strategy) could not be measured.</summary>
    public string? Error { get; init; }
}

/// <summary>Run-level metadata written at the top of the JSON result file.</summary>
internal sealed record BenchRunMetadata
{
    public required DateTimeOffset TimestampUtc { get; init; }

    public required string Machine { get; init; }

    public required string Os { get; init; }

    public required string Runtime { get; init; }

    public required string ToolVersion { get; init; }

    public required string LibraryVersion { get; init; }

    public required string LibraryGitCommit { get; init; }

    public required int LibraryAbiVersion { get; init; }

    public required string LibraryPath { get; init; }

    public required string Backend { get; init; }

    public required string Device { get; init; }

    public required int Iterations { get; init; }

    public required int Warmup { get; init; }

    public required ulong Seed { get; init; }

    public required string Suite { get; init; }

    /// <summary>
    /// "on" (each record also has graph_* timings of CUDA-graph replay), "off" (--no-graph), or "unavailable"
    /// (graph mode needs the CUDA backend: eager timings only).
    /// </summary>
    public required string GraphMode { get; init; }

    /// <summary>The roofline ceilings roofline_percent was computed against; null when the run has no roofline.</summary>
    public required RooflineCeilings? Roofline { get; init; }

    /// <summary>Set when cases were reduced for the CPU reference backend.</summary>
    public string? Note { get; init; }

    /// <summary>
    /// The metadata of a bench run on <paramref name="context"/> (the GEMM suite and <c>bench --layer</c> write the same
    /// block): the machine, the loaded library and the timing settings.
    /// </summary>
    public static BenchRunMetadata Of(DateTimeOffset started, MoeContext context, bool cuda, BenchSettings settings, ulong seed,
        string suitePath, bool graphMode, bool graphRequested, RooflineCeilings? ceilings, string? note) => new()
    {
        TimestampUtc = started,
        Machine = Environment.MachineName,
        Os = RuntimeInformation.OSDescription,
        Runtime = RuntimeInformation.FrameworkDescription,
        ToolVersion = Infrastructure.ToolVersion.Text,
        LibraryVersion = MoeCutlassLibrary.BuildInfo.Version,
        LibraryGitCommit = MoeCutlassLibrary.BuildInfo.GitCommit,
        LibraryAbiVersion = MoeCutlassLibrary.BuildInfo.AbiVersion,
        LibraryPath = RecordedPath.Of(MoeCutlassLibrary.LoadedPath),
        Backend = cuda ? "cuda" : "cpu",
        Device = BackendSelection.DeviceName(context),
        Iterations = settings.Iterations,
        Warmup = settings.Warmup,
        Seed = seed,
        Suite = RecordedPath.Of(suitePath),
        GraphMode = graphMode ? "on" : graphRequested ? "unavailable" : "off",
        Roofline = ceilings,
        Note = note,
    };
}

/// <summary>The JSON result file: metadata plus one record per (case, strategy).</summary>
internal sealed record BenchReport(BenchRunMetadata Run, IReadOnlyList<BenchResult> Results);
