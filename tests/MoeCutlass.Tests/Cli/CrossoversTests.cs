using MoeCutlass.Cli.Tune;

namespace MoeCutlass.Tests.Cli;

/// <summary><c>tune</c>'s crossover fit and threshold suggestion on synthetic timings.</summary>
[TestFixture]
public sealed class CrossoversTests
{
    private const int S32 = TuneConfigurations.Swap32;
    private const int S64 = TuneConfigurations.Swap64;
    private const int Wide = TuneConfigurations.Wide;

    /// <summary>The H100 hand sweep of bench/results/README.md, shape 32, 7168, 2048.</summary>
    private static TunePoint[] H100GateUp() =>
    [
        new(16, 179.2, 182.3, 182.0),
        new(32, 182.9, 187.5, 185.8),
        new(48, 223.7, 189.6, 188.0),
        new(64, 225.0, 190.9, 190.1),
        new(96, 363.0, 227.3, 191.8),
    ];

    /// <summary>Clean monotone timings: 128x32 through 32, 128x64 from 40 through 64, 128x128 from 80.</summary>
    private static TunePoint[] Monotone() =>
    [
        new(4, 100, 110, 120),
        new(8, 100, 110, 120),
        new(16, 101, 110, 120),
        new(24, 102, 110, 120),
        new(32, 103, 111, 120),
        new(40, 140, 112, 120),
        new(48, 141, 113, 121),
        new(56, 142, 114, 121),
        new(64, 143, 115, 121),
        new(80, 180, 150, 122),
        new(96, 181, 151, 123),
        new(128, 220, 190, 125),
        new(192, 300, 250, 130),
    ];

