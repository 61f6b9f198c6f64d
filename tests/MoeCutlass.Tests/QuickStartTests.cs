using System.Diagnostics;
using System.Text.RegularExpressions;

namespace MoeCutlass.Tests;

/// <summary>
/// The README's quick starts are tests/QuickStart/Program.cs (a grouped GEMM) and tests/QuickStartMoeLayer/Program.cs
/// (an MoE layer): each is built with the solution and run here on the CPU backend, and the README's code block after
/// its marker must be that file's text, so the two cannot drift apart.
/// </summary>
[TestFixture]
public sealed partial class QuickStartTests
{
    private const string Marker = "<!-- quick-start: tests/QuickStart/Program.cs -->";
    private const string MoeLayerMarker = "<!-- quick-start: tests/QuickStartMoeLayer/Program.cs -->";

    [Test]
    public void Readme_QuickStartBlock_IsTheQuickStartProgram() => AssertReadmeBlockIsProgram(QuickStartBlock(), Marker, "QuickStart");

    [Test]
    public void Readme_MoeLayerBlock_IsTheMoeLayerQuickStartProgram() =>
        AssertReadmeBlockIsProgram(MoeLayerBlock(), MoeLayerMarker, "QuickStartMoeLayer");

    /// <summary>The ```csharp block that <paramref name="block"/> finds after <paramref name="marker"/> is tests/<paramref name="project"/>/Program.cs.</summary>
    private static void AssertReadmeBlockIsProgram(Regex block, string marker, string project)
    {
        string root = Root();
        string readme = Normalize(File.ReadAllText(Path.Combine(root, "README.md")));
        string program = Normalize(File.ReadAllText(Path.Combine(root, "tests", project, "Program.cs")));

        Match match = block.Match(readme);

        Assert.That(match.Success, Is.True, $"README.md has no ```csharp block right after {marker}");
        Assert.That(match.Groups["code"].Value, Is.EqualTo(program), $"README.md's block after {marker} differs from tests/{project}/Program.cs");
    }

    [Test]
    public async Task MoeLayerQuickStartProgram_RunsOnTheCpuBackend_AndPrintsWhatTheReadmeSays()
    {
        (int exitCode, string output, string error) = await RunProgram("QuickStartMoeLayer");
        string readme = File.ReadAllText(Path.Combine(Root(), "README.md"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero, error);
            Assert.That(output.TrimEnd(), Does.StartWith("y[0, 0..3] = "));
            Assert.That(readme, Does.Contain($"It prints `{output.TrimEnd()}`"));
        }
    }

    [Test]
    public void Readme_OpensWithTheQuickStart_AndNamesTheHelpersAndTheCli()
    {
        string readme = File.ReadAllText(Path.Combine(Root(), "README.md"));
        string firstSection = Regex.Match(readme, "^## .*$", RegexOptions.Multiline).Value;

        using (Assert.EnterMultipleScope())
        {
            Assert.That(firstSection, Is.EqualTo("## Quick start"));
            Assert.That(readme, Does.Contain("dotnet add package MoeCutlass"));
            Assert.That(readme, Does.Contain("MoeRouting.Sort(").And.Contain("Gather(").And.Contain("Combine("));
            Assert.That(readme, Does.Contain("artifacts/bin/MoeCutlass.Cli/release/moecutlass"));
        }
    }

    [Test]
    public async Task QuickStartProgram_RunsOnTheCpuBackend_AndPrintsWhatTheReadmeSays()
    {
        (int exitCode, string output, string error) = await RunProgram("QuickStart");
        string readme = File.ReadAllText(Path.Combine(Root(), "README.md"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero, error);
            // The exact products: the inputs are exact in FP8 with their block scales.
            Assert.That(output.TrimEnd(), Is.EqualTo("D[0,1] = -1.5, D[3,3] = 1.5"));
            Assert.That(readme, Does.Contain($"It prints `{output.TrimEnd()}`"));
        }
    }

    [GeneratedRegex(@"<!-- quick-start: tests/QuickStart/Program\.cs -->\n```csharp\n(?<code>.*?)```\n", RegexOptions.Singleline)]
    private static partial Regex QuickStartBlock();

    [GeneratedRegex(@"<!-- quick-start: tests/QuickStartMoeLayer/Program\.cs -->\n```csharp\n(?<code>.*?)```\n", RegexOptions.Singleline)]
    private static partial Regex MoeLayerBlock();

    /// <summary>Runs a quick-start program built by the solution beside the tests (artifacts/bin/NAME/configuration/NAME.dll).</summary>
    private static async Task<(int ExitCode, string Output, string Error)> RunProgram(string name)
    {
        string testOutput = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        string dll = Path.GetFullPath(Path.Combine(testOutput, "..", "..", name, Path.GetFileName(testOutput), name + ".dll"));
        Assert.That(File.Exists(dll), Is.True, $"the quick start program was not built ({dll})");

        var start = new ProcessStartInfo(DotnetHost())
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        using var process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal);

    private static string Root()
    {
        string? root = RepositoryRoot.Find();
        Assume.That(root, Is.Not.Null, "no checkout above the test binaries");
        return root!;
    }

    private static string DotnetHost()
    {
        string? current = Environment.ProcessPath;
        return current is not null && Path.GetFileNameWithoutExtension(current).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? current
            : "dotnet";
    }
}
