using MoeCutlass.Cli.Infrastructure;

namespace MoeCutlass.Cli.Suite;

/// <summary>How a layer case's router logits are drawn (<see cref="Data.LayerInputs"/>).</summary>
internal enum LayerRouter
{
    /// <summary>N(0, 1) logits: every expert equally likely.</summary>
    Uniform,

    /// <summary>N(0, 1) logits plus a per-expert popularity bias (a few experts get most tokens).</summary>
    Zipf,
}

/// <summary>
/// One entry of the suite's <c>layers</c> list, validated: a whole MoE layer of <see cref="Experts"/> local experts
/// (global ids <see cref="FirstExpert"/> ..) out of <see cref="RouterExperts"/>, top-<see cref="TopK"/>, H, I, and the
/// tokens of one step.
/// </summary>
internal sealed record LayerCase(
    string Name,
    string Model,
    int Experts,
    int FirstExpert,
    int RouterExperts,
    int Hidden,
    int Intermediate,
    int TopK,
    int Tokens,
    LayerRouter Router,
    string? Note)
{
    /// <summary>The router's name as the suite writes it.</summary>
    public string RouterName => Router == LayerRouter.Zipf ? "zipf" : "uniform";

    /// <summary>Validates one raw entry; every problem is a one-line <see cref="UsageException"/> naming the file and the entry.</summary>
    public static LayerCase Validate(SuiteLayerJson raw, int index, string path)
    {
        string label = string.IsNullOrWhiteSpace(raw.Name) ? $"layer #{index + 1}" : $"layer '{raw.Name}'";
        UsageException Invalid(string problem) => new($"suite file {path}: {label}: {problem}");

        if (string.IsNullOrWhiteSpace(raw.Name))
        {
            throw Invalid("missing \"name\"");
        }

        if (raw.RouterExperts is < 1 or > 4096)
        {
            throw Invalid($"\"router_experts\" must be 1..4096 (got {raw.RouterExperts})");
        }

        if (raw.Experts < 1 || raw.FirstExpert < 0 || (long)raw.FirstExpert + raw.Experts > raw.RouterExperts)
        {
            throw Invalid($"\"first_expert\" {raw.FirstExpert} + \"experts\" {raw.Experts} must lie within the {raw.RouterExperts} router experts");
        }

        if (raw.Hidden < 16 || raw.Hidden % 16 != 0 || raw.Intermediate < 16 || raw.Intermediate % 16 != 0)
        {
            throw Invalid($"\"hidden\" and \"intermediate\" must be positive multiples of 16 (got {raw.Hidden}, {raw.Intermediate})");
        }

        if (raw.Topk < 1 || raw.Topk > Math.Min(raw.RouterExperts, 32))
        {
            throw Invalid($"\"topk\" must be 1..{Math.Min(raw.RouterExperts, 32)} (got {raw.Topk})");
        }

        if (raw.Tokens < 1 || (long)raw.Tokens * raw.Topk > int.MaxValue)
        {
            throw Invalid($"\"tokens\" must be positive with tokens x topk within int32 (got {raw.Tokens})");
        }

        LayerRouter router = raw.Router switch
        {
            null or "uniform" => LayerRouter.Uniform,
            "zipf" => LayerRouter.Zipf,
            _ => throw Invalid($"\"router\" must be \"uniform\" or \"zipf\" (got \"{raw.Router}\")"),
        };

        return new LayerCase(raw.Name, raw.Model ?? "", raw.Experts, raw.FirstExpert, raw.RouterExperts, raw.Hidden, raw.Intermediate,
            raw.Topk, raw.Tokens, router, raw.Note);
    }
}
