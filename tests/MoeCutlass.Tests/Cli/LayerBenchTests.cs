using System.Text.Json;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// <c>moecutlass bench --layer</c>: the CLI end to end on a tiny layers suite (CPU backend), its JSON fields and their
/// consistency, its usage errors, the layers list of the suite, the CPU scaling, the zipf router's skew and the sharing of
/// generated weights between the cases of one model.
/// </summary>
[TestFixture]
public sealed class LayerBenchTests : NativeTestBase
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void SetUp() => _temp = new TempDirectory();

    [TearDown]
    public void TearDown() => _temp.Dispose();

    /// <summary>A GEMM case (the suite needs one) and the given layer objects.</summary>
    internal static string LayerSuite(params string[] layers) =>
        "{\"description\": \"layers\", \"cases\": [" + SuiteFiles.CaseJson("gemm", 2, 128, 128, [3, 5])
        + "], \"layers\": [" + string.Join(", ", layers) + "]}";

    internal static string LayerJson(string name, string model, int experts, int routerExperts, int hidden, int intermediate, int topk, int tokens,
        string router = "uniform", int firstExpert = 0) =>
        $"{{\"name\": \"{name}\", \"model\": \"{model}\", \"experts\": {experts}, \"first_expert\": {firstExpert}, \"router_experts\": {routerExperts}, "
        + $"\"hidden\": {hidden}, \"intermediate\": {intermediate}, \"topk\": {topk}, \"tokens\": {tokens}, \"router\": \"{router}\", \"note\": \"t\"}}";

    [Test]
    public async Task BenchLayer_TinySuite_WritesConsistentJson_AndSharesWeightsWithinAModel()
    {
        string suite = _temp.Write("suite.json", LayerSuite(
            LayerJson("m-a", "m", 4, 8, 128, 128, 2, 16),
            LayerJson("m-b", "m", 2, 8, 128, 128, 2, 24, "zipf", firstExpert: 2),
            LayerJson("n-a", "n", 4, 4, 256, 128, 1, 8)));
        string json = _temp.Combine("layers.json");

        CliRun run = await CliProcess.RunAsync(_temp.Path,
            ["bench", "--layer", "--suite", suite, "--backend", "cpu", "--strategy", "single,expert_specialized", "-n", "3", "--json", json]);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement root = document.RootElement;
        JsonElement[] results = [.. root.GetProperty("results").EnumerateArray()];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.StandardError, Does.Not.Contain("error:"), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("Layer µs").And.Contain("GEMMs µs").And.Contain("Overhead").And.Contain("gemm1 µs"), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("CPU reference backend: layer cases scaled"), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("weights: 2 set(s) generated for 3 case(s)"), run.ToString());
            Assert.That(root.GetProperty("run").GetProperty("backend").GetString(), Is.EqualTo("cpu"));
            Assert.That(root.GetProperty("run").GetProperty("iterations").GetInt32(), Is.EqualTo(3));
            JsonElement layer = root.GetProperty("layer");
            // m-a and m-b share model m's set (generated for m-a with 4 experts, m-b reads the first 2); n-a has its own.
            Assert.That(layer.GetProperty("weight_generations").GetInt32(), Is.EqualTo(2));
            Assert.That(layer.GetProperty("bandwidth_gbps").ValueKind, Is.EqualTo(JsonValueKind.Null), "no bandwidth on the CPU");
            Assert.That(layer.GetProperty("zipf_exponent").GetDouble(), Is.EqualTo(LayerRouting.ZipfExponent));
            Assert.That(results.Select(r => $"{r.GetProperty("case").GetString()}/{r.GetProperty("strategy").GetString()}"),
                Is.EqualTo(new[] { "m-a/single", "m-a/expert_specialized", "m-b/single", "m-b/expert_specialized", "n-a/single", "n-a/expert_specialized" }));
            Assert.That(results.Select(r => r.GetProperty("weights_generated").GetBoolean()), Is.EqualTo(new[] { true, false, false, false, true, false }));
        }

        foreach (JsonElement r in results)
        {
            string label = $"{r.GetProperty("case").GetString()} {r.GetProperty("strategy").GetString()}";
            double layerUs = r.GetProperty("layer_median_us").GetDouble();
            double gemms = r.GetProperty("gemms_median_us").GetDouble();
            double[] stages = [.. r.GetProperty("stage_median_us").EnumerateObject().Select(p => p.Value.GetDouble())];
            double timed = r.GetProperty("stages_total_median_us").GetDouble();
            long bytes = r.GetProperty("weight_bytes").GetInt64();
            int active = r.GetProperty("active_experts").GetInt32();
            using (Assert.EnterMultipleScope())
            {
                foreach (string field in (string[])["case", "model", "backend", "strategy", "router", "tokens", "experts", "first_expert", "router_experts",
                    "hidden", "intermediate", "topk", "scaled", "active_experts", "routed_rows", "layer_median_us", "graph_median_us",
                    "gemm1_median_us", "gemm2_median_us", "gemms_median_us", "overhead", "weight_bytes", "weight_tbps", "bandwidth_percent",
                    "stage_median_us", "stages_total_median_us", "weights_generated", "error"])
                {
                    Assert.That(r.TryGetProperty(field, out _), Is.True, $"{label}: field {field}");
                }

                Assert.That(r.GetProperty("error").ValueKind, Is.EqualTo(JsonValueKind.Null), label);
                Assert.That(r.GetProperty("graph_median_us").ValueKind, Is.EqualTo(JsonValueKind.Null), "no graphs on the CPU");
                Assert.That(r.GetProperty("stage_median_us").EnumerateObject().Select(p => p.Name),
                    Is.EqualTo(new[] { "route", "permute", "gather", "gemm1", "act", "gemm2", "combine" }), label);
                Assert.That(stages, Has.All.GreaterThanOrEqualTo(0.0), label);
                Assert.That(layerUs, Is.GreaterThan(0), label);
                Assert.That(gemms, Is.EqualTo(r.GetProperty("gemm1_median_us").GetDouble() + r.GetProperty("gemm2_median_us").GetDouble()).Within(0.01), label);
                // The overhead is written with 4 decimals, so compare absolutely: a noisy CPU run can put it below 0.5,
                // where the rounding alone is more than 0.01 % (0.2657 for 0.26567 on the GPU runner).
                Assert.That(r.GetProperty("overhead").GetDouble(), Is.EqualTo(layerUs / gemms).Within(1e-4), label);
                // Medians of sums are not sums of medians, and CPU times are noisy: loose bounds. The stage-by-stage
                // loop and the layer loop are separate runs of 3 iterations, so a busy CPU (a build on the GPU
                // runner made one 15x slower) can move one and not the other: that bound only catches unit mix-ups.
                Assert.That(stages.Sum(), Is.InRange(0.5 * timed, 1.5 * timed), label);
                Assert.That(timed, Is.InRange(layerUs / 50, 50 * layerUs), label);
                Assert.That(active, Is.InRange(1, r.GetProperty("experts").GetInt32()), label);
                Assert.That(bytes, Is.EqualTo(active * new MoeLayerOptions(8, 2, r.GetProperty("hidden").GetInt32(), r.GetProperty("intermediate").GetInt32(), 1).ExpertWeightBytes), label);
                Assert.That(r.GetProperty("weight_tbps").GetDouble(), Is.EqualTo(bytes / layerUs / 1e6).Within(1e-6), label);
            }
        }
    }

    [Test]
    public async Task BenchLayer_UnknownLayerCase_IsAUsageError_ListingTheLayerCases()
    {
        string suite = _temp.Write("suite.json", LayerSuite(LayerJson("m-a", "m", 4, 8, 128, 128, 2, 16), LayerJson("m-b", "m", 4, 8, 128, 128, 2, 8)));

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--layer", "--suite", suite, "--case", "gemm", "--backend", "cpu"]);

        AssertUsageError(run, "error: --case: unknown layer case 'gemm'; valid layer cases: m-a, m-b");
    }

    [Test]
    public async Task BenchLayer_SuiteWithoutLayers_IsAUsageError()
    {
        string suite = _temp.Write("suite.json", SuiteFiles.SmallSuite());

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--layer", "--suite", suite, "--backend", "cpu"]);

        AssertUsageError(run, $"error: --layer: suite file {suite} has no \"layers\" list");
    }

    [Test]
    public async Task BenchLayer_Csv_IsAUsageError_NamingTheOption()
    {
        string suite = _temp.Write("suite.json", LayerSuite(LayerJson("m-a", "m", 4, 8, 128, 128, 2, 16)));

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--layer", "--suite", suite, "--csv", _temp.Combine("x.csv")]);

        AssertUsageError(run, "error: --csv: the layer bench writes --json only (stage times do not fit one CSV row)");
    }

    [Test]
    public void Suite_BadRouter_IsAUsageError_NamingTheLayer()
    {
        string path = _temp.Write("suite.json", LayerSuite(LayerJson("m-a", "m", 4, 8, 128, 128, 2, 16, router: "pareto")));

        var ex = Assert.Throws<UsageException>(() => BenchSuite.Load(path));

        Assert.That(ex!.Message, Is.EqualTo($"suite file {path}: layer 'm-a': \"router\" must be \"uniform\" or \"zipf\" (got \"pareto\")"));
    }

    [Test]
    public void Suite_LoadsTheLayersList()
    {
        string path = _temp.Write("suite.json", LayerSuite(LayerJson("ep", "m", 32, 256, 7168, 2048, 8, 4096, "zipf", firstExpert: 32)));

        LayerCase layer = BenchSuite.Load(path).Layers.Single();

        Assert.That(layer, Is.EqualTo(new LayerCase("ep", "m", 32, 32, 256, 7168, 2048, 8, 4096, LayerRouter.Zipf, "t")));
    }

    [Test]
    public void Scale_ExpertParallelSlice_KeepsItsFractionOfTheRouter()
    {
        var layer = new LayerCase("ep", "m", 32, 32, 256, 7168, 2048, 8, 4096, LayerRouter.Uniform, null);

        LayerShape shape = LayerShape.Scale(layer);

        using (Assert.EnterMultipleScope())
        {
            Assert.That((shape.Experts, shape.FirstExpert, shape.RouterExperts, shape.TopK), Is.EqualTo((8, 8, 64, 8)));
            Assert.That((shape.Hidden, shape.Intermediate, shape.Tokens), Is.EqualTo((256, 256, 64)));
            Assert.That(shape.ScaleNote, Is.EqualTo("E=8 of 32, router=64 of 256, H=256 of 7168, I=256 of 2048, T=64 of 4096"));
            Assert.That(LayerShape.Scale(new LayerCase("s", "m", 4, 0, 4, 128, 128, 1, 8, LayerRouter.Uniform, null)).Scaled, Is.False);
        }
    }

    [Test]
    public void ZipfRouting_IsSkewed_TheTopExpertGetsMoreRowsThanTheUniformMaximum()
    {
        LayerShape Shape(LayerRouter router) => LayerShape.Full(new LayerCase("skew", "m", 16, 0, 16, 128, 128, 2, 1024, router, null));

        LayerRouting uniform = LayerRouting.Create(Shape(LayerRouter.Uniform), 20261121UL);
        LayerRouting zipf = LayerRouting.Create(Shape(LayerRouter.Zipf), 20261121UL);
        TestContext.Out.WriteLine($"uniform rows {string.Join(",", uniform.RowsPerExpert)}; zipf rows {string.Join(",", zipf.RowsPerExpert)}");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(uniform.Rows, Is.EqualTo(2048));
            Assert.That(zipf.Rows, Is.EqualTo(2048));
            Assert.That(zipf.RowsPerExpert.Max(), Is.GreaterThan(uniform.RowsPerExpert.Max()));
            // The most popular expert gets a large share (a uniform expert's share is 1/16 of the rows = 128).
            Assert.That(zipf.RowsPerExpert.Max(), Is.GreaterThan(3 * 128));
            Assert.That(uniform.RowsPerExpert.Max(), Is.LessThan(2 * 128));
            Assert.That(uniform.ExpertOffsets()[^1], Is.EqualTo(2048));
        }
    }

    [Test]
    public void ZipfBias_IsMinusSLogRankPlusOne_OverAPermutationOfTheExperts()
    {
        float[] bias = LayerRouting.ZipfBias(8, 7);

        Assert.That(bias.Select(b => Math.Round(-b / LayerRouting.ZipfExponent, 4)).Order(),
            Is.EqualTo(Enumerable.Range(1, 8).Select(r => Math.Round(Math.Log(r), 4))));
    }

    [Test]
    public void WeightCache_RunOrder_GroupsTheCasesOfOneModel()
    {
        LayerShape Shape(string name, string model) => LayerShape.Full(new LayerCase(name, model, 4, 0, 4, 128, 128, 1, 8, LayerRouter.Uniform, null));
        LayerShape[] shapes = [Shape("a1", "a"), Shape("b1", "b"), Shape("a2", "a")];

        Assert.That(LayerWeightCache.Order(shapes).Select(s => s.Case.Name), Is.EqualTo(new[] { "a1", "a2", "b1" }));
    }

    private static void AssertUsageError(CliRun run, string expectedLine)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
            Assert.That(run.ErrorLines, Is.EqualTo(new[] { expectedLine }), run.ToString());
            Assert.That(run.StandardOutput, Is.Empty, "usage errors come before any report");
        }
    }
}
