namespace MoeCutlass.Cli.Infrastructure;

/// <summary>Range checks of option values; a violation is a one-line <see cref="UsageException"/>.</summary>
internal static class OptionChecks
{
    public static int AtLeast(int value, string option, int minimum) =>
        value < minimum ? throw new UsageException($"{option} must be >= {minimum} (got {value})") : value;

    public static int? AtLeast(int? value, string option, int minimum) =>
        value is { } v ? AtLeast(v, option, minimum) : null;

    /// <summary>
    /// Makes sure an output file can be written before any work starts, so a typo in <c>--json</c>/<c>--csv</c>
    /// does not surface only after a long run: its directory must exist (it is deliberately not created, so a
    /// mistyped path does not leave a stray directory tree behind) and the file must be writable there (checked by
    /// opening it for writing; a file that did not exist is removed again, an existing one is left unchanged).
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

        if (Path.GetDirectoryName(full) is { Length: > 0 } directory && !Directory.Exists(directory))
        {
            throw new UsageException($"{option} {full}: directory {directory} does not exist (create it first)");
        }

        bool existed = File.Exists(full);
        try
        {
            // OpenOrCreate without truncation: an existing file keeps its contents until the results replace them.
            using (new FileStream(full, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
            {
            }

            if (!existed)
            {
                File.Delete(full);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new UsageException($"{option} {full} cannot be written: {ex.Message}", ex);
        }

        return full;
    }
}
