using MoeCutlass.Cli.Bench;

namespace MoeCutlass.Tests.Cli;

/// <summary>Timing statistics, speedups and the CSV result file.</summary>
[TestFixture]
public sealed class ResultTests
{
    [Test]
    public void TimingSummary_OddCount_MedianIsTheMiddleSample()
    {
        TimingSummary summary = TimingSummary.Of([5.0, 1.0, 3.0, 9.0, 7.0]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(summary.Median, Is.EqualTo(5.0));
            Assert.That(summary.Min, Is.EqualTo(1.0));
            Assert.That(summary.Mean, Is.EqualTo(5.0));
            Assert.That(summary.Count, Is.EqualTo(5));

            // position 0.9 * (5 - 1) = 3.6 between 7 and 9.
            Assert.That(summary.P90, Is.EqualTo(8.2).Within(1e-12));
        }
    }

    [Test]
    public void TimingSummary_EvenCount_MedianInterpolatesTheTwoMiddleSamples()
    {
        TimingSummary summary = TimingSummary.Of([40.0, 10.0, 30.0, 20.0]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(summary.Median, Is.EqualTo(25.0));
            Assert.That(summary.Min, Is.EqualTo(10.0));
            Assert.That(summary.Mean, Is.EqualTo(25.0));

            // Position 0.9 * 3 = 2.7 between 30 and 40.
            Assert.That(summary.P90, Is.EqualTo(37.0).Within(1e-12));
        }
    }

