namespace MoeCutlass.Tests;

/// <summary>
/// The multi-GPU API on any machine (issue 16): communicators and parallel layers need NCCL and a CUDA context, so on
/// the CPU backend (and in a library built without NCCL) they throw <see cref="MoeCutlassUnsupportedException"/> naming
/// why; argument errors are reported before that, in C# terms.
/// </summary>
[TestFixture]
public sealed class ParallelTests : NativeTestBase
{
    [Test]
    public void GetUniqueId_GivesAnIdOrSaysWhyNot()
    {
        try
        {
            byte[] id = MoeCommunicator.GetUniqueId();
            Assert.That(id, Has.Length.EqualTo(MoeCommunicator.UniqueIdBytes));
        }
        catch (MoeCutlassUnsupportedException ex)
        {
            Assert.That(ex.Message, Does.Contain("NCCL"));
            Assert.That(ex.Status, Is.EqualTo(MoeStatus.Unsupported));
        }
    }

    [Test]
    public void Create_OnTheCpuBackend_IsUnsupported()
    {
        using var cpu = MoeContext.CreateCpu();
        var ex = Assert.Throws<MoeCutlassUnsupportedException>(() => MoeCommunicator.Create(cpu, new byte[128], 1, 0));
        Assert.That(ex!.Message, Does.Contain("NCCL").Or.Contain("CPU backend"));
        ex = Assert.Throws<MoeCutlassUnsupportedException>(() => MoeCommunicator.CreateAll([cpu]));
        Assert.That(ex!.Message, Does.Contain("NCCL").Or.Contain("CPU backend"));
    }

    [Test]
    public void Create_ChecksItsArgumentsFirst()
    {
        using var cpu = MoeContext.CreateCpu();
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => MoeCommunicator.Create(cpu, new byte[5], 1, 0));
        Assert.That(ex!.ParamName, Is.EqualTo("uniqueId"));
        ex = Assert.Throws<MoeCutlassArgumentException>(() => MoeCommunicator.Create(cpu, new byte[128], 0, 0));
        Assert.That(ex!.ParamName, Is.EqualTo("worldSize"));
        Assert.That(ex.Status, Is.EqualTo(MoeStatus.OutOfRange));
        ex = Assert.Throws<MoeCutlassArgumentException>(() => MoeCommunicator.Create(cpu, new byte[128], 2, 2));
        Assert.That(ex!.ParamName, Is.EqualTo("rank"));
        Assert.That(ex.Message, Does.Contain("0 .. worldSize - 1"));
        Assert.Throws<MoeCutlassArgumentException>(() => MoeCommunicator.CreateAll([]));
        Assert.Throws<ArgumentNullException>(() => MoeCommunicator.Create(null!, new byte[128], 1, 0));
    }

    [Test]
    public void ParallelLayer_OnTheCpuBackend_IsUnsupportedAfterTheOptionsAreChecked()
    {
        using var cpu = MoeContext.CreateCpu();
        var options = new MoeLayerOptions(8, 2, 256, 128, 16);
        var random = new Random(16);
        float[] w13 = [.. Enumerable.Range(0, (int)options.W13Elements).Select(_ => (float)(random.NextDouble() - 0.5))];
        float[] w2 = [.. Enumerable.Range(0, (int)options.W2Elements).Select(_ => (float)(random.NextDouble() - 0.5))];
        using var plain = cpu.CreateMoeLayerFromHost(options, w13, w2);
        using var q13 = cpu.Upload<byte>(plain.W13.ToArray());
        using var s13 = cpu.Upload<float>(plain.W13Scales.ToArray());
        using var q2 = cpu.Upload<byte>(plain.W2.ToArray());
        using var s2 = cpu.Upload<float>(plain.W2Scales.ToArray());

        // A communicator cannot exist on this machine's CPU backend: the layer is refused before it is looked at.
        var parallel = options with { Parallel = new MoeParallelism(MoeParallelMode.Tensor, null!) };
        var unsupported = Assert.Throws<MoeCutlassUnsupportedException>(() => cpu.CreateMoeLayer(parallel, q13, s13, q2, s2));
        Assert.That(unsupported!.Message, Does.Contain("NCCL").Or.Contain("CPU backend"));

        // An unknown mode is an argument error, in C# terms.
        var badMode = options with { Parallel = new MoeParallelism((MoeParallelMode)7, null!) };
        var ex = Assert.Throws<MoeCutlassArgumentException>(() => cpu.CreateMoeLayer(badMode, q13, s13, q2, s2));
        Assert.That(ex!.ParamName, Is.EqualTo("options"));
        Assert.That(ex.Message, Does.Contain("options.Parallel.Mode"));
    }
}
