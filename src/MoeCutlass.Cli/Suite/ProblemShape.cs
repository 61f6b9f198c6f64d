namespace MoeCutlass.Cli.Suite;

/// <summary>
/// The shape actually run for a case: the case itself, or the reduced version produced by
/// <see cref="CaseScaler"/> (then <see cref="Scaled"/> is true and the Original* members keep the case's shape).
/// </summary>
internal sealed record ProblemShape(
    BenchCase Case,
    int Experts,
    int N,
    int K,
    IReadOnlyList<int> RowsPerExpert,
    bool Scaled,
    bool NReduced)
{
    /// <summary>Real rows: the sum of <see cref="RowsPerExpert"/> (also the capacity of A and D).</summary>
    public int TotalRows => RowsPerExpert.Sum();

    /// <summary>Experts with at least one row.</summary>
    public int ActiveExperts => RowsPerExpert.Count(r => r > 0);

    public int OriginalExperts => Case.Experts;

    public int OriginalN => Case.N;

    public int OriginalRows => Case.TotalRows;

    /// <summary>Prefix sums of <see cref="RowsPerExpert"/>: the int32 <c>[E+1]</c> expert offsets.</summary>
    public int[] ExpertOffsets()
    {
        int[] offsets = new int[Experts + 1];
        for (int e = 0; e < Experts; e++)
        {
            offsets[e + 1] = offsets[e] + RowsPerExpert[e];
        }

        return offsets;
    }

    /// <summary>"E=8 of 32, rows=256 of 8192, N=2048 of 4096"-style note; null for an unscaled case.</summary>
    public string? ScaleNote
    {
        get
        {
            if (!Scaled)
            {
                return null;
            }

            var parts = new List<string>(3);
            parts.Add(Experts == OriginalExperts ? $"E={Experts}" : $"E={Experts} of {OriginalExperts}");
            parts.Add(TotalRows == OriginalRows ? $"rows={TotalRows}" : $"rows={TotalRows} of {OriginalRows}");
            if (NReduced)
            {
                parts.Add($"N={N} of {OriginalN}");
            }

            return string.Join(", ", parts);
        }
    }

    /// <summary>
    /// A synthetic problem with <paramref name="rowsPerExpert"/> rows for each of <paramref name="experts"/> experts
    /// (<c>tune</c>'s uniform sweeps). <paramref name="name"/> names the case and seeds its data (<see cref="Data.ProblemData"/>).
    /// </summary>
    public static ProblemShape Uniform(string name, int experts, int n, int k, int rowsPerExpert) =>
        Full(new BenchCase(name, "synthetic", "uniform", experts, n, k, Enumerable.Repeat(rowsPerExpert, experts).ToArray(), null));

    /// <summary>The case as it is, unscaled.</summary>
    public static ProblemShape Full(BenchCase benchCase) =>
        new(benchCase, benchCase.Experts, benchCase.N, benchCase.K, benchCase.RowsPerExpert, Scaled: false, NReduced: false);
}
