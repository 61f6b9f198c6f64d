namespace MoeCutlass.Cli.Infrastructure;

/// <summary>Helpers for options that are repeatable and also accept comma-separated lists.</summary>
internal static class OptionLists
{
    /// <summary>Flattens <c>--x a,b --x c</c> into <c>a, b, c</c> (trimmed, empty entries dropped).</summary>
    public static IEnumerable<string> Split(IEnumerable<string>? values)
    {
        if (values is null)
        {
            yield break;
        }

        foreach (string value in values)
        {
            foreach (string part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                yield return part;
            }
        }
    }
}
