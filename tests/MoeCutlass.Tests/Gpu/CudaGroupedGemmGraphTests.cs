using System.Globalization;

namespace MoeCutlass.Tests.Gpu;

/// <summary>
/// A grouped-GEMM run captured into a CUDA graph replays like an eager run: the graph captured pointers, not contents,
/// so new activations (and new expert offsets, which stay on the device) written between replays show up, and every
/// replay gives the same bytes as an eager run of the same plan on the same inputs. Runs on the GPU machine.
/// </summary>
[TestFixture, Category("Gpu"), NonParallelizable]
public sealed class CudaGroupedGemmGraphTests : GpuTestBase
{
    [TestCase(GemmStrategy.Single, DType.BFloat16)]
    [TestCase(GemmStrategy.Single, DType.Float16)]
    [TestCase(GemmStrategy.Auto, DType.BFloat16)]
    [TestCase(GemmStrategy.ExpertSpecialized, DType.BFloat16)]
    [TestCase(GemmStrategy.Persistent, DType.BFloat16)]
    [TestCase(GemmStrategy.Persistent, DType.Float16)]
    public void CapturedRun_ReplaysBitForBitLikeEagerRuns_WithNewContentsBetweenReplays(GemmStrategy strategy, DType outputDType)
    {
        // About 0.7 GFLOP of CPU reference per replay: 16 experts with 0 .. 64 rows (some empty), N and K not multiples
        // of 128, rows before offsets[0] and after offsets[E].
        var random = NewRandom();
        var captured = GemmProblem.Create(Cpu, random, 392, 1040, RowLists.Uniform(random, 16, 0, 64), leadingRows: 3, trailingRows: 4);
        TestContext.Out.WriteLine(captured);
        // Replay 1: the contents at capture time; replay 2: new activations; replay 3: new activations and new offsets
        // over the same rows (another routing: the graph must read the offsets from the device at every replay).
        var second = captured.WithNewActivations(Cpu, random);
        int[] rerouted = Reroute(random, captured.Experts, captured.Rows);
        var third = second.WithNewActivations(Cpu, random).WithOffsets(rerouted);
        GemmProblem[] replays = [captured, second, third];

        using var operands = new GemmOperands(Cuda, captured);
        using var eagerD = Cuda.Allocate<ushort>(operands.D.Length);
        using var plan = Cuda.CreateGroupedGemmPlan(captured.Options(outputDType, strategy));
        using var stream = Cuda.CreateStream();
        TestContext.Out.WriteLine(plan);

        // Captured before the plan ever ran: whatever the first run sets up must not need a synchronization.
        using MoeGraph graph = Capture.Graph(stream, () => operands.Run(plan, stream));
        Assert.That(operands.ReadAll(), Is.All.EqualTo(GemmProblem.Canary), "captured work must not run before the graph is launched");

        ushort[]? previous = null;
        for (int i = 0; i < replays.Length; i++)
        {
            var problem = replays[i];
            operands.Replace(problem); // synchronous copies of A, its scales and the offsets into the captured buffers
            MoeStream? launchStream = i == 1 ? null : stream; // replay 2 on the context's default stream
            operands.ResetOutput(launchStream);
            graph.Launch(launchStream);
            Cuda.Synchronize();
            ushort[] replayed = operands.ReadOutput();

            eagerD.Fill(GemmProblem.Canary, stream);
            plan.Run(problem.Rows, operands.A, operands.AScales, operands.B, operands.BScales, operands.Offsets, eagerD, stream);
            stream.Synchronize();
            ushort[] eager = eagerD.ToArray();

            ushort[] reference = problem.Reference(Cpu, outputDType);
            string label = $"replay {i + 1} (offsets {problem.Offsets[0]}..{problem.Offsets[^1]})";
            using (Assert.EnterMultipleScope())
            {
                Assert.That(FirstDifference(replayed, eager, problem.N), Is.Null, $"{label}: graph replay vs eager run, bit for bit");
                Assert.That(GemmCheck.CompareExperts(problem, reference, eager, outputDType, out double worst), Is.Null, $"{label}: eager vs CPU reference");
                Assert.That(GemmCheck.CheckRowsOutsideExperts(problem, replayed), Is.Null, $"{label}: graph replay");
                Assert.That(Cuda.QueryDeviceErrors(reset: true), Is.EqualTo(DeviceErrorFlags.None), label);
                if (previous is not null)
                {
                    Assert.That(replayed.AsSpan().SequenceEqual(previous), Is.False, $"{label}: new contents must change the replay's output");
                }

                TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label}: worst relative error {worst:G3}"));
            }

            previous = replayed;
        }
    }

    /// <summary>Random valid offsets over the same rows: a new offsets[0] and new expert sizes, some experts empty.</summary>
    private static int[] Reroute(Random random, int experts, int rows)
    {
        var offsets = new int[experts + 1];
        offsets[0] = random.Next(0, 8);
        for (int e = 1; e <= experts; e++)
        {
            offsets[e] = e % 5 == 0 ? offsets[e - 1] : Math.Min(rows, offsets[e - 1] + random.Next(1, rows / experts + 8));
        }

        return offsets;
    }

    private static string? FirstDifference(ushort[] actual, ushort[] expected, int n)
    {
        int count = 0, first = -1;
        for (int i = 0; i < actual.Length; i++)
        {
            if (actual[i] != expected[i])
            {
                count++;
                first = first < 0 ? i : first;
            }
        }

        return count == 0 ? null
            : $"{count} of {actual.Length} elements differ; first at row {first / n} col {first % n}: 0x{actual[first]:x4} vs 0x{expected[first]:x4}";
    }
}
