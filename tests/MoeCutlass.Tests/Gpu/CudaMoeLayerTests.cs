using System.Globalization;
using MoeCutlass.Cli.Verify;

namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// The CUDA MoE layer against the CPU layer on the same FP8 weights and inputs (shapes scaled down from DeepSeek-V3,
/// Mixtral and Qwen3; an expert-parallel slice; one token; fp16 in and out), bit-identical repeated forward calls and
/// CUDA-graph replays, the device error flags for bad precomputed ids, and zeros for tokens routed entirely outside the
/// slice. Runs on the GPU machine (ignored without a device, failed with MOECUTLASS_REQUIRE_GPU=1).
/// </summary>
/// <remarks>
/// <para><b>Tolerance.</b> Both layers read the same FP8 weights (the CPU layer's, uploaded) and route identically
/// (routing is exact on both). They differ only where a GEMM rounds: the GPU grouped GEMM accumulates in fp32 and the
/// CPU reference in double, so a GEMM1 output can land one bf16 ulp (2^-8 relative) apart when it lies near a rounding
/// boundary. SiLU-and-mul then requantizes h to FP8 per 1x128 block: one ulp of input can flip that element's e4m3 code
/// by one step (up to 2^-4 relative to the element), and when the element is its block's amax it moves the block's
/// scale, so every code of the block can re-round (each by at most half a step). GEMM2 sums I such products, so a flip
/// changes an output element by a fraction of the row's typical magnitude, not of the element itself (which may be near
/// zero by cancellation). Hence: over all outputs the relative RMS error must stay below 2^-5 (flips are rare and
/// unbiased: typically ~2^-9), and each element within 2^-3 of its token row's largest magnitude plus two output ulps
/// (the worst case of one block's scale moving: half a step, 2^-4, of that block's share of the row, doubled for the
/// final bf16/fp16 roundings of both sides). A wrong expert, weight or gate/up order is off by the row's magnitude.
/// The rule lives in <see cref="LayerTolerance"/>, which <c>moecutlass verify --layer</c> applies too.</para>
/// </remarks>
[TestFixture, Category("Gpu"), NonParallelizable]
public sealed class CudaMoeLayerTests : GpuTestBase
{
    private const double RmsLimit = LayerTolerance.RmsLimit;

    public static IEnumerable<TestCaseData> Shapes()
    {
        static TestCaseData Case(string name, MoeLayerOptions options, int tokens) => new TestCaseData(options, tokens).SetArgDisplayNames(name);
        // DeepSeek-V3 (256 experts, top-8, H 7168, I 2048) scaled down.
        var deepSeek = new MoeLayerOptions(16, 4, 512, 256, 64) { NormalizeRoutingWeights = true };
        yield return Case("DeepSeek-V3/16 T=37", deepSeek, 37);
        yield return Case("DeepSeek-V3/16 slice 8..15 T=37", deepSeek with { FirstExpert = 8, LocalExperts = 8 }, 37);
        yield return Case("DeepSeek-V3/16 T=1", deepSeek, 1);
        yield return Case("DeepSeek-V3/16 expert-specialized T=37", deepSeek with { Strategy = GemmStrategy.ExpertSpecialized }, 37);
        // cuBLAS on bf16-dequantized operands: its GEMMs round each operand to bf16 (2^-8 per product), well inside
        // the layer tolerance below, which is set by FP8 requantization flips.
        yield return Case("DeepSeek-V3/16 cublas T=37", deepSeek with { Strategy = GemmStrategy.Cublas }, 37);
        // Mixtral 8x7B (8 experts, top-2, H 4096, I 14336) scaled down; single strategy, softmax over all logits.
        yield return Case("Mixtral/8 T=64", new MoeLayerOptions(8, 2, 512, 448, 64) { Strategy = GemmStrategy.Single }, 64);
        // Qwen3-30B-A3B (128 experts, top-8, H 2048, I 768) scaled down; fp16 in and out, bf16 logits.
        yield return Case("Qwen3/8 fp16 T=19", new MoeLayerOptions(32, 8, 256, 96, 32)
        {
            NormalizeRoutingWeights = true,
            InputDType = DType.Float16,
            OutputDType = DType.Float16,
            LogitsDType = DType.BFloat16,
        }, 19);
    }

