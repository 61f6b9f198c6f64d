using MoeCutlass.Cli.Bench;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Tests.Cli;

[TestFixture]
public sealed class RooflineTests
{
    [Test]
    public void Estimate_DeepSeekGateUp_32x256_MatchesHandComputedBytes()
    {
        // 32 experts x 256 rows, N=4096, K=7168: rows=8192, ceil(K/128)=56, ceil(N/128)=32.
        //   B:          32 x 4096 x 7168            = 939,524,096
        //   B scales:   32 x 32 x 56 x 4            =     229,376
        //   A:          8192 x 7168                 =  58,720,256
        //   A scales:   8192 x 56 x 4               =   1,835,008
        //   D (bf16):   8192 x 4096 x 2             =  67,108,864
        //   total                                   = 1,067,417,600
        //   FLOPs:      2 x 8192 x 4096 x 7168      = 481,036,337,152
        ProblemShape shape = ProblemShape.Full(SuiteFiles.Case("ds", 4096, 7168, [.. Enumerable.Repeat(256, 32)]));

        WorkEstimate work = Roofline.Estimate(shape);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(work.Bytes, Is.EqualTo(1_067_417_600d));
            Assert.That(work.Flops, Is.EqualTo(481_036_337_152d));
        }
    }

    [Test]
    public void Estimate_ExpertsWithoutRows_AddNoWeightBytes()
    {
        ProblemShape sparse = ProblemShape.Full(SuiteFiles.Case("sparse", 256, 384, [0, 0, 16, 0, 0, 4, 0, 0]));
        ProblemShape dense = ProblemShape.Full(SuiteFiles.Case("dense", 256, 384, [16, 4]));

        // Two active experts of 256 x 384 (2 x 3 scale blocks) and 20 rows:
        // B 2*256*384 + B scales 2*2*3*4 + A 20*384 + A scales 20*3*4 + D 20*256*2.
        const double expected = (2 * 256 * 384) + (2 * 2 * 3 * 4) + (20 * 384) + (20 * 3 * 4) + (20 * 256 * 2);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Roofline.Estimate(sparse).Bytes, Is.EqualTo(expected));
            Assert.That(Roofline.Estimate(sparse), Is.EqualTo(Roofline.Estimate(dense)));
        }
    }

    [Test]
    public void Estimate_PartialScaleBlocks_AreRoundedUp()
    {
        // N=136 and K=144: two scale blocks each way; one expert, one row.
        ProblemShape shape = ProblemShape.Full(SuiteFiles.Case("ragged", 136, 144, [1]));

        const double expected = (136 * 144) + (2 * 2 * 4) + 144 + (2 * 4) + (136 * 2);

        Assert.That(Roofline.Estimate(shape).Bytes, Is.EqualTo(expected));
    }

    [Test]
    public void SpeedOfLight_PicksTheBindingCeiling()
    {
        // 1979 TFLOP of work takes 1 s at the compute ceiling; 4.8 TB takes 1 s at an H200's memory ceiling.
        RooflineCeilings h200 = RooflineCeilings.Of(TestDevices.H200)!;
        (double computeSeconds, string computeBound) = Roofline.SpeedOfLight(new WorkEstimate(1979e12, 1e12), h200);
        (double memorySeconds, string memoryBound) = Roofline.SpeedOfLight(new WorkEstimate(1e12, 9.6e12), h200);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(computeBound, Is.EqualTo("compute"));
            Assert.That(computeSeconds, Is.EqualTo(1.0).Within(1e-12));
            Assert.That(memoryBound, Is.EqualTo("memory"));
            Assert.That(memorySeconds, Is.EqualTo(2.0).Within(1e-12));
        }
    }

    [Test]
    public void DecodeShape_IsMemoryBound_LargePrefillShape_IsComputeBound()
    {
        ProblemShape decode = ProblemShape.Full(SuiteFiles.Case("decode", 4096, 7168, [.. Enumerable.Repeat(8, 32)]));
        ProblemShape prefill = ProblemShape.Full(SuiteFiles.Case("prefill", 4096, 7168, [.. Enumerable.Repeat(1024, 32)]));

        using (Assert.EnterMultipleScope())
        {
            foreach (DeviceInfo device in new[] { TestDevices.H100, TestDevices.H200 })
            {
                RooflineCeilings ceilings = RooflineCeilings.Of(device)!;
                Assert.That(Roofline.SpeedOfLight(Roofline.Estimate(decode), ceilings).Bound, Is.EqualTo("memory"), device.GpuClass);
                Assert.That(Roofline.SpeedOfLight(Roofline.Estimate(prefill), ceilings).Bound, Is.EqualTo("compute"), device.GpuClass);
            }
        }
    }
}
