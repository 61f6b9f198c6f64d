using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Tests.Cli;

/// <summary>
/// SuiteLocator order: --suite, then MOECUTLASS_SUITE, then the upward search from the current directory.
/// These tests change the process's current directory and environment, so they restore both and never run in parallel.
/// Each suite file carries a distinct marker so results are compared by content (robust to symlinked temp paths).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class SuiteLocatorTests
{
    private static readonly string Relative = Path.Combine("shared", "bench", "suite.json");

    private TempDirectory _temp = null!;
    private EnvironmentVariableScope _environment = null!;

    [SetUp]
    public void SetUp()
    {
        _temp = new TempDirectory();
        _environment = new EnvironmentVariableScope(SuiteLocator.EnvironmentVariable, null);
    }

    [TearDown]
    public void TearDown()
    {
        _environment.Dispose();
        _temp.Dispose();
    }

    [Test]
    public void ExplicitPath_WinsOverEnvironmentAndSearch()
    {
        string explicitPath = _temp.Write("explicit.json", "explicit");
        Environment.SetEnvironmentVariable(SuiteLocator.EnvironmentVariable, _temp.Write("env.json", "env"));
        _temp.Write(Path.Combine("repo", Relative), "searched");
        using var cwd = new CurrentDirectoryScope(_temp.Combine("repo"));

        string located = SuiteLocator.Locate(explicitPath);

        Assert.That(File.ReadAllText(located), Is.EqualTo("explicit"));
    }

    [Test]
    public void ExplicitPath_RelativeToCurrentDirectory_IsMadeAbsolute()
    {
        _temp.Write(Path.Combine("repo", "my-suite.json"), "relative");
        using var cwd = new CurrentDirectoryScope(_temp.Combine("repo"));

        string located = SuiteLocator.Locate("my-suite.json");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(Path.IsPathFullyQualified(located), Is.True, located);
            Assert.That(File.ReadAllText(located), Is.EqualTo("relative"));
        }
    }

    [Test]
    public void ExplicitPath_Missing_IsUsageError_EvenWhenEnvironmentAndSearchWouldFindOne()
    {
        Environment.SetEnvironmentVariable(SuiteLocator.EnvironmentVariable, _temp.Write("env.json", "env"));
        _temp.Write(Path.Combine("repo", Relative), "searched");
        using var cwd = new CurrentDirectoryScope(_temp.Combine("repo"));
        string missing = _temp.Combine("nope.json");

        var error = Assert.Throws<UsageException>(() => SuiteLocator.Locate(missing));

        Assert.That(error!.Message, Is.EqualTo($"suite file not found: {missing} (from --suite)"));
    }

    [Test]
    public void EnvironmentVariable_IsUsedWithoutExplicitPath_AndWinsOverSearch()
    {
        Environment.SetEnvironmentVariable(SuiteLocator.EnvironmentVariable, _temp.Write("env.json", "env"));
        _temp.Write(Path.Combine("repo", Relative), "searched");
        using var cwd = new CurrentDirectoryScope(_temp.Combine("repo"));

        using (Assert.EnterMultipleScope())
        {
            Assert.That(File.ReadAllText(SuiteLocator.Locate(null)), Is.EqualTo("env"));
            Assert.That(File.ReadAllText(SuiteLocator.Locate("  ")), Is.EqualTo("env"), "a blank --suite counts as not given");
        }
    }

    [Test]
    public void EnvironmentVariable_Missing_IsUsageError_NamingTheVariable()
    {
        string missing = _temp.Combine("gone.json");
        Environment.SetEnvironmentVariable(SuiteLocator.EnvironmentVariable, missing);
        _temp.Write(Path.Combine("repo", Relative), "searched");
        using var cwd = new CurrentDirectoryScope(_temp.Combine("repo"));

        var error = Assert.Throws<UsageException>(() => SuiteLocator.Locate(null));

        Assert.That(error!.Message, Is.EqualTo($"suite file not found: {missing} (from MOECUTLASS_SUITE)"));
    }

    [Test]
    public void EnvironmentVariable_Blank_IsIgnored()
    {
        Environment.SetEnvironmentVariable(SuiteLocator.EnvironmentVariable, "   ");
        _temp.Write(Path.Combine("repo", Relative), "searched");
        using var cwd = new CurrentDirectoryScope(_temp.Combine("repo"));

        Assert.That(File.ReadAllText(SuiteLocator.Locate(null)), Is.EqualTo("searched"));
    }

    [Test]
    public void Search_FindsSiblingSharedDirectory_FromDeepInsideTheRepository()
    {
        // root/repo/src/tool is the current directory; the suite is root/shared/bench/suite.json (the CI layout).
        _temp.Write(Path.Combine("root", Relative), "sibling");
        Directory.CreateDirectory(_temp.Combine("root", "repo", "src", "tool"));
        using var cwd = new CurrentDirectoryScope(_temp.Combine("root", "repo", "src", "tool"));

        Assert.That(File.ReadAllText(SuiteLocator.Locate(null)), Is.EqualTo("sibling"));
    }

    [Test]
    public void Search_FindsSiblingSpelling_FromTheRepositoryRoot()
    {
        // Current directory root/repo: DIR/../shared/bench/suite.json.
        _temp.Write(Path.Combine("root", Relative), "sibling");
        Directory.CreateDirectory(_temp.Combine("root", "repo"));
        using var cwd = new CurrentDirectoryScope(_temp.Combine("root", "repo"));

        Assert.That(File.ReadAllText(SuiteLocator.Locate(null)), Is.EqualTo("sibling"));
    }

    [Test]
    public void Search_PrefersTheNearestFile()
    {
        _temp.Write(Path.Combine("root", Relative), "far");
        _temp.Write(Path.Combine("root", "repo", Relative), "near");
        Directory.CreateDirectory(_temp.Combine("root", "repo", "src"));
        using var cwd = new CurrentDirectoryScope(_temp.Combine("root", "repo", "src"));

        Assert.That(File.ReadAllText(SuiteLocator.Locate(null)), Is.EqualTo("near"));
    }

    [Test]
    public void Candidates_WalkUpward_NearestFirst_ListingEachPathOnce()
    {
        string start = _temp.Combine("a", "b", "c");

        string[] candidates = SuiteLocator.Candidates(start).ToArray();

        using (Assert.EnterMultipleScope())
        {
            Assert.That(candidates.Take(3), Is.EqualTo(new[]
            {
                Path.Combine(start, Relative),
                _temp.Combine("a", "b", Relative),
                _temp.Combine("a", Relative),
            }));
            Assert.That(candidates, Is.Unique);
            Assert.That(candidates, Has.All.EndWith(Relative));
            Assert.That(candidates, Has.Member(_temp.Combine(Relative)), "the temp directory itself is on the way up");
            Assert.That(candidates[^1], Is.EqualTo(Path.Combine(Path.GetPathRoot(start)!, Relative)), "the walk ends at the file-system root");
        }
    }
}
