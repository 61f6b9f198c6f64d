namespace MoeCutlass.Cli.Suite;

/// <summary>How far <see cref="CaseScaler"/> reduces a case.</summary>
/// <param name="MaxExperts">Most experts kept.</param>
/// <param name="MaxRows">Most rows (sum over the kept experts).</param>
/// <param name="MaxFlops">FLOP budget of one grouped GEMM (2 x rows x N x K) once experts and rows are reduced.</param>
internal sealed record ScaleLimits(int MaxExperts, int MaxRows, double MaxFlops)
{
    /// <summary>
    /// <c>bench</c> on the CPU reference backend: at most 16 GFLOP per run. The reference (double
    /// accumulation) measured about 40 GFLOP/s on our 2-core build machine, so a run takes about 0.4 s there
    /// and stays near 3 s even at a pessimistic 5 GFLOP/s; with the CPU defaults (1 warm-up + 3 timed runs,
    /// strategies single and expert_specialized) one case then finishes well inside 30 s. The budget keeps
    /// N for the DeepSeek, Qwen3 and most other cases and only cuts the widest (Mixtral, Llama 4).
    /// </summary>
    public static readonly ScaleLimits CpuBench = new(8, 256, 16e9);

    /// <summary>
    /// <c>verify</c> on reduced cases: smaller than <see cref="CpuBench"/> because every case is also
    /// computed a second time by the managed reference, and the whole suite should verify in a few minutes.
    /// </summary>
    public static readonly ScaleLimits Verify = new(8, 128, 1e9);
}

/// <summary>
/// Reduces a suite case so the CPU reference backend can run it in seconds, keeping what characterizes
/// the case:
/// <list type="number">
/// <item><b>Experts.</b> When the case has more than <see cref="ScaleLimits.MaxExperts"/> experts, the kept ones
/// sit at evenly spaced quantiles of the case's rows-per-expert distribution (experts sorted by rows,
/// ties by index; the least- and the most-loaded expert are always kept), and are kept in their original
/// order. The skew of the routing (hot experts, empty experts) therefore survives the reduction, which
/// taking the first few experts would not guarantee.</item>
/// <item><b>Rows.</b> When the kept experts own more than <see cref="ScaleLimits.MaxRows"/> rows, every expert's
/// rows are scaled by the same factor (largest-remainder rounding so the total is exactly the limit).
/// An expert with rows keeps at least one; an expert with zero rows keeps zero.</item>
/// <item><b>N.</b> K is never changed (it sets the scale-block structure along the reduction). When
/// 2 x rows x N x K still exceeds <see cref="ScaleLimits.MaxFlops"/>, N is halved while the half stays a
/// multiple of 128 (whole 128x128 weight-scale blocks), then, if still needed, rounded down to a multiple
/// of 128 (never below 128). The reduction is reported as "N=... of ...".</item>
/// </list>
/// The reduced shape is deterministic: the same case always scales to the same shape.
/// </summary>
internal static class CaseScaler
{
    /// <summary>The reduced shape of <paramref name="benchCase"/> (the case itself when it already fits).</summary>
    public static ProblemShape Scale(BenchCase benchCase, ScaleLimits limits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limits.MaxExperts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(limits.MaxRows, limits.MaxExperts);

        int[] experts = PickExperts(benchCase.RowsPerExpert, limits.MaxExperts);
        int[] rows = ScaleRows(experts.Select(e => benchCase.RowsPerExpert[e]).ToArray(), limits.MaxRows);
        int n = ReduceN(benchCase.N, benchCase.K, rows.Sum(), limits.MaxFlops);

        bool scaled = experts.Length != benchCase.Experts || rows.Sum() != benchCase.TotalRows || n != benchCase.N;
        return scaled
            ? new ProblemShape(benchCase, experts.Length, n, benchCase.K, rows, Scaled: true, NReduced: n != benchCase.N)
            : ProblemShape.Full(benchCase);
    }

    /// <summary>Indices of the kept experts, ascending.</summary>
    internal static int[] PickExperts(IReadOnlyList<int> rowsPerExpert, int maxExperts)
    {
        int count = rowsPerExpert.Count;
        if (count <= maxExperts)
        {
            return Enumerable.Range(0, count).ToArray();
        }

        int[] byLoad = Enumerable.Range(0, count).OrderBy(e => rowsPerExpert[e]).ThenBy(e => e).ToArray();
        var picked = new SortedSet<int>();
        for (int i = 0; i < maxExperts; i++)
        {
            // count > maxExperts, so the spacing (count-1)/(maxExperts-1) exceeds 1 and positions are distinct.
            int position = maxExperts == 1 ? count - 1 : (int)Math.Round(i * (count - 1) / (double)(maxExperts - 1));
            picked.Add(byLoad[position]);
        }

        return picked.ToArray();
    }

    /// <summary>Rows scaled so their sum is at most <paramref name="maxRows"/>; zero stays zero, nonzero stays >= 1.</summary>
    internal static int[] ScaleRows(int[] rows, int maxRows)
    {
        long total = rows.Sum(r => (long)r);
        if (total <= maxRows)
        {
            return rows;
        }

        double factor = maxRows / (double)total;
        int[] scaled = new int[rows.Length];
        double[] remainder = new double[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            double exact = rows[i] * factor;
            scaled[i] = (int)Math.Floor(exact);
            remainder[i] = exact - scaled[i];
            if (rows[i] > 0 && scaled[i] == 0)
            {
                scaled[i] = 1;
                remainder[i] = 0;
            }
        }

        int excess = scaled.Sum() - maxRows;

        // Fill up to the limit by largest remainder (ties: lower index first) ...
        foreach (int i in Enumerable.Range(0, rows.Length).Where(i => rows[i] > 0).OrderByDescending(i => remainder[i]).ThenBy(i => i))
        {
            if (excess >= 0)
            {
                break;
            }

            scaled[i]++;
            excess++;
        }

        // ... or, when the at-least-one rule overshot, take rows back from the largest experts.
        while (excess > 0)
        {
            int largest = Array.IndexOf(scaled, scaled.Max());
            if (scaled[largest] <= 1)
            {
                break; // more nonzero experts than maxRows: cannot happen while maxRows >= maxExperts
            }

            scaled[largest]--;
            excess--;
        }

        return scaled;
    }

    /// <summary>N reduced (see the class remarks) so that 2*rows*N*K fits <paramref name="maxFlops"/>.</summary>
    internal static int ReduceN(int n, int k, int rows, double maxFlops)
    {
        double Flops(int candidate) => 2.0 * rows * candidate * k;

        int reduced = n;
        while (Flops(reduced) > maxFlops && reduced % 256 == 0)
        {
            reduced /= 2;
        }

        if (Flops(reduced) > maxFlops && reduced > 128)
        {
            int blocks = (int)Math.Floor(maxFlops / (2.0 * rows * k) / 128);
            reduced = Math.Max(128, blocks * 128);
        }

        return reduced;
    }
}