    [TestCaseSource(nameof(Shapes))]
    public void CudaLayer_MatchesTheCpuLayer_OnTheSameWeightsAndInputs(MoeLayerOptions options, int tokens)
    {
        var random = NewRandom();
        var problem = LayerProblem.Create(random, options, tokens);
        using var cpuLayer = Cpu.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        using var cudaLayer = UploadLayer(cpuLayer, options);
        TestContext.Out.WriteLine(cudaLayer);

        double[] expected = Run(Cpu, cpuLayer, problem, out _);
        double[] got = Run(Cuda, cudaLayer, problem, out ushort[] bits);

        LayerComparison comparison = LayerTolerance.Compare(got, expected, options.Hidden, options.OutputDType);
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"relative RMS difference {comparison.RelativeRms:G3}, worst element ratio {comparison.WorstRatio:G3}: {comparison.WorstElement}"));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(comparison.NonFinite, Is.Zero);
            Assert.That(comparison.RelativeRms, Is.LessThan(RmsLimit));
            Assert.That(comparison.WorstRatio, Is.LessThanOrEqualTo(1), comparison.WorstElement);
            Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.None));
        }

        // Deterministic: a second call gives the same bits (no order-dependent atomics).
        Run(Cuda, cudaLayer, problem, out ushort[] again);
        Assert.That(again, Is.EqualTo(bits), "two forward calls differ");
    }

    [Test]
    public void CapturedForward_ReplaysBitForBitLikeEagerCalls_WithNewContentsBetweenReplays()
    {
        var random = NewRandom();
        var options = new MoeLayerOptions(16, 4, 512, 256, 48) { NormalizeRoutingWeights = true };
        const int tokens = 37;
        var first = LayerProblem.Create(random, options, tokens);
        var second = LayerProblem.Create(random, options, tokens);
        using var layer = Cuda.CreateMoeLayerFromHost(options, first.W13, first.W2);
        using var hidden = (DeviceBuffer<BFloat16>)first.UploadHidden(Cuda);
        using var logits = (DeviceBuffer<float>)first.UploadLogits(Cuda);
        using var output = Cuda.Allocate<BFloat16>(options.OutputElements(tokens));
        using var eager = Cuda.Allocate<BFloat16>(options.OutputElements(tokens));
        using var stream = Cuda.CreateStream();
        output.Fill(BFloat16.FromBits(0x7E57));
        Cuda.Synchronize();

        using MoeGraph graph = Capture.Graph(stream, () => layer.Forward(tokens, hidden, logits, output, stream));
        Assert.That(output.ToArray().All(v => v.Bits == 0x7E57), Is.True, "captured work must not run before the graph is launched");

        ushort[]? previous = null;
        foreach (var problem in new[] { first, second })
        {
            hidden.CopyFrom(problem.Hidden.Select(v => (BFloat16)v).ToArray());
            logits.CopyFrom(problem.Logits);
            graph.Launch(stream);
            stream.Synchronize();
            ushort[] replayed = MoeLayerTests.ReadBits(output);
            layer.Forward(tokens, hidden, logits, eager, stream);
            stream.Synchronize();
            Assert.That(replayed, Is.EqualTo(MoeLayerTests.ReadBits(eager)), "graph replay vs eager forward, bit for bit");
            if (previous is not null)
            {
                Assert.That(replayed, Is.Not.EqualTo(previous), "new contents must change the replay's output");
            }

            previous = replayed;
        }
    }

    [Test]
    public void PrecomputedIds_OutOfRangeOrRepeated_RaiseTheDeviceErrorFlags_AndTheGoodSlotsStillCount()
    {
        var random = NewRandom();
        var options = new MoeLayerOptions(8, 2, 256, 128, 8) { Routing = MoeRoutingMode.Precomputed };
        const int tokens = 4;
        var problem = LayerProblem.Create(random, options, tokens);
        using var layer = Cuda.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        using var hidden = problem.UploadHidden(Cuda);
        using var weights = Cuda.Upload<float>([0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f]);
        double[] Forward(int[] ids)
        {
            using var idBuffer = Cuda.Upload<int>(ids);
            using var output = Cuda.Allocate<BFloat16>(options.OutputElements(tokens));
            layer.ForwardPrecomputed(tokens, hidden, idBuffer, weights, output);
            return MoeLayerTests.ReadDoubles(output);
        }

        double[] good = Forward([0, 1, 2, 3, 4, 5, 6, 7]);
        Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.None));

        // Token 2's second id is out of range: that slot is skipped, the rest of the batch is computed.
        double[] skipped = Forward([0, 1, 2, 3, 4, 99, 6, 7]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.TopKIdOutOfRange));
            // The other tokens' rows are computed as before (within the GEMM-rounding tolerance: one row fewer may change
            // the per-call kernel choice), and token 2 still gets its first expert's share.
            int h = options.Hidden;
            double[] Rows(double[] all, params int[] tokenRows) => [.. tokenRows.SelectMany(t => all.Skip(t * h).Take(h))];
            Assert.That(MoeLayerTests.RelativeRms(Rows(skipped, 0, 1, 3), Rows(good, 0, 1, 3)), Is.LessThan(RmsLimit));
            Assert.That(Rows(skipped, 2).Any(v => v != 0), Is.True);
        }

        Forward([0, 1, 2, 3, 4, 4, -1, 7]);
        Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.TopKIdOutOfRange | DeviceErrorFlags.TopKIdDuplicate));
        Forward([0, 1, 2, 3, 4, 5, 6, 7]);
        Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.None), "the flag was reset and good ids raise nothing");
    }

    [Test]
    public void TokensWithEveryExpertOutsideTheSlice_GetZeros()
    {
        var random = NewRandom();
        var whole = new MoeLayerOptions(16, 4, 256, 128, 8) { Routing = MoeRoutingMode.Precomputed };
        var slice = whole with { FirstExpert = 8, LocalExperts = 8 };
        const int tokens = 3;
        var problem = LayerProblem.Create(random, slice, tokens);
        using var layer = Cuda.CreateMoeLayerFromHost(slice, problem.W13, problem.W2);
        using var hidden = problem.UploadHidden(Cuda);
        // Token 0 and 2 only use experts 0 .. 7 (outside the slice), token 1 uses 8 .. 11.
        using var ids = Cuda.Upload<int>([0, 1, 2, 3, 8, 9, 10, 11, 7, 6, 5, 4]);
        using var weights = Cuda.Upload<float>([.. Enumerable.Repeat(0.25f, 12)]);
        using var output = Cuda.Allocate<BFloat16>(slice.OutputElements(tokens));
        output.Fill(BFloat16.FromBits(0x7E57));
        layer.ForwardPrecomputed(tokens, hidden, ids, weights, output);
        ushort[] bits = MoeLayerTests.ReadBits(output);
        int h = slice.Hidden;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bits.AsSpan(0, h).ToArray(), Is.All.EqualTo((ushort)0), "token 0");
            Assert.That(bits.AsSpan(2 * h, h).ToArray(), Is.All.EqualTo((ushort)0), "token 2");
            Assert.That(bits.AsSpan(h, h).ToArray().Any(b => b != 0), Is.True, "token 1 has local experts");
            Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.None));
        }
    }

    /// <summary>A CUDA layer over the CPU layer's FP8 weights, uploaded (so both read the same codes and scales).</summary>
    private MoeLayer UploadLayer(MoeLayer cpuLayer, MoeLayerOptions options)
    {
        using var w13 = Cuda.Upload<byte>(cpuLayer.W13.ToArray());
        using var s13 = Cuda.Upload<float>(cpuLayer.W13Scales.ToArray());
        using var w2 = Cuda.Upload<byte>(cpuLayer.W2.ToArray());
        using var s2 = Cuda.Upload<float>(cpuLayer.W2Scales.ToArray());
        return Cuda.CreateMoeLayer(options, w13, s13, w2, s2); // the layer keeps the buffers alive past these usings
    }

    private static double[] Run(MoeContext context, MoeLayer layer, LayerProblem problem, out ushort[] bits)
    {
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);
        using var output = MoeLayerTests.AllocateOutput(context, layer.Options, problem.Tokens);
        layer.Forward(problem.Tokens, hidden, logits, output);
        bits = MoeLayerTests.ReadBits(output);
        return MoeLayerTests.ReadDoubles(output);
    }
}
