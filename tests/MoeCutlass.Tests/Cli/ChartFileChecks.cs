using System.Buffers.Binary;
using System.Xml.Linq;

namespace MoeCutlass.Tests.Cli;

/// <summary>What a written chart must be: a real PNG of the planned size and an SVG that parses and names things.</summary>
internal static class ChartFileChecks
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>The committed result files (bench/results), found upward from the test binaries.</summary>
    public static string Fixture(string name)
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "bench", "results", name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"bench/results/{name} not found above {AppContext.BaseDirectory}");
    }

    /// <summary>
    /// Ignores the calling test (with the reason) on a machine without fonts, where every chart is drawn without text
    /// and <c>plot</c> warns so (the GPU machine has none): the tests that read text or size from a chart need fonts.
    /// </summary>
    public static void RequireFonts()
    {
        if (!MoeCutlass.Cli.Charts.ChartStyle.FontsAvailable)
        {
            Assert.Ignore("no fonts on this machine: charts are drawn without text (plot prints a warning)");
        }
    }

    /// <summary>PNG signature, the IHDR size, and more bytes than an empty canvas of that size would take.</summary>
    public static void AssertPng(string path, int width, int height)
    {
        byte[] bytes = File.ReadAllBytes(path);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(bytes.Take(8), Is.EqualTo(PngSignature), $"{path}: PNG signature");
            Assert.That(System.Text.Encoding.ASCII.GetString(bytes, 12, 4), Is.EqualTo("IHDR"), $"{path}: first chunk");
            Assert.That(BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), Is.EqualTo(width), $"{path}: width");
            Assert.That(BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)), Is.EqualTo(height), $"{path}: height");
            Assert.That(bytes, Has.Length.InRange(30_000, 5_000_000), $"{path}: a drawn chart, not a blank or runaway file");
        }
    }

    /// <summary>The SVG parses as XML, has the svg root, and its text is returned (every label, joined).</summary>
    public static string SvgText(string path)
    {
        XDocument document = XDocument.Load(path);
        Assert.That(document.Root?.Name.LocalName, Is.EqualTo("svg"), path);
        return string.Join("\n", document.Descendants().Where(e => e.Name.LocalName == "text").SelectMany(e => e.Value.Split('\n')).Select(l => l.Trim()));
    }

    /// <summary>Every case name is a label of the SVG: a tick label, or a line of the roofline's key ("12  name").</summary>
    public static void AssertNamesEveryCase(string svgPath, IEnumerable<string> cases)
    {
        string[] labels = SvgText(svgPath).Split('\n');
        foreach (string caseName in cases)
        {
            Assert.That(labels.Any(l => l == caseName || l.EndsWith(" " + caseName, StringComparison.Ordinal)), Is.True, $"{svgPath} names {caseName}");
        }
    }
}
