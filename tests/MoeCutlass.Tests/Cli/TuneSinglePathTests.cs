using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;
using MoeCutlass.Cli.Tune;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// <c>tune</c>'s SINGLE path around the fit: --path and --k, the configurations it forces from the registry, the
/// measurement loop over both paths on the CPU backend, the per-path fit of the records and the result file.
/// </summary>
[TestFixture]
public sealed class TuneSinglePathTests : NativeTestBase
{
    [TestCase(null, new[] { "Specialized", "Single" })]
    [TestCase("both", new[] { "Specialized", "Single" })]
    [TestCase("single", new[] { "Single" })]
    [TestCase(" Specialized ", new[] { "Specialized" })]
    public void Path_Parses(string? text, string[] expected) =>
        Assert.That(TuneSelection.ParsePath(text).Select(p => p.ToString()), Is.EqualTo(expected));

    [Test]
    public void Path_Unknown_IsOneLineUsageError()
    {
        var error = Assert.Throws<UsageException>(() => TuneSelection.ParsePath("swapped"));

        Assert.That(error!.Message, Is.EqualTo("--path 'swapped': expected specialized, single or both"));
    }

    [Test]
    public void K_CommaListsAndRepeats_SortedWithoutDuplicates_NullWhenAbsent()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(TuneSelection.ParseK(["7168,256", "2048", "256"]), Is.EqualTo(new[] { 256, 2048, 7168 }));
            Assert.That(TuneSelection.ParseK(null), Is.Null);
            Assert.That(TuneSelection.ParseK([]), Is.Null);
        }
    }

    [TestCase("256,x", "--k: 'x' is not a whole number (e.g. --k 256,2048,7168)")]
    [TestCase("100", "--k: K must be a positive multiple of 16 up to 1048576 (got 100)")]
    [TestCase("0", "--k: K must be a positive multiple of 16 up to 1048576 (got 0)")]
    [TestCase(",", "--k needs at least one value (e.g. --k 256,2048,7168)")]
    public void K_Invalid_IsOneLineUsageError(string value, string expected)
    {
        var error = Assert.Throws<UsageException>(() => TuneSelection.ParseK([value]));

        Assert.That(error!.Message, Is.EqualTo(expected));
    }

    [Test]
    public void WithK_EveryShapeOncePerK_KeepsEAndN_WithoutRepeats()
    {
        BenchCase gateUp = SuiteFiles.Case("ds-gate_up", 7168, 2048, 10, 20);
        IReadOnlyList<TuneShape> shapes = TuneSelection.Shapes(["32,4096,7168", "32,4096,256"], [gateUp]);

        IReadOnlyList<TuneShape> swept = TuneSelection.WithK(shapes, [256, 2048]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(swept.Select(s => (s.Experts, s.N, s.K)), Is.EqualTo(new[] { (32, 4096, 256), (32, 4096, 2048), (2, 7168, 256), (2, 7168, 2048) }));
            Assert.That(swept.Select(s => s.Label), Is.EqualTo(new[]
            {
                "E=32, N=4096, K=256", "E=32, N=4096, K=2048", "ds-gate_up with K=256 (E=2, N=7168, K=256)", "ds-gate_up (E=2, N=7168, K=2048)",
            }));
            Assert.That(swept[2].Case, Is.EqualTo("ds-gate_up"));
            Assert.That(swept[2].DataName, Is.EqualTo("tune-e2-n7168-k256"));
            Assert.That(TuneSelection.WithK(shapes, null), Is.SameAs(shapes));
        }
    }

    [Test]
    public void CommandLine_PathKAndRows_BecomeTheRequest()
    {
        TuneRequest single = Parse("--path", "single", "--k", "256,7168", "--shape", "32,7168,2048");
        TuneRequest rows = Parse("--rows", "8,64");
        TuneRequest defaults = Parse();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(single.Paths, Is.EqualTo(new[] { TunePath.Single }));
            Assert.That(single.KValues, Is.EqualTo(new[] { 256, 7168 }));
            Assert.That(single.Shapes.Select(s => s.K), Is.EqualTo(new[] { 256, 7168 }));
            Assert.That(single.SingleRows, Is.EqualTo(TuneSelection.DefaultSingleRows));
            Assert.That(single.SingleRows[^1], Is.EqualTo(1024), "the single path's crossovers lie further out");
            Assert.That(rows.RowsOf(TunePath.Single), Is.EqualTo(new[] { 8, 64 }), "--rows applies to every path");
            Assert.That(rows.RowsOf(TunePath.Specialized), Is.EqualTo(new[] { 8, 64 }));
            Assert.That(defaults.Paths, Is.EqualTo(new[] { TunePath.Specialized, TunePath.Single }));
            Assert.That(defaults.KValues, Is.Null);
            Assert.That(defaults.Rows, Is.EqualTo(TuneSelection.DefaultRows));
            Assert.Throws<UsageException>(() => Parse("--path", "sideways"));
        }
    }

    [Test]
    public void SingleSet_OfTheLibrarysRegistry_IsEveryNonSwappedConfiguration()
    {
        TuneConfigurationSet set = TuneConfigurationSet.Single(MoeCutlassLibrary.KernelConfigurations);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(set.Names, Is.EquivalentTo(MoeCutlassLibrary.KernelConfigurations.Where(c => !c.SwapAB).Select(c => c.Name)));
            Assert.That(set.Names, Does.Contain("tile_64x128x128_c1x2_pingpong").And.Contain("tile_256x128x128_c2x1_cooperative"));
            Assert.That(set.Names.Select(n => MoeCutlassLibrary.FindKernelConfiguration(n).TileM), Is.Ordered, "narrowest first");
            Assert.That(set.Names, Has.None.StartsWith("swap_"));
        }
    }

    [Test]
    public void Runner_BothPaths_OneRecordPerConfiguration_LabelledByPath_AndTheFitKeepsThePathsApart()
    {
        // The CPU backend accepts any forced configuration and runs its reference: the loop without a GPU.
        using MoeContext context = MoeContext.CreateCpu(threads: 2);
        var settings = new BenchSettings(1, 0, DType.BFloat16);
        var runner = new TuneRunner(context, settings, NullLogger.Instance);
        TuneConfigurationSet single = TuneConfigurationSet.Single(MoeCutlassLibrary.KernelConfigurations);
        TuneShape shape = TuneShape.Of(2, 128, 128);
        var results = new List<TuneResult>();
        var failures = new List<string>();
        var progress = new CountingProgress();

        runner.MeasureShape(shape, [new TuneSweep(TuneConfigurationSet.Specialized, [2, 4]), new TuneSweep(single, [3])], progress, results, failures);
        IReadOnlyList<ShapeCrossovers> specializedFit = TuneFit.Fit([shape], results, TuneConfigurationSet.Specialized);
        IReadOnlyList<ShapeCrossovers> singleFit = TuneFit.Fit([shape], results, single);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(failures, Is.Empty);
            Assert.That(progress.Completed, Is.EqualTo(3), "one item per path and rows value");
            Assert.That(results.Select(r => (r.Path, r.RowsPerExpert, r.ConfigurationName)), Is.EqualTo(
                TuneConfigurationSet.Specialized.Names.Select(n => ("specialized", 2, n))
                    .Concat(TuneConfigurationSet.Specialized.Names.Select(n => ("specialized", 4, n)))
                    .Concat(single.Names.Select(n => ("single", 3, n)))));
            Assert.That(results.Where(r => r.Path == "single").Select(r => r.Configuration), Is.EqualTo(single.Labels));
            Assert.That(results.Select(r => r.TimeMedianUs), Is.All.Positive);
            Assert.That(specializedFit[0].Points.Select(p => p.Rows), Is.EqualTo(new[] { 2, 4 }), "the specialized fit reads its own records only");
            Assert.That(singleFit[0].Points.Select(p => p.Rows), Is.EqualTo(new[] { 3 }));
            Assert.That(singleFit[0].Labels, Is.EqualTo(single.Labels));
            Assert.That(results.Where(r => r.Path == "single").Count(r => r.Fitted), Is.EqualTo(1), "one fitted configuration per rows value and path");
            Assert.That(results.Where(r => r.Path == "specialized").Count(r => r.Fitted), Is.EqualTo(2));
        }
    }

    [Test]
    public void ResultFile_CarriesTheSingleFitsAndLines_BesideTheSpecializedOnes()
    {
        using var temp = new TempDirectory();
        TuneConfigurationSet set = TuneConfigurationSet.Single(MoeCutlassLibrary.KernelConfigurations);
        TunePoint[] points = [new(8, [1.0, 2.0, 3.0]), new(512, [3.0, 2.0, 1.0])];
        ShapeCrossovers fit = Crossovers.Analyze(points, set.Labels);
        TuneShape shape = TuneShape.Of(32, 7168, 2048);
        IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(set.Names, [(2048, fit)]);
        var suggestion = new TuneSingleSuggestion
        {
            Configurations = set.Names,
            Groups = groups,
            TableRows = string.Join(Environment.NewLine, SingleRanges.Lines("H200", groups)),
        };
        IReadOnlyList<TuneShapeSummary> summaries = TuneFit.Summaries([shape], null, [fit], set);
        string json = temp.Combine("tune.json");

        TuneResultWriters.WriteJson(json, new TuneReport(Metadata(), [], summaries, null, suggestion));

        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement root = document.RootElement;
        JsonElement summary = root.GetProperty("shapes")[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(summary.GetProperty("crossovers").GetString(), Is.EqualTo("not measured (--path single)"));
            Assert.That(summary.GetProperty("single_crossovers").GetString(), Is.EqualTo(fit.Description));
            Assert.That(summary.GetProperty("single_max_rows").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(fit.MaxRows));
            Assert.That(root.GetProperty("suggestion").ValueKind, Is.EqualTo(JsonValueKind.Null));
            JsonElement single = root.GetProperty("single_suggestion");
            Assert.That(single.GetProperty("table_rows").GetString(), Does.StartWith("MC_KERNEL_RANGE(H200, SINGLE, "));
            Assert.That(single.GetProperty("groups")[0].GetProperty("min_k").GetInt32(), Is.Zero);
            Assert.That(single.GetProperty("groups")[0].GetProperty("ks")[0].GetInt32(), Is.EqualTo(2048));
            Assert.That(single.GetProperty("groups")[0].GetProperty("table")[0].GetProperty("last_rows").GetInt32(), Is.GreaterThan(0));
            Assert.That(root.GetProperty("run").GetProperty("paths")[0].GetString(), Is.EqualTo("single"));
            Assert.That(root.GetProperty("run").GetProperty("k_values")[1].GetInt32(), Is.EqualTo(7168));
        }
    }

    [Test]
    public void ConsoleReport_SingleTablesPerShape_ThenTheSingleLinesGroupedByK()
    {
        TuneConfigurationSet set = TuneConfigurationSet.Single(MoeCutlassLibrary.KernelConfigurations);
        Assume.That(set.Labels, Is.EqualTo(new[] { "64x128", "128x128", "256x128" }));
        TuneShape shortK = TuneShape.Of(256, 7168, 256);
        TuneShape longK = TuneShape.Of(32, 7168, 2048);
        var results = new List<TuneResult>();
        results.AddRange(Records(shortK, set, wide64: 32));
        results.AddRange(Records(longK, set, wide64: 88));
        IReadOnlyList<ShapeCrossovers> fits = TuneFit.Fit([shortK, longK], results, set);
        var info = new DeviceInfo(0, "NVIDIA H200", 9, 0, 132, 1L << 37, 1 << 25, 232448, 6144, 3201000, 4915, "H200", 1979, 4800, HasSm90a: true);
        var request = new TuneRequest([shortK, longK], null, TuneSelection.DefaultRows, DType.BFloat16, 10, 3, 0, null, null)
        {
            Paths = [TunePath.Single],
            SingleRows = [16, 32, 48, 88, 104, 256, 478, 544],
            KValues = [256, 2048],
        };
        TuneSingleSuggestion? suggestion = null;

        string text = TextConsole.Render(console =>
        {
            TuneConsoleReport.WriteHeader(console, info, 0, request, new BenchSettings(10, 3, DType.BFloat16), [set]);
            TuneConsoleReport.WriteShape(console, shortK, results, fits[0], set);
            TuneConsoleReport.WriteShape(console, longK, results, fits[1], set);
            suggestion = TuneConsoleReport.WriteSingleSuggestion(console, set, [shortK, longK], fits, info);
        });

        using (Assert.EnterMultipleScope())
        {
            Assert.That(text, Does.Contain("64x128 = tile_64x128x128_c1x2_pingpong"));
            Assert.That(text, Does.Contain("every shape swept at K = 256, 2048"));
            Assert.That(text, Does.Contain("64x128 µs").And.Contain("256x128 µs"));
            Assert.That(text, Does.Contain("crossovers: 64x128 -> 128x128 between m=32 and m=48; 128x128 -> 256x128 between m=478 and m=544"));
            Assert.That(text, Does.Contain("ranges for this shape: 64x128 up to 96, 128x128 up to 511, 256x128 beyond"));
            Assert.That(text, Does.Contain("K = 2048 (min_k 2048): 64x128 up to 96, 128x128 up to 511, 256x128 beyond"));
            Assert.That(text, Does.Contain("  MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 96, 2048)"));
            Assert.That(text, Does.Contain("  MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 40, 0)"));
            Assert.That(suggestion!.TableRows.Split(Environment.NewLine), Has.Length.EqualTo(4));
            Assert.That(results.Where(r => r.Fitted).Select(r => (r.Shape, r.RowsPerExpert)).Distinct().Count(), Is.EqualTo(16), "one fitted record per shape and rows value");
        }
    }

    /// <summary>Synthetic single-path records: 64x128 fastest through <paramref name="wide64"/>, 128x128 through 478, 256x128 beyond.</summary>
    private static IEnumerable<TuneResult> Records(TuneShape shape, TuneConfigurationSet set, int wide64)
    {
        foreach (int m in new[] { 16, 32, 48, 88, 104, 256, 478, 544 })
        {
            double[] times = [m <= wide64 ? 90.0 : 110.0, m > wide64 && m <= 478 ? 90.0 : 100.0, m > 478 ? 80.0 : 105.0];
            for (int c = 0; c < set.Count; c++)
            {
                yield return new TuneResult
                {
                    Shape = shape.Label,
                    Experts = shape.Experts,
                    N = shape.N,
                    K = shape.K,
                    RowsPerExpert = m,
                    Rows = shape.Experts * m,
                    Configuration = set.Labels[c],
                    ConfigurationName = set.Names[c],
                    Timing = new Timing { Iterations = 10, Warmup = 3, MedianUs = times[c], MinUs = times[c], P90Us = times[c], MeanUs = times[c], HostMedianUs = 1 },
                    Fastest = times[c] == times.Min(),
                    Fitted = false,
                    Path = "single",
                };
            }
        }
    }

    private static TuneRequest Parse(params string[] args)
    {
        var options = new TuneOptions();
        var command = new RootCommand();
        foreach (Option option in options.All)
        {
            command.Options.Add(option);
        }

        ParseResult result = command.Parse(args);
        Assert.That(result.Errors, Is.Empty);
        return options.Parse(result);
    }

    private static TuneRunMetadata Metadata() => ResultLayoutTests.TuneMetadata() with
    {
        Paths = ["single"],
        SingleRowsPerExpert = [8, 512],
        KValues = [256, 7168],
    };

    private sealed class CountingProgress : IWorkProgress
    {
        public int Completed { get; private set; }

        public void Begin(string item)
        {
        }

        public void Complete(string item, string summary) => Completed++;
    }
}
