using System.CommandLine;
using Microsoft.Extensions.Logging.Abstractions;
using MoeCutlass.Cli;
using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Commands;
using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;
using MoeCutlass.Cli.Tune;

namespace MoeCutlass.Tests.Cli;

/// <summary><c>tune</c>'s --shape, --rows and shape selection, its forced configurations, and its data views.</summary>
[TestFixture]
public sealed class TuneOptionTests : NativeTestBase
{
    [Test]
    public void Shape_Valid()
    {
        TuneShape shape = TuneSelection.ParseShape(" 32, 7168 ,2048");

        using (Assert.EnterMultipleScope())
        {
            Assert.That((shape.Experts, shape.N, shape.K), Is.EqualTo((32, 7168, 2048)));
            Assert.That(shape.Label, Is.EqualTo("E=32, N=7168, K=2048"));
            Assert.That(shape.Case, Is.Null);
            Assert.That(shape.DataName, Is.EqualTo("tune-e32-n7168-k2048"));
        }
    }

    [TestCase("32,7168", "--shape '32,7168': expected E,N,K (three integers, e.g. 32,7168,2048)")]
    [TestCase("32,7168,2048,1", "--shape '32,7168,2048,1': expected E,N,K (three integers, e.g. 32,7168,2048)")]
    [TestCase("32x7168x2048", "--shape '32x7168x2048': expected E,N,K (three integers, e.g. 32,7168,2048)")]
    [TestCase("a,8,16", "--shape 'a,8,16': expected E,N,K (three integers, e.g. 32,7168,2048)")]
    [TestCase("0,7168,2048", "--shape 0,7168,2048: E must be 1..4096 (got 0)")]
    [TestCase("4097,7168,2048", "--shape 4097,7168,2048: E must be 1..4096 (got 4097)")]
    [TestCase("32,7170,2048", "--shape 32,7170,2048: N must be a positive multiple of 8 up to 1048576 (got 7170)")]
    [TestCase("32,-8,2048", "--shape 32,-8,2048: N must be a positive multiple of 8 up to 1048576 (got -8)")]
    [TestCase("32,7168,2040", "--shape 32,7168,2040: K must be a positive multiple of 16 up to 1048576 (got 2040)")]
    [TestCase("32,7168,0", "--shape 32,7168,0: K must be a positive multiple of 16 up to 1048576 (got 0)")]
    public void Shape_Invalid_IsOneLineUsageError(string value, string expected)
    {
        var error = Assert.Throws<UsageException>(() => TuneSelection.ParseShape(value));

        Assert.That(error!.Message, Is.EqualTo(expected));
    }

    [Test]
    public void Shapes_Default_AreTheThreeDeepSeekShapes()
    {
        IReadOnlyList<TuneShape> shapes = TuneSelection.Shapes(null, null);

        Assert.That(shapes.Select(s => (s.Experts, s.N, s.K)), Is.EqualTo(new[] { (32, 7168, 2048), (256, 7168, 256), (32, 4096, 7168) }));
    }

    [Test]
    public void Shapes_FromShapesAndCases_InOrder_WithoutRepeats()
    {
        BenchCase gateUp = SuiteFiles.Case("ds-gate_up", 7168, 2048, 10, 20);
        BenchCase sameAsShape = SuiteFiles.Case("other", 4096, 7168, [.. Enumerable.Repeat(1, 32)]);

        IReadOnlyList<TuneShape> shapes = TuneSelection.Shapes(["32,4096,7168", "8,256,128", "8,256,128"], [gateUp, sameAsShape]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(shapes.Select(s => s.Label), Is.EqualTo(new[] { "E=32, N=4096, K=7168", "E=8, N=256, K=128", "ds-gate_up (E=2, N=7168, K=2048)" }));
            Assert.That(shapes[2].Case, Is.EqualTo("ds-gate_up"));
            Assert.That(shapes[2].DataName, Is.EqualTo("tune-e2-n7168-k2048"), "the data depends on the shape, not on how it was named");
        }
    }

    [Test]
    public void Rows_Default()
    {
        int[] expected = [4, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 128, 192];

        using (Assert.EnterMultipleScope())
        {
            Assert.That(TuneSelection.ParseRows(null), Is.EqualTo(expected));
            Assert.That(TuneSelection.ParseRows([]), Is.EqualTo(expected));
        }
    }

    [Test]
    public void Rows_RepeatsAndCommaLists_SortedWithoutDuplicates()
    {
        Assert.That(TuneSelection.ParseRows(["64, 8,16", "8", "100000"]), Is.EqualTo(new[] { 8, 16, 64, 100000 }));
    }

    [TestCase("4,x", "--rows: 'x' is not a whole number (rows per expert, e.g. --rows 4,8,16,32)")]
    [TestCase("4.5", "--rows: '4.5' is not a whole number (rows per expert, e.g. --rows 4,8,16,32)")]
    [TestCase("0", "--rows: 0 is out of range (rows per expert must be 1..100000)")]
    [TestCase("8,-4", "--rows: -4 is out of range (rows per expert must be 1..100000)")]
    [TestCase("100001", "--rows: 100001 is out of range (rows per expert must be 1..100000)")]
    [TestCase(",", "--rows needs at least one value (e.g. --rows 4,8,16,32)")]
    public void Rows_Invalid_IsOneLineUsageError(string value, string expected)
    {
        var error = Assert.Throws<UsageException>(() => TuneSelection.ParseRows([value]));

        Assert.That(error!.Message, Is.EqualTo(expected));
    }

