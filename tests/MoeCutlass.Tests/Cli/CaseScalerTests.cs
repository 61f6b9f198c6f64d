using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Tests.Cli;

[TestFixture]
public sealed class CaseScalerTests
{
    private static readonly ScaleLimits Cpu = ScaleLimits.CpuBench;

    [Test]
    public void CpuBenchLimits_AreEightExpertsAnd256Rows()
    {
        Assert.That(Cpu, Is.EqualTo(new ScaleLimits(8, 256, 16e9)));
    }

    [Test]
    public void UniformCase_RowsSumToExactly256_AndAreSplitEvenly()
    {
        BenchCase c = SuiteFiles.Case("uniform", 4096, 7168, [.. Enumerable.Repeat(256, 32)]);

        ProblemShape shape = CaseScaler.Scale(c, Cpu);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(shape.Scaled, Is.True);
            Assert.That(shape.Experts, Is.EqualTo(8));
            Assert.That(shape.TotalRows, Is.EqualTo(256));
            Assert.That(shape.RowsPerExpert, Is.All.EqualTo(32));
            Assert.That(shape.K, Is.EqualTo(7168));
            Assert.That(shape.ScaleNote, Does.StartWith("E=8 of 32, rows=256 of 8192"));
        }
    }

    [Test]
    public void SkewedCase_RowsSumToExactly256_EmptyStayEmpty_NonzeroKeepAtLeastOne()
    {
        // 8 experts (nothing to pick): a hot expert, several tiny ones and two empty ones.
        int[] rows = [5000, 1, 0, 3, 0, 2, 700, 1];
        BenchCase c = SuiteFiles.Case("skewed", 256, 128, rows);

        ProblemShape shape = CaseScaler.Scale(c, Cpu);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(shape.Experts, Is.EqualTo(8));
            Assert.That(shape.TotalRows, Is.EqualTo(256));
            for (int e = 0; e < rows.Length; e++)
            {
                Assert.That(shape.RowsPerExpert[e], rows[e] == 0 ? Is.Zero : Is.GreaterThanOrEqualTo(1), $"expert {e} (had {rows[e]} rows)");
            }

            Assert.That(shape.RowsPerExpert[0], Is.GreaterThan(shape.RowsPerExpert[6]), "the hottest expert stays the hottest");
        }
    }

    [Test]
    public void ScaleRows_ManyTinyExperts_AtLeastOneRuleOvershoot_IsTakenBackFromTheLargest()
    {
        // Floors give 0 for the seven 1-row experts; each is raised to 1, so the hot expert gives rows back.
        int[] scaled = CaseScaler.ScaleRows([1, 1, 1, 1, 1, 1, 1, 10_000], 16);

        Assert.That(scaled, Is.EqualTo(new[] { 1, 1, 1, 1, 1, 1, 1, 9 }));
    }

    [Test]
    public void ScaleRows_LargestRemainder_HandsOutTheLeftoverRows()
    {
        // Exact shares 10/3 each of 10 rows: floors 3+3+3, one leftover row to the lowest index on a tie.
        int[] scaled = CaseScaler.ScaleRows([100, 100, 100], 10);

        Assert.That(scaled, Is.EqualTo(new[] { 4, 3, 3 }));
    }

    [Test]
    public void ScaleRows_AlreadyWithinLimit_IsUnchanged()
    {
        int[] rows = [3, 0, 5];

        Assert.That(CaseScaler.ScaleRows(rows, 256), Is.EqualTo(new[] { 3, 0, 5 }));
    }

    [Test]
    public void PickExperts_KeepsEmptiestAndHottest_InOriginalOrder()
    {
        // 64 experts; expert 37 is the only empty one, expert 5 the hottest.
        int[] rows = Enumerable.Range(0, 64).Select(e => e == 37 ? 0 : e == 5 ? 999 : 10 + (e % 7)).ToArray();

        int[] picked = CaseScaler.PickExperts(rows, 8);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(picked, Has.Length.EqualTo(8));
            Assert.That(picked, Is.Ordered.Ascending);
            Assert.That(picked, Is.Unique);
            Assert.That(picked, Has.Member(37), "the emptiest expert");
            Assert.That(picked, Has.Member(5), "the hottest expert");
        }
    }

    [Test]
    public void Scale_CaseWithEmptyExperts_KeepsAnEmptyExpert_AndTheHotOne()
    {
        // 256 experts, a quarter of them empty, one very hot: the routing skew must survive the reduction.
        int[] rows = Enumerable.Range(0, 256).Select(e => e % 4 == 1 ? 0 : e == 200 ? 900 : 20 + (e % 13)).ToArray();
        BenchCase c = SuiteFiles.Case("hot", 7168, 2048, rows);

        ProblemShape shape = CaseScaler.Scale(c, Cpu);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(shape.Experts, Is.EqualTo(8));
            Assert.That(shape.RowsPerExpert, Has.Some.EqualTo(0), "an empty expert stays in, empty");
            Assert.That(shape.ActiveExperts, Is.LessThan(8));
            Assert.That(shape.TotalRows, Is.EqualTo(256));
            Assert.That(shape.RowsPerExpert.Max(), Is.GreaterThan(shape.TotalRows / 2), "the hot expert keeps its dominant share");
        }
    }

    [Test]
    public void ReduceN_HalvesWhileMultipleOf256_ThenStops()
    {
        // Mixtral gate_up: 2*256*28672*4096 = 60 GFLOP; two halvings reach 15 GFLOP <= 16.
        Assert.That(CaseScaler.ReduceN(28672, 4096, 256, 16e9), Is.EqualTo(7168));
    }

    [Test]
    public void ReduceN_OddNumberOfBlocks_RoundsDownToAMultipleOf128()
    {
        // 7168 -> 3584 -> 1792 -> 896 (7 blocks: no further halving), still 3.3 GFLOP > 1 GFLOP,
        // so N = floor(1e9 / (2*256*7168) / 128) * 128 = 2 * 128.
        Assert.That(CaseScaler.ReduceN(7168, 7168, 256, 1e9), Is.EqualTo(256));
    }

    [Test]
    public void ReduceN_NeverGoesBelow128_AndLeavesFittingNAlone()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(CaseScaler.ReduceN(4096, 1 << 20, 4096, 1e6), Is.EqualTo(128));
            Assert.That(CaseScaler.ReduceN(4096, 7168, 256, 16e9), Is.EqualTo(4096));
            Assert.That(CaseScaler.ReduceN(384, 7168, 256, 16e9), Is.EqualTo(384));
        }
    }

    [Test]
    public void Scale_SmallCase_IsReturnedUnscaled()
    {
        BenchCase c = SuiteFiles.Case("small", 256, 128, [3, 0, 5]);

        ProblemShape shape = CaseScaler.Scale(c, Cpu);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(shape.Scaled, Is.False);
            Assert.That(shape.ScaleNote, Is.Null);
            Assert.That(shape, Is.EqualTo(ProblemShape.Full(c)));
        }
    }

    [Test]
    public void Scale_IsDeterministic()
    {
        var random = new Random(1234);
        int[] rows = Enumerable.Range(0, 200).Select(_ => random.Next(0, 300)).ToArray();
        BenchCase c = SuiteFiles.Case("random", 14336, 4096, rows);

        ProblemShape first = CaseScaler.Scale(c, Cpu);
        ProblemShape second = CaseScaler.Scale(c with { RowsPerExpert = rows.ToArray() }, Cpu);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(second.RowsPerExpert, Is.EqualTo(first.RowsPerExpert));
            Assert.That(second.N, Is.EqualTo(first.N));
            Assert.That(second.Experts, Is.EqualTo(first.Experts));
            Assert.That(second.ScaleNote, Is.EqualTo(first.ScaleNote));
        }
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(4)]
    [TestCase(5)]
    [TestCase(6)]
    [TestCase(7)]
    [TestCase(8)]
    public void Scale_RandomCases_KeepEveryInvariant(int seed)
    {
        var random = new Random(seed);
        for (int trial = 0; trial < 200; trial++)
        {
            int experts = random.Next(1, 300);
            int hot = random.Next(experts);
            int[] rows = Enumerable.Range(0, experts)
                .Select(e => e == hot ? random.Next(1, 20_000) : random.Next(4) == 0 ? 0 : random.Next(0, random.Next(1, 2_000)))
                .ToArray();
            int n = 128 * random.Next(1, 256);
            int k = 16 * random.Next(1, 1024);
            AssertInvariants(SuiteFiles.Case($"random-{seed}-{trial}", n, k, rows), Cpu);
            AssertInvariants(SuiteFiles.Case($"random-{seed}-{trial}", n, k, rows), ScaleLimits.Verify);
        }
    }

    [Test]
    public void Scale_EveryCaseOfTheRealSuite_KeepsEveryInvariant()
    {
        string? path = SuiteFiles.RealSuitePath();
        if (path is null)
        {
            Assert.Ignore("shared/bench/suite.json is not beside this checkout");
        }

        BenchSuite suite = BenchSuite.Load(path!);
        Assert.That(suite.Cases, Is.Not.Empty);
        foreach (BenchCase c in suite.Cases)
        {
            AssertInvariants(c, Cpu);
            AssertInvariants(c, ScaleLimits.Verify);
        }
    }

    /// <summary>Everything CaseScaler documents, for one case and one set of limits.</summary>
    private static void AssertInvariants(BenchCase c, ScaleLimits limits)
    {
        ProblemShape shape = CaseScaler.Scale(c, limits);
        int[] kept = CaseScaler.PickExperts(c.RowsPerExpert, limits.MaxExperts);
        int[] keptRows = kept.Select(e => c.RowsPerExpert[e]).ToArray();
        string label = $"{c.Name} with {limits}";

        using (Assert.EnterMultipleScope())
        {
            Assert.That(shape.Experts, Is.EqualTo(Math.Min(c.Experts, limits.MaxExperts)), $"{label}: experts");
            Assert.That(shape.RowsPerExpert, Has.Count.EqualTo(shape.Experts), $"{label}: one row count per expert");
            Assert.That(kept, Is.Ordered.Ascending.And.Unique, $"{label}: kept experts in original order");
            Assert.That(keptRows, Has.Member(c.RowsPerExpert.Min()), $"{label}: the emptiest expert is kept");
            Assert.That(keptRows, Has.Member(c.RowsPerExpert.Max()), $"{label}: the hottest expert is kept");

            // Rows: exactly the limit when the kept experts own more, else unchanged.
            Assert.That(shape.TotalRows, Is.EqualTo(Math.Min(limits.MaxRows, keptRows.Sum())), $"{label}: total rows");
            for (int i = 0; i < kept.Length; i++)
            {
                Assert.That(
                    shape.RowsPerExpert[i],
                    keptRows[i] == 0 ? Is.Zero : Is.InRange(1, keptRows[i]),
                    $"{label}: kept expert {kept[i]} had {keptRows[i]} rows");
            }

            // N and K.
            Assert.That(shape.K, Is.EqualTo(c.K), $"{label}: K never changes");
            Assert.That(shape.N, Is.LessThanOrEqualTo(c.N), $"{label}: N only shrinks");
            if (c.N % 128 == 0)
            {
                Assert.That(shape.N % 128, Is.Zero, $"{label}: N={shape.N} stays a multiple of 128");
            }

            Assert.That(shape.NReduced, Is.EqualTo(shape.N != c.N), $"{label}: NReduced");
            double flops = 2.0 * shape.TotalRows * shape.N * shape.K;
            Assert.That(flops <= limits.MaxFlops || shape.N <= 128, Is.True, $"{label}: {flops:E3} FLOP with N={shape.N}");

            // Bookkeeping.
            Assert.That(shape.Scaled, Is.EqualTo(shape.Experts != c.Experts || shape.TotalRows != c.TotalRows || shape.N != c.N), $"{label}: Scaled");
            Assert.That(shape.OriginalExperts, Is.EqualTo(c.Experts));
            Assert.That(shape.OriginalRows, Is.EqualTo(c.TotalRows));
            Assert.That(shape.ExpertOffsets()[^1], Is.EqualTo(shape.TotalRows), $"{label}: offsets end at the row count");
            Assert.That(CaseScaler.Scale(c, limits).RowsPerExpert, Is.EqualTo(shape.RowsPerExpert), $"{label}: deterministic");
        }
    }
}
