using System.Reflection;

namespace MoeCutlass.Cli.Infrastructure;

/// <summary>The tool's own version (the repository VERSION file, through Directory.Build.props).</summary>
internal static class ToolVersion
{
    public static string Text { get; } =
        typeof(ToolVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(ToolVersion).Assembly.GetName().Version?.ToString()
        ?? "unknown";
}
