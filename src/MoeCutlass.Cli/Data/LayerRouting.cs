using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Data;

/// <summary>
/// Router logits of a layer case, generated on the host, and the routing the device derives from them (the host router
/// <see cref="MoeRouting.SoftmaxTopK"/> computes the same choices): rows per local expert, active experts, routed rows.
/// <para>
/// "uniform": every logit N(0, 1). "zipf": N(0, 1) plus a per-expert bias -s·ln(rank + 1) with s = <see cref="ZipfExponent"/>,
/// where the popularity ranks are a fixed random permutation of the router's experts (seeded by the run seed and the router
/// size, so every case of a model ranks its experts the same way). The softmax weight of the expert of rank r then carries a
/// factor 1/(r+1)^s: a Zipf law, so a few experts receive most tokens. An expert-parallel slice holds whichever ranks fall into
/// it, as a real deployment would.
/// </para>
/// </summary>
internal sealed class LayerRouting
{
    /// <summary>The Zipf exponent s of the "zipf" router bias.</summary>
    public const double ZipfExponent = 1.0;

    private LayerRouting(float[] logits, int[] rowsPerExpert)
    {
        Logits = logits;
        RowsPerExpert = rowsPerExpert;
    }

    /// <summary>fp32 [T, router experts].</summary>
    public float[] Logits { get; }

    /// <summary>Rows each local expert receives, local expert order.</summary>
    public int[] RowsPerExpert { get; }

    /// <summary>Local experts with at least one row.</summary>
    public int ActiveExperts => RowsPerExpert.Count(r => r > 0);

    /// <summary>Token-expert pairs routed to local experts.</summary>
    public int Rows => RowsPerExpert.Sum();

    /// <summary>Expert offsets [E+1] of the routed rows, as the grouped GEMM takes them.</summary>
    public int[] ExpertOffsets()
    {
        int[] offsets = new int[RowsPerExpert.Length + 1];
        for (int e = 0; e < RowsPerExpert.Length; e++)
        {
            offsets[e + 1] = offsets[e] + RowsPerExpert[e];
        }

        return offsets;
    }

    /// <summary>Generates the logits of <paramref name="shape"/> and routes them on the host.</summary>
    public static LayerRouting Create(LayerShape shape, ulong seed)
    {
        int tokens = shape.Tokens;
        int router = shape.RouterExperts;
        float[] bias = shape.Case.Router == LayerRouter.Zipf ? ZipfBias(router, seed) : new float[router];
        ulong logitSeed = CounterRandom.Derive(seed, "layer-logits " + shape.Case.Name);
        float[] logits = new float[(long)tokens * router];
        Parallel.For(0, tokens, t =>
        {
            for (int e = 0; e < router; e++)
            {
                long i = ((long)t * router) + e;
                logits[i] = (float)Gaussian(logitSeed, (ulong)i) + bias[e];
            }
        });

        int[] ids = new int[tokens * shape.TopK];
        float[] weights = new float[ids.Length];
        MoeRouting.SoftmaxTopK(logits, router, shape.TopK, normalizeRoutingWeights: false, ids, weights);
        int[] rows = new int[shape.Experts];
        foreach (int id in ids)
        {
            int local = id - shape.FirstExpert;
            if (local >= 0 && local < shape.Experts)
            {
                rows[local]++;
            }
        }

        return new LayerRouting(logits, rows);
    }

    /// <summary>-s·ln(rank + 1) per expert, the ranks a permutation of the experts seeded by <paramref name="seed"/> and the router size.</summary>
    public static float[] ZipfBias(int routerExperts, ulong seed)
    {
        ulong rankSeed = CounterRandom.Derive(seed, $"zipf-ranks {routerExperts}");
        int[] byRank = Enumerable.Range(0, routerExperts).OrderBy(e => CounterRandom.Hash(rankSeed, (ulong)e)).ThenBy(e => e).ToArray();
        float[] bias = new float[routerExperts];
        for (int rank = 0; rank < byRank.Length; rank++)
        {
            bias[byRank[rank]] = (float)(-ZipfExponent * Math.Log(rank + 1));
        }

        return bias;
    }

    /// <summary>N(0, 1) by Box-Muller from two counter hashes.</summary>
    private static double Gaussian(ulong seed, ulong counter)
    {
        double u1 = ((CounterRandom.Hash(seed, 2 * counter) >> 11) + 1) * (1.0 / (1UL << 53));
        double u2 = (CounterRandom.Hash(seed, (2 * counter) + 1) >> 11) * (1.0 / (1UL << 53));
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
