using MoeCutlass.Internal;
using MoeCutlass.Interop;

namespace MoeCutlass;

/// <summary>How the consumer warp groups of a kernel configuration share the work.</summary>
public enum KernelSchedule
{
    /// <summary>Two consumer warp groups share one output tile.</summary>
    Cooperative = NativeConstants.MC_SCHEDULE_COOPERATIVE,

    /// <summary>Each consumer warp group owns a tile; one's epilogue overlaps the other's math.</summary>
    Pingpong = NativeConstants.MC_SCHEDULE_PINGPONG,
}

/// <summary>
/// One row of the library's kernel-configuration registry (<see cref="MoeCutlassLibrary.KernelConfigurations"/>):
/// a CUTLASS tile, cluster and schedule. With <see cref="SwapAB"/> the kernel computes Dᵀ = B·Aᵀ, so the weights
/// are CUTLASS's A (<see cref="TileM"/> along N) and the token rows its B (<see cref="TileN"/> along the rows).
/// </summary>
/// <param name="Index">The registry index (stable: new configurations are appended).</param>
/// <param name="Name">The registry name, e.g. <c>tile_128x128x128_c1x2_cooperative</c>.</param>
/// <param name="TileM">CUTLASS tile M.</param>
/// <param name="TileN">CUTLASS tile N.</param>
/// <param name="TileK">CUTLASS tile K (128: one scale block).</param>
/// <param name="ClusterM">Cluster extent along M.</param>
/// <param name="ClusterN">Cluster extent along N.</param>
/// <param name="Schedule">The mainloop schedule.</param>
/// <param name="SwapAB">Whether the operands are swapped (for experts with few rows).</param>
/// <param name="Compiled">Whether this library holds the kernels (a CUDA build); the CPU backend accepts any.</param>
public sealed record KernelConfiguration(
    int Index, string Name, int TileM, int TileN, int TileK, int ClusterM, int ClusterN, KernelSchedule Schedule, bool SwapAB, bool Compiled)
{
    /// <inheritdoc/>
    public override string ToString() => Name;

    internal static unsafe IReadOnlyList<KernelConfiguration> ReadRegistry()
    {
        int count;
        NativeStatus.Check(NativeMethods.mc_get_kernel_config_count(&count));
        var configurations = new KernelConfiguration[count];
        for (int i = 0; i < count; i++)
        {
            mc_kernel_config_info info = default;
            info.struct_size = (uint)sizeof(mc_kernel_config_info);
            NativeStatus.Check(NativeMethods.mc_get_kernel_config_info(i, &info));
            configurations[i] = new KernelConfiguration(
                info.index,
                NativeStatus.FromFixed(info.name, 64),
                info.tile_m,
                info.tile_n,
                info.tile_k,
                info.cluster_m,
                info.cluster_n,
                (KernelSchedule)info.schedule,
                info.swap_ab != 0,
                info.compiled != 0);
        }

        return configurations;
    }
}

/// <summary>
/// A configuration a plan is told to use (<see cref="GroupedGemmOptions.Configurations"/>) and the largest rows per
/// expert it takes; the list is narrowest first and the last entry takes every larger expert.
/// </summary>
/// <param name="Name">A registry name (<see cref="KernelConfiguration.Name"/>).</param>
/// <param name="MaxRows">The largest rows per expert it takes; <see cref="Unbounded"/> for the last entry.</param>
public sealed record ConfigurationRange(string Name, int MaxRows = ConfigurationRange.Unbounded)
{
    /// <summary>No upper limit (MC_MAX_ROWS): the value of the last entry of a list.</summary>
    public const int Unbounded = int.MaxValue;
}

/// <summary>One configuration of a run (<see cref="GroupedGemmPlan.Resolve"/>) and the rows per expert it takes.</summary>
/// <param name="Configuration">The registry row.</param>
/// <param name="MinRows">The fewest rows per expert it takes.</param>
/// <param name="MaxRows">The most rows per expert it takes (<see cref="ConfigurationRange.Unbounded"/> for no limit).</param>
public sealed record LaunchedConfiguration(KernelConfiguration Configuration, int MinRows, int MaxRows);

/// <summary>What one run of a plan launches: the same answer on every backend.</summary>
/// <param name="Strategy"><see cref="GemmStrategy.Single"/>, <see cref="GemmStrategy.ExpertSpecialized"/>,
/// <see cref="GemmStrategy.Persistent"/> or <see cref="GemmStrategy.Cublas"/>.</param>
/// <param name="Configurations">The launched configurations, narrowest first; none for <see cref="GemmStrategy.Cublas"/>,
/// which runs no configuration of the registry.</param>
public sealed record GroupedGemmLaunch(GemmStrategy Strategy, IReadOnlyList<LaunchedConfiguration> Configurations)
{
    /// <inheritdoc/>
    public override string ToString() => Configurations.Count == 0
        ? $"{Strategy}: no registry configuration"
        : $"{Strategy}: {string.Join(", ", Configurations.Select(c => c.MaxRows == ConfigurationRange.Unbounded ? $"{c.Configuration.Name} ({c.MinRows}+ rows)" : $"{c.Configuration.Name} ({c.MinRows}-{c.MaxRows} rows)"))}";
}
