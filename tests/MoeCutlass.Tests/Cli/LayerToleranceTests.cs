using MoeCutlass.Cli.Suite;
using MoeCutlass.Cli.Verify;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// The layer comparison rule of <c>verify --layer</c> and the GPU layer tests (<see cref="LayerTolerance"/>): what passes,
/// what fails and why, and <see cref="LayerCheck"/> failing a case whose output is perturbed beyond the rule (a test hook
/// between the forward calls and the comparison) while passing one perturbed within it.
/// </summary>
[TestFixture]
public sealed class LayerToleranceTests : NativeTestBase
{
    private const int Hidden = 64;

    /// <summary>Two token rows: row 0 of magnitude up to 4, row 1 of magnitude up to 1/16 (the bound is per row).</summary>
    private static double[] Expected() =>
        [.. Enumerable.Range(0, 2 * Hidden).Select(i => (i < Hidden ? 4.0 : 1.0 / 16) * Math.Sin(i + 1))];

    private static double RowMax(double[] values, int row) => values.Skip(row * Hidden).Take(Hidden).Max(Math.Abs);

    [Test]
    public void IdenticalOutputs_Pass_WithZeroDifference()
    {
        double[] expected = Expected();

        LayerComparison c = LayerTolerance.Compare(expected, expected, Hidden, DType.BFloat16);

        Assert.That((c.Passes, c.RelativeRms, c.WorstRatio, c.NonFinite), Is.EqualTo((true, 0.0, 0.0, 0L)));
    }

    [Test]
    public void OneElementWithinItsRowBound_Passes()
    {
        double[] expected = Expected();
        double[] got = [.. expected];
        got[Hidden + 5] += 0.1 * RowMax(expected, 1); // 0.8 of row 1's 2^-3 share

        LayerComparison c = LayerTolerance.Compare(got, expected, Hidden, DType.BFloat16);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(c.Passes, Is.True, c.ToString());
            Assert.That(c.WorstRatio, Is.GreaterThan(0.5).And.LessThan(0.85));
            Assert.That(c.WorstElement, Does.StartWith("token 1 column 5:"));
        }
    }

    [Test]
    public void OneElementBeyondItsRowBound_Fails_AndIsNamed()
    {
        double[] expected = Expected();
        double[] got = [.. expected];
        // Small against row 0's magnitude (the RMS stays far below 2^-5) but beyond row 1's own bound.
        got[Hidden + 9] += 0.25 * RowMax(expected, 1);

        LayerComparison c = LayerTolerance.Compare(got, expected, Hidden, DType.BFloat16);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(c.Passes, Is.False);
            Assert.That(c.RelativeRms, Is.LessThan(LayerTolerance.RmsLimit), "the per-element rule alone catches it");
            Assert.That(c.WorstRatio, Is.GreaterThan(1.5));
            Assert.That(c.WorstElement, Does.StartWith("token 1 column 9:"));
        }
    }

    [Test]
    public void AUniformFivePercentError_PassesEveryElement_ButFailsTheRms()
    {
        double[] expected = Expected();
        double[] got = [.. expected.Select(v => v * 1.05)];

        LayerComparison c = LayerTolerance.Compare(got, expected, Hidden, DType.BFloat16);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(c.WorstRatio, Is.LessThanOrEqualTo(1));
            Assert.That(c.RelativeRms, Is.EqualTo(0.05).Within(1e-9));
            Assert.That(c.Passes, Is.False);
        }
    }

    [Test]
    public void ANaN_Fails()
    {
        double[] expected = Expected();
        double[] got = [.. expected];
        got[3] = double.NaN;

        LayerComparison c = LayerTolerance.Compare(got, expected, Hidden, DType.BFloat16);

        Assert.That((c.Passes, c.NonFinite, c.RelativeRms, c.WorstRatio), Is.EqualTo((false, 1L, double.PositiveInfinity, double.PositiveInfinity)));
    }

    [Test]
    public void ZeroRows_AllowTwoUlpsOnly()
    {
        double[] expected = new double[Hidden];
        double[] within = new double[Hidden];
        within[0] = 2 * Math.ScaleB(1.0, -133); // two bf16 subnormal spacings
        double[] beyond = new double[Hidden];
        beyond[0] = 1e-6;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(LayerTolerance.Compare(within, expected, Hidden, DType.BFloat16).WorstRatio, Is.EqualTo(1.0));
            Assert.That(LayerTolerance.Compare(beyond, expected, Hidden, DType.BFloat16).Passes, Is.False);
        }
    }

    [TestCase(1.0, DType.BFloat16, 1.0 / 128)]
    [TestCase(1.0, DType.Float16, 1.0 / 1024)]
    [TestCase(-3.0, DType.BFloat16, 2.0 / 128)]
    [TestCase(0.0, DType.Float16, 1.0 / (1 << 24))]
    public void Ulp_IsTheOutputDTypesSpacing(double x, DType dtype, double expected) =>
        Assert.That(LayerTolerance.Ulp(x, dtype), Is.EqualTo(expected));

    [Test]
    public void MismatchedShapes_Throw() =>
        Assert.Throws<ArgumentException>(() => LayerTolerance.Compare(new double[Hidden], new double[Hidden + 1], Hidden, DType.BFloat16));

    [TestCase(0.25, false)]
    [TestCase(0.0625, true)]
    [TestCase(0.0, true)]
    public void LayerCheck_PerturbedOutput_FailsBeyondTheRule_AndPassesWithinIt(double fractionOfRowMax, bool passes)
    {
        using MoeContext checkedContext = MoeContext.CreateCpu(threads: 2);
        using MoeContext reference = MoeContext.CreateCpu(threads: 2);
        // Every expert local, so every token row is non-zero.
        var layerCase = new LayerCase("t", "m", 8, 0, 8, 128, 128, 2, 16, LayerRouter.Uniform, null);
        void Tamper(double[] got) => got[7] += fractionOfRowMax * got.Take(128).Max(Math.Abs);
        using LayerCheck check = LayerCheck.Prepare(checkedContext, reference, LayerShape.Scale(layerCase), DType.BFloat16, seed: 11, Tamper);

        LayerVerifyRow row = check.Run(GemmStrategy.Single);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(row.Passed, Is.EqualTo(passes), row.Comparison?.WorstElement);
            Assert.That(row.Deterministic, Is.True, "the tamper comes after the determinism check");
            Assert.That(row.Flags, Is.EqualTo(DeviceErrorFlags.None));
            Assert.That(row.RoutedRows, Is.EqualTo(16 * 2), "every token's two experts are local");
            Assert.That(row.ActiveExperts, Is.InRange(1, 8));
            Assert.That(row.Comparison!.Value.WorstRatio, passes ? Is.LessThanOrEqualTo(1) : Is.GreaterThan(1));
            if (fractionOfRowMax > 0)
            {
                Assert.That(row.Comparison.Value.WorstElement, Does.StartWith("token 0 column 7:"));
            }
        }
    }
}
