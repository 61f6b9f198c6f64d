using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Suite;
using MoeCutlass.Cli.Verify;

namespace MoeCutlass.Tests.Cli;

[TestFixture]
public sealed class ReferenceCheckTests
{
    private const int N = 16;

    /// <summary>Experts 0..3 own 3, 0, 5 and 2 rows.</summary>
    private static readonly ProblemShape Shape = ProblemShape.Full(SuiteFiles.Case("check", N, 128, [3, 0, 5, 2]));

    private static readonly double Tolerance = ReferenceCheck.Tolerance(DType.BFloat16);

    [Test]
    public void Tolerances()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ReferenceCheck.Tolerance(DType.BFloat16), Is.EqualTo(4e-3));
            Assert.That(ReferenceCheck.Tolerance(DType.Float16), Is.EqualTo(1e-3));
            Assert.That(() => ReferenceCheck.Tolerance(DType.Float32), Throws.TypeOf<ArgumentOutOfRangeException>());
        }
    }

    [Test]
    public void MatchingOutput_Passes()
    {
        (double[] reference, float[] actual) = Pair();

        Comparison comparison = ReferenceCheck.Compare(Shape, actual, reference);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(comparison.Passes(Tolerance), Is.True, comparison.ToString());
            Assert.That(comparison.MaxRelativeError, Is.LessThan(1e-6));
            Assert.That(comparison.NonFinite, Is.Zero);
            Assert.That(comparison.ExpertsCompared, Is.EqualTo(3), "the empty expert is not compared");
            Assert.That(comparison.WorstExpert, Is.Not.EqualTo(1), "an empty expert is never the worst");
        }
    }

    [TestCase(0)]
    [TestCase(2)]
    [TestCase(3)]
    public void CorruptedExpert_Fails_AndIsReportedAsTheWorst(int expert)
    {
        (double[] reference, float[] actual) = Pair();
        int[] offsets = Shape.ExpertOffsets();
        int index = (offsets[expert] * N) + 5;
        actual[index] += 10f;

        Comparison comparison = ReferenceCheck.Compare(Shape, actual, reference);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(comparison.Passes(Tolerance), Is.False, comparison.ToString());
            Assert.That(comparison.WorstExpert, Is.EqualTo(expert));
            Assert.That(comparison.MaxRelativeError, Is.GreaterThan(Tolerance));
            Assert.That(comparison.NonFinite, Is.Zero);
        }
    }

    [Test]
    public void SlightErrorEverywhere_ButOneExpertFarOff_WorstIsThatExpert()
    {
        // One expert 1 % off cannot hide behind three accurate ones (no averaging over experts).
        (double[] reference, float[] actual) = Pair();
        int[] offsets = Shape.ExpertOffsets();
        for (int i = offsets[3] * N; i < offsets[4] * N; i++)
        {
            actual[i] *= 1.01f;
        }

        Comparison comparison = ReferenceCheck.Compare(Shape, actual, reference);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(comparison.WorstExpert, Is.EqualTo(3));
            Assert.That(comparison.MaxRelativeError, Is.EqualTo(0.01).Within(1e-4));
            Assert.That(comparison.Passes(Tolerance), Is.False);
        }
    }

    [TestCase(float.NaN)]
    [TestCase(float.PositiveInfinity)]
    [TestCase(float.NegativeInfinity)]
    public void NonFiniteOutput_Fails_AndIsCounted(float bad)
    {
        (double[] reference, float[] actual) = Pair();
        int[] offsets = Shape.ExpertOffsets();
        actual[offsets[2] * N] = bad;
        actual[(offsets[2] * N) + 1] = bad;

        Comparison comparison = ReferenceCheck.Compare(Shape, actual, reference);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(comparison.Passes(Tolerance), Is.False);
            Assert.That(comparison.Passes(double.PositiveInfinity), Is.False, "non-finite output fails at any tolerance");
            Assert.That(comparison.NonFinite, Is.EqualTo(2));
            Assert.That(comparison.WorstExpert, Is.EqualTo(2));
            Assert.That(comparison.MaxRelativeError, Is.EqualTo(double.PositiveInfinity));
        }
    }

    [TestCase(0)]
    [TestCase(2)]
    [TestCase(3)]
    public void NonFiniteReference_Fails(int expert)
    {
        // A reference with rows that were never written (the CUDA path pre-fills the CPU reference's D with NaN)
        // must not let the check pass, whichever expert it is in.
        (double[] reference, float[] actual) = Pair();
        int[] offsets = Shape.ExpertOffsets();
        reference[(offsets[expert] * N) + 3] = double.NaN;

        Comparison comparison = ReferenceCheck.Compare(Shape, actual, reference);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(comparison.Passes(Tolerance), Is.False, comparison.ToString());
            Assert.That(comparison.WorstExpert, Is.EqualTo(expert), comparison.ToString());
            Assert.That(comparison.MaxRelativeError, Is.EqualTo(double.PositiveInfinity), comparison.ToString());
        }
    }

    [Test]
    public void ZeroReferenceExpert_UsesTheAbsoluteError()
    {
        (double[] reference, float[] actual) = Pair();
        int[] offsets = Shape.ExpertOffsets();
        for (int i = offsets[3] * N; i < offsets[4] * N; i++)
        {
            reference[i] = 0;
            actual[i] = 0;
        }

        actual[offsets[3] * N] = 0.5f;

        Comparison comparison = ReferenceCheck.Compare(Shape, actual, reference);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(comparison.WorstExpert, Is.EqualTo(3));
            Assert.That(comparison.MaxRelativeError, Is.EqualTo(0.5));
        }
    }

    [Test]
    public void ShortBuffers_Throw()
    {
        (double[] reference, float[] actual) = Pair();

        Assert.That(() => ReferenceCheck.Compare(Shape, actual[..^1], reference), Throws.ArgumentException);
    }

    /// <summary>A reference of nonzero values, and the same values as float.</summary>
    private static (double[] Reference, float[] Actual) Pair()
    {
        var random = new Random(7);
        double[] reference = [.. Enumerable.Range(0, Shape.TotalRows * N).Select(_ => (random.NextDouble() * 2) - 1)];
        return (reference, [.. reference.Select(v => (float)v)]);
    }
}

