namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// Communicators and parallel layers on one GPU (issue 16; world size 1, the most one device can check: NCCL cannot put
/// two ranks on one GPU): a communicator's info and lifetime, and tensor- and expert-parallel layers with W = 1
/// bit-identical to the plain layer on the same FP8 weights and inputs, eager and replayed from a CUDA graph. Ignored
/// without a device (failed with MOECUTLASS_REQUIRE_GPU=1), and ignored with the reason when the library has no NCCL
/// (built without it, or no NCCL 2.18+ loadable) unless MOECUTLASS_REQUIRE_NCCL=1, which makes that a failure.
/// </summary>
[TestFixture, Category("Gpu"), NonParallelizable]
public sealed class CudaParallelTests : GpuTestBase
{
    private MoeCommunicator _communicator = null!;

    [OneTimeSetUp]
    public void CreateCommunicator()
    {
        Environment.SetEnvironmentVariable("NCCL_NVLS_ENABLE", "0"); // NVLink multicast off (the device README)
        try
        {
            byte[] id = MoeCommunicator.GetUniqueId();
            _communicator = MoeCommunicator.Create(Cuda, id, 1, 0);
        }
        catch (MoeCutlassUnsupportedException ex)
        {
            if (Environment.GetEnvironmentVariable("MOECUTLASS_REQUIRE_NCCL") == "1")
            {
                Assert.Fail($"no NCCL: {ex.Message}; MOECUTLASS_REQUIRE_NCCL=1 requires it");
            }

            Assert.Ignore($"no NCCL: {ex.Message} (set MOECUTLASS_REQUIRE_NCCL=1 to make this a failure)");
        }

        TestContext.Out.WriteLine(_communicator);
    }

    [OneTimeTearDown]
    public void DisposeCommunicator() => _communicator?.Dispose();

    private static MoeLayerOptions Options(int maxTokens) => new(16, 4, 512, 256, maxTokens) { NormalizeRoutingWeights = true };

    [Test]
    public void Communicator_ReportsRankOneOfOne_AndDisposesOnce()
    {
        Assert.That(_communicator.WorldSize, Is.EqualTo(1));
        Assert.That(_communicator.Rank, Is.EqualTo(0));
        Assert.That(_communicator.Device, Is.EqualTo(0));
        Assert.That(_communicator.NcclVersion, Is.GreaterThanOrEqualTo(21800));
        for (int i = 0; i < 5; i++)
        {
            var communicator = MoeCommunicator.Create(Cuda, MoeCommunicator.GetUniqueId(), 1, 0);
            communicator.Dispose();
            Assert.That(communicator.IsDisposed, Is.True);
            communicator.Dispose(); // idempotent
        }

        MoeCommunicator[] all = MoeCommunicator.CreateAll([Cuda]);
        Assert.That(all, Has.Length.EqualTo(1));
        Assert.That(all[0].Rank, Is.EqualTo(0));
        all[0].Dispose();
    }

    [Test]
    public void Layer_OnACommunicatorOfAnotherContext_IsRefused()
    {
        using var other = MoeContext.CreateCuda(0);
        var problem = LayerProblem.Create(NewRandom(), Options(8), 8);
        var options = Options(8) with { Parallel = new MoeParallelism(MoeParallelMode.Tensor, _communicator) };
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => other.CreateMoeLayerFromHost(options, problem.W13, problem.W2));
        Assert.That(ex!.Status, Is.EqualTo(MoeStatus.ContextMismatch));
    }

    [TestCase(MoeParallelMode.Tensor, 37, 37)]
    [TestCase(MoeParallelMode.Expert, 40, 40)]
    public void WorldSizeOne_IsBitIdenticalToThePlainLayer_EagerAndReplayed(MoeParallelMode mode, int tokens, int maxTokens)
    {
        var options = Options(maxTokens);
        var problem = LayerProblem.Create(NewRandom(), options, tokens);
        using var plain = Cuda.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        var parallelOptions = options with
        {
            Parallel = new MoeParallelism(mode, _communicator) { TokensPerRank = mode == MoeParallelMode.Expert ? maxTokens : 0 },
        };
        using var layer = Cuda.CreateMoeLayer(parallelOptions, plain.W13, plain.W13Scales, plain.W2, plain.W2Scales);
        TestContext.Out.WriteLine(layer);

        using var hidden = problem.UploadHidden(Cuda);
        using var logits = problem.UploadLogits(Cuda);
        using var expected = Cuda.Allocate<BFloat16>(options.OutputElements(tokens));
        using var output = Cuda.Allocate<BFloat16>(options.OutputElements(tokens));
        plain.Forward(tokens, hidden, logits, expected);
        layer.Forward(tokens, hidden, logits, output);
        ushort[] bits = MoeLayerTests.ReadBits(expected);
        Assert.That(MoeLayerTests.ReadBits(output), Is.EqualTo(bits), "eager forward vs the plain layer, bit for bit");

        using var stream = Cuda.CreateStream();
        output.Fill(BFloat16.FromBits(0x7E57));
        Cuda.Synchronize();
        using MoeGraph graph = Capture.Graph(stream, () => layer.Forward(tokens, hidden, logits, output, stream));
        for (int replay = 0; replay < 3; replay++)
        {
            output.Fill(BFloat16.FromBits(0x7E57));
            Cuda.Synchronize();
            graph.Launch(stream);
            stream.Synchronize();
            Assert.That(MoeLayerTests.ReadBits(output), Is.EqualTo(bits), $"graph replay {replay} vs the plain layer");
        }

        Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.None));
    }

    [Test]
    public void ExpertParallel_ForwardTakesAtMostTokensPerRank()
    {
        var options = Options(16) with { Parallel = new MoeParallelism(MoeParallelMode.Expert, _communicator) { TokensPerRank = 8 } };
        var problem = LayerProblem.Create(NewRandom(), options, 9);
        using var layer = Cuda.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        using var hidden = problem.UploadHidden(Cuda);
        using var logits = problem.UploadLogits(Cuda);
        using var output = Cuda.Allocate<BFloat16>(options.OutputElements(9));
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => layer.Forward(9, hidden, logits, output));
        Assert.That(ex!.ParamName, Is.EqualTo("tokens"));
        Assert.That(ex.Message, Does.Contain("tokens_per_rank"));
    }
}