    [Test]
    public void CommandLine_RepeatedShapeAndRows_ParseWithoutErrors()
    {
        ParseResult result = Program.BuildRootCommand().Parse(["tune", "--shape", "1,8,16", "--shape", "2,8,16", "--rows", "4,8", "-m", "16", "-n", "5"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Errors, Is.Empty);
            Assert.That(result.GetValue<string[]>("--shape"), Is.EqualTo(new[] { "1,8,16", "2,8,16" }));
            Assert.That(result.GetValue<string[]>("--rows"), Is.EqualTo(new[] { "4,8", "16" }));
            Assert.That(result.GetValue<int>("--iterations"), Is.EqualTo(5));
            Assert.That(result.GetValue<int>("--warmup"), Is.EqualTo(3));
        }
    }

    [Test]
    public void Configurations_ForceEveryExpertIntoOneConfiguration()
    {
        ProblemShape problem = ProblemShape.Uniform("tune-e4-n256-k128", 4, 256, 128, 24);

        IReadOnlyList<MeasuredConfiguration> configurations = TuneRunner.Configurations(problem, DType.Float16);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(configurations.Select(c => c.Label), Is.EqualTo(new[] { "128x32", "128x64", "128x128" }));
            Assert.That(
                configurations.Select(c => c.Options.Configurations!.Single().Name),
                Is.EqualTo(new[] { "swap_128x32x128_c2x1_pingpong", "swap_128x64x128_c2x1_pingpong", "tile_128x128x128_c1x2_cooperative" }));
            foreach (MeasuredConfiguration c in configurations)
            {
                Assert.That(c.Options.Configurations!.Single().MaxRows, Is.EqualTo(ConfigurationRange.Unbounded));
                Assert.That(
                    c.Options with { Configurations = null },
                    Is.EqualTo(new GroupedGemmOptions(4, 256, 128, DType.Float16, GemmStrategy.Single, 96)));
            }
        }
    }

    [Test]
    public void UniformShape_HasTheRowsOfEveryExpert()
    {
        ProblemShape shape = ProblemShape.Uniform("u", 3, 128, 256, 5);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(shape.RowsPerExpert, Is.EqualTo(new[] { 5, 5, 5 }));
            Assert.That(shape.ExpertOffsets(), Is.EqualTo(new[] { 0, 5, 10, 15 }));
            Assert.That(shape.Scaled, Is.False);
            Assert.That(shape.Case.Name, Is.EqualTo("u"));
        }
    }

    [Test]
    public void ShareInputs_View_ComputesWhatFreshDataOfThatShapeComputes_AndLeavesTheInputsAlive()
    {
        using MoeContext context = MoeContext.CreateCpu(threads: 2);
        using MoeStream stream = context.CreateStream();
        ProblemShape large = ProblemShape.Uniform("tune-e3-n128-k256", 3, 128, 256, 8);
        ProblemShape small = ProblemShape.Uniform("tune-e3-n128-k256", 3, 128, 256, 5);
        using ProblemData data = ProblemData.Create(context, large, DType.BFloat16, 7, stream);
        using ProblemData fresh = ProblemData.Create(context, small, DType.BFloat16, 7, stream);
        using GroupedGemmPlan plan = context.CreateGroupedGemmPlan(new GroupedGemmOptions(3, 128, 256, DType.BFloat16, GemmStrategy.Single, large.TotalRows));

        float[] viewed;
        using (ProblemData view = data.ShareInputs(context, small))
        {
            view.Run(plan, stream);
            stream.Synchronize();
            viewed = view.ReadOutput();
        }

        fresh.Run(plan, stream);
        data.Run(plan, stream); // still usable after the view is gone
        stream.Synchronize();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(viewed, Is.EqualTo(fresh.ReadOutput()));
            // Expert 0 owns rows 0..4 in both problems: same A rows, same weights, same output.
            Assert.That(data.ReadOutput().Take(5 * 128), Is.EqualTo(viewed.Take(5 * 128)), "the inputs are still alive after the view");
            Assert.Throws<ArgumentException>(() => data.ShareInputs(context, ProblemShape.Uniform("x", 3, 128, 256, 9)));
            Assert.Throws<ArgumentException>(() => data.ShareInputs(context, ProblemShape.Uniform("x", 2, 128, 256, 1)));
        }
    }

    [Test]
    public void Runner_TimesLabelledConfigurations_InTheirOrder()
    {
        // The CPU backend accepts the thresholds and runs its reference kernel: the tune measurement path without a GPU.
        using MoeContext context = MoeContext.CreateCpu(threads: 2);
        using MoeStream stream = context.CreateStream();
        ProblemShape problem = ProblemShape.Uniform("tune-e2-n128-k128", 2, 128, 128, 4);
        using ProblemData data = ProblemData.Create(context, problem, DType.BFloat16, 1, stream);
        var runner = new BenchRunner(context, new BenchSettings(2, 0, DType.BFloat16), NullLogger.Instance);

        IReadOnlyList<BenchResult> results = runner.MeasureInterleaved(data, TuneRunner.Configurations(problem, DType.BFloat16));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(results.Select(r => r.Strategy), Is.EqualTo(new[] { "128x32", "128x64", "128x128" }));
            Assert.That(results.Select(r => r.Error), Is.All.Null);
            Assert.That(results.Select(r => r.TimeMedianUs), Is.All.Positive);
            Assert.That(results.Select(r => r.Rows), Is.All.EqualTo(8));
        }
    }
}
