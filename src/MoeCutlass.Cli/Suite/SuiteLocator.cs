using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli.Suite;

/// <summary>
/// Finds the benchmark suite file. Order: <c>--suite PATH</c>; the <c>MOECUTLASS_SUITE</c> environment
/// variable; then, walking upward from the current directory and from the tool's own directory
/// (<see cref="AppContext.BaseDirectory"/>), <c>DIR/shared/bench/suite.json</c> and the sibling
/// <c>DIR/../shared/bench/suite.json</c>. The repository sits next to <c>shared/</c> (e.g. a checkout
/// beside shared/, or a CI clone with shared/ beside it), so both spellings are checked at every level.
/// </summary>
internal static class SuiteLocator
{
    public const string EnvironmentVariable = "MOECUTLASS_SUITE";

    private static readonly string RelativeSuitePath = Path.Combine("shared", "bench", "suite.json");

    /// <summary>The suite file to use; a missing file is a one-line <see cref="UsageException"/> naming what was tried.</summary>
    public static string Locate(string? explicitPath)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            string full = Path.GetFullPath(explicitPath);
            return File.Exists(full) ? full : throw NotAFile(full, "--suite");
        }

        string? fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            string full = Path.GetFullPath(fromEnvironment);
            return File.Exists(full) ? full : throw NotAFile(full, EnvironmentVariable);
        }

        string[] roots = new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory }
            .Select(d => Path.TrimEndingDirectorySeparator(Path.GetFullPath(d)))
            .Distinct(StringComparer.Ordinal)
            .ToArray();
        foreach (string root in roots)
        {
            foreach (string candidate in Candidates(root))
            {
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }

        throw new UsageException(
            $"benchmark suite not found: no {RelativeSuitePath} or ../{RelativeSuitePath} in "
            + string.Join(" or ", roots)
            + $" or any parent directory (use --suite PATH or set {EnvironmentVariable})");
    }

    /// <summary>The error for an explicit suite path that is not a file: a directory says so, anything else is not found.</summary>
    private static UsageException NotAFile(string full, string source) => Directory.Exists(full)
        ? new UsageException($"suite path is a directory, not a file: {full} (from {source}; give the suite's .json file)")
        : new UsageException($"suite file not found: {full} (from {source})");

    /// <summary>Paths checked for one start directory, nearest first.</summary>
    public static IEnumerable<string> Candidates(string startDirectory)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (DirectoryInfo? dir = new(startDirectory); dir is not null; dir = dir.Parent)
        {
            string here = Path.Combine(dir.FullName, RelativeSuitePath);
            if (seen.Add(here))
            {
                yield return here;
            }

            if (dir.Parent is { } parent)
            {
                string sibling = Path.Combine(parent.FullName, RelativeSuitePath);
                if (seen.Add(sibling))
                {
                    yield return sibling;
                }
            }
        }
    }
}
