using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Tests.Cli;

/// <summary>--strategy, --dtype, --backend and the shared list/range helpers.</summary>
[TestFixture]
public sealed class OptionParsingTests
{
    private static readonly IReadOnlyList<GemmStrategy> Defaults = [GemmStrategy.Single, GemmStrategy.ExpertSpecialized];

    [Test]
    public void Strategy_All_IsEveryStrategyButCublasInReportOrder()
    {
        // cublas stays out of 'all' (verify's default): it is the baseline, run by name, with its own bf16 tolerance.
        Assert.That(StrategySelection.Parse(["all"], Defaults),
            Is.EqualTo(new[] { GemmStrategy.Single, GemmStrategy.ExpertSpecialized, GemmStrategy.Persistent, GemmStrategy.Auto }));
    }

    [Test]
    public void Strategy_CublasByName_JoinsAllInReportOrder()
    {
        Assert.That(StrategySelection.Parse(["auto,cublas", "all"], Defaults),
            Is.EqualTo(new[] { GemmStrategy.Single, GemmStrategy.ExpertSpecialized, GemmStrategy.Persistent, GemmStrategy.Cublas, GemmStrategy.Auto }));
    }

    [Test]
    public void Strategy_NothingGiven_IsTheDefaults()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(StrategySelection.Parse(null, Defaults), Is.SameAs(Defaults));
            Assert.That(StrategySelection.Parse([], Defaults), Is.SameAs(Defaults));
        }
    }

    [Test]
    public void Strategy_RepeatsAndCommaLists_AreMergedWithoutDuplicates_InReportOrder()
    {
        IReadOnlyList<GemmStrategy> parsed = StrategySelection.Parse(["auto,single", "single", " es "], Defaults);

        Assert.That(parsed, Is.EqualTo(new[] { GemmStrategy.Single, GemmStrategy.ExpertSpecialized, GemmStrategy.Auto }));
    }

    [TestCase("single", GemmStrategy.Single)]
    [TestCase("SINGLE", GemmStrategy.Single)]
    [TestCase("auto", GemmStrategy.Auto)]
    [TestCase("expert_specialized", GemmStrategy.ExpertSpecialized)]
    [TestCase("expert-specialized", GemmStrategy.ExpertSpecialized)]
    [TestCase("es", GemmStrategy.ExpertSpecialized)]
    [TestCase("persistent", GemmStrategy.Persistent)]
    [TestCase("cublas", GemmStrategy.Cublas)]
    [TestCase("cuBLAS", GemmStrategy.Cublas)]
    public void Strategy_SingleName(string value, GemmStrategy expected)
    {
        Assert.That(StrategySelection.Parse([value], Defaults), Is.EqualTo(new[] { expected }));
    }

    [Test]
    public void Strategy_AllPlusRepeats_IsStillEachStrategyOnce()
    {
        Assert.That(StrategySelection.Parse(["single", "all", "auto,all"], Defaults), Has.Count.EqualTo(4).And.Unique);
    }

    [TestCase("fastest")]
    [TestCase("single,fastest")]
    [TestCase("singel")]
    public void Strategy_UnknownValue_IsUsageError_ListingValidValues(string value)
    {
        var error = Assert.Throws<UsageException>(() => StrategySelection.Parse([value], Defaults));

        Assert.That(error!.Message, Does.StartWith("unknown strategy '").And.EndWith("' (valid: auto, single, expert_specialized, persistent, cublas, all)"));
    }

    [Test]
    public void Strategy_Names_RoundTripThroughParse()
    {
        Assert.That(StrategySelection.Name(GemmStrategy.Cublas), Is.EqualTo("cublas"));
        foreach (GemmStrategy strategy in Enum.GetValues<GemmStrategy>())
        {
            Assert.That(StrategySelection.Parse([StrategySelection.Name(strategy)], Defaults), Is.EqualTo(new[] { strategy }));
        }
    }

    [TestCase(null, DType.BFloat16)]
    [TestCase("", DType.BFloat16)]
    [TestCase("bf16", DType.BFloat16)]
    [TestCase(" BF16 ", DType.BFloat16)]
    [TestCase("bfloat16", DType.BFloat16)]
    [TestCase("fp16", DType.Float16)]
    [TestCase("f16", DType.Float16)]
    [TestCase("float16", DType.Float16)]
    [TestCase("half", DType.Float16)]
    public void OutputDType_ValidValues(string? value, DType expected)
    {
        Assert.That(OutputDTypeSelection.Parse(value), Is.EqualTo(expected));
    }

    [TestCase("fp8")]
    [TestCase("fp32")]
    [TestCase("e4m3")]
    [TestCase("bf16,fp16")]
    public void OutputDType_OtherValues_AreUsageErrors(string value)
    {
        var error = Assert.Throws<UsageException>(() => OutputDTypeSelection.Parse(value));

        Assert.That(error!.Message, Is.EqualTo($"unknown output dtype '{value}' (valid: bf16, fp16)"));
    }

    [Test]
    public void OutputDType_Names()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(OutputDTypeSelection.Name(DType.BFloat16), Is.EqualTo("bf16"));
            Assert.That(OutputDTypeSelection.Name(DType.Float16), Is.EqualTo("fp16"));
        }
    }

    // BackendRequest is internal, so the expected value is given by name.
    [TestCase(null, "Auto")]
    [TestCase("auto", "Auto")]
    [TestCase("CPU", "Cpu")]
    [TestCase("cuda", "Cuda")]
    [TestCase("gpu", "Cuda")]
    public void Backend_ValidValues(string? value, string expected)
    {
        Assert.That(BackendSelection.Parse(value), Is.EqualTo(Enum.Parse<BackendRequest>(expected)));
    }

    [Test]
    public void Backend_UnknownValue_IsUsageError()
    {
        Assert.That(() => BackendSelection.Parse("tpu"), Throws.TypeOf<UsageException>().With.Message.EqualTo("unknown backend 'tpu' (valid: auto, cpu, cuda)"));
    }

    [Test]
    public void OptionLists_FlattenTrimAndDropEmptyEntries()
    {
        Assert.That(OptionLists.Split(["a, b", "", " ,c,", "a"]), Is.EqualTo(new[] { "a", "b", "c", "a" }));
    }

    [Test]
    public void OptionChecks_AtLeast()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(OptionChecks.AtLeast(1, "--iterations", 1), Is.EqualTo(1));
            Assert.That(OptionChecks.AtLeast((int?)null, "--warmup", 0), Is.Null);
            Assert.That(
                () => OptionChecks.AtLeast(0, "--iterations", 1),
                Throws.TypeOf<UsageException>().With.Message.EqualTo("--iterations must be >= 1 (got 0)"));
        }
    }

    [Test]
    public void OptionChecks_OutputFile_NeedsAnExistingDirectory_AndRejectsDirectories()
    {
        using var temp = new TempDirectory();
        string file = temp.Combine("me.json");
        string nested = temp.Combine("not", "made", "me.json");
        string existing = temp.Write("kept.csv", "old contents");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(OptionChecks.OutputFile(null, "--json"), Is.Null);
            Assert.That(OptionChecks.OutputFile(file, "--json"), Is.EqualTo(file));
            Assert.That(File.Exists(file), Is.False, "the writability probe leaves no file behind");
            Assert.That(OptionChecks.OutputFile(existing, "--csv"), Is.EqualTo(existing));
            Assert.That(File.ReadAllText(existing), Is.EqualTo("old contents"), "an existing file is not truncated by the probe");
            Assert.That(
                () => OptionChecks.OutputFile(nested, "--json"),
                Throws.TypeOf<UsageException>().With.Message.EqualTo($"--json {nested}: directory {temp.Combine("not", "made")} does not exist (create it first)"));
            Assert.That(Directory.Exists(temp.Combine("not")), Is.False, "no directory is created");
            Assert.That(() => OptionChecks.OutputFile(temp.Path, "--csv"), Throws.TypeOf<UsageException>().With.Message.Contains("is a directory"));
            Assert.That(() => OptionChecks.OutputFile(" ", "--csv"), Throws.TypeOf<UsageException>().With.Message.EqualTo("--csv needs a file path"));
        }
    }
}
