using System.Globalization;
using System.Text.RegularExpressions;
using MoeCutlass.Cli.Tune;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// <c>tune</c>'s SINGLE path on synthetic timings: the per-shape fit over the non-swapped configurations, the grouping
/// by K with its min_k rows, and the printed MC_KERNEL_RANGE lines read back with the registry's semantics.
/// </summary>
[TestFixture]
public sealed partial class SingleRangesTests
{
    private const string T64 = "tile_64x128x128_c1x2_pingpong";
    private const string T128 = "tile_128x128x128_c1x2_cooperative";
    private const string T256 = "tile_256x128x128_c2x1_cooperative";
    private const int Unbounded = ConfigurationRange.Unbounded;

    /// <summary>The registry as the facade reports it (swapped and non-swapped, in registry order).</summary>
    private static readonly KernelConfiguration[] Registry =
    [
        new(0, "swap_128x32x128_c2x1_pingpong", 128, 32, 128, 2, 1, KernelSchedule.Pingpong, true, true),
        new(1, "swap_128x64x128_c2x1_pingpong", 128, 64, 128, 2, 1, KernelSchedule.Pingpong, true, true),
        new(2, T128, 128, 128, 128, 1, 2, KernelSchedule.Cooperative, false, true),
        new(3, T64, 64, 128, 128, 1, 2, KernelSchedule.Pingpong, false, true),
        new(4, T256, 256, 128, 128, 2, 1, KernelSchedule.Cooperative, false, true),
    ];

    private static readonly TuneConfigurationSet Set = TuneConfigurationSet.Single(Registry);

    /// <summary>Rows swept: 64x128's H200 ends (40, 96) and 128x128's (511) are midpoints of neighbours.</summary>
    private static readonly int[] Sweep = [16, 32, 48, 88, 104, 256, 478, 544, 1024];

