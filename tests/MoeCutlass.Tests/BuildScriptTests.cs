using System.Diagnostics;

namespace MoeCutlass.Tests;

/// <summary>
/// build.sh's own behaviour (usage, help, the log filters), run with bash from the checkout the tests were built in.
/// None of these builds anything.
/// </summary>
[TestFixture]
public sealed class BuildScriptTests
{
    private string _root = null!;

    [OneTimeSetUp]
    public void FindCheckout()
    {
        Assume.That(OperatingSystem.IsWindows(), Is.False, "build.sh needs bash");
        string? found = RepositoryRoot.Find();
        Assume.That(found, Is.Not.Null, "no checkout (build.sh beside MoeCutlass.sln) above the test binaries");
        _root = found!;
    }

    [TestCase("--help")]
    [TestCase("-h")]
    public void Help_PrintsUsage_AndExitsZero(string option)
    {
        (int code, string stdout, string stderr) = Bash(["build.sh", option]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.Zero, stderr);
            Assert.That(stdout, Does.StartWith("MoeCutlass build driver."));
            Assert.That(stdout, Does.Contain("./build.sh test").And.Contain("-h|--help"));
            Assert.That(stdout, Does.Not.Contain("set -euo pipefail").And.Not.Match("(?m)^#"));
            Assert.That(stderr, Is.Empty);
        }
    }

    [Test]
    public void NoVerb_PrintsUsageOnly_AndExitsTwo()
    {
        (int code, string stdout, string stderr) = Bash(["build.sh"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(stdout, Is.Empty);
            Assert.That(stderr, Does.StartWith("MoeCutlass build driver."));
            Assert.That(stderr, Does.Not.Contain("set -euo pipefail"));
            Assert.That(stderr.TrimEnd(), Does.EndWith("-h|--help"), "the usage ends with the options line");
        }
    }

    [Test]
    public void UnknownVerb_PointsToHelp_WhichExists()
    {
        (int code, _, string stderr) = Bash(["build.sh", "frobnicate"]);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(code, Is.EqualTo(2));
            Assert.That(stderr, Does.Contain("unknown verb 'frobnicate'"));
        }
    }

    [Test]
    public void NativeLogFilter_KeepsRealDiagnostics_NotFileNamesContainingError()
    {
        string log = string.Join('\n',
            "[11/43] Building CXX object native/src/CMakeFiles/moecutlass_core.dir/core/error.cpp.o",
            "[12/43] Building CXX object native/src/CMakeFiles/moecutlass_core.dir/core/warnings_and_errors.cpp.o",
            "/src/native/src/core/plan.cpp:12:5: error: 'foo' was not declared in this scope",
            "/src/native/src/core/plan.cpp:20:1: warning: unused variable 'x' [-Wunused-variable]",
            "/usr/bin/ld: plan.cpp.o: undefined reference to `bar'",
            "collect2: error: ld returned 1 exit status",
            "FAILED: native/src/CMakeFiles/moecutlass_core.dir/core/plan.cpp.o",
            "ninja: build stopped: subcommand failed.",
            "[26/43] Linking CXX shared library native/src/libmoecutlass.so",
            "");

        string[] kept = Filter("native_log_filter", log);

        Assert.That(kept, Is.EqualTo(new[]
        {
            "/src/native/src/core/plan.cpp:12:5: error: 'foo' was not declared in this scope",
            "/src/native/src/core/plan.cpp:20:1: warning: unused variable 'x' [-Wunused-variable]",
            "/usr/bin/ld: plan.cpp.o: undefined reference to `bar'",
            "collect2: error: ld returned 1 exit status",
            "FAILED: native/src/CMakeFiles/moecutlass_core.dir/core/plan.cpp.o",
            "[26/43] Linking CXX shared library native/src/libmoecutlass.so",
        }));
    }

    [Test]
    public void ManagedLogFilter_KeepsMsBuildDiagnostics_NotFileNamesContainingError()
    {
        string log = string.Join('\n',
            "  MoeCutlass -> /src/artifacts/bin/MoeCutlass/release/MoeCutlass.dll",
            "  Copying ErrorReporter.cs and warnings.txt",
            "/src/src/MoeCutlass.Cli/Infrastructure/ErrorReporter.cs(12,5): error CS0103: The name 'x' does not exist",
            "/src/tests/x.csproj : warning NU1603: NUnit 5.0.0 was not found",
            "MSBUILD : error MSB1009: Project file does not exist.",
            "");

        string[] kept = Filter("managed_log_filter", log);

        Assert.That(kept, Is.EqualTo(new[]
        {
            "/src/src/MoeCutlass.Cli/Infrastructure/ErrorReporter.cs(12,5): error CS0103: The name 'x' does not exist",
            "/src/tests/x.csproj : warning NU1603: NUnit 5.0.0 was not found",
            "MSBUILD : error MSB1009: Project file does not exist.",
        }));
    }

    /// <summary>Runs one of build.sh's filter functions (taken out of the script, not a copy of it) on <paramref name="input"/>.</summary>
    private string[] Filter(string function, string input)
    {
        string script = $"eval \"$(sed -n '/^{function}() {{/,/^}}/p' build.sh)\"; {function}";
        (int code, string stdout, string stderr) = Bash(["-c", script], input);
        Assert.That(code, Is.Zero, stderr);
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    private (int Code, string Stdout, string Stderr) Bash(string[] arguments, string? input = null)
    {
        var start = new ProcessStartInfo("bash")
        {
            WorkingDirectory = _root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        process.StandardInput.Write(input ?? "");
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        Assert.That(process.WaitForExit(TimeSpan.FromSeconds(30)), Is.True, "bash did not finish within 30 s");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}

/// <summary>The checkout the tests run from: the nearest directory above the test binaries with build.sh and MoeCutlass.sln.</summary>
internal static class RepositoryRoot
{
    public static string? Find()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "build.sh")) && File.Exists(Path.Combine(d.FullName, "MoeCutlass.sln")))
            {
                return d.FullName;
            }
        }

        return null;
    }
}