    [Test]
    public void TimingSummary_TenSamples_P90()
    {
        double[] samples = [.. Enumerable.Range(1, 10).Select(i => (double)i).Reverse()];

        TimingSummary summary = TimingSummary.Of(samples);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(summary.Median, Is.EqualTo(5.5));
            Assert.That(summary.P90, Is.EqualTo(9.1).Within(1e-12));
        }
    }

    [Test]
    public void TimingSummary_SingleSample_IsEveryStatistic()
    {
        TimingSummary summary = TimingSummary.Of([42.5]);

        Assert.That(summary, Is.EqualTo(new TimingSummary(42.5, 42.5, 42.5, 42.5, 1)));
    }

    [Test]
    public void TimingSummary_NoSamples_Throws()
    {
        Assert.That(() => TimingSummary.Of([]), Throws.ArgumentException);
    }

    [Test]
    public void TimingSummary_DoesNotReorderTheCallersSamples()
    {
        double[] samples = [3.0, 1.0, 2.0];

        TimingSummary.Of(samples);

        Assert.That(samples, Is.EqualTo(new[] { 3.0, 1.0, 2.0 }));
    }

    [Test]
    public void Speedups_AreRelativeToSingleOfTheSameCase()
    {
        BenchResult[] results =
        [
            Result("a", "single", 100),
            Result("a", "expert_specialized", 50),
            Result("a", "auto", 200),
            Result("b", "single", 30),
            Result("b", "expert_specialized", 60),
        ];

        IReadOnlyList<BenchResult> applied = Speedups.Apply(results);

        Assert.That(applied.Select(r => r.SpeedupVsSingle), Is.EqualTo(new double?[] { 1.0, 2.0, 0.5, 1.0, 0.5 }));
    }

    [Test]
    public void Speedups_AreNull_WhenSingleIsMissingOrFailed()
    {
        BenchResult[] results =
        [
            Result("no-single", "expert_specialized", 50) with { SpeedupVsSingle = 9.9 },
            Result("failed-single", "single", null) with { Error = "boom" },
            Result("failed-single", "expert_specialized", 40),
            Result("ok", "single", 10),
            Result("ok", "expert_specialized", null) with { Error = "boom" },
        ];

        IReadOnlyList<BenchResult> applied = Speedups.Apply(results);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(applied, Has.Count.EqualTo(5));
            Assert.That(applied[0].SpeedupVsSingle, Is.Null, "no single run: a stale value is cleared too");
            Assert.That(applied[1].SpeedupVsSingle, Is.Null);
            Assert.That(applied[2].SpeedupVsSingle, Is.Null, "single failed");
            Assert.That(applied[3].SpeedupVsSingle, Is.EqualTo(1.0));
            Assert.That(applied[4].SpeedupVsSingle, Is.Null, "this strategy failed");
        }
    }

    [TestCase("plain", "plain")]
    [TestCase("", "")]
    [TestCase("E=8 of 32, rows=256 of 8192", "\"E=8 of 32, rows=256 of 8192\"")]
    [TestCase("say \"hi\"", "\"say \"\"hi\"\"\"")]
    [TestCase("line1\nline2", "\"line1\nline2\"")]
    [TestCase("cr\rhere", "\"cr\rhere\"")]
    [TestCase("a;b", "a;b")]
    public void CsvEscape_QuotesOnlyWhenNeeded_AndDoublesQuotes(string field, string expected)
    {
        Assert.That(ResultWriters.Escape(field), Is.EqualTo(expected));
    }

    [Test]
    public void WriteCsv_HeaderAndOneRowPerResult_FieldsRoundTrip()
    {
        using var temp = new TempDirectory();
        string path = temp.Combine("nested", "out.csv");
        BenchResult[] results =
        [
            Result("case,with comma", "single", 12.5) with { ScaleNote = "E=8 of 32, rows=256 of 8192", Kernels = "k1;k2" },
            Result("quoted \"name\"", "expert_specialized", null) with { Error = "failed:\nsecond line" },
        ];

        ResultWriters.WriteCsv(path, results);
        List<string[]> rows = ParseCsv(File.ReadAllText(path));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(rows, Has.Count.EqualTo(3));
            Assert.That(rows[0][0], Is.EqualTo("case"));
            Assert.That(rows[0], Has.Member("time_median_us").And.Member("speedup_vs_single").And.Member("error"));
            Assert.That(rows.Select(r => r.Length), Is.All.EqualTo(rows[0].Length), "every row has every column");
            Assert.That(Column(rows, 1, "case"), Is.EqualTo("case,with comma"));
            Assert.That(Column(rows, 1, "scale_note"), Is.EqualTo("E=8 of 32, rows=256 of 8192"));
            Assert.That(Column(rows, 1, "time_median_us"), Is.EqualTo("12.5"));
            Assert.That(Column(rows, 1, "kernels"), Is.EqualTo("k1;k2"));
            Assert.That(Column(rows, 1, "scaled"), Is.EqualTo("false"));
            Assert.That(Column(rows, 2, "case"), Is.EqualTo("quoted \"name\""));
            Assert.That(Column(rows, 2, "time_median_us"), Is.Empty, "a missing number is an empty cell");
            Assert.That(Column(rows, 2, "error"), Is.EqualTo("failed:\nsecond line"));
        }
    }

    /// <summary>A minimal result record with <paramref name="medianUs"/> as the median time.</summary>
    internal static BenchResult Result(string caseName, string strategy, double? medianUs) => new()
    {
        Case = caseName,
        Model = "m",
        Gemm = "g",
        Backend = "cpu",
        Strategy = strategy,
        OutputDtype = "bf16",
        Experts = 8,
        ActiveExperts = 8,
        N = 128,
        K = 128,
        Rows = 16,
        Scaled = false,
        CaseExperts = 8,
        CaseN = 128,
        CaseRows = 16,
        Timing = new Timing { Iterations = 3, Warmup = 1, MedianUs = medianUs },
        Flops = 1,
        Bytes = 1,
        RooflineBound = "memory",
    };

    private static string Column(List<string[]> rows, int row, string name) => rows[row][Array.IndexOf(rows[0], name)];

    /// <summary>RFC 4180 reader (quoted fields may hold commas, doubled quotes and line breaks).</summary>
    private static List<string[]> ParseCsv(string text)
    {
        var records = new List<string[]>();
        var fields = new List<string>();
        var field = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\n')
            {
                fields.Add(field.ToString());
                field.Clear();
                records.Add([.. fields]);
                fields.Clear();
            }
            else
            {
                field.Append(c);
            }
        }

        Assert.That(quoted, Is.False, "unterminated quoted field");
        Assert.That(field.Length + fields.Count, Is.Zero, "the file ends with a line break");
        return records;
    }
}
