using System.Text.Json;
using MoeCutlass.Cli.Bench;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// bench's roofline is drawn against the ceilings of the GPU it runs on (the class the library reports), and there
/// is none where no ceilings are known: checked from device descriptions, since no GPU runs here.
/// </summary>
[TestFixture]
public sealed class RooflineCeilingsTests
{
    private TempDirectory _temp = null!;

    [SetUp]
    public void CreateTemp() => _temp = new TempDirectory();

    [TearDown]
    public void DeleteTemp() => _temp.Dispose();

    /// <summary>1 GFLOP over 48 MB: 10 µs of H200 bandwidth against 0.5 µs of compute.</summary>
    private static readonly WorkEstimate MemoryBound = new(1e9, 48e6);

    /// <summary>1979 GFLOP over 1 GB: 1 ms of compute against 0.2-0.3 ms of bandwidth.</summary>
    private static readonly WorkEstimate ComputeBound = new(1979e9, 1e9);

    [Test]
    public void H200Description_GivesItsDatasheetCeilings_AndNamesThem()
    {
        RooflineCeilings? ceilings = RooflineCeilings.Of(TestDevices.H200);

        Assert.That(ceilings, Is.Not.Null);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ceilings!.PeakFlopsPerSecond, Is.EqualTo(1979e12));
            Assert.That(ceilings.MemoryBytesPerSecond, Is.EqualTo(4.8e12));
            Assert.That(ceilings.Source, Is.EqualTo("datasheet"));
            Assert.That(ceilings.ColumnHeader, Is.EqualTo("% of H200 roofline"));
            Assert.That(RooflineCeilings.HeaderText(ceilings, TestDevices.H200),
                Is.EqualTo("H200 (132 SMs, HBM3e) datasheet, 1979 TFLOP/s dense FP8, 4.80 TB/s"));
            Assert.That(RooflineCeilings.Of(TestDevices.H100)!.ColumnHeader, Is.EqualTo("% of H100 roofline"));
            Assert.That(RooflineCeilings.HeaderText(RooflineCeilings.Of(TestDevices.H100), TestDevices.H100),
                Is.EqualTo("H100 SXM (132 SMs, HBM3) datasheet, 1979 TFLOP/s dense FP8, 3.35 TB/s"));
        }
    }

    [Test]
    public void MemoryBoundWork_IsAPercentOfEachDevicesOwnBandwidth()
    {
        // 20 µs measured: an H200 streams the 48 MB in 10 µs (50 %), an H100 in 14.33 µs (71.6 %).
        (double? h200, string? h200Bound) = Roofline.Fraction(MemoryBound, 20e-6, RooflineCeilings.Of(TestDevices.H200));
        (double? h100, string? h100Bound) = Roofline.Fraction(MemoryBound, 20e-6, RooflineCeilings.Of(TestDevices.H100));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h200Bound, Is.EqualTo("memory"));
            Assert.That(h200, Is.EqualTo(50.0).Within(1e-9));
            Assert.That(h100Bound, Is.EqualTo("memory"));
            Assert.That(h100, Is.EqualTo(48e6 / 3.35e12 / 20e-6 * 100).Within(1e-9));
            Assert.That(h100, Is.EqualTo(71.64).Within(0.01));
        }
    }

    [Test]
    public void ComputeBoundWork_IsAPercentOfTheFp8Peak()
    {
        // 2 ms measured for 1 ms of dense FP8 work: 50 % on both classes (same tensor-core peak).
        (double? h200, string? h200Bound) = Roofline.Fraction(ComputeBound, 2e-3, RooflineCeilings.Of(TestDevices.H200));
        (double? h100, string? h100Bound) = Roofline.Fraction(ComputeBound, 2e-3, RooflineCeilings.Of(TestDevices.H100));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h200Bound, Is.EqualTo("compute"));
            Assert.That(h200, Is.EqualTo(50.0).Within(1e-9));
            Assert.That(h100Bound, Is.EqualTo("compute"));
            Assert.That(h100, Is.EqualTo(50.0).Within(1e-9));
        }
    }

    [Test]
    public void CpuBackend_HasNoRoofline()
    {
        RooflineCeilings? ceilings = RooflineCeilings.Of(null);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(ceilings, Is.Null);
            Assert.That(Roofline.Fraction(MemoryBound, 20e-6, ceilings), Is.EqualTo(((double?)null, (string?)null)));
            Assert.That(RooflineCeilings.HeaderText(ceilings, null), Is.EqualTo("none (CPU backend: no device ceilings)"));
            Assert.That(RooflineCeilings.FootnoteText(ceilings, null), Does.StartWith("No roofline on the CPU backend."));
        }
    }

    [Test]
    public void GpuOfAnUnknownClass_HasNoRoofline()
    {
        DeviceInfo halfKnown = TestDevices.H200 with { DatasheetBandwidthGBps = 0 };

        using (Assert.EnterMultipleScope())
        {
            Assert.That(TestDevices.A100.HasCeilings, Is.False);
            Assert.That(halfKnown.HasCeilings, Is.False, "a roofline needs both ceilings");
            Assert.That(RooflineCeilings.Of(TestDevices.A100), Is.Null);
            Assert.That(RooflineCeilings.Of(halfKnown), Is.Null);
            Assert.That(Roofline.Fraction(ComputeBound, 2e-3, RooflineCeilings.Of(TestDevices.A100)).Percent, Is.Null);
            Assert.That(RooflineCeilings.HeaderText(null, TestDevices.A100),
                Is.EqualTo("none (no known ceilings for NVIDIA A100-SXM4-80GB, class other GPU (tile-width thresholds))"));
            Assert.That(RooflineCeilings.FootnoteText(null, TestDevices.A100), Does.StartWith("No roofline:"));
        }
    }

    [Test]
    public void Table_NamesTheClassInTheRooflineColumn_AndLeavesItOutWithoutCeilings()
    {
        BenchResult result = ResultTests.Result("decode", "single", 20.0) with { RooflinePercent = 50.0, RooflineBound = "memory" };

        string h200 = TextConsole.Render(console => ResultTable.Write(console, [result], RooflineCeilings.Of(TestDevices.H200)));
        string cpu = TextConsole.Render(console => ResultTable.Write(console, [result with { RooflinePercent = null, RooflineBound = null }], null));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(h200, Does.Contain("% of H200 roofline").And.Contain("50.0% memory"));
            Assert.That(h200, Does.Not.Contain("H100"));
            Assert.That(cpu, Does.Not.Contain("roofline"));
            Assert.That(cpu, Does.Contain("vs single"));
        }
    }

    [Test]
    public void Json_CarriesTheCeilingsUsed_OrNull()
    {
        BenchResult measured = ResultTests.Result("decode", "single", 20.0) with { RooflinePercent = 50.0, RooflineBound = "memory" };
        BenchResult cpu = ResultTests.Result("decode", "single", 20.0) with { RooflinePercent = null, RooflineBound = null };
        string withCeilings = _temp.Combine("h200.json");
        string without = _temp.Combine("cpu.json");

        ResultWriters.WriteJson(withCeilings, new BenchReport(BenchGraphReportTests.Metadata(), [measured]));
        ResultWriters.WriteJson(without, new BenchReport(BenchGraphReportTests.Metadata() with { Roofline = null }, [cpu]));

        using JsonDocument h200 = JsonDocument.Parse(File.ReadAllText(withCeilings));
        using JsonDocument none = JsonDocument.Parse(File.ReadAllText(without));
        JsonElement roofline = h200.RootElement.GetProperty("run").GetProperty("roofline");
        JsonElement record = none.RootElement.GetProperty("results")[0];
        using (Assert.EnterMultipleScope())
        {
            Assert.That(roofline.GetProperty("gpu_class").GetString(), Is.EqualTo("H200 (132 SMs, HBM3e)"));
            Assert.That(roofline.GetProperty("source").GetString(), Is.EqualTo("datasheet"));
            Assert.That(roofline.GetProperty("peak_tflops").GetDouble(), Is.EqualTo(1979));
            Assert.That(roofline.GetProperty("memory_gbps").GetDouble(), Is.EqualTo(4800));
            Assert.That(roofline.EnumerateObject().Select(p => p.Name), Is.EqualTo(new[] { "gpu_class", "source", "peak_tflops", "memory_gbps" }));
            Assert.That(h200.RootElement.GetProperty("results")[0].GetProperty("roofline_percent").GetDouble(), Is.EqualTo(50.0));
            Assert.That(none.RootElement.GetProperty("run").GetProperty("roofline").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(record.GetProperty("roofline_percent").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(record.GetProperty("roofline_bound").ValueKind, Is.EqualTo(JsonValueKind.Null));
        }
    }
}
