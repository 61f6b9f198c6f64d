using System.Text.Json;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// The real <c>moecutlass</c> entry point as a child process (Program.Main writes to the process's own stdout and
/// stderr, so it is not run in-process). Every run uses a synthetic suite in a temp directory and a hard timeout.
/// </summary>
[TestFixture]
public sealed class CliEndToEndTests : NativeTestBase
{
    private TempDirectory _temp = null!;
    private string _suite = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = new TempDirectory();
        _suite = _temp.Write("suite.json", SuiteFiles.SmallSuite());
    }

    [TearDown]
    public void TearDown() => _temp.Dispose();

    [Test]
    public async Task Bench_UnknownCase_OneErrorLine_ListingValidCases()
    {
        // The suite comes from MOECUTLASS_SUITE here (the other tests pass --suite).
        CliRun run = await CliProcess.RunAsync(
            _temp.Path,
            ["bench", "--case", "no-such-case"],
            new Dictionary<string, string?> { ["MOECUTLASS_SUITE"] = _suite });

        AssertUsageError(run, "error: unknown case 'no-such-case'; valid cases: tiny, other");
    }

    [Test]
    public async Task Bench_MissingSuiteFile_OneErrorLine()
    {
        string missing = _temp.Combine("missing", "suite.json");

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--suite", missing, "--case", "tiny"]);

        AssertUsageError(run, $"error: suite file not found: {missing} (from --suite)");
    }

    [Test]
    public async Task Bench_UnknownStrategy_OneErrorLine()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--suite", _suite, "--case", "tiny", "--strategy", "fastest"]);

        AssertUsageError(run, "error: unknown strategy 'fastest' (valid: auto, single, expert_specialized, persistent, cublas, all)");
    }

    [Test]
    public async Task Bench_SmallCase_WritesJsonAndCsv_WithOneRecordPerStrategy()
    {
        Directory.CreateDirectory(_temp.Combine("out"));
        string json = _temp.Combine("out", "results.json");
        string csv = _temp.Combine("out", "results.csv");

        CliRun run = await CliProcess.RunAsync(
            _temp.Path,
            // The CLI's plumbing is under test here, so the CPU backend pins it on GPU runners too.
            ["bench", "--suite", _suite, "--case", "tiny", "--backend", "cpu", "--iterations", "1", "--warmup", "0", "--json", json, "--csv", csv]);

        Assert.That(run.ExitCode, Is.Zero, run.ToString());
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(json));
        JsonElement meta = document.RootElement.GetProperty("run");
        JsonElement[] records = [.. document.RootElement.GetProperty("results").EnumerateArray()];
        bool cpu = meta.GetProperty("backend").GetString() == "cpu";
        string[] csvLines = File.ReadAllLines(csv);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.StandardError, Does.Not.Contain("error:"), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("wrote " + json).And.Contain("wrote " + csv));
            if (cpu)
            {
                Assert.That(run.StandardOutput, Does.Contain("CPU reference backend: cases scaled to at most 8 experts and 256 rows"), run.ToString());
                Assert.That(run.StandardOutput, Does.Contain("(scaled: E=8 of 16, rows=256 of 600)"), run.ToString());
                Assert.That(run.StandardOutput, Does.Contain("graph mode: needs the CUDA backend; only eager runs are timed"), run.ToString());
                Assert.That(run.StandardOutput, Does.Not.Contain("Graph µs"), "no graph columns without graph timings");
                Assert.That(run.StandardOutput, Does.Contain("roofline:   none (CPU backend: no device ceilings)"), run.ToString());
                Assert.That(run.StandardOutput, Does.Not.Contain("% of"), "no roofline column without ceilings");
                Assert.That(meta.GetProperty("roofline").ValueKind, Is.EqualTo(JsonValueKind.Null));
            }

            // Run metadata.
            Assert.That(meta.GetProperty("iterations").GetInt32(), Is.EqualTo(1));
            Assert.That(meta.GetProperty("warmup").GetInt32(), Is.Zero);
            Assert.That(meta.GetProperty("seed").GetUInt64(), Is.EqualTo(20261121UL));
            // Recorded relative to the working directory the CLI ran in (the temporary directory that holds the suite).
            Assert.That(meta.GetProperty("suite").GetString(), Is.EqualTo(Path.GetFileName(_suite)));
            Assert.That(meta.GetProperty("library_version").GetString(), Is.EqualTo(MoeCutlassLibrary.BuildInfo.Version));
            Assert.That(meta.GetProperty("library_abi_version").GetInt32(), Is.EqualTo(MoeCutlassLibrary.BuildInfo.AbiVersion));
            Assert.That(meta.GetProperty("tool_version").GetString(), Is.Not.Empty);
            Assert.That(meta.GetProperty("machine").GetString(), Is.Not.Empty);
            Assert.That(meta.GetProperty("timestamp_utc").GetDateTimeOffset(), Is.EqualTo(DateTimeOffset.UtcNow).Within(TimeSpan.FromMinutes(10)));
            // Graph mode is on by default; the CPU backend cannot capture graphs, so it says so once and times eager runs.
            Assert.That(meta.GetProperty("graph_mode").GetString(), Is.EqualTo(cpu ? "unavailable" : "on"));
            Assert.That(meta.GetProperty("note").ValueKind, Is.EqualTo(cpu ? JsonValueKind.String : JsonValueKind.Null));

            // One record per default strategy, each with positive times.
            Assert.That(records.Select(r => r.GetProperty("strategy").GetString()), Is.EqualTo(new[] { "single", "expert_specialized" }));
            foreach (JsonElement record in records)
            {
                string label = record.GetProperty("strategy").GetString()!;
                Assert.That(record.GetProperty("case").GetString(), Is.EqualTo("tiny"), label);
                Assert.That(record.GetProperty("error").ValueKind, Is.EqualTo(JsonValueKind.Null), label);
                Assert.That(record.GetProperty("iterations").GetInt32(), Is.EqualTo(1), label);
                Assert.That(record.GetProperty("time_median_us").GetDouble(), Is.Positive, label);
                Assert.That(record.GetProperty("time_min_us").GetDouble(), Is.Positive, label);
                Assert.That(record.GetProperty("time_p90_us").GetDouble(), Is.Positive, label);
                Assert.That(record.GetProperty("host_median_us").GetDouble(), Is.Positive, label);
                Assert.That(record.GetProperty("tflops").GetDouble(), Is.Positive, label);
                Assert.That(record.GetProperty("gbps").GetDouble(), Is.Positive, label);
                Assert.That(record.GetProperty("speedup_vs_single").GetDouble(), Is.Positive, label);
                Assert.That(record.GetProperty("case_experts").GetInt32(), Is.EqualTo(16), label);
                Assert.That(record.GetProperty("case_rows").GetInt32(), Is.EqualTo(600), label);
                if (cpu)
                {
                    Assert.That(record.GetProperty("graph_time_median_us").ValueKind, Is.EqualTo(JsonValueKind.Null), label);
                    Assert.That(record.GetProperty("graph_tflops").ValueKind, Is.EqualTo(JsonValueKind.Null), label);
                    Assert.That(record.GetProperty("graph_error").ValueKind, Is.EqualTo(JsonValueKind.Null), label);
                    Assert.That(record.GetProperty("scaled").GetBoolean(), Is.True, label);
                    Assert.That(record.GetProperty("experts").GetInt32(), Is.EqualTo(8), label);
                    Assert.That(record.GetProperty("rows").GetInt32(), Is.EqualTo(256), label);
                    Assert.That(record.GetProperty("scale_note").GetString(), Is.EqualTo("E=8 of 16, rows=256 of 600"), label);
                    Assert.That(record.GetProperty("roofline_percent").ValueKind, Is.EqualTo(JsonValueKind.Null), label);
                    Assert.That(record.GetProperty("roofline_bound").ValueKind, Is.EqualTo(JsonValueKind.Null), label);
                }
            }

            Assert.That(records[0].GetProperty("speedup_vs_single").GetDouble(), Is.EqualTo(1.0));

            // CSV: a header and the same two records.
            Assert.That(csvLines, Has.Length.EqualTo(3));
            Assert.That(csvLines[0], Does.StartWith("case,model,gemm,backend,strategy,"));
            Assert.That(csvLines[0], Does.Contain(",time_median_us,").And.Contain(",graph_time_median_us,").And.Contain(",graph_tflops,"));
            Assert.That(csvLines[1], Does.StartWith("tiny,").And.Contain(",single,"));
            Assert.That(csvLines[2], Does.StartWith("tiny,").And.Contain(",expert_specialized,"));
        }
    }

    [Test]
    public async Task Bench_NoGraph_TurnsGraphModeOff_WithoutANote()
    {
        (CliRun run, JsonDocument parsed) = await RunTinySingleBenchAsync("nograph.json", "--no-graph");
        using JsonDocument document = parsed;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(document.RootElement.GetProperty("run").GetProperty("graph_mode").GetString(), Is.EqualTo("off"));
            Assert.That(run.StandardOutput, Does.Not.Contain("graph mode"), run.ToString());
        }
    }

    [Test]
    public async Task Bench_Config_TimesAForcedConfigurationInBothKernels()
    {
        (CliRun run, JsonDocument parsed) = await RunTinySingleBenchAsync(
            "forced.json", "--config", "swap_128x32x128_c2x1_pingpong,persistent:swap_128x32x128_c2x1_pingpong");
        using JsonDocument document = parsed;
        string?[] strategies = document.RootElement.GetProperty("results").EnumerateArray()
            .Select(r => r.GetProperty("strategy").GetString()).ToArray();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(strategies, Is.EquivalentTo(new[] { "single", "swap_128x32x128_c2x1_pingpong", "persistent:swap_128x32x128_c2x1_pingpong" }));
        }
    }

    [Test]
    public async Task Bench_Config_UnknownPersistentNameIsAUsageError()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--suite", _suite, "--case", "tiny", "--config", "persistent:tile_1x1"]);

        Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
        Assert.That(run.StandardError, Does.Contain("--config: 'tile_1x1' is not a kernel configuration"), run.ToString());
    }

    [Test]
    public async Task Bench_GraphAndNoGraph_OneErrorLine()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--suite", _suite, "--case", "tiny", "--graph", "--no-graph"]);

        AssertUsageError(run, "error: --graph and --no-graph contradict each other; give one of them");
    }

    [Test]
    public async Task Verify_SmallCase_Passes()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["verify", "--suite", _suite, "--case", "tiny", "--backend", "cpu"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("4 passed, 0 failed, 0 error(s) of 4 checks"), run.ToString());
            Assert.That(run.StandardOutput, Does.Not.Contain("FAIL"));
            Assert.That(run.StandardError, Is.Empty, run.ToString());
        }
    }

    [Test]
    public async Task Verify_Cublas_OnTheCpu_MatchesTheReference()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["verify", "--suite", _suite, "--case", "tiny", "--backend", "cpu", "-s", "cublas"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("1 passed, 0 failed, 0 error(s) of 1 checks"), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("cublas"), run.ToString());
            Assert.That(run.StandardError, Is.Empty, run.ToString());
        }
    }

    [Test]
    public async Task Bench_Cublas_IsTimedNextToSingle()
    {
        (CliRun run, JsonDocument parsed) = await RunTinySingleBenchAsync("cublas.json", "--strategy", "cublas");
        using JsonDocument document = parsed;
        JsonElement[] records = [.. document.RootElement.GetProperty("results").EnumerateArray()];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(records.Select(r => r.GetProperty("strategy").GetString()), Is.EqualTo(new[] { "single", "cublas" }));
            Assert.That(records.Select(r => r.GetProperty("error").ValueKind), Is.All.EqualTo(JsonValueKind.Null));
            Assert.That(records[1].GetProperty("time_median_us").GetDouble(), Is.Positive);
        }
    }

    [Test]
    public async Task Bench_CublasStatic_IsTimedAfterTheStrategies()
    {
        (CliRun run, JsonDocument parsed) = await RunTinySingleBenchAsync("cublas-static.json", "--strategy", "cublas", "--cublas-static");
        using JsonDocument document = parsed;
        JsonElement[] records = [.. document.RootElement.GetProperty("results").EnumerateArray()];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(records.Select(r => r.GetProperty("strategy").GetString()), Is.EqualTo(new[] { "single", "cublas", "cublas_static" }));
            Assert.That(records.Select(r => r.GetProperty("error").ValueKind), Is.All.EqualTo(JsonValueKind.Null));
            Assert.That(records[2].GetProperty("time_median_us").GetDouble(), Is.Positive);
        }
    }

    [Test]
    public async Task BenchLayer_CublasStatic_IsAUsageError()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--layer", "--suite", _suite, "--backend", "cpu", "--cublas-static"]);

        AssertUsageErrorStartingWith(run, "error: --cublas-static: the layer's cublas GEMMs always keep their weights dequantized");
    }

    [Test]
    public async Task Info_MentionsTheLibraryVersion()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["info"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.Zero, run.ToString());
            Assert.That(run.StandardOutput, Does.Contain("Version").And.Contain(MoeCutlassLibrary.BuildInfo.Version), run.ToString());
            Assert.That(run.StandardOutput, Does.Contain(MoeCutlassLibrary.LoadedPath));
            Assert.That(run.StandardOutput, Does.Contain("bench would use:"));
            Assert.That(run.StandardError, Is.Empty, run.ToString());
        }
    }

    /// <summary>Exit code 2, exactly one stderr line (the expected one), no stack trace, nothing on stdout.</summary>
    [Test]
    public async Task Bench_JsonNotWritable_FailsBeforeTheRun_NamingTheOption()
    {
        Assume.That(OperatingSystem.IsLinux(), "/proc refuses new files on Linux");

        CliRun run = await CliProcess.RunAsync(
            _temp.Path, ["bench", "--suite", _suite, "--case", "tiny", "--backend", "cpu", "--json", "/proc/x.json"]);

        AssertUsageErrorStartingWith(run, "error: --json /proc/x.json cannot be written: ");
    }

    [Test]
    public async Task Bench_JsonInAMissingDirectory_IsAnError_AndCreatesNothing()
    {
        string json = _temp.Combine("nonexistent", "dir", "x.json");

        CliRun run = await CliProcess.RunAsync(
            _temp.Path, ["bench", "--suite", _suite, "--case", "tiny", "--backend", "cpu", "--iterations", "1", "--json", json]);

        AssertUsageError(run, $"error: --json {json}: directory {_temp.Combine("nonexistent", "dir")} does not exist (create it first)");
        Assert.That(Directory.Exists(_temp.Combine("nonexistent")), Is.False, "no directory is created");
    }

    [Test]
    public async Task Bench_CsvInAMissingDirectory_IsAnError()
    {
        string csv = _temp.Combine("missing", "x.csv");

        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--suite", _suite, "--case", "tiny", "--csv", csv]);

        AssertUsageError(run, $"error: --csv {csv}: directory {_temp.Combine("missing")} does not exist (create it first)");
    }

    [Test]
    public async Task UnknownCommand_NamesIt_AndListsTheCommands()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["frobnicate"]);

        AssertUsageError(run, "error: unknown command 'frobnicate'; commands: info, bench, tune, verify, plot, scale (see 'moecutlass --help')");
    }

    [Test]
    public async Task NoCommand_SaysSo_AndListsTheCommands()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, []);

        AssertUsageError(run, "error: no command given; commands: info, bench, tune, verify, plot, scale (see 'moecutlass --help')");
    }

    [TestCase("bench")]
    [TestCase("verify")]
    public async Task Device_OnTheCpuBackend_IsAnError(string command)
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, [command, "--suite", _suite, "--case", "tiny", "--backend", "cpu", "--device", "3"]);

        AssertUsageError(run, "error: --device 3 selects a CUDA device, but this run uses the CPU backend; "
            + "drop --device, or use --backend cuda on a machine with CUDA devices");
    }

    [Test]
    public async Task Bench_SuitePathIsADirectory_SaysSo()
    {
        CliRun run = await CliProcess.RunAsync(_temp.Path, ["bench", "--suite", _temp.Path, "--case", "tiny"]);

        AssertUsageError(run, $"error: suite path is a directory, not a file: {_temp.Path} (from --suite; give the suite's .json file)");
    }

    private static void AssertUsageErrorStartingWith(CliRun run, string expectedStart)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
            Assert.That(run.ErrorLines, Has.Length.EqualTo(1), run.ToString());
            Assert.That(run.StandardError, Does.StartWith(expectedStart), run.ToString());
            Assert.That(run.StandardOutput, Is.Empty, "usage errors come before any report");
        }
    }

    private static void AssertUsageError(CliRun run, string expectedLine)
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(run.ExitCode, Is.EqualTo(2), run.ToString());
            Assert.That(run.ErrorLines, Is.EqualTo(new[] { expectedLine }), run.ToString());
            Assert.That(run.StandardError, Is.EqualTo(expectedLine + Environment.NewLine), "exactly one line, no blank lines");
            Assert.That(run.StandardError + run.StandardOutput, Does.Not.Contain("   at "), "no stack trace");
            Assert.That(run.StandardError, Does.Not.Contain("Exception"), "no exception type names");
            Assert.That(run.StandardOutput, Is.Empty, "usage errors come before any report");
        }
    }

    // One timed iteration of strategy single on the tiny case on the CPU backend, with extra options; the JSON it wrote.
    private async Task<(CliRun Run, JsonDocument Json)> RunTinySingleBenchAsync(string jsonName, params string[] options)
    {
        string json = _temp.Combine(jsonName);
        CliRun run = await CliProcess.RunAsync(
            _temp.Path,
            ["bench", "--suite", _suite, "--case", "tiny", "--backend", "cpu", "--strategy", "single", "--iterations", "1", "--warmup", "0",
                .. options, "--json", json]);
        return (run, JsonDocument.Parse(File.ReadAllText(json)));
    }
}
