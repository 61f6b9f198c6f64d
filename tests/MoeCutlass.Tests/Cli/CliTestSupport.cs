using System.Diagnostics;
using System.Text;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Tests.Cli;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("moecutlass-cli-tests-").FullName;
    }

    public string Path { get; }

    /// <summary>The absolute path of <paramref name="relative"/> (segments joined) inside this directory.</summary>
    public string Combine(params string[] relative) => System.IO.Path.Combine([Path, .. relative]);

    /// <summary>Writes <paramref name="text"/> to <paramref name="relative"/>, creating its directories; returns the full path.</summary>
    public string Write(string relative, string text)
    {
        string full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, text, new UTF8Encoding(false));
        return full;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory must not fail a test.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>Sets (or clears) an environment variable for the lifetime of the scope, then restores it.</summary>
internal sealed class EnvironmentVariableScope : IDisposable
{
    private readonly string _name;
    private readonly string? _previous;

    public EnvironmentVariableScope(string name, string? value)
    {
        _name = name;
        _previous = Environment.GetEnvironmentVariable(name);
        Environment.SetEnvironmentVariable(name, value);
    }

    public void Dispose() => Environment.SetEnvironmentVariable(_name, _previous);
}

/// <summary>Changes the process's current directory for the lifetime of the scope, then restores it.</summary>
internal sealed class CurrentDirectoryScope : IDisposable
{
    private readonly string _previous;

    public CurrentDirectoryScope(string directory)
    {
        _previous = Directory.GetCurrentDirectory();
        Directory.SetCurrentDirectory(directory);
    }

    public void Dispose() => Directory.SetCurrentDirectory(_previous);
}

/// <summary>Builders of synthetic suite cases and suite files.</summary>
internal static class SuiteFiles
{
    /// <summary>A validated-looking case (BenchSuite is bypassed: the caller is responsible for a sensible shape).</summary>
    public static BenchCase Case(string name, int n, int k, params int[] rowsPerExpert) =>
        new(name, "model", "gemm", rowsPerExpert.Length, n, k, rowsPerExpert, null);

    /// <summary>One case object of a suite file, as JSON text.</summary>
    public static string CaseJson(string name, int experts, int n, int k, IEnumerable<int> rowsPerExpert, string? model = null) =>
        "{"
        + $"\"name\": \"{name}\", "
        + (model is null ? "" : $"\"model\": \"{model}\", ")
        + "\"gemm\": \"gate_up\", "
        + $"\"experts\": {experts}, \"n\": {n}, \"k\": {k}, "
        + $"\"rows_per_expert\": [{string.Join(", ", rowsPerExpert)}]"
        + "}";

    /// <summary>A suite file with the given case objects.</summary>
    public static string SuiteJson(string description, params string[] caseObjects) =>
        $"{{\"description\": \"{description}\", \"cases\": [{string.Join(", ", caseObjects)}]}}";

    /// <summary>
    /// A suite with a small case ("tiny": 16 experts, one of them empty, N=256, K=128) that the CPU bench scales
    /// down (to 8 experts) and that runs in milliseconds, plus a second case ("other").
    /// </summary>
    public static string SmallSuite(string description = "synthetic") => SuiteJson(
        description,
        CaseJson("tiny", 16, 256, 128, [.. Enumerable.Repeat(40, 15), 0]),
        CaseJson("other", 2, 128, 128, [3, 5]));

    /// <summary>
    /// The real benchmark suite (shared/bench/suite.json found upward from the test binaries, as the CLI finds it),
    /// or null when this checkout has none beside it.
    /// </summary>
    public static string? RealSuitePath() =>
        SuiteLocator.Candidates(AppContext.BaseDirectory).FirstOrDefault(File.Exists);
}

/// <summary>The outcome of one <c>moecutlass</c> child process.</summary>
internal sealed record CliRun(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Non-empty lines written to stderr.</summary>
    public string[] ErrorLines => StandardError.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() =>
        $"exit code {ExitCode}{Environment.NewLine}--- stdout ---{Environment.NewLine}{StandardOutput}--- stderr ---{Environment.NewLine}{StandardError}";
}

/// <summary>
/// Runs the CLI (the MoeCutlass.Cli.dll built next to the tests) as a child process of the <c>dotnet</c> host,
/// with the test process's MOECUTLASS_NATIVE_PATH, no inherited MOECUTLASS_SUITE, and a hard timeout.
/// </summary>
internal static class CliProcess
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public static string CliAssemblyPath => typeof(MoeCutlass.Cli.Commands.BenchCommand).Assembly.Location;

    public static async Task<CliRun> RunAsync(
        string workingDirectory,
        IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string?>? environment = null,
        TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(CliAssemblyPath);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment.Remove("MOECUTLASS_SUITE");
        start.Environment["NO_COLOR"] = "1";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach ((string name, string? value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start the CLI");
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var cancellation = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            await process.WaitForExitAsync(cancellation.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().ConfigureAwait(false);
            Assert.Fail($"moecutlass {string.Join(' ', start.ArgumentList.Skip(1))} did not finish within {timeout ?? DefaultTimeout}; "
                + $"stdout so far:{Environment.NewLine}{await stdout.ConfigureAwait(false)}");
        }

        return new CliRun(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }

    /// <summary>The dotnet host running these tests when there is one, else "dotnet" from PATH.</summary>
    private static string DotnetHost()
    {
        string? current = Environment.ProcessPath;
        if (current is not null && System.IO.Path.GetFileNameWithoutExtension(current).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
        {
            return current;
        }

        string? root = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        if (!string.IsNullOrEmpty(root))
        {
            string candidate = System.IO.Path.Combine(root, OperatingSystem.IsWindows() ? "dotnet.exe" : "dotnet");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return "dotnet";
    }
}
