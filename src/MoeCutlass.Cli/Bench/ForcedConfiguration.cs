namespace MoeCutlass.Cli.Bench;

/// <summary>
/// A <c>--config</c> label: a registry name, forced for every expert in the pointer-array kernel
/// (<see cref="GroupedGemmOptions.Forcing"/>), or <c>persistent:NAME</c>, forced in the persistent kernel. The label is
/// also the result's strategy column, so both forms of one configuration can be timed side by side.
/// </summary>
internal static class ForcedConfiguration
{
    private const string PersistentPrefix = "persistent:";

    /// <summary>The registry name in <paramref name="label"/>.</summary>
    /// <param name="label">A <c>--config</c> value.</param>
    /// <returns>The name without the prefix.</returns>
    public static string Name(string label) =>
        label.StartsWith(PersistentPrefix, StringComparison.Ordinal) ? label[PersistentPrefix.Length..] : label;

    /// <summary>The plan options that force <paramref name="label"/>'s configuration on <paramref name="options"/>' shape.</summary>
    /// <param name="options">The case's options.</param>
    /// <param name="label">A <c>--config</c> value.</param>
    /// <returns>Single with that configuration, or persistent with that configuration.</returns>
    public static GroupedGemmOptions Options(GroupedGemmOptions options, string label)
    {
        string name = Name(label);
        return name.Length == label.Length
            ? options.Forcing(name)
            : options with { Strategy = GemmStrategy.Persistent, Configurations = [new ConfigurationRange(name)] };
    }
}
