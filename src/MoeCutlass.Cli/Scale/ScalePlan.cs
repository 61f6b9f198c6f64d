using System.Globalization;
using MoeCutlass.Cli.Infrastructure;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Scale;

/// <summary>The option rules of <c>moecutlass scale</c>: parallel modes, world sizes, the one-rank-per-GPU rule and how a
/// layer case splits over W ranks. Pure functions: every rule is a one-line <see cref="UsageException"/> naming the option.</summary>
internal static class ScalePlan
{
    /// <summary>The accepted <c>--parallel</c> values.</summary>
    public const string ModeValues = "tp (tensor parallel), ep (expert parallel)";

    /// <summary>The short name of a mode, as the CLI and the JSON write it.</summary>
    public static string Name(MoeParallelMode mode) => mode == MoeParallelMode.Tensor ? "tp" : "ep";

    /// <summary><c>--parallel tp,ep</c>: distinct modes in the order given; tp,ep when none is given.</summary>
    public static IReadOnlyList<MoeParallelMode> ParseModes(IEnumerable<string>? values)
    {
        var modes = new List<MoeParallelMode>();
        foreach (string value in OptionLists.Split(values))
        {
            MoeParallelMode mode = value.ToLowerInvariant() switch
            {
                "tp" or "tensor" => MoeParallelMode.Tensor,
                "ep" or "expert" => MoeParallelMode.Expert,
                _ => throw new UsageException($"--parallel: unknown mode '{value}'; valid: {ModeValues}"),
            };
            if (!modes.Contains(mode))
            {
                modes.Add(mode);
            }
        }

        return modes.Count > 0 ? modes : [MoeParallelMode.Tensor, MoeParallelMode.Expert];
    }

    /// <summary><c>--world 1,2,4</c>: distinct world sizes in the order given, each at least 1; 1 when none is given.</summary>
    public static IReadOnlyList<int> ParseWorlds(IEnumerable<string>? values)
    {
        var worlds = new List<int>();
        foreach (string value in OptionLists.Split(values))
        {
            if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int w))
            {
                throw new UsageException($"--world: '{value}' is not an integer (a comma list of world sizes, e.g. 1,2,4)");
            }

            if (w < 1)
            {
                throw new UsageException($"--world: the world size W must be at least 1 (got {w})");
            }

            if (!worlds.Contains(w))
            {
                worlds.Add(w);
            }
        }

        return worlds.Count > 0 ? worlds : [1];
    }

    /// <summary>One process per GPU, rank r on device r: W may not exceed the CUDA devices of this machine.</summary>
    public static void CheckDevices(IReadOnlyList<int> worlds, int deviceCount)
    {
        int largest = worlds.Max();
        if (largest > deviceCount)
        {
            throw new UsageException($"--world {largest}: one rank per CUDA device (rank r runs on device r; NCCL puts at most one rank "
                + $"on a GPU), and this machine has {deviceCount} CUDA device(s)"
                + (deviceCount > 0 ? $"; give world sizes of at most {deviceCount}" : ""));
        }
    }

    /// <summary>Why <paramref name="shape"/> cannot be split <paramref name="mode"/> over <paramref name="world"/> ranks; null when it can.</summary>
    public static string? SplitProblem(LayerShape shape, MoeParallelMode mode, int world)
    {
        string name = shape.Case.Name;
        if (shape.FirstExpert != 0 || shape.Experts != shape.RouterExperts)
        {
            return $"layer case {name} holds experts {shape.FirstExpert}..{shape.FirstExpert + shape.Experts - 1} of {shape.RouterExperts}; "
                + "the parallel bench splits a whole layer (experts = router_experts, first_expert 0)";
        }

        if (mode == MoeParallelMode.Tensor)
        {
            return shape.Intermediate % world != 0 || shape.Intermediate / world % 128 != 0
                ? $"layer case {name}, tp at W={world}: I/W must be a multiple of 128 (I = {shape.Intermediate}; the 128x128 weight "
                  + "scale blocks may not be split)"
                : null;
        }

        if (shape.Experts % world != 0)
        {
            return $"layer case {name}, ep at W={world}: the {shape.Experts} experts must divide evenly over the ranks (E % W = 0)";
        }

        return shape.Tokens % world != 0
            ? $"layer case {name}, ep at W={world}: the {shape.Tokens} tokens must divide evenly over the ranks (T % W = 0: each rank brings T/W)"
            : null;
    }

    /// <summary>Every (case, mode, W) must split; the first that does not is a usage error.</summary>
    public static void CheckSplits(IEnumerable<LayerShape> shapes, IReadOnlyList<MoeParallelMode> modes, IReadOnlyList<int> worlds)
    {
        foreach (LayerShape shape in shapes)
        {
            foreach (MoeParallelMode mode in modes)
            {
                foreach (int world in worlds)
                {
                    if (SplitProblem(shape, mode, world) is { } problem)
                    {
                        throw new UsageException($"--parallel/--world: {problem}");
                    }
                }
            }
        }
    }
}