    [Test]
    public void Monotone_CrossoversAtTheWinnerChanges_ThresholdsAtTheMidpoints()
    {
        ShapeCrossovers result = Crossovers.Analyze(Monotone());

        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Description, Is.EqualTo("128x32 -> 128x64 between m=32 and m=40; 128x64 -> 128x128 between m=64 and m=80"));
            Assert.That(result.Swap32MaxRows, Is.EqualTo(36));
            Assert.That(result.Swap64MaxRows, Is.EqualTo(72));
            Assert.That(result.Regret, Is.Zero);
            Assert.That(result.Segments, Is.EqualTo(new[] { new CrossoverSegment(S32, 4, 32), new CrossoverSegment(S64, 40, 64), new CrossoverSegment(Wide, 80, 192) }));
            Assert.That(result.Points.Select(p => p.Winner), Is.EqualTo(result.Assigned.Select(a => (int?)a)), "the fit agrees with every raw winner");
        }
    }

    [Test]
    public void H100HandSweep_GivesTheTableRowsCrossovers()
    {
        ShapeCrossovers result = Crossovers.Analyze(H100GateUp());

        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Description, Is.EqualTo("128x32 -> 128x128 between m=32 and m=48; 128x64 never wins"));
            Assert.That(result.Swap32MaxRows, Is.EqualTo(40), "the H100 row's 40");
            Assert.That(result.Swap64MaxRows, Is.EqualTo(40), "128x64 gets no expert: its threshold equals 128x32's");
        }
    }

    [Test]
    public void Input_IsSortedByRows()
    {
        ShapeCrossovers sorted = Crossovers.Analyze(Monotone());
        ShapeCrossovers shuffled = Crossovers.Analyze(Monotone().Reverse());

        Assert.That(shuffled.Description, Is.EqualTo(sorted.Description));
        Assert.That(shuffled.Points.Select(p => p.Rows), Is.Ordered);
    }

    [Test]
    public void ExactTie_GoesToTheWiderConfiguration()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(new TunePoint(8, 100, 100, 100).Winner, Is.EqualTo(Wide));
            Assert.That(new TunePoint(8, 100, 100, 101).Winner, Is.EqualTo(S64));
            Assert.That(new TunePoint(8, 99, 100, 100).Winner, Is.EqualTo(S32));
        }
    }

    [Test]
    public void Ties_AtTheBoundary_EndTheNarrowRangeEarly()
    {
        // 128x32 wins at 4 and 8, ties 128x64 at 16, loses from 24; 128x64 ties 128x128 at 64.
        TunePoint[] points =
        [
            new(4, 100, 110, 120),
            new(8, 100, 110, 120),
            new(16, 110, 110, 120),
            new(24, 130, 110, 120),
            new(32, 130, 110, 120),
            new(64, 150, 120, 120),
            new(96, 170, 140, 121),
        ];

        ShapeCrossovers result = Crossovers.Analyze(points);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Description, Is.EqualTo("128x32 -> 128x64 between m=8 and m=16; 128x64 -> 128x128 between m=32 and m=64"));
            Assert.That(result.Swap32MaxRows, Is.EqualTo(12));
            Assert.That(result.Swap64MaxRows, Is.EqualTo(48));
            Assert.That(result.Regret, Is.Zero, "a tie costs nothing either way");
        }
    }

    [Test]
    public void AllEqual_IsAll128x128_NoSpecialization()
    {
        ShapeCrossovers result = Crossovers.Analyze([new(4, 50, 50, 50), new(8, 50, 50, 50), new(16, 60, 60, 60)]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Description, Is.EqualTo("none (128x128 wins at every m); 128x32 never wins; 128x64 never wins"));
            Assert.That(result.Swap32MaxRows, Is.Zero);
            Assert.That(result.Swap64MaxRows, Is.Zero);
        }
    }

    [Test]
    public void Swap32NeverWins_GetsNoExpert()
    {
        TunePoint[] points =
        [
            new(8, 105, 100, 110),
            new(16, 106, 100, 110),
            new(32, 120, 101, 110),
            new(64, 150, 120, 110),
        ];

        ShapeCrossovers result = Crossovers.Analyze(points);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Description, Is.EqualTo("128x64 -> 128x128 between m=32 and m=64; 128x32 never wins"));
            Assert.That(result.Swap32MaxRows, Is.Zero);
            Assert.That(result.Swap64MaxRows, Is.EqualTo(48));
        }
    }

    [Test]
    public void NarrowStillWinningAtTheLargestRows_SaysSweepFurther_AndTakesThatRows()
    {
        TunePoint[] points = [new(4, 90, 100, 110), new(8, 91, 100, 110), new(16, 95, 94, 110)];

        ShapeCrossovers result = Crossovers.Analyze(points);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Description, Is.EqualTo("128x32 -> 128x64 between m=8 and m=16; 128x64 still wins at m=16, the largest measured (sweep further)"));
            Assert.That(result.Swap32MaxRows, Is.EqualTo(12));
            Assert.That(result.Swap64MaxRows, Is.EqualTo(16));
        }
    }

    [Test]
    public void SingleNoisyInversion_InsideTheWideRange_IsOverruled()
    {
        // 128x32 wins through 32 and again, by 1%, at 56 (noise): the boundary stays at 32/40.
        TunePoint[] points = Monotone();
        int at56 = Array.FindIndex(points, p => p.Rows == 56);
        points[at56] = new TunePoint(56, 112.9, 114, 121);

        ShapeCrossovers result = Crossovers.Analyze(points);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(points[at56].Winner, Is.EqualTo(S32), "the raw winner at 56");
            Assert.That(result.AssignedAt(56), Is.EqualTo(S64), "the fit at 56");
            Assert.That(result.Description, Is.EqualTo("128x32 -> 128x64 between m=32 and m=40; 128x64 -> 128x128 between m=64 and m=80"));
            Assert.That(result.Swap32MaxRows, Is.EqualTo(36));
            Assert.That(result.Regret, Is.EqualTo(114 / 112.9 - 1).Within(1e-9));
        }
    }

    [Test]
    public void SingleNoisyInversion_InsideTheNarrowRange_IsOverruled()
    {
        // 128x64 beats 128x32 by 1% at 16 only: 128x32 keeps 4..32.
        TunePoint[] points = Monotone();
        int at16 = Array.FindIndex(points, p => p.Rows == 16);
        points[at16] = new TunePoint(16, 111.1, 110, 120);

        ShapeCrossovers result = Crossovers.Analyze(points);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(points[at16].Winner, Is.EqualTo(S64));
            Assert.That(result.AssignedAt(16), Is.EqualTo(S32));
            Assert.That(result.Swap32MaxRows, Is.EqualTo(36));
            Assert.That(result.Swap64MaxRows, Is.EqualTo(72));
        }
    }

    [Test]
    public void PointsWithAFailedConfiguration_AreLeftOutOfTheFit()
    {
        TunePoint[] points = [.. Monotone(), new(256, null, 400, 140)];

        ShapeCrossovers result = Crossovers.Analyze(points);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Incomplete, Is.EqualTo(new[] { 256 }));
            Assert.That(result.Points, Has.Count.EqualTo(13));
            Assert.That(result.AssignedAt(256), Is.Null);
            Assert.That(result.Swap64MaxRows, Is.EqualTo(72));
            Assert.That(points[^1].Winner, Is.EqualTo(Wide), "the winner among what was measured");
        }
    }

    [Test]
    public void NothingComplete_NoThresholds_NoSuggestion()
    {
        ShapeCrossovers result = Crossovers.Analyze([new(8, null, 1, 2), new(16, 1, 2, null)]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Swap32MaxRows, Is.Null);
            Assert.That(result.Swap64MaxRows, Is.Null);
            Assert.That(result.Description, Does.StartWith("none: no rows value has all three"));
            Assert.That(Crossovers.Suggest([result]), Is.Null);
            Assert.That(new TunePoint(8, null, null, null).Winner, Is.Null);
        }
    }

    [Test]
    public void Suggest_TakesTheMedianOfEachThreshold_AcrossShapes()
    {
        ShapeCrossovers[] shapes =
        [
            Fit(36, 72),
            Fit(40, 64),
            Fit(28, 80),
            Crossovers.Analyze([new(8, null, 1, 1)]), // no fit: ignored
        ];

        ThresholdSuggestion? suggestion = Crossovers.Suggest(shapes);

        Assert.That(suggestion, Is.EqualTo(new ThresholdSuggestion(36, 72, 3)));
    }

    [Test]
    public void Suggest_EvenCount_LowerMidpoint_And64NotBelow32()
    {
        ThresholdSuggestion? suggestion = Crossovers.Suggest([Fit(40, 40), Fit(45, 45)]);

        Assert.That(suggestion, Is.EqualTo(new ThresholdSuggestion(42, 42, 2)));
        Assert.That(Crossovers.Suggest([Fit(60, 60), Fit(60, 60), Fit(20, 30)]), Is.EqualTo(new ThresholdSuggestion(60, 60, 3)));
    }

    [TestCase(new[] { 5 }, 5)]
    [TestCase(new[] { 3, 1, 2 }, 2)]
    [TestCase(new[] { 1, 4 }, 2)]
    [TestCase(new[] { 40, 32, 48, 36 }, 38)]
    public void Median(int[] values, int expected) => Assert.That(Crossovers.Median(values), Is.EqualTo(expected));

    [Test]
    public void TableRows_AreRangeLinesOfTheRegistry_ForAnyK_OmittingConfigurationsWithoutRows()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(
                Crossovers.TableRows("H100", 36, 64),
                Is.EqualTo(new[]
                {
                    "MC_KERNEL_RANGE(H100, SPECIALIZED, swap_128x32x128_c2x1_pingpong, 1, 36, 0)",
                    "MC_KERNEL_RANGE(H100, SPECIALIZED, swap_128x64x128_c2x1_pingpong, 37, 64, 0)",
                    "MC_KERNEL_RANGE(H100, SPECIALIZED, tile_128x128x128_c1x2_cooperative, 65, 2147483647, 0)",
                }));
            Assert.That(
                Crossovers.TableRows("H200", 40, 40),
                Is.EqualTo(new[]
                {
                    "MC_KERNEL_RANGE(H200, SPECIALIZED, swap_128x32x128_c2x1_pingpong, 1, 40, 0)",
                    "MC_KERNEL_RANGE(H200, SPECIALIZED, tile_128x128x128_c1x2_cooperative, 41, 2147483647, 0)",
                }));
            Assert.That(Crossovers.TableRows("H100", 0, 0), Has.Count.EqualTo(1));
            Assert.That(Crossovers.GpuClassWord("NVIDIA H200"), Is.EqualTo("H200"));
            Assert.That(Crossovers.GpuClassWord("NVIDIA H100 80GB HBM3"), Is.EqualTo("H100"));
            Assert.That(Crossovers.GpuClassWord("NVIDIA A100-SXM4-80GB"), Is.EqualTo("NEW_CLASS"));
        }
    }

    [Test]
    public void Fit_OverOrderedConfigurations_MatchesTheThreeRangeSplit_OnRandomSweeps()
    {
        // The fit tries splits over any number of configurations; for the three it must choose exactly what a direct
        // search over (end of 128x32, end of 128x64) chooses, ties included (whole-µs times tie often).
        var random = new Random(20261203);
        for (int sweep = 0; sweep < 500; sweep++)
        {
            TunePoint[] points = [.. Enumerable.Range(1, random.Next(1, 10))
                .Select(i => new TunePoint(8 * i, random.Next(90, 110), random.Next(90, 110), random.Next(90, 110)))];

            ShapeCrossovers fit = Crossovers.Analyze(points);
            (int[] assigned, int swap32, int swap64) = ThreeRangeSplit(points);

            Assert.That(fit.Assigned, Is.EqualTo(assigned), $"sweep {sweep}");
            Assert.That((fit.Swap32MaxRows, fit.Swap64MaxRows), Is.EqualTo(((int?)swap32, (int?)swap64)), $"sweep {sweep}");
        }
    }

    /// <summary>The three-range search written out directly: lexicographically first split of least loss.</summary>
    private static (int[] Assigned, int Swap32, int Swap64) ThreeRangeSplit(TunePoint[] points)
    {
        int n = points.Length;
        double Loss(int c, int i) => points[i].TimesUs[c]!.Value / points[i].TimesUs.Min(t => t!.Value) - 1.0;
        int bestNarrow = 0, bestMiddle = 0;
        double bestLoss = double.PositiveInfinity;
        for (int narrow = 0; narrow <= n; narrow++)
        {
            for (int middle = narrow; middle <= n; middle++)
            {
                double total = 0;
                for (int i = 0; i < n; i++)
                {
                    total += Loss(i < narrow ? S32 : i < middle ? S64 : Wide, i);
                }

                if (total < bestLoss - 1e-12)
                {
                    (bestLoss, bestNarrow, bestMiddle) = (total, narrow, middle);
                }
            }
        }

        int Threshold(int end) => end == n ? points[^1].Rows : (points[end - 1].Rows + points[end].Rows) / 2;
        int swap32 = bestNarrow == 0 ? 0 : Threshold(bestNarrow);
        int swap64 = bestMiddle == bestNarrow ? swap32 : Threshold(bestMiddle);
        int[] assigned = [.. Enumerable.Range(0, n).Select(i => i < bestNarrow ? S32 : i < bestMiddle ? S64 : Wide)];
        return (assigned, swap32, swap64);
    }

    /// <summary>A shape whose fit yields exactly these thresholds (128x32 through a, 128x64 through b, 128x128 beyond).</summary>
    private static ShapeCrossovers Fit(int swap32, int swap64)
    {
        var points = new List<TunePoint> { new(swap32, 1, 2, 3) };
        if (swap64 > swap32)
        {
            points.Add(new(swap32 + 1, 2, 1, 3));
        }

        if (swap64 > swap32 + 1)
        {
            points.Add(new(swap64, 2, 1, 3));
        }

        points.Add(new(swap64 + 1, 3, 2, 1));
        ShapeCrossovers fit = Crossovers.Analyze(points);
        Assume.That(fit.Swap32MaxRows, Is.EqualTo(swap32));
        Assume.That(fit.Swap64MaxRows, Is.EqualTo(swap64));
        return fit;
    }
}
