namespace MoeCutlass.Cli.Infrastructure;

/// <summary>
/// Paths as result files record them. A path inside the working directory is written relative to it, so that results
/// committed from a checkout (bench/results) name the checkout's files and not the machine's directory layout; a
/// path elsewhere stays absolute, since a relative path with ".." would depend on where the reader stands.
/// </summary>
internal static class RecordedPath
{
    public static string Of(string path) => Of(path, Environment.CurrentDirectory);

    public static string Of(string path, string workingDirectory)
    {
        if (string.IsNullOrEmpty(path))
        {
            return path;
        }

        string full = Path.GetFullPath(path, workingDirectory);
        string relative = Path.GetRelativePath(workingDirectory, full);
        bool outside = relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            || Path.IsPathRooted(relative);
        return outside ? full : relative;
    }
}
