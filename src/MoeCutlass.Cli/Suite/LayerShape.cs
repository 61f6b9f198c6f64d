namespace MoeCutlass.Cli.Suite;

/// <summary>
/// The layer a <see cref="LayerCase"/> is run as: the case itself on CUDA, a reduced one on the CPU reference backend
/// (<see cref="Scale"/>).
/// </summary>
internal sealed record LayerShape(
    LayerCase Case,
    int Experts,
    int FirstExpert,
    int RouterExperts,
    int Hidden,
    int Intermediate,
    int TopK,
    int Tokens,
    bool Scaled,
    string? ScaleNote)
{
    /// <summary>Most local experts of a CPU run.</summary>
    public const int CpuMaxExperts = 8;

    /// <summary>Largest H and I of a CPU run (two 128-wide scale blocks).</summary>
    public const int CpuMaxWidth = 256;

    /// <summary>Most tokens of a CPU run.</summary>
    public const int CpuMaxTokens = 64;

    /// <summary>What <see cref="Scale"/> does, for report headers.</summary>
    public static string ScaleDescription =>
        $"layer cases scaled to at most {CpuMaxExperts} local experts (router experts and first expert by the same "
        + $"factor, top-k at most the router experts), H and I at most {CpuMaxWidth}, {CpuMaxTokens} tokens";

    /// <summary>The CPU bench header's description of <see cref="Scale"/>.</summary>
    public static string CpuNote => $"CPU reference backend: {ScaleDescription}; times are CPU times, not GPU performance";

    /// <summary>The case as it is (CUDA).</summary>
    public static LayerShape Full(LayerCase c) =>
        new(c, c.Experts, c.FirstExpert, c.RouterExperts, c.Hidden, c.Intermediate, c.TopK, c.Tokens, false, null);

    /// <summary>
    /// The case reduced for the CPU reference backend, like <see cref="CaseScaler"/> reduces GEMM cases: local experts to
    /// <see cref="CpuMaxExperts"/>, the router's experts and the first expert by the same factor (an expert-parallel slice
    /// stays the same fraction of the router), top-k to at most the router's experts, H and I to <see cref="CpuMaxWidth"/>,
    /// tokens to <see cref="CpuMaxTokens"/>. Deterministic; the case itself when it already fits.
    /// </summary>
    public static LayerShape Scale(LayerCase c)
    {
        int experts = Math.Min(c.Experts, CpuMaxExperts);
        int first = (int)((long)c.FirstExpert * experts / c.Experts);
        int router = Math.Max(first + experts, (int)(((long)c.RouterExperts * experts + c.Experts - 1) / c.Experts));
        int topK = Math.Min(c.TopK, router);
        int hidden = Math.Min(c.Hidden, CpuMaxWidth);
        int intermediate = Math.Min(c.Intermediate, CpuMaxWidth);
        int tokens = Math.Min(c.Tokens, CpuMaxTokens);
        var parts = new List<string>();
        void Note(string name, int value, int original)
        {
            if (value != original)
            {
                parts.Add($"{name}={value} of {original}");
            }
        }

        Note("E", experts, c.Experts);
        Note("router", router, c.RouterExperts);
        Note("topk", topK, c.TopK);
        Note("H", hidden, c.Hidden);
        Note("I", intermediate, c.Intermediate);
        Note("T", tokens, c.Tokens);
        return parts.Count == 0
            ? Full(c)
            : new LayerShape(c, experts, first, router, hidden, intermediate, topK, tokens, true, string.Join(", ", parts));
    }

    /// <summary>The library options of this layer with <paramref name="strategy"/> (bf16 in and out, fp32 logits, softmax top-k).</summary>
    public MoeLayerOptions Options(GemmStrategy strategy) =>
        new(RouterExperts, TopK, Hidden, Intermediate, Tokens) { FirstExpert = FirstExpert, LocalExperts = Experts, Strategy = strategy };
}
