using MoeCutlass.Internal;

namespace MoeCutlass.Tests;

/// <summary>The probing logic in isolation: no test here loads or unloads the real library.</summary>
[TestFixture]
public sealed class NativeLibraryLoaderTests
{
    private string _scratch = null!;

    [SetUp]
    public void CreateScratchDirectory()
    {
        _scratch = Path.Combine(Path.GetTempPath(), "moecutlass-loader-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_scratch);
    }

    [TearDown]
    public void DeleteScratchDirectory() => Directory.Delete(_scratch, recursive: true);

    [Test]
    public void WithoutEnvironment_ProbesAppDirectoryThenRuntimesThenOsSearch()
    {
        var candidates = NativeLibraryLoader.GetCandidates(null, _scratch, "linux-x64", "libmoecutlass.so");
        Assert.That(candidates.Select(c => c.Path), Is.EqualTo(new[]
        {
            Path.Combine(_scratch, "libmoecutlass.so"),
            Path.Combine(_scratch, "runtimes", "linux-x64", "native", "libmoecutlass.so"),
            "libmoecutlass.so",
        }));
        Assert.That(candidates.Select(c => c.IsFile), Is.EqualTo(new[] { true, true, false }));
    }

    [Test]
    public void EnvironmentFile_IsTheOnlyCandidate()
    {
        string file = Path.Combine(_scratch, "custom-name.so");
        var candidates = NativeLibraryLoader.GetCandidates(file, "/app", "linux-x64", "libmoecutlass.so");
        Assert.That(candidates, Has.Count.EqualTo(1));
        Assert.That(candidates[0].Path, Is.EqualTo(file));
    }

    [Test]
    public void EnvironmentDirectory_IsTheOnlyCandidate_WithThePlatformFileName()
    {
        var candidates = NativeLibraryLoader.GetCandidates(_scratch, "/app", "linux-x64", "libmoecutlass.so");
        Assert.That(candidates, Has.Count.EqualTo(1));
        Assert.That(candidates[0].Path, Is.EqualTo(Path.Combine(_scratch, "libmoecutlass.so")));
    }

    [Test]
    public void NotFound_MessageListsEveryPlaceTriedWithItsReason()
    {
        const string fileName = "libmoecutlass-test-does-not-exist.so";
        var candidates = NativeLibraryLoader.GetCandidates(null, _scratch, "linux-x64", fileName);
        var ex = Assert.Throws<MoeCutlassLibraryException>(() => NativeLibraryLoader.Probe(candidates, fileName));
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ex!.Status, Is.EqualTo(MoeStatus.Internal));
            Assert.That(ex.Message, Does.Contain($"{Path.Combine(_scratch, fileName)} (application directory): file not found"));
            Assert.That(ex.Message, Does.Contain($"{Path.Combine(_scratch, "runtimes", "linux-x64", "native", fileName)} (runtimes/linux-x64/native): file not found"));
            Assert.That(ex.Message, Does.Contain($"{fileName} (default OS library search): DllNotFoundException"));
            Assert.That(ex.Message, Does.Contain(NativeLibraryLoader.EnvironmentVariable));
        }

        int listed = ex.Message.Split('\n').Count(line => line.TrimStart().StartsWith("- ", StringComparison.Ordinal));
        Assert.That(listed, Is.EqualTo(3), ex.Message);
    }

    [Test]
    public void EnvironmentPointsAtMissingFile_OnlyThatIsReported()
    {
        string missing = Path.Combine(_scratch, "nowhere", "libmoecutlass.so");
        var candidates = NativeLibraryLoader.GetCandidates(missing, "/app", "linux-x64", "libmoecutlass.so");
        var ex = Assert.Throws<MoeCutlassLibraryException>(() => NativeLibraryLoader.Probe(candidates, "libmoecutlass.so"));
        Assert.That(ex!.Message, Does.Contain($"{missing} (MOECUTLASS_NATIVE_PATH): file not found"));
        Assert.That(ex.Message, Does.Not.Contain("/app"), "nothing else is tried when the variable is set");
    }

    [Test]
    public void CorruptFile_ReportsTheLoaderError()
    {
        string corrupt = Path.Combine(_scratch, "libmoecutlass.so");
        File.WriteAllText(corrupt, "this is not a shared library");
        var candidates = NativeLibraryLoader.GetCandidates(_scratch, "/app", "linux-x64", "libmoecutlass.so");
        var ex = Assert.Throws<MoeCutlassLibraryException>(() => NativeLibraryLoader.Probe(candidates, "libmoecutlass.so"));
        Assert.That(ex!.Message, Does.Contain($"{corrupt} (MOECUTLASS_NATIVE_PATH directory): "));
        Assert.That(ex.Message, Does.Not.Contain("file not found"));
    }

    [Test]
    public void FirstLoadableCandidate_WinsAndItsFullPathIsRecorded()
    {
        string second = Path.Combine(_scratch, "runtimes", "linux-x64", "native", "libfake.so");
        Directory.CreateDirectory(Path.GetDirectoryName(second)!);
        File.WriteAllText(second, "fake");
        var tried = new List<string>();
        var candidates = NativeLibraryLoader.GetCandidates(null, _scratch, "linux-x64", "libfake.so");
        var (handle, path) = NativeLibraryLoader.Probe(candidates, "libfake.so", p =>
        {
            tried.Add(p);
            return 42;
        });
        using (Assert.EnterMultipleScope())
        {
            Assert.That(handle, Is.EqualTo((nint)42));
            Assert.That(path, Is.EqualTo(Path.GetFullPath(second)));
            Assert.That(tried, Is.EqualTo(new[] { second }), "the missing first candidate is skipped without calling the loader");
        }
    }

    [Test]
    public void RuntimeIdentifier_IsPortable()
    {
        Assert.That(NativeLibraryLoader.RuntimeIdentifier, Does.Match("^(linux|win|osx)-(x64|x86|arm64|arm|[a-z0-9]+)$"));
        if (OperatingSystem.IsLinux())
        {
            Assert.That(NativeLibraryLoader.PlatformFileName, Is.EqualTo("libmoecutlass.so"));
        }
    }
}
