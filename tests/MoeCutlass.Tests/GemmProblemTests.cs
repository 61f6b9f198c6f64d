using MoeCutlass.Tests.Gpu;

namespace MoeCutlass.Tests;

/// <summary>
/// The harness of the GPU grouped-GEMM tests (<see cref="GemmProblem"/>, <see cref="GemmCheck"/>), run on the CPU
/// backend everywhere: identical results pass, and the mistakes the GPU tests are meant to catch (a wrong scale index,
/// a row not written, a row written outside the experts) fail them. A GPU test whose checks cannot fail is worthless.
/// </summary>
[TestFixture]
public sealed class GemmProblemTests : NativeTestBase
{
    private MoeContext _cpu = null!;

    [OneTimeSetUp]
    public void CreateContext() => _cpu = MoeContext.CreateCpu();

    [OneTimeTearDown]
    public void DisposeContext() => _cpu?.Dispose();

    [Test]
    public void Create_LaysOutOffsetsRowsAndScales()
    {
        var problem = GemmProblem.Create(_cpu, NewRandom(), 200, 272, [3, 0, 9], leadingRows: 2, trailingRows: 4, guardRows: 7);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(problem.Offsets, Is.EqualTo(new[] { 2, 5, 5, 14 }));
            Assert.That(problem.Rows, Is.EqualTo(18));
            Assert.That(problem.CapacityRows, Is.EqualTo(25));
            Assert.That(problem.A, Has.Length.EqualTo(18 * 272));
            Assert.That(problem.AScales, Has.Length.EqualTo(18 * 3));
            Assert.That(problem.B, Has.Length.EqualTo(3 * 200 * 272));
            Assert.That(problem.BScales, Has.Length.EqualTo(3 * 2 * 3));
            Assert.That(problem.Options(DType.Float16, GemmStrategy.Auto),
                Is.EqualTo(new GroupedGemmOptions(3, 200, 272, DType.Float16, GemmStrategy.Auto, 25)));
            Assert.That(problem.A.Any(IsNaNCode) || problem.B.Any(IsNaNCode), Is.False, "no NaN codes");
        }
    }

    [Test]
    public void Create_GivesEveryScaleBlockItsOwnMagnitude()
    {
        // Powers of two in [2^-4, 2^4] per block: scales span more than a factor 16, and neighbours mostly differ.
        var problem = GemmProblem.Create(_cpu, NewRandom(), 256, 512, [64, 64]);
        float[] b = problem.BScales;
        float[] a = problem.AScales;
        using (Assert.EnterMultipleScope())
        {
            Assert.That(b.Max() / b.Min(), Is.GreaterThan(16f), "weight scales");
            Assert.That(a.Max() / a.Min(), Is.GreaterThan(16f), "activation scales");
            Assert.That(Enumerable.Range(1, b.Length - 1).Count(i => Ratio(b[i], b[i - 1]) > 1.5), Is.GreaterThan(b.Length / 2));
            Assert.That(Enumerable.Range(1, a.Length - 1).Count(i => Ratio(a[i], a[i - 1]) > 1.5), Is.GreaterThan(a.Length / 2));
        }
    }

    [Test]
    public void Create_IsReproducibleFromTheSeed()
    {
        var first = GemmProblem.Create(_cpu, new Random(1234), 136, 144, [5, 7]);
        var second = GemmProblem.Create(_cpu, new Random(1234), 136, 144, [5, 7]);
        Assert.That(first.A, Is.EqualTo(second.A));
        Assert.That(first.B, Is.EqualTo(second.B));
        Assert.That(first.BScales, Is.EqualTo(second.BScales));
    }

    [Test]
    public void Weights_DoNotDependOnTheQuantizationChunks()
    {
        // Chunks of two experts: 5 experts are quantized as 2 + 2 + 1, 6 experts as 2 + 2 + 2, 7 in one chunk. The first
        // five experts must be the same bytes every way (each expert's values follow from the seed and its index alone).
        int seed = NewRandom().Next();
        const int n = 256, k = 384, nk = n * k;
        var five = GemmProblem.Create(_cpu, new Random(seed), n, k, [1, 0, 0, 0, 0], weightChunkElements: 2 * nk);
        var six = GemmProblem.Create(_cpu, new Random(seed), n, k, [1, 0, 0, 0, 0, 0], weightChunkElements: 2 * nk + 1);
        var seven = GemmProblem.Create(_cpu, new Random(seed), n, k, [1, 0, 0, 0, 0, 0, 0]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(five.B.AsSpan().SequenceEqual(six.B.AsSpan(0, 5 * nk)), Is.True, "weights, 2 + 2 + 1 vs 2 + 2 + 2");
            Assert.That(five.B.AsSpan().SequenceEqual(seven.B.AsSpan(0, 5 * nk)), Is.True, "weights, 2 + 2 + 1 vs one chunk");
            Assert.That(five.BScales.AsSpan().SequenceEqual(seven.BScales.AsSpan(0, 5 * 2 * 3)), Is.True, "weight scales");
            Assert.That(six.BScales.AsSpan().SequenceEqual(seven.BScales.AsSpan(0, 6 * 2 * 3)), Is.True, "weight scales");
            Assert.That(five.B.AsSpan(0, nk).SequenceEqual(five.B.AsSpan(4 * nk, nk)), Is.False, "experts are drawn independently");
            Assert.That(five.A, Is.EqualTo(seven.A));
        }
    }

    [TestCase(DType.BFloat16)]
    [TestCase(DType.Float16)]
    public void IdenticalBackends_Pass(DType outputDType)
    {
        var problem = GemmProblem.Create(_cpu, NewRandom(), 200, 272, [0, 5, 33, 0, 130], leadingRows: 3, trailingRows: 2);
        ushort[] reference = problem.Reference(_cpu, outputDType);
        ushort[] output = RunOn(problem, outputDType, _ => { });
        Assert.That(GemmCheck.CompareExperts(problem, reference, output, outputDType, out double worst), Is.Null);
        Assert.That(worst, Is.Zero);
        Assert.That(GemmCheck.CheckRowsOutsideExperts(problem, output), Is.Null);
        Assert.That(output.AsSpan(0, 3 * 200).ToArray(), Is.All.EqualTo(GemmProblem.Canary), "leading rows");
        Assert.That(output.AsSpan(problem.Offsets[^1] * 200).ToArray(), Is.All.EqualTo(GemmProblem.Canary), "trailing and guard rows");
    }

    [Test]
    public void WeightScalesOfTheNextExpert_Fail()
    {
        var problem = GemmProblem.Create(_cpu, NewRandom(), 200, 272, [9, 17, 40]);
        ushort[] reference = problem.Reference(_cpu, DType.BFloat16);
        // A kernel with a wrong expert stride into the B scales: expert e reads expert e+1's scales.
        float[] shifted = [.. problem.BScales.Skip(2 * 3), .. problem.BScales.Take(2 * 3)];
        ushort[] output = RunOn(problem, DType.BFloat16, o => o.BScales.CopyFrom(shifted));
        string? failure = GemmCheck.CompareExperts(problem, reference, output, DType.BFloat16, out double worst);
        TestContext.Out.WriteLine(failure);
        Assert.That(failure, Does.StartWith("3 of 3 non-empty experts exceed the BFloat16 tolerance"));
        Assert.That(worst, Is.GreaterThan(0.05));
    }

    [Test]
    public void WeightScalesOfTheNextKBlock_Fail()
    {
        // One expert, one N band, K = 384: a kernel that reads K block kb+1's scale for kb.
        var problem = GemmProblem.Create(_cpu, NewRandom(), 128, 384, [50]);
        ushort[] reference = problem.Reference(_cpu, DType.Float16);
        float[] s = problem.BScales;
        ushort[] output = RunOn(problem, DType.Float16, o => o.BScales.CopyFrom([s[1], s[2], s[0]]));
        Assert.That(GemmCheck.CompareExperts(problem, reference, output, DType.Float16, out double worst), Does.Contain("expert 0 (rows 0..49"));
        Assert.That(worst, Is.GreaterThan(0.05));
    }

    [Test]
    public void ActivationScalesOfTheNextRow_Fail()
    {
        var problem = GemmProblem.Create(_cpu, NewRandom(), 64, 256, [20, 20]);
        ushort[] reference = problem.Reference(_cpu, DType.BFloat16);
        float[] shifted = [.. problem.AScales.Skip(2), .. problem.AScales.Take(2)];
        ushort[] output = RunOn(problem, DType.BFloat16, o => o.AScales.CopyFrom(shifted));
        Assert.That(GemmCheck.CompareExperts(problem, reference, output, DType.BFloat16, out double worst), Does.StartWith("2 of 2"));
        Assert.That(worst, Is.GreaterThan(0.05));
    }

    [Test]
    public void ARowLeftAtTheCanary_Fails()
    {
        var problem = GemmProblem.Create(_cpu, NewRandom(), 64, 128, [4, 4, 4]);
        ushort[] reference = problem.Reference(_cpu, DType.BFloat16);
        ushort[] output = RunOn(problem, DType.BFloat16, _ => { });
        output.AsSpan(5 * 64, 64).Fill(GemmProblem.Canary);
        string? failure = GemmCheck.CompareExperts(problem, reference, output, DType.BFloat16, out double worst);
        Assert.That(failure, Does.Contain("1 of 3").And.Contain("expert 1 (rows 4..7").And.Contain("row 5"));
        Assert.That(worst, Is.NaN);
    }

    [Test]
    public void AWriteOutsideTheExperts_Fails()
    {
        var problem = GemmProblem.Create(_cpu, NewRandom(), 64, 128, [4, 4], leadingRows: 1, trailingRows: 1);
        ushort[] reference = problem.Reference(_cpu, DType.BFloat16);
        reference[0] = 0;
        Assert.That(GemmCheck.CheckRowsOutsideExperts(problem, reference), Does.StartWith("1 elements").And.Contain("row 0 col 0"));
        reference[0] = GemmProblem.Canary;
        reference[^1] = 0x3F80;
        Assert.That(GemmCheck.CheckRowsOutsideExperts(problem, reference), Does.Contain($"row {problem.CapacityRows - 1} col 63"));
    }

    [Test]
    public void EdgeAndSkewedRowLists()
    {
        var random = NewRandom();
        int[] skewed = RowLists.Skewed(random, 256, 0.8, 400);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(RowLists.Edges(), Is.EqualTo(new[] { 0, 1, 7, 8, 33, 127, 128, 129, 1000 }));
            Assert.That(skewed.Count(r => r == 0), Is.EqualTo(256 - 51));
            Assert.That(skewed.Max(), Is.EqualTo(400));
            Assert.That(skewed.Where(r => r > 0).Min(), Is.GreaterThanOrEqualTo(1));
            Assert.That(skewed.Sum(), Is.InRange(1000, 2000));
            Assert.That(RowLists.Uniform(random, 1000, 0, 8), Is.All.InRange(0, 8));
        }
    }

    private static bool IsNaNCode(byte code) => (code & 0x7F) == 0x7F;

    private static float Ratio(float x, float y) => Math.Max(x, y) / Math.Min(x, y);

    /// <summary>Runs the problem on a second CPU context after <paramref name="tamper"/> changed its operands.</summary>
    private static ushort[] RunOn(GemmProblem problem, DType outputDType, Action<GemmOperands> tamper)
    {
        using var other = MoeContext.CreateCpu(threads: 1);
        using var operands = new GemmOperands(other, problem);
        tamper(operands);
        using var plan = other.CreateGroupedGemmPlan(problem.Options(outputDType, GemmStrategy.Single));
        operands.Run(plan);
        return operands.ReadOutput();
    }
}
