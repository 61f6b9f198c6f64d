using System.Diagnostics;
using System.Globalization;

namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// The CUDA grouped GEMM against the CPU reference backend on the same e4m3 bytes and scales (made by the CPU
/// quantizers, so these tests do not depend on the GPU quantizer): every strategy, both output dtypes, empty and
/// ragged experts, N and K that are not multiples of 128, skewed routing; rows outside the experts keep a canary;
/// two plans on two streams; corrupted offsets are clamped and flagged; host validation rejects bad calls without
/// writing. Runs on the GPU machine (ignored without a device, failed with MOECUTLASS_REQUIRE_GPU=1).
/// </summary>
/// <remarks>
/// Cost: the CPU reference of all correctness cases together is about 145 GFLOP (each case at most ~40 GFLOP, weight
/// stacks at most ~1 GB); with the problem generation this is well under a few minutes on the 16-core GPU machine.
/// </remarks>
[TestFixture, Category("Gpu"), NonParallelizable]
public sealed class CudaGroupedGemmTests : GpuTestBase
{
    /// <summary>Every strategy is run on every case (Auto and ExpertSpecialized may map to Single for now).</summary>
    internal static readonly GemmStrategy[] Strategies =
        [GemmStrategy.Single, GemmStrategy.Auto, GemmStrategy.ExpertSpecialized, GemmStrategy.Persistent];

    /// <summary>
    /// Expert specialization inside the persistent kernel: a forced list of three configurations, one persistent
    /// launch each, every launch walking only the experts of its range (run beside <see cref="Strategies"/>).
    /// </summary>
    private static readonly ConfigurationRange[] PersistentBuckets =
    [
        new("swap_128x32x128_c2x1_pingpong", 36), new("swap_128x64x128_c2x1_pingpong", 64),
        new("tile_128x128x128_c1x2_cooperative"),
    ];