/// <summary>
/// The verify pipeline in-process on the CPU backend: generated and quantized inputs, the library's grouped GEMM,
/// the independent managed reference, and the comparison; a corrupted output must fail.
/// </summary>
[TestFixture]
public sealed class VerifyPipelineTests : NativeTestBase
{
    [Test]
    public void CpuOutput_MatchesManagedReference_AndACorruptedOutputFails()
    {
        BenchCase c = SuiteFiles.Case("pipeline", 256, 256, [5, 0, 12, 3]);
        ProblemShape shape = ProblemShape.Full(c);
        using MoeContext context = MoeContext.CreateCpu(threads: 2);
        using MoeStream stream = context.CreateStream();
        using ProblemData data = ProblemData.Create(context, shape, DType.BFloat16, seed: 42, stream);
        using GroupedGemmPlan plan = context.CreateGroupedGemmPlan(
            new GroupedGemmOptions(shape.Experts, shape.N, shape.K, DType.BFloat16, GemmStrategy.Single, shape.TotalRows));

        data.PoisonOutput(stream);
        data.Run(plan, stream);
        stream.Synchronize();
        float[] output = data.ReadOutput();
        double[] reference = ManagedReference.Compute(
            shape,
            ProblemData.Download(data.A),
            ProblemData.Download(data.AScales),
            ProblemData.Download(data.B),
            ProblemData.Download(data.BScales));
        Comparison good = ReferenceCheck.Compare(shape, output, reference);

        // Corrupt one element of expert 3 (rows 17..19) by far more than bf16 rounding.
        float[] corrupted = [.. output];
        int index = (18 * shape.N) + 100;
        corrupted[index] += 1000f;
        Comparison bad = ReferenceCheck.Compare(shape, corrupted, reference);

        // Rows the kernel never wrote stay NaN: leaving the poison in place must fail as non-finite.
        float[] unwritten = [.. output];
        unwritten[(2 * shape.N) + 7] = float.NaN;
        Comparison poisoned = ReferenceCheck.Compare(shape, unwritten, reference);

        double tolerance = ReferenceCheck.Tolerance(DType.BFloat16);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(reference, Has.Some.Not.EqualTo(0.0), "the inputs are not all zero");
            Assert.That(good.Passes(tolerance), Is.True, good.ToString());
            Assert.That(good.ExpertsCompared, Is.EqualTo(3));
            Assert.That(bad.Passes(tolerance), Is.False, bad.ToString());
            Assert.That(bad.WorstExpert, Is.EqualTo(3));
            Assert.That(poisoned.Passes(tolerance), Is.False, poisoned.ToString());
            Assert.That(poisoned.NonFinite, Is.EqualTo(1));
            Assert.That(poisoned.WorstExpert, Is.Zero);
        }
    }

    [Test]
    public void ProblemData_IsDeterministicForASeed_AndDiffersAcrossSeeds()
    {
        ProblemShape shape = ProblemShape.Full(SuiteFiles.Case("seeded", 128, 256, [4, 4]));
        using MoeContext context = MoeContext.CreateCpu(threads: 1);
        using MoeStream stream = context.CreateStream();

        byte[] first = Quantized(context, shape, 1, stream);
        byte[] again = Quantized(context, shape, 1, stream);
        byte[] other = Quantized(context, shape, 2, stream);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(again, Is.EqualTo(first));
            Assert.That(other, Is.Not.EqualTo(first));
        }
    }

    private static byte[] Quantized(MoeContext context, ProblemShape shape, ulong seed, MoeStream stream)
    {
        using ProblemData data = ProblemData.Create(context, shape, DType.BFloat16, seed, stream);
        return [.. ProblemData.Download(data.A), .. ProblemData.Download(data.B)];
    }
}
