using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Tests.Cli;

[TestFixture]
public sealed class BenchSuiteTests
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void CreateTemp() => _temp = new TempDirectory();

    [TearDown]
    public void DeleteTemp() => _temp.Dispose();

    [Test]
    public void Load_ValidSuite_KeepsCasesInFileOrder_WithCommentsAndTrailingCommas()
    {
        string path = _temp.Write("suite.json", """
            // the real file has no comments, but the reader accepts them
            {
              "description": "two cases",
              "models": { "m1": { "experts": 4, "topk": 2, "hidden": 256, "moe_intermediate": 128 } },
              "cases": [
                { "name": "b-case", "model": "m1", "gemm": "down", "experts": 4, "n": 256, "k": 128, "rows": 10, "rows_per_expert": [1, 2, 3, 4], "note": "n" },
                { "name": "a-case", "experts": 2, "n": 8, "k": 16, "rows_per_expert": [0, 5], },
              ],
            }
            """);

        BenchSuite suite = BenchSuite.Load(path);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(suite.Path, Is.EqualTo(Path.GetFullPath(path)));
            Assert.That(suite.Description, Is.EqualTo("two cases"));
            Assert.That(suite.Cases.Select(c => c.Name), Is.EqualTo(new[] { "b-case", "a-case" }));
            Assert.That(suite.Cases[0].Model, Is.EqualTo("m1"));
            Assert.That(suite.Cases[0].Gemm, Is.EqualTo("down"));
            Assert.That(suite.Cases[0].RowsPerExpert, Is.EqualTo(new[] { 1, 2, 3, 4 }));
            Assert.That(suite.Cases[0].TotalRows, Is.EqualTo(10));
            Assert.That(suite.Cases[0].Note, Is.EqualTo("n"));
            Assert.That(suite.Cases[1].Model, Is.Empty);
            Assert.That(suite.Cases[1].TotalRows, Is.EqualTo(5));
        }
    }

    [TestCase("{ \"cases\": [ { \"name\": ", "is not valid", TestName = "Load_TruncatedJson_IsUsageError")]
    [TestCase("not json at all", "is not valid", TestName = "Load_NotJson_IsUsageError")]
    [TestCase("{ \"cases\": [ { \"name\": \"a\", \"experts\": 1, \"n\": \"128\", \"k\": 128, \"rows_per_expert\": [1] } ] }", "is not valid", TestName = "Load_NumberAsString_IsUsageError")]
    [TestCase("{ \"cases\": [] }", "has no cases", TestName = "Load_NoCases_IsUsageError")]
    [TestCase("{ }", "has no cases", TestName = "Load_NoCasesProperty_IsUsageError")]
    public void Load_MalformedDocument_IsOneLineUsageError(string json, string expected)
    {
        string path = _temp.Write("suite.json", json);

        var error = Assert.Throws<UsageException>(() => BenchSuite.Load(path));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(error!.Message, Does.Contain(expected));
            Assert.That(error.Message, Does.Contain(Path.GetFullPath(path)), "the message names the file");
            Assert.That(error.Message, Does.Not.Contain("\n").And.Not.Contain("\r"), "one line");
        }
    }

    [Test]
    public void Load_RowsPerExpertCountDiffersFromExperts_NamesBothCounts()
    {
        string path = _temp.Write("suite.json", SuiteFiles.SuiteJson("x", SuiteFiles.CaseJson("mismatch", 4, 128, 128, [1, 2, 3])));

        var error = Assert.Throws<UsageException>(() => BenchSuite.Load(path));

        Assert.That(error!.Message, Does.Contain("case 'mismatch'")
            .And.Contain("\"rows_per_expert\" has 3 entries but \"experts\" is 4"));
    }

    [Test]
    public void Load_DuplicateCaseNames_IsUsageError()
    {
        string path = _temp.Write("suite.json", SuiteFiles.SuiteJson(
            "x",
            SuiteFiles.CaseJson("same", 1, 128, 128, [4]),
            SuiteFiles.CaseJson("unique", 1, 128, 128, [4]),
            SuiteFiles.CaseJson("same", 2, 256, 128, [4, 4])));

        var error = Assert.Throws<UsageException>(() => BenchSuite.Load(path));

        Assert.That(error!.Message, Does.Contain("case name 'same' appears more than once"));
    }

    [TestCase(100)]
    [TestCase(4)]
    [TestCase(0)]
    [TestCase(-8)]
    [TestCase((1 << 20) + 8)]
    public void Load_NNotAPositiveMultipleOf8_IsUsageError(int n)
    {
        string path = _temp.Write("suite.json", SuiteFiles.SuiteJson("x", SuiteFiles.CaseJson("bad-n", 2, n, 128, [1, 1])));

        var error = Assert.Throws<UsageException>(() => BenchSuite.Load(path));

        Assert.That(error!.Message, Does.Contain("case 'bad-n'").And.Contain("\"n\" must be a positive multiple of 8").And.Contain($"(got {n})"));
    }

    [TestCase(8)]
    [TestCase(40)]
    [TestCase(0)]
    [TestCase(7176)]
    public void Load_KNotAPositiveMultipleOf16_IsUsageError(int k)
    {
        string path = _temp.Write("suite.json", SuiteFiles.SuiteJson("x", SuiteFiles.CaseJson("bad-k", 2, 128, k, [1, 1])));

        var error = Assert.Throws<UsageException>(() => BenchSuite.Load(path));

        Assert.That(error!.Message, Does.Contain("case 'bad-k'").And.Contain("\"k\" must be a positive multiple of 16").And.Contain($"(got {k})"));
    }

    [Test]
    public void Load_SmallestLegalNAndK_AreAccepted()
    {
        string path = _temp.Write("suite.json", SuiteFiles.SuiteJson("x", SuiteFiles.CaseJson("small", 1, 8, 16, [1])));

        BenchSuite suite = BenchSuite.Load(path);

        Assert.That(suite.Cases.Single(), Has.Property(nameof(BenchCase.N)).EqualTo(8).And.Property(nameof(BenchCase.K)).EqualTo(16));
    }

    [TestCase("{ \"name\": \"z\", \"experts\": 0, \"n\": 128, \"k\": 128, \"rows_per_expert\": [] }", "\"experts\" must be 1..4096")]
    [TestCase("{ \"name\": \"z\", \"experts\": 2, \"n\": 128, \"k\": 128 }", "missing \"rows_per_expert\"")]
    [TestCase("{ \"name\": \"z\", \"experts\": 2, \"n\": 128, \"k\": 128, \"rows_per_expert\": [3, -1] }", "negative entry")]
    [TestCase("{ \"name\": \"z\", \"experts\": 2, \"n\": 128, \"k\": 128, \"rows_per_expert\": [0, 0] }", "no expert has any rows")]
    [TestCase("{ \"name\": \"z\", \"experts\": 2, \"n\": 128, \"k\": 128, \"rows\": 7, \"rows_per_expert\": [3, 3] }", "\"rows\" is 7 but \"rows_per_expert\" adds up to 6")]
    [TestCase("{ \"experts\": 1, \"n\": 128, \"k\": 128, \"rows_per_expert\": [1] }", "case #1: missing \"name\"")]
    public void Load_InvalidCase_IsUsageError(string caseJson, string expected)
    {
        string path = _temp.Write("suite.json", SuiteFiles.SuiteJson("x", caseJson));

        var error = Assert.Throws<UsageException>(() => BenchSuite.Load(path));

        Assert.That(error!.Message, Does.Contain(expected));
    }

    [Test]
    public void Load_UnknownModel_IsUsageError_WhenModelsAreListed()
    {
        string path = _temp.Write(
            "suite.json",
            "{ \"models\": { \"known\": { \"experts\": 1 } }, \"cases\": [ " + SuiteFiles.CaseJson("c", 1, 128, 128, [1], model: "unknown") + " ] }");

        var error = Assert.Throws<UsageException>(() => BenchSuite.Load(path));

        Assert.That(error!.Message, Does.Contain("model 'unknown' is not listed under \"models\""));
    }

    [Test]
    public void Load_MissingFile_IsUsageError()
    {
        string path = _temp.Combine("does-not-exist.json");

        var error = Assert.Throws<UsageException>(() => BenchSuite.Load(path));

        Assert.That(error!.Message, Does.StartWith("cannot read suite file").And.Contain(path));
    }

    [Test]
    public void Select_Nothing_ReturnsAllCasesInFileOrder()
    {
        BenchSuite suite = LoadThreeCases();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(suite.Select(null).Select(c => c.Name), Is.EqualTo(new[] { "alpha", "beta", "gamma" }));
            Assert.That(suite.Select([]).Select(c => c.Name), Is.EqualTo(new[] { "alpha", "beta", "gamma" }));
        }
    }

    [Test]
    public void Select_RepeatedOptionsAndCommaLists_InGivenOrder_WithoutDuplicates()
    {
        BenchSuite suite = LoadThreeCases();

        IReadOnlyList<BenchCase> selected = suite.Select(["gamma,alpha", " gamma ", "beta , alpha", "gamma"]);

        Assert.That(selected.Select(c => c.Name), Is.EqualTo(new[] { "gamma", "alpha", "beta" }));
    }

    [Test]
    public void Select_EmptyCommaEntries_AreIgnored()
    {
        BenchSuite suite = LoadThreeCases();

        Assert.That(suite.Select([",beta,,"]).Select(c => c.Name), Is.EqualTo(new[] { "beta" }));
    }

    [TestCase("delta")]
    [TestCase("Alpha")]
    [TestCase("alph")]
    public void Select_UnknownName_ListsValidNames(string unknown)
    {
        BenchSuite suite = LoadThreeCases();

        var error = Assert.Throws<UsageException>(() => suite.Select(["alpha", unknown]));

        Assert.That(error!.Message, Is.EqualTo($"unknown case '{unknown}'; valid cases: alpha, beta, gamma"));
    }

    private BenchSuite LoadThreeCases() => BenchSuite.Load(_temp.Write("suite.json", SuiteFiles.SuiteJson(
        "three",
        SuiteFiles.CaseJson("alpha", 1, 128, 128, [1]),
        SuiteFiles.CaseJson("beta", 2, 128, 128, [1, 2]),
        SuiteFiles.CaseJson("gamma", 3, 128, 128, [1, 2, 3]))));

    [Test]
    public void AdversarialSuite_LoadsWithTheThreeDistributionsOfIssue12_PerShape()
    {
        // bench/adversarial-suite.json (tools/adversarial_suite.py): one expert holding every row, every other expert
        // empty, and a Zipf skew, over four shapes of the main suite.
        BenchSuite suite = BenchSuite.Load(ChartFileChecks.Fixture("../adversarial-suite.json"));

        Assert.That(suite.Cases, Has.Count.EqualTo(12));
        foreach (BenchCase c in suite.Cases)
        {
            int busy = c.RowsPerExpert.Count(r => r > 0);
            int total = c.RowsPerExpert.Sum();
            if (c.Name.Contains("-onehot", StringComparison.Ordinal))
            {
                Assert.That(busy, Is.EqualTo(1), c.Name);
            }
            else if (c.Name.Contains("-halfempty", StringComparison.Ordinal))
            {
                Assert.That(busy, Is.EqualTo(c.Experts / 2), c.Name);
            }
            else
            {
                Assert.That(c.Name, Does.Contain("-zipf"));
                Assert.That(c.RowsPerExpert.Max(), Is.GreaterThan(4 * total / c.Experts), c.Name + ": skewed");
            }
        }
    }

    [Test]
    public void GroupSwitchSuite_HoldsTheTileCountFixedWhileTheExpertCountVaries()
    {
        // bench/group-switch-suite.json (tools/group_switch_suite.py): the per-switch cost of issue 12 is the time
        // difference between E = 1 and E = 256 at the same tile count, so every case of one K must have the same
        // rows, N and 128-row tiles.
        BenchSuite suite = BenchSuite.Load(ChartFileChecks.Fixture("../group-switch-suite.json"));

        Assert.That(suite.Cases, Has.Count.EqualTo(8));
        foreach (var depth in suite.Cases.GroupBy(c => c.K))
        {
            Assert.That(depth.Select(c => c.Experts), Is.EquivalentTo(new[] { 1, 8, 32, 256 }), $"K {depth.Key}");
            Assert.That(depth.Select(c => c.N).Distinct().Count(), Is.EqualTo(1));
            Assert.That(depth.Select(c => c.RowsPerExpert.Sum(r => (r + 127) / 128)).Distinct().Count(), Is.EqualTo(1),
                "the same number of 128-row tiles for every E");
        }
    }
}