    // Estimated CPU reference cost per (case, dtype), 2 * rows * N * K with the mean row count: see the comment per case.
    private static IEnumerable<TestCaseData> Cases()
    {
        DType[] both = [DType.BFloat16, DType.Float16];
        DType[] bf16 = [DType.BFloat16];
        var cases = new (GemmCase Case, DType[] DTypes)[]
        {
            // 0.004 GFLOP: one expert, N and K not multiples of 128 (partial scale blocks), rows before and after.
            (new("e1-n200-k272-m33", 200, 272, _ => [33], LeadingRows: 3, TrailingRows: 5), both),
            // 29 GFLOP: one large expert (1000 = 7 full 128-row tiles + 104), the ds-down shape.
            (new("e1-n7168-k2048-m1000", 7168, 2048, _ => [1000]), bf16),
            // 18 GFLOP: the edge list 0, 1, 7, 8, 33, 127, 128, 129, 1000 on the qwen3-down shape.
            (new("e9-edges-n4096-k1536", 4096, 1536, _ => RowLists.Edges(), LeadingRows: 5, TrailingRows: 11), both),
            // 1.2 GFLOP: the edge list with N = 392 and K = 1040 (both not multiples of 128).
            (new("e9-edges-n392-k1040", 392, 1040, _ => RowLists.Edges()), both),
            // 0.02 GFLOP: random small experts, K = 272, N = 200.
            (new("e8-n200-k272-m0to40", 200, 272, r => RowLists.Uniform(r, 8, 0, 40), LeadingRows: 2, TrailingRows: 3), both),
            // 1.9 GFLOP: the tp8 gate_up shape with 8 experts (deep K, fp16 range).
            (new("e8-n512-k7168-m0to64", 512, 7168, r => RowLists.Uniform(r, 8, 0, 64)), both),
            // 16 GFLOP (at most 32): N = 3072, K = 4096.
            (new("e8-n3072-k4096-m0to160", 3072, 4096, r => RowLists.Uniform(r, 8, 0, 160), TrailingRows: 7), bf16),
            // 0 GFLOP: every expert empty; every row of D keeps the canary.
            (new("e8-all-empty-n512-k7168", 512, 7168, _ => new int[8], LeadingRows: 4, TrailingRows: 4), both),
            // 15 GFLOP (at most 30), 940 MB of weights: the ds gate_up shape in decode (about 8 rows per expert).
            (new("e32-n4096-k7168-m0to16", 4096, 7168, r => RowLists.Uniform(r, 32, 0, 16)), bf16),
            // 19 GFLOP (at most 38), 470 MB of weights: the ds down shape.
            (new("e32-n7168-k2048-m0to40", 7168, 2048, r => RowLists.Uniform(r, 32, 0, 40), LeadingRows: 1), bf16),
            // 11 GFLOP, 940 MB: the tp8 gate_up shape, 80% of 256 experts empty, the rest zipf-like (about 1450 rows).
            (new("e256-n512-k7168-skewed", 512, 7168, r => RowLists.Skewed(r, 256, 0.8, 400)), bf16),
            // 3.8 GFLOP, 470 MB: the tp8 down shape, 256 experts with 0 .. 8 rows.
            (new("e256-n7168-k256-m0to8", 7168, 256, r => RowLists.Uniform(r, 256, 0, 8), LeadingRows: 1, TrailingRows: 2), both),
            // 2.9 GFLOP: 256 experts, 80% empty, zipf-like (about 3600 rows), N and K not multiples of 128.
            (new("e256-n392-k1040-skewed", 392, 1040, r => RowLists.Skewed(r, 256, 0.8, 1000), TrailingRows: 9), both),
        };
        foreach (var (gemmCase, dtypes) in cases)
        {
            foreach (var dtype in dtypes)
            {
                yield return new TestCaseData(gemmCase, dtype).SetArgDisplayNames(gemmCase.Name, dtype.ToString());
            }
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Run_MatchesCpuReference_ForEveryStrategy(GemmCase gemmCase, DType outputDType)
    {
        var random = NewRandom();
        var watch = Stopwatch.StartNew();
        var problem = GemmProblem.Create(Cpu, random, gemmCase.N, gemmCase.K, gemmCase.RowsPerExpert(random), gemmCase.LeadingRows,
            gemmCase.TrailingRows);
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{problem}; drawn and quantized in {watch.Elapsed.TotalSeconds:F1} s"));
        ushort[] reference = problem.Reference(Cpu, outputDType);
        watch.Restart();
        using var operands = new GemmOperands(Cuda, problem);
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"uploaded to the GPU in {watch.Elapsed.TotalSeconds:F1} s"));

        var failures = new List<string>();
        // cuBLAS, the baseline, with its own (bf16-operand) tolerance: dequantizing the experts with rows on each run,
        // and with StaticWeights (every expert once, then reused).
        var runs = Strategies.Select(s => (Label: s.ToString(), Options: problem.Options(outputDType, s))).Concat(
        [
            ("Persistent specialized", problem.Options(outputDType, GemmStrategy.Persistent) with { Configurations = PersistentBuckets }),
            ("Cublas", problem.Options(outputDType, GemmStrategy.Cublas)),
            ("Cublas static weights", problem.Options(outputDType, GemmStrategy.Cublas) with { StaticWeights = true }),
        ]);
        foreach (var (strategy, options) in runs)
        {
            double tolerance = options.Strategy == GemmStrategy.Cublas ? GemmCheck.CublasTolerance : GemmCheck.Tolerance(outputDType);
            try
            {
                using var plan = Cuda.CreateGroupedGemmPlan(options);
                operands.ResetOutput();
                watch.Restart();
                operands.Run(plan);
                ushort[] output = operands.ReadOutput();
                double seconds = watch.Elapsed.TotalSeconds;
                string? mismatch = GemmCheck.CompareExperts(problem, reference, output, outputDType, out double worst, tolerance);
                string? outside = GemmCheck.CheckRowsOutsideExperts(problem, output);
                var flags = Cuda.QueryDeviceErrors(reset: true);
                TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{strategy} [{plan.KernelList}]: worst expert relative error {worst:G3} (tolerance {tolerance:G2}), " +
                    $"run + read back {seconds * 1e3:F1} ms, device errors {flags}"));
                if (mismatch is not null)
                {
                    failures.Add($"{strategy}: {mismatch}");
                }

                if (outside is not null)
                {
                    failures.Add($"{strategy}: {outside}");
                }

                if (flags != DeviceErrorFlags.None)
                {
                    failures.Add($"{strategy}: valid offsets raised device error flags {flags}");
                }
            }
            catch (MoeCutlassException ex)
            {
                failures.Add($"{strategy}: {ex.GetType().Name} ({ex.Status}): {ex.Message}");
            }
        }

        Assert.That(failures, Is.Empty, $"{gemmCase.Name} {outputDType}: {problem}");
    }

    [Test]
    public void PlanInfo_NamesItsKernelsAndOwnsAWorkspace([ValueSource(nameof(Strategies))] GemmStrategy strategy,
        [Values(DType.BFloat16, DType.Float16)] DType outputDType)
    {
        var options = new GroupedGemmOptions(256, 7168, 256, outputDType, strategy, 16384);
        using var plan = Cuda.CreateGroupedGemmPlan(options);
        TestContext.Out.WriteLine($"{plan}: {plan.KernelCount} kernel(s), {plan.WorkspaceBytes} workspace bytes");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(plan.Options, Is.EqualTo(options));
            Assert.That(plan.Context, Is.SameAs(Cuda));
            Assert.That(plan.Kernels, Is.Not.Empty);
            Assert.That(plan.Kernels, Has.None.Empty);
            Assert.That(plan.KernelList, Does.Not.Contain("cpu"), "a CUDA plan names CUDA kernels");
            Assert.That(plan.KernelCount, Is.GreaterThanOrEqualTo(plan.Kernels.Count));
            // The pointer-array paths own per-expert arrays; the persistent one needs nothing on the device.
            Assert.That(plan.WorkspaceBytes, strategy == GemmStrategy.Persistent ? Is.EqualTo(0) : Is.GreaterThan(0));
        }
    }

    [Test]
    public void TwoPlans_OnTwoStreams_EnqueuedTogether_BothMatchTheReference()
    {
        // Different shapes, dtypes and strategies, each enqueued several times on its own stream, interleaved, before
        // either stream is synchronized: the plans must not share workspace or state.
        var random = NewRandom();
        var first = GemmProblem.Create(Cpu, random, 512, 7168, RowLists.Uniform(random, 16, 0, 100), leadingRows: 0, trailingRows: 3);
        var second = GemmProblem.Create(Cpu, random, 7168, 256, RowLists.Uniform(random, 64, 0, 32), leadingRows: 5, trailingRows: 0);
        TestContext.Out.WriteLine($"first: {first}\nsecond: {second}");
        ushort[] firstReference = first.Reference(Cpu, DType.BFloat16);
        ushort[] secondReference = second.Reference(Cpu, DType.Float16);
        using var firstOperands = new GemmOperands(Cuda, first);
        using var secondOperands = new GemmOperands(Cuda, second);
        using var firstPlan = Cuda.CreateGroupedGemmPlan(first.Options(DType.BFloat16, GemmStrategy.Single));
        using var secondPlan = Cuda.CreateGroupedGemmPlan(second.Options(DType.Float16, GemmStrategy.Auto));
        using var firstStream = Cuda.CreateStream();
        using var secondStream = Cuda.CreateStream();

        firstOperands.ResetOutput(firstStream);
        secondOperands.ResetOutput(secondStream);
        for (int i = 0; i < 5; i++)
        {
            firstOperands.Run(firstPlan, firstStream);
            secondOperands.Run(secondPlan, secondStream);
        }

        secondStream.Synchronize();
        firstStream.Synchronize();

        ushort[] firstOutput = firstOperands.ReadOutput();
        ushort[] secondOutput = secondOperands.ReadOutput();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(GemmCheck.CompareExperts(first, firstReference, firstOutput, DType.BFloat16, out double firstError), Is.Null, "first plan");
            Assert.That(GemmCheck.CheckRowsOutsideExperts(first, firstOutput), Is.Null, "first plan");
            Assert.That(GemmCheck.CompareExperts(second, secondReference, secondOutput, DType.Float16, out double secondError), Is.Null, "second plan");
            Assert.That(GemmCheck.CheckRowsOutsideExperts(second, secondOutput), Is.Null, "second plan");
            Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.None));
            TestContext.Out.WriteLine($"worst relative errors: first {firstError:G3}, second {secondError:G3}");
        }
    }

    [Test]
    public void Cublas_StaticWeights_MatchesDequantizingEveryRun_AsActivationsAndOffsetsChange()
    {
        // StaticWeights dequantizes B once (every expert) and then reuses it; without it the plan dequantizes only the
        // experts that have rows on each run. Same bf16 operands, same cuBLAS call: the same bits, run after run, also
        // when other experts get the rows (the ones skipped before must have been dequantized up front).
        var random = NewRandom();
        var problem = GemmProblem.Create(Cpu, random, 384, 512, [0, 40, 3, 0, 129, 1], leadingRows: 2, trailingRows: 3);
        using var operands = new GemmOperands(Cuda, problem);
        using var everyRun = Cuda.CreateGroupedGemmPlan(problem.Options(DType.BFloat16, GemmStrategy.Cublas));
        using var once = Cuda.CreateGroupedGemmPlan(problem.Options(DType.BFloat16, GemmStrategy.Cublas) with { StaticWeights = true });
        int[][] offsetLists =
        [
            problem.Offsets,
            [2, 60, 60, 100, 100, 170, 176],   // experts 0 and 3, empty before, get rows; 1 and 4 none
            [0, 0, 0, 0, 0, 0, 178],
        ];
        ushort[] reference = problem.Reference(Cpu, DType.BFloat16);
        for (int round = 0; round < offsetLists.Length; round++)
        {
            GemmProblem current = round == 0 ? problem : problem.WithNewActivations(Cpu, random).WithOffsets(offsetLists[round]);
            operands.Replace(current);
            operands.ResetOutput();
            operands.Run(everyRun);
            ushort[] expected = operands.ReadOutput();
            operands.ResetOutput();
            operands.Run(once);
            ushort[] got = operands.ReadOutput();
            Assert.That(got, Is.EqualTo(expected), $"round {round}: offsets {string.Join(',', offsetLists[round])}");
            if (round == 0)
            {
                // And the cuBLAS result is the product of these operands (bf16 tolerance), not merely self-consistent.
                Assert.That(GemmCheck.CompareExperts(problem, reference, got, DType.BFloat16, out double error, GemmCheck.CublasTolerance), Is.Null);
                TestContext.Out.WriteLine($"worst relative error against the reference: {error:G3}");
            }
        }

        Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.None));
    }

    // ---- corrupted offsets -------------------------------------------------------------------------------------

    /// <summary>Rows of the corrupted-offsets problem: 17 leading rows, experts 17 .. 150, 50 trailing rows.</summary>
    private const int CorruptRows = 200;

    private static IEnumerable<TestCaseData> CorruptOffsetCases()
    {
        const DeviceErrorFlags decreasing = DeviceErrorFlags.OffsetsNotMonotonic;
        const DeviceErrorFlags beyond = DeviceErrorFlags.OffsetsBeyondRows;
        const DeviceErrorFlags negative = DeviceErrorFlags.OffsetsNegative;
        static TestCaseData Case(string name, int[] offsets, DeviceErrorFlags expected) =>
            new TestCaseData(offsets, expected).SetArgDisplayNames(name, expected.ToString());

        yield return Case("decreasing", [0, 20, 60, 40, 90, 120, 150, 180, 200], decreasing);
        yield return Case("last-below-the-others", [17, 30, 60, 90, 120, 150, 180, 200, 0], decreasing);
        yield return Case("beyond-rows-by-one", [0, 25, 50, 75, 100, 125, 150, 175, CorruptRows + 1], beyond);
        yield return Case("beyond-rows-up-to-int-max", [0, 25, 50, 75, 100, 150, 1000, 100_000, int.MaxValue], beyond);
        yield return Case("all-beyond-rows", [250, 260, 270, 280, 290, 300, 310, 320, 330], beyond);
        yield return Case("negative-first", [-64, 20, 40, 60, 80, 100, 120, 140, 160], negative);
        yield return Case("int-min-first", [int.MinValue, 0, 0, 10, 20, 30, 40, 50, 60], negative);
        yield return Case("negative-inside", [0, 20, -5, 60, 80, 100, 120, 140, 160], negative | decreasing);
        yield return Case("all-three", [CorruptRows + 5, -1, int.MaxValue, 3, int.MinValue, 50, 40, 300, 100], negative | decreasing | beyond);
        // Not corrupt: offsets[0] > 0, empty experts and a gap after offsets[E] are valid and raise nothing.
        yield return Case("valid-offsets0-above-zero-with-gap", [17, 17, 40, 40, 90, 100, 100, 110, 150], DeviceErrorFlags.None);
    }

    [TestCaseSource(nameof(CorruptOffsetCases))]
    public void CorruptOffsets_AreClampedAndFlagged_NothingOutsideTheRowsIsWritten(int[] offsets, DeviceErrorFlags expected)
    {
        const int frontGuardRows = 32;
        var random = NewRandom();
        // The valid problem: offsets 17, 17, 40, 40, 90, 100, 100, 110, 150 over 200 rows, then 64 guard rows of D.
        var problem = GemmProblem.Create(Cpu, random, 256, 384, [0, 23, 0, 50, 10, 0, 10, 40], leadingRows: 17, trailingRows: 50,
            guardRows: 64);
        Assert.That(problem.Rows, Is.EqualTo(CorruptRows));
        ushort[] reference = problem.Reference(Cpu, DType.BFloat16);
        // D = [32 front guard rows][200 rows of the run][64 guard rows]; the run gets a pointer to its row 0.
        using var operands = new GemmOperands(Cuda, problem, frontGuardRows);
        using var corrupt = Cuda.Upload<int>(offsets);
        int n = problem.N;
        bool InsideTheRun(int row) => row >= frontGuardRows && row < frontGuardRows + problem.Rows;

        foreach (var strategy in Strategies)
        {
            using var plan = Cuda.CreateGroupedGemmPlan(problem.Options(DType.BFloat16, strategy));
            operands.ResetOutput();
            Assert.DoesNotThrow(() => operands.Run(plan, offsets: corrupt), $"{strategy}: the host cannot see device offsets; the run must be enqueued");
            var flags = Cuda.QueryDeviceErrors();
            ushort[] all = operands.ReadAll();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(flags, Is.EqualTo(expected), $"{strategy}: device error flags for offsets [{string.Join(", ", offsets)}]");
                Assert.That(Cuda.QueryDeviceErrors(), Is.EqualTo(expected), $"{strategy}: the flags stay set until reset");
                Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(expected), $"{strategy}: reset returns the flags");
                Assert.That(Cuda.QueryDeviceErrors(), Is.EqualTo(DeviceErrorFlags.None), $"{strategy}: reset clears the flags");
                Assert.That(GemmCheck.CheckCanary(all, n, InsideTheRun, $"D outside the run's {problem.Rows} rows (guards before and after)"),
                    Is.Null, strategy.ToString());
                Assert.That(Cuda.IsUsable, Is.True, $"{strategy}: clamped offsets leave the context usable");
            }

            if (expected == DeviceErrorFlags.None)
            {
                var valid = problem.WithOffsets(offsets);
                ushort[] output = all[(frontGuardRows * n)..];
                Assert.That(GemmCheck.CompareExperts(valid, valid.Reference(Cpu, DType.BFloat16), output, DType.BFloat16, out _), Is.Null,
                    $"{strategy}: valid offsets");
                Assert.That(GemmCheck.CheckRowsOutsideExperts(valid, output), Is.Null, $"{strategy}: valid offsets");
            }

            // The context and the plan keep working: a correct run right after is correct and raises nothing.
            operands.ResetOutput();
            operands.Run(plan);
            all = operands.ReadAll();
            ushort[] run = all[(frontGuardRows * n)..];
            using (Assert.EnterMultipleScope())
            {
                Assert.That(GemmCheck.CompareExperts(problem, reference, run, DType.BFloat16, out _), Is.Null, $"{strategy}: the correct run after");
                Assert.That(GemmCheck.CheckRowsOutsideExperts(problem, run), Is.Null, $"{strategy}: the correct run after");
                Assert.That(GemmCheck.CheckCanary(all, n, InsideTheRun, "the front guard"), Is.Null, $"{strategy}: the correct run after");
                Assert.That(Cuda.QueryDeviceErrors(), Is.EqualTo(DeviceErrorFlags.None), $"{strategy}: the correct run after");
            }
        }
    }

    // ---- host-side validation --------------------------------------------------------------------------------

    [TestCase(4, 64, 136, DType.BFloat16, GemmStrategy.Single, 64, MoeStatus.Misaligned, TestName = "{m}(K % 16 != 0)")]
    [TestCase(4, 196, 128, DType.BFloat16, GemmStrategy.Single, 64, MoeStatus.Misaligned, TestName = "{m}(N % 8 != 0)")]
    [TestCase(4, 64, 0, DType.BFloat16, GemmStrategy.Single, 64, MoeStatus.OutOfRange, TestName = "{m}(K = 0)")]
    [TestCase(0, 64, 128, DType.Float16, GemmStrategy.Single, 64, MoeStatus.OutOfRange, TestName = "{m}(E = 0)")]
    [TestCase(4097, 64, 128, DType.Float16, GemmStrategy.Auto, 64, MoeStatus.OutOfRange, TestName = "{m}(E = 4097)")]
    [TestCase(4, 64, 128, DType.BFloat16, GemmStrategy.ExpertSpecialized, -1, MoeStatus.OutOfRange, TestName = "{m}(MaxRows = -1)")]
    [TestCase(4, 64, 128, DType.Float32, GemmStrategy.Single, 64, MoeStatus.InvalidDtype, TestName = "{m}(output fp32)")]
    [TestCase(4, 64, 128, DType.Float8E4M3, GemmStrategy.Single, 64, MoeStatus.InvalidDtype, TestName = "{m}(output e4m3)")]
    [TestCase(4, 64, 128, DType.BFloat16, (GemmStrategy)7, 64, MoeStatus.InvalidStrategy, TestName = "{m}(strategy 7)")]
    public void CreatePlan_RejectsInvalidShapes(int experts, int n, int k, DType outputDType, GemmStrategy strategy, int maxRows, MoeStatus status)
    {
        var ex = Assert.Throws<MoeCutlassArgumentException>(() =>
            Cuda.CreateGroupedGemmPlan(new GroupedGemmOptions(experts, n, k, outputDType, strategy, maxRows)).Dispose());
        Assert.That(ex!.Status, Is.EqualTo(status), ex.Message);
        Assert.That(ex.Message, Is.Not.Empty);
        Assert.That(Cuda.IsUsable, Is.True);
    }

    [Test]
    public void Cublas_PlanAndLayerRelease_AndACapturedLayerForwardIsRefusedWithTheCaptureIntact()
    {
        // The cuBLAS GEMMs read the expert offsets on the host: no capture. The layer refuses before recording its
        // route and permutation, so the capture stays valid and holds nothing of the call.
        long before = Cuda.AllocationCount;
        Cuda.CreateGroupedGemmPlan(new GroupedGemmOptions(4, 256, 256, DType.BFloat16, GemmStrategy.Cublas, 64)).Dispose();
        Assert.That(Cuda.AllocationCount, Is.EqualTo(before), "a disposed cuBLAS plan left an allocation behind");

        var random = NewRandom();
        var options = new MoeLayerOptions(8, 2, 256, 128, 16) { Strategy = GemmStrategy.Cublas };
        const int tokens = 5;
        var problem = LayerProblem.Create(random, options, tokens);
        using var layer = Cuda.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        using var hidden = (DeviceBuffer<BFloat16>)problem.UploadHidden(Cuda);
        using var logits = (DeviceBuffer<float>)problem.UploadLogits(Cuda);
        using var output = Cuda.Allocate<BFloat16>(options.OutputElements(tokens));
        using var stream = Cuda.CreateStream();
        output.Fill(BFloat16.FromBits(0x7E57));
        Cuda.Synchronize();

        stream.BeginCapture();
        var refused = Assert.Throws<MoeCutlassUnsupportedException>(() => layer.Forward(tokens, hidden, logits, output, stream))!;
        using (MoeGraph graph = stream.EndCapture())
        {
            graph.Launch(stream); // the capture survived, and replaying it writes nothing
        }

        stream.Synchronize();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(refused.NativeMessage, Does.Contain("MC_STRATEGY_CUBLAS").And.Contain("cannot be captured"));
            Assert.That(output.ToArray().All(v => v.Bits == 0x7E57), Is.True, "the refused forward wrote its output");
        }

        layer.Forward(tokens, hidden, logits, output, stream); // eager, the same layer runs
        stream.Synchronize();
        Assert.That(output.ToArray().Any(v => v.Bits != 0x7E57), Is.True);
        Assert.That(Cuda.IsUsable, Is.True);
    }

    [TestCase("a", 8, MoeStatus.Misaligned)]
    [TestCase("a", 1, MoeStatus.Misaligned)]
    [TestCase("a", 16, MoeStatus.BufferTooSmall)] // aligned, but A is allocated exactly [rows, K]
    [TestCase("aScales", 4, MoeStatus.Misaligned)]
    [TestCase("b", 8, MoeStatus.Misaligned)]
    [TestCase("bScales", 4, MoeStatus.Misaligned)]
    [TestCase("offsets", 2, MoeStatus.Misaligned)]
    [TestCase("d", 2, MoeStatus.Misaligned)]
    [TestCase("d", 8, MoeStatus.Misaligned)]
    [TestCase("a", -1, MoeStatus.NullPointer)] // -1: pass a null pointer instead
    [TestCase("bScales", -1, MoeStatus.NullPointer)]
    [TestCase("offsets", -1, MoeStatus.NullPointer)]
    [TestCase("d", -1, MoeStatus.NullPointer)]
    public void Run_RejectsBadPointers_WithoutWriting(string operand, int byteOffset, MoeStatus status)
    {
        using var setup = ValidationSetup.Create(Cpu, Cuda);
        var o = setup.Operands;
        nint Shift(DeviceBuffer buffer, string name) => name != operand ? buffer.Pointer : byteOffset < 0 ? 0 : buffer.Pointer + byteOffset;
        setup.AssertRejectedWithoutWriting<MoeCutlassArgumentException>(status, () => setup.Plan.Run(setup.Problem.Rows,
            Shift(o.A, "a"), Shift(o.AScales, "aScales"), Shift(o.B, "b"), Shift(o.BScales, "bScales"), Shift(o.Offsets, "offsets"), Shift(o.D, "d")));
        setup.AssertStillCorrect();
    }

    [Test]
    public void Run_RejectsRowsOutsideZeroToMaxRows_WithoutWriting()
    {
        using var setup = ValidationSetup.Create(Cpu, Cuda);
        var o = setup.Operands;
        int maxRows = setup.Plan.Options.MaxRows;
        setup.AssertRejectedWithoutWriting<MoeCutlassArgumentException>(MoeStatus.OutOfRange,
            () => setup.Plan.Run(maxRows + 1, o.A, o.AScales, o.B, o.BScales, o.Offsets, o.D));
        setup.AssertRejectedWithoutWriting<MoeCutlassArgumentException>(MoeStatus.OutOfRange,
            () => setup.Plan.Run(int.MaxValue, o.A.Pointer, o.AScales.Pointer, o.B.Pointer, o.BScales.Pointer, o.Offsets.Pointer, o.D.Pointer));
        setup.AssertRejectedWithoutWriting<MoeCutlassArgumentException>(MoeStatus.OutOfRange,
            () => setup.Plan.Run(-1, o.A, o.AScales, o.B, o.BScales, o.Offsets, o.D));
        setup.AssertStillCorrect();
    }

    [Test]
    public void Run_RejectsBuffersTooSmallForTheRows_WithoutWriting()
    {
        using var setup = ValidationSetup.Create(Cpu, Cuda);
        var o = setup.Operands;
        var p = setup.Problem;
        using var shortD = Cuda.Allocate<ushort>((long)(p.Rows - 1) * p.N);
        using var shortScales = Cuda.Allocate<float>((long)(p.Rows - 1) * p.KBlocks);
        using var shortB = Cuda.Allocate<byte>((long)(p.Experts * p.N - 1) * p.K);
        using var shortOffsets = Cuda.Allocate<int>(p.Experts);
        setup.AssertRejectedWithoutWriting<MoeCutlassArgumentException>(MoeStatus.BufferTooSmall,
            () => setup.Plan.Run(p.Rows, o.A, shortScales, o.B, o.BScales, o.Offsets, o.D));
        setup.AssertRejectedWithoutWriting<MoeCutlassArgumentException>(MoeStatus.BufferTooSmall,
            () => setup.Plan.Run(p.Rows, o.A, o.AScales, shortB, o.BScales, o.Offsets, o.D));
        setup.AssertRejectedWithoutWriting<MoeCutlassArgumentException>(MoeStatus.BufferTooSmall,
            () => setup.Plan.Run(p.Rows, o.A, o.AScales, o.B, o.BScales, shortOffsets, o.D));
        // D too short: nothing may be written into it either.
        shortD.Fill(GemmProblem.Canary);
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => setup.Plan.Run(p.Rows, o.A, o.AScales, o.B, o.BScales, o.Offsets, shortD));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.BufferTooSmall), ex.Message);
        Assert.That(shortD.ToArray(), Is.All.EqualTo(GemmProblem.Canary), "the short D");
        setup.AssertStillCorrect();
    }

    [Test]
    public void Run_RejectsBuffersOfAnotherContext_WithoutWriting()
    {
        using var setup = ValidationSetup.Create(Cpu, Cuda);
        var o = setup.Operands;
        var p = setup.Problem;
        using var hostA = Cpu.Upload<byte>(p.A);
        // The facade catches the foreign buffer before the native call: a MoeCutlassArgumentException (an ArgumentException).
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => setup.Plan.Run(p.Rows, hostA, o.AScales, o.B, o.BScales, o.Offsets, o.D));
        Assert.That(ex!.ParamName, Is.EqualTo("a"));
        setup.AssertStillCorrect();
    }

    /// <summary>A small valid problem on the CUDA context with a plan, for the validation tests.</summary>
    private sealed class ValidationSetup : IDisposable
    {
        private readonly MoeContext Cpu;
        private readonly MoeContext Cuda;

        private ValidationSetup(GemmProblem problem, MoeContext cpu, MoeContext cuda)
        {
            Cpu = cpu;
            Cuda = cuda;
            Problem = problem;
            Operands = new GemmOperands(cuda, problem);
            Plan = cuda.CreateGroupedGemmPlan(problem.Options(DType.BFloat16, GemmStrategy.Single));
        }

        public GemmProblem Problem { get; }

        public GemmOperands Operands { get; }

        public GroupedGemmPlan Plan { get; }

        public static ValidationSetup Create(MoeContext cpu, MoeContext cuda)
        {
            var random = NewRandom();
            var problem = GemmProblem.Create(cpu, random, 64, 256, [10, 0, 17, 13], leadingRows: 2, trailingRows: 3);
            return new ValidationSetup(problem, cpu, cuda);
        }

        /// <summary>The call throws <typeparamref name="TException"/> with <paramref name="status"/>, D keeps its canary,
        /// nothing is flagged and the context stays usable.</summary>
        public void AssertRejectedWithoutWriting<TException>(MoeStatus status, Action call)
            where TException : Exception, IMoeCutlassException
        {
            Operands.ResetOutput();
            var ex = Assert.Throws<TException>(() => call());
            using (Assert.EnterMultipleScope())
            {
                Assert.That(ex!.Status, Is.EqualTo(status), ex.Message);
                Assert.That(ex.Message, Is.Not.Empty);
                Assert.That(GemmCheck.CheckCanary(Operands.ReadAll(), Problem.N, _ => false, "D"), Is.Null, "a rejected call writes nothing");
                Assert.That(Cuda.QueryDeviceErrors(), Is.EqualTo(DeviceErrorFlags.None));
                Assert.That(Cuda.IsUsable, Is.True);
            }

            TestContext.Out.WriteLine($"rejected as {ex.Status}: {ex.Message}");
        }

        /// <summary>After the rejections, a valid run of the same plan matches the reference.</summary>
        public void AssertStillCorrect()
        {
            ushort[] reference = Problem.Reference(Cpu, DType.BFloat16);
            Operands.ResetOutput();
            Operands.Run(Plan);
            ushort[] output = Operands.ReadOutput();
            using (Assert.EnterMultipleScope())
            {
                Assert.That(GemmCheck.CompareExperts(Problem, reference, output, DType.BFloat16, out _), Is.Null);
                Assert.That(GemmCheck.CheckRowsOutsideExperts(Problem, output), Is.Null);
                Assert.That(Cuda.QueryDeviceErrors(), Is.EqualTo(DeviceErrorFlags.None));
            }
        }

        public void Dispose()
        {
            Plan.Dispose();
            Operands.Dispose();
        }
    }
}
