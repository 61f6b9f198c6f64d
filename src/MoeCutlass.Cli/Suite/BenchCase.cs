namespace MoeCutlass.Cli.Suite;

/// <summary>
/// A validated suite case: <c>D[rows, N] = A[rows, K] x B[e][N, K]^T</c> per expert, expert <c>e</c>
/// owning <see cref="RowsPerExpert"/>[e] consecutive rows.
/// </summary>
internal sealed record BenchCase(
    string Name,
    string Model,
    string Gemm,
    int Experts,
    int N,
    int K,
    IReadOnlyList<int> RowsPerExpert,
    string? Note)
{
    /// <summary>Real rows: the sum of <see cref="RowsPerExpert"/>.</summary>
    public int TotalRows => RowsPerExpert.Sum();
}
