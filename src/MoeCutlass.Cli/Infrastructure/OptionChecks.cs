namespace MoeCutlass.Cli.Infrastructure;

/// <summary>Range checks of option values; a violation is a one-line <see cref="UsageException"/>.</summary>
internal static class OptionChecks
{
    public static int AtLeast(int value, string option, int minimum) =>
        value < minimum ? throw new UsageException($"{option} must be >= {minimum} (got {value})") : value;

    public static int? AtLeast(int? value, string option, int minimum) =>
        value is { } v ? AtLeast(v, option, minimum) : null;

    /// <summary>
    /// Makes sure an output file can be written before any work starts (creates its directory), so a typo in
    /// <c>--json</c>/<c>--csv</c> does not surface only after a long run.
    /// </summary>
    public static string? OutputFile(string? path, string option)
    {
        if (path is null)
        {
            return null;
        }

        if (string.IsNullOrWhiteSpace(path))
        {
            throw new UsageException($"{option} needs a file path");
        }

        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new UsageException($"{option} {full} is a directory, not a file");
        }

        try
        {
            if (Path.GetDirectoryName(full) is { Length: > 0 } directory)
            {
                Directory.CreateDirectory(directory);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{option} {full}: cannot create its directory: {ex.Message}", ex);
        }

        return full;
    }
}