    [Test]
    public void SingleSet_IsTheNonSwappedConfigurations_NarrowestFirst()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Set.Path, Is.EqualTo(TunePath.Single));
            Assert.That(Set.Names, Is.EqualTo(new[] { T64, T128, T256 }));
            Assert.That(Set.Labels, Is.EqualTo(new[] { "64x128", "128x128", "256x128" }));
            Assert.That(Set.Word, Is.EqualTo("SINGLE"));
        }
    }

    [Test]
    public void SingleSet_SameTileTwice_IsLabelledByName()
    {
        KernelConfiguration twin = new(5, "tile_128x128x128_c2x1_cooperative", 128, 128, 128, 2, 1, KernelSchedule.Cooperative, false, true);

        TuneConfigurationSet set = TuneConfigurationSet.Single([.. Registry, twin]);

        Assert.That(set.Labels, Is.EqualTo(new[] { "64x128", T128, twin.Name, "256x128" }));
    }

    [Test]
    public void PerShapeFit_H200LongK_64x128To96_128x128To511()
    {
        ShapeCrossovers fit = Crossovers.Analyze(Points(wide64: 88, wide128: 478), Set.Labels);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(fit.MaxRows, Is.EqualTo(new[] { 96, 511 }));
            Assert.That(fit.Regret, Is.Zero);
            Assert.That(fit.Description, Is.EqualTo("64x128 -> 128x128 between m=88 and m=104; 128x128 -> 256x128 between m=478 and m=544"));
            Assert.That(SingleRanges.Table(Set.Names, fit.MaxRows!), Is.EqualTo(new[] { new SingleRange(T64, 96), new SingleRange(T128, 511), new SingleRange(T256, Unbounded) }));
        }
    }

    [Test]
    public void H200Case_ShortKAt40_LongKAt96_TwoRowsOf64x128_LongKFirstWithMinKOfItsSmallestK()
    {
        (int K, ShapeCrossovers Fit)[] shapes =
        [
            (256, Fit(wide64: 32, wide128: 478)),
            (2048, Fit(wide64: 88, wide128: 478)),
            (7168, Fit(wide64: 88, wide128: 478)),
        ];

        IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(Set.Names, shapes);
        IReadOnlyList<string> lines = SingleRanges.Lines("H200", groups);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(groups.Select(g => (g.Ks.ToArray(), g.MinK)), Is.EqualTo(new[] { (new[] { 256 }, 0), (new[] { 2048, 7168 }, 2048) }));
            Assert.That(groups[0].Table, Is.EqualTo(new[] { new SingleRange(T64, 40), new SingleRange(T128, 511), new SingleRange(T256, Unbounded) }));
            Assert.That(lines, Is.EqualTo(new[]
            {
                "MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 96, 2048)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 40, 0)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_128x128x128_c1x2_cooperative, 41, 511, 0)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_256x128x128_c2x1_cooperative, 512, 2147483647, 0)",
            }));
            AssertLinesGiveEveryK(lines, groups, [16, 256, 1024, 2047, 2048, 4096, 7168, 65536]);
        }
    }

    [Test]
    public void SameRangesForEveryK_OneGroup_GeneralRowsOnly()
    {
        IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(Set.Names, [(256, Fit(88, 478)), (7168, Fit(88, 478)), (2048, Fit(88, 478))]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(groups, Has.Count.EqualTo(1));
            Assert.That(groups[0].Ks, Is.EqualTo(new[] { 256, 2048, 7168 }));
            Assert.That(groups[0].MinK, Is.Zero);
            Assert.That(SingleRanges.Lines("H100", groups), Is.EqualTo(new[]
            {
                "MC_KERNEL_RANGE(H100, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 96, 0)",
                "MC_KERNEL_RANGE(H100, SINGLE, tile_128x128x128_c1x2_cooperative, 97, 511, 0)",
                "MC_KERNEL_RANGE(H100, SINGLE, tile_256x128x128_c2x1_cooperative, 512, 2147483647, 0)",
            }));
        }
    }

    [Test]
    public void ShapesOfOneK_TakeTheMedianThreshold()
    {
        // Three shapes at K 2048: 64x128 to 40, 96 and 96 -> 96; one at K 256 to 40.
        IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(
            Set.Names, [(2048, Fit(32, 478)), (2048, Fit(88, 478)), (256, Fit(32, 478)), (2048, Fit(88, 478))]);

        Assert.That(groups.Select(g => g.Table[0]), Is.EqualTo(new[] { new SingleRange(T64, 40), new SingleRange(T64, 96) }));
    }

    [Test]
    public void LongKDiffersAtTheWideEnd_WritesItsWholeTable()
    {
        // K 7168: 128x128 hands over to 256x128 at 180 instead of 511, 64x128 alike. Rows 181..511 differ from what the
        // rows after it give, so its rows run to the end (256x128 unbounded, shadowing everything after).
        (int K, ShapeCrossovers Fit)[] shapes = [(256, Fit(32, 478)), (2048, Fit(88, 478)), (7168, Fit(88, 104))];

        IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(Set.Names, shapes);
        IReadOnlyList<string> lines = SingleRanges.Lines("H200", groups);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(groups.Select(g => g.MinK), Is.EqualTo(new[] { 0, 2048, 7168 }));
            Assert.That(lines, Is.EqualTo(new[]
            {
                "MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 96, 7168)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_128x128x128_c1x2_cooperative, 97, 180, 7168)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_256x128x128_c2x1_cooperative, 181, 2147483647, 7168)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 96, 2048)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 40, 0)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_128x128x128_c1x2_cooperative, 41, 511, 0)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_256x128x128_c2x1_cooperative, 512, 2147483647, 0)",
            }));
            AssertLinesGiveEveryK(lines, groups, [0, 256, 2048, 4096, 7168, 8192]);
        }
    }

    [Test]
    public void LongKDiffersInTheMiddle_WritesItsRowsUpToTheDifference_SharingTheWideEnd()
    {
        // K 2048: 64x128 to 96 as well as 128x128 from 97 (general: 41); the same 128x128 -> 256x128 crossover at 511.
        // Its rows stop at 64x128 (0..96); 128x128 from 97 and 256x128 come from the general rows.
        (int K, ShapeCrossovers Fit)[] shapes = [(256, Fit(16, 478)), (2048, Fit(88, 478))];

        IReadOnlyList<string> lines = SingleRanges.Lines("H200", SingleRanges.Group(Set.Names, shapes));

        Assert.That(lines, Is.EqualTo(new[]
        {
            "MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 96, 2048)",
            "MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 24, 0)",
            "MC_KERNEL_RANGE(H200, SINGLE, tile_128x128x128_c1x2_cooperative, 25, 511, 0)",
            "MC_KERNEL_RANGE(H200, SINGLE, tile_256x128x128_c2x1_cooperative, 512, 2147483647, 0)",
        }));
    }

    [Test]
    public void NonMonotoneInK_ShortAndLongAlike_MiddleDiffers_ThreeGroups()
    {
        (int K, ShapeCrossovers Fit)[] shapes = [(256, Fit(32, 478)), (2048, Fit(88, 478)), (7168, Fit(32, 478))];

        IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(Set.Names, shapes);
        IReadOnlyList<string> lines = SingleRanges.Lines("H200", groups);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(groups.Select(g => g.MinK), Is.EqualTo(new[] { 0, 2048, 7168 }));
            Assert.That(lines[0], Is.EqualTo("MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 40, 7168)"));
            AssertLinesGiveEveryK(lines, groups, [256, 1024, 2048, 7168, 9000]);
        }
    }

    [Test]
    public void ExactTies_GoToTheWiderConfiguration_WhichThenTakesThoseRows()
    {
        // 64x128 and 128x128 tie exactly at every m up to 88 and 64x128 never beats 128x128: no 64x128 range at all.
        TunePoint[] points = [.. Sweep.Select(m => new TunePoint(m, [50.0, 50.0, m <= 478 ? 60.0 : 40.0]))];

        ShapeCrossovers fit = Crossovers.Analyze(points, Set.Labels);
        IReadOnlyList<string> lines = SingleRanges.Lines("H200", SingleRanges.Group(Set.Names, [(2048, fit)]));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(points.Select(p => p.Winner), Is.All.Not.EqualTo(0), "an exact tie is the wider configuration's");
            Assert.That(fit.MaxRows, Is.EqualTo(new[] { 0, 511 }));
            Assert.That(fit.Description, Does.Contain("64x128 never wins"));
            Assert.That(lines, Is.EqualTo(new[]
            {
                "MC_KERNEL_RANGE(H200, SINGLE, tile_128x128x128_c1x2_cooperative, 0, 511, 0)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_256x128x128_c2x1_cooperative, 512, 2147483647, 0)",
            }));
        }
    }

    [Test]
    public void MiddleConfigurationNeverWins_GetsNoRow()
    {
        TunePoint[] points = [.. Sweep.Select(m => new TunePoint(m, [m <= 88 ? 10.0 : 30.0, 25.0, m <= 88 ? 20.0 : 15.0]))];

        ShapeCrossovers fit = Crossovers.Analyze(points, Set.Labels);
        IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(Set.Names, [(2048, fit)]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(fit.Description, Is.EqualTo("64x128 -> 256x128 between m=88 and m=104; 128x128 never wins"));
            Assert.That(fit.MaxRows, Is.EqualTo(new[] { 96, 96 }));
            Assert.That(SingleRanges.Lines("H200", groups), Is.EqualTo(new[]
            {
                "MC_KERNEL_RANGE(H200, SINGLE, tile_64x128x128_c1x2_pingpong, 0, 96, 0)",
                "MC_KERNEL_RANGE(H200, SINGLE, tile_256x128x128_c2x1_cooperative, 97, 2147483647, 0)",
            }));
        }
    }

    [Test]
    public void WidestNeverWins_TakesTheRowsBeyondTheSweep()
    {
        TunePoint[] points = [.. Sweep.Select(m => new TunePoint(m, [m <= 88 ? 10.0 : 30.0, 20.0, 40.0]))];

        ShapeCrossovers fit = Crossovers.Analyze(points, Set.Labels);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(fit.Description, Does.Contain("128x128 still wins at m=1024, the largest measured (sweep further)"));
            Assert.That(SingleRanges.Table(Set.Names, fit.MaxRows!), Is.EqualTo(new[] { new SingleRange(T64, 96), new SingleRange(T128, 1024), new SingleRange(T256, Unbounded) }));
        }
    }

    [Test]
    public void KWithoutAnyCompletePoint_GetsNoTable_NoShapesNoLines()
    {
        ShapeCrossovers failed = Crossovers.Analyze([new TunePoint(8, [1.0, null, 2.0])], Set.Labels);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(failed.MaxRows, Is.Null);
            Assert.That(failed.Description, Is.EqualTo("none: no rows value has all three configurations measured"));
            Assert.That(SingleRanges.Group(Set.Names, [(256, failed)]), Is.Empty);
            IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(Set.Names, [(256, failed), (2048, Fit(88, 478))]);
            Assert.That(groups.Single().MinK, Is.Zero, "the smallest K with a table gives the general rows");
            Assert.That(groups.Single().Ks, Is.EqualTo(new[] { 2048 }));
        }
    }

    [Test]
    public void RandomTables_PrintedLinesPartitionTheRows_ForEveryK_AsTheRegistryReadsThem()
    {
        var random = new Random(20261203);
        int[] ks = [128, 256, 512, 1024, 2048, 4096, 7168];
        for (int trial = 0; trial < 300; trial++)
        {
            // A few distinct threshold pairs so that some K values share a table and some do not.
            (int, int)[] choices = [.. Enumerable.Range(0, random.Next(1, 4)).Select(_ => (random.Next(0, 3), random.Next(3, 9)))];
            var shapes = new List<(int K, ShapeCrossovers Fit)>();
            foreach (int k in ks.Where(_ => random.Next(3) > 0))
            {
                (int narrow, int middle) = choices[random.Next(choices.Length)];
                shapes.Add((k, Fit(Sweep[narrow], Sweep[middle])));
            }

            if (shapes.Count == 0)
            {
                Assert.That(SingleRanges.Lines("H200", SingleRanges.Group(Set.Names, shapes)), Is.Empty);
                continue;
            }

            IReadOnlyList<SingleKGroup> groups = SingleRanges.Group(Set.Names, shapes);
            IReadOnlyList<string> lines = SingleRanges.Lines("H200", groups);
            AssertLinesGiveEveryK(lines, groups, [1, .. ks, 100000]);
        }
    }

    [Test]
    public void Parser_ReadsTheRegistrysOwnH200SingleRows_As40And96()
    {
        string def = File.ReadAllText(Path.Combine(RepositoryRoot(), Crossovers.KernelConfigsFile));
        string[] lines = [.. def.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("MC_KERNEL_RANGE(H200, SINGLE", StringComparison.Ordinal))];

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Read(lines, "H200", 256), Is.EqualTo(new[] { (T64, 0, 40), (T128, 41, 511), (T256, 512, Unbounded) }));
            Assert.That(Read(lines, "H200", 2048), Is.EqualTo(new[] { (T64, 0, 96), (T128, 97, 511), (T256, 512, Unbounded) }));
        }
    }

    /// <summary>
    /// Reads <paramref name="lines"/> for every K of <paramref name="probes"/> as core/gemm_selection.cpp does, checks
    /// the ranges partition 0 .. MC_MAX_ROWS and give what the group of that K says (the general group below the
    /// second group's min_k).
    /// </summary>
    private static void AssertLinesGiveEveryK(IReadOnlyList<string> lines, IReadOnlyList<SingleKGroup> groups, IEnumerable<int> probes)
    {
        foreach (int k in probes)
        {
            (string Name, int First, int Last)[] ranges = Read(lines, "H200", k);
            string where = $"K={k} in\n{string.Join('\n', lines)}";
            Assert.That(ranges, Is.Not.Empty, where);
            Assert.That(ranges[0].First, Is.Zero, where);
            Assert.That(ranges[^1].Last, Is.EqualTo(Unbounded), where);
            for (int i = 1; i < ranges.Length; i++)
            {
                Assert.That(ranges[i].First, Is.EqualTo(ranges[i - 1].Last + 1), where);
            }

            SingleKGroup expected = groups.Last(g => g.MinK <= k);
            Assert.That(ranges.Select(r => new SingleRange(r.Name, r.Last)), Is.EqualTo(expected.Table), where);
        }
    }

    /// <summary>A tiny reader of MC_KERNEL_RANGE lines with the registry's semantics (core/gemm_selection.cpp append_range).</summary>
    private static (string Name, int First, int Last)[] Read(IEnumerable<string> lines, string gpuClass, int k)
    {
        var ranges = new List<(string Name, int First, int Last)>();
        foreach (string line in lines)
        {
            Match match = RangeLine().Match(line);
            Assert.That(match.Success, Is.True, line);
            if (match.Groups[1].Value != gpuClass || match.Groups[2].Value != "SINGLE" || Int(match.Groups[6]) > k)
            {
                continue;
            }

            int first = Int(match.Groups[4]);
            int last = Int(match.Groups[5]);
            if (ranges.Count > 0)
            {
                if (ranges[^1].Last == Unbounded)
                {
                    continue;
                }

                first = Math.Max(first, ranges[^1].Last + 1);
            }

            if (first <= last)
            {
                ranges.Add((match.Groups[3].Value, first, last));
            }
        }

        return [.. ranges];
    }

    private static int Int(Group group) => int.Parse(group.Value, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"^MC_KERNEL_RANGE\((\w+), (\w+), (\w+), (\d+), (\d+), (\d+)\)$")]
    private static partial Regex RangeLine();

    /// <summary>Timings where 64x128 wins through <paramref name="wide64"/>, 128x128 through <paramref name="wide128"/>, 256x128 beyond.</summary>
    private static TunePoint[] Points(int wide64, int wide128) =>
        [.. Sweep.Select(m => new TunePoint(m, [m <= wide64 ? 90.0 : 110.0, m > wide64 && m <= wide128 ? 90.0 : 100.0, m > wide128 ? 80.0 : 105.0]))];

    private static ShapeCrossovers Fit(int wide64, int wide128) => Crossovers.Analyze(Points(wide64, wide128), Set.Labels);

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? dir = new(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, Crossovers.KernelConfigsFile)))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("no repository root above " + TestContext.CurrentContext.TestDirectory);
    }
}
