namespace MoeCutlass;

/// <summary>
/// The permutation that sorts a router's top-k choices by expert: which (token, choice) slot goes to which row of the
/// grouped GEMM's A and D, and the expert offsets that describe it.
/// </summary>
/// <remarks>
/// Slots are numbered <c>token * TopK + j</c> (the row-major index into the [tokens, topK] expert-id matrix). Within an
/// expert, rows are in ascending slot order (the sort is stable), so ascending token order.
/// </remarks>
public sealed class RoutingResult
{
    internal RoutingResult(int tokens, int topK, int experts, int[] expertOffsets, int[] sortedSlots, int[] slotToRow, int[] rowToToken)
    {
        Tokens = tokens;
        TopK = topK;
        Experts = experts;
        ExpertOffsets = expertOffsets;
        SortedSlots = sortedSlots;
        SlotToRow = slotToRow;
        RowToToken = rowToToken;
    }

    /// <summary>Number of tokens.</summary>
    public int Tokens { get; }

    /// <summary>Experts chosen per token.</summary>
    public int TopK { get; }

    /// <summary>Number of experts.</summary>
    public int Experts { get; }

    /// <summary>Rows of the sorted activations: Tokens * TopK.</summary>
    public int Rows => SortedSlots.Length;

    /// <summary>E+1 prefix sums: expert e owns sorted rows ExpertOffsets[e] .. ExpertOffsets[e+1]-1; ExpertOffsets[0] = 0.</summary>
    public int[] ExpertOffsets { get; }

    /// <summary>For sorted row r, the slot (token * TopK + j) that goes there.</summary>
    public int[] SortedSlots { get; }

    /// <summary>For slot s (token * TopK + j), the sorted row it goes to (the inverse of <see cref="SortedSlots"/>).</summary>
    public int[] SlotToRow { get; }

    /// <summary>For sorted row r, the token it came from (SortedSlots[r] / TopK).</summary>
    public int[] RowToToken { get; }

    /// <summary>Rows owned by expert <paramref name="expert"/>.</summary>
    /// <param name="expert">The expert, 0 .. Experts-1.</param>
    /// <returns>ExpertOffsets[expert+1] - ExpertOffsets[expert].</returns>
    public int RowsOfExpert(int expert)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(expert);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(expert, Experts);
        return ExpertOffsets[expert + 1] - ExpertOffsets[expert];
    }

    /// <summary>Rows owned by each expert (a new array of E counts).</summary>
    public int[] RowsPerExpert
    {
        get
        {
            var counts = new int[Experts];
            for (int e = 0; e < Experts; e++)
            {
                counts[e] = ExpertOffsets[e + 1] - ExpertOffsets[e];
            }

            return counts;
        }
    }

    /// <summary>
    /// Copies each token's row of <paramref name="width"/> elements to every sorted row that token goes to, producing
    /// the [Rows, width] input of the grouped GEMM from the [Tokens, width] token activations.
    /// </summary>
    /// <typeparam name="T">The element type.</typeparam>
    /// <param name="tokenRows">[Tokens, width] row-major.</param>
    /// <param name="width">Elements per row.</param>
    /// <param name="sortedRows">[Rows, width] row-major, written completely.</param>
    public void Gather<T>(ReadOnlySpan<T> tokenRows, int width, Span<T> sortedRows)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(width);
        CheckLength(tokenRows.Length, (long)Tokens * width, nameof(tokenRows));
        CheckLength(sortedRows.Length, (long)Rows * width, nameof(sortedRows));
        for (int row = 0; row < RowToToken.Length; row++)
        {
            tokenRows.Slice(RowToToken[row] * width, width).CopyTo(sortedRows.Slice(row * width, width));
        }
    }

    /// <summary>
    /// Combines expert outputs back to tokens: tokenOutput[t] = Σ_j weights[t * TopK + j] * sortedRows[SlotToRow[t * TopK + j]].
    /// </summary>
    /// <param name="sortedRows">[Rows, width] row-major expert outputs.</param>
    /// <param name="width">Elements per row.</param>
    /// <param name="weights">[Tokens, TopK] router weights, by slot.</param>
    /// <param name="tokenOutput">[Tokens, width] row-major, overwritten.</param>
    public void Combine(ReadOnlySpan<float> sortedRows, int width, ReadOnlySpan<float> weights, Span<float> tokenOutput) =>
        CombineCore(sortedRows, width, weights, tokenOutput);

    /// <summary>
    /// <see cref="Combine(ReadOnlySpan{float}, int, ReadOnlySpan{float}, Span{float})"/> for a bf16 grouped-GEMM output D:
    /// each element is widened to float exactly, then weighted and summed in float.
    /// </summary>
    /// <param name="sortedRows">[Rows, width] row-major expert outputs (D of a <see cref="DType.BFloat16"/> plan).</param>
    /// <param name="width">Elements per row.</param>
    /// <param name="weights">[Tokens, TopK] router weights, by slot.</param>
    /// <param name="tokenOutput">[Tokens, width] row-major, overwritten.</param>
    public void Combine(ReadOnlySpan<BFloat16> sortedRows, int width, ReadOnlySpan<float> weights, Span<float> tokenOutput) =>
        CombineCore(sortedRows, width, weights, tokenOutput);

    /// <summary>
    /// <see cref="Combine(ReadOnlySpan{float}, int, ReadOnlySpan{float}, Span{float})"/> for an fp16 grouped-GEMM output D:
    /// each element is widened to float exactly, then weighted and summed in float.
    /// </summary>
    /// <param name="sortedRows">[Rows, width] row-major expert outputs (D of a <see cref="DType.Float16"/> plan).</param>
    /// <param name="width">Elements per row.</param>
    /// <param name="weights">[Tokens, TopK] router weights, by slot.</param>
    /// <param name="tokenOutput">[Tokens, width] row-major, overwritten.</param>
    public void Combine(ReadOnlySpan<Half> sortedRows, int width, ReadOnlySpan<float> weights, Span<float> tokenOutput) =>
        CombineCore(sortedRows, width, weights, tokenOutput);

    private static float Widen<T>(T value)
        where T : unmanaged =>
        typeof(T) == typeof(float) ? System.Runtime.CompilerServices.Unsafe.As<T, float>(ref value)
        : typeof(T) == typeof(BFloat16) ? (float)System.Runtime.CompilerServices.Unsafe.As<T, BFloat16>(ref value)
        : (float)System.Runtime.CompilerServices.Unsafe.As<T, Half>(ref value);

    private void CombineCore<T>(ReadOnlySpan<T> sortedRows, int width, ReadOnlySpan<float> weights, Span<float> tokenOutput)
        where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(width);
        CheckLength(sortedRows.Length, (long)Rows * width, nameof(sortedRows));
        CheckLength(weights.Length, Rows, nameof(weights));
        CheckLength(tokenOutput.Length, (long)Tokens * width, nameof(tokenOutput));
        tokenOutput.Clear();
        for (int slot = 0; slot < SlotToRow.Length; slot++)
        {
            int token = slot / TopK;
            float weight = weights[slot];
            var source = sortedRows.Slice(SlotToRow[slot] * width, width);
            var target = tokenOutput.Slice(token * width, width);
            for (int i = 0; i < width; i++)
            {
                target[i] += weight * Widen(source[i]);
            }
        }
    }

    private static void CheckLength(int actual, long expected, string name)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"Expected {expected} elements, got {actual}.", name);
        }
    }
}

/// <summary>Host-side helpers that turn router output into the grouped GEMM's sorted layout.</summary>
public static class MoeRouting
{
    /// <summary>
    /// The router of an <see cref="MoeLayer"/> with <see cref="MoeRoutingMode.SoftmaxTopK"/>, on the host: for every token
    /// the <paramref name="topK"/> largest logits (ties to the lower expert id, NaN after every number), weighted by the
    /// softmax over all logits (computed in double, the largest logit subtracted), or over the chosen ones with
    /// <paramref name="normalizeRoutingWeights"/>. The same arithmetic as the library's router, so its ids and weights
    /// given to a <see cref="MoeRoutingMode.Precomputed"/> layer reproduce a routing layer.
    /// </summary>
    /// <param name="logits">[tokens, experts] row-major.</param>
    /// <param name="experts">Logit columns, at least 1.</param>
    /// <param name="topK">Experts per token, 1 .. experts.</param>
    /// <param name="normalizeRoutingWeights">Whether the weights are the softmax over the chosen logits only (they sum to 1).</param>
    /// <param name="topkIds">[tokens, topK]: the chosen expert ids, best first.</param>
    /// <param name="topkWeights">[tokens, topK]: their weights.</param>
    /// <exception cref="ArgumentOutOfRangeException">experts or topK is out of range.</exception>
    /// <exception cref="ArgumentException">A span's length does not match.</exception>
    public static void SoftmaxTopK(ReadOnlySpan<float> logits, int experts, int topK, bool normalizeRoutingWeights, Span<int> topkIds,
        Span<float> topkWeights)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(experts);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(topK);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(topK, experts);
        if (logits.Length % experts != 0)
        {
            throw new ArgumentException($"The logits have {logits.Length} entries, not a multiple of experts = {experts}.", nameof(logits));
        }

        int tokens = logits.Length / experts;
        if (topkIds.Length != (long)tokens * topK)
        {
            throw new ArgumentException($"Expected {(long)tokens * topK} elements (tokens x topK = {tokens} x {topK}), got {topkIds.Length}.", nameof(topkIds));
        }

        if (topkWeights.Length != topkIds.Length)
        {
            throw new ArgumentException($"Expected {topkIds.Length} elements (tokens x topK = {tokens} x {topK}), got {topkWeights.Length}.", nameof(topkWeights));
        }

        var p = new double[experts];
        var chosen = new int[topK];
        for (int t = 0; t < tokens; t++)
        {
            ReadOnlySpan<float> x = logits.Slice(t * experts, experts);
            for (int j = 0; j < topK; j++)
            {
                int best = -1;
                for (int e = 0; e < experts; e++)
                {
                    if (Array.IndexOf(chosen, e, 0, j) < 0 && (best < 0 || RanksBefore(x[e], e, x[best], best)))
                    {
                        best = e;
                    }
                }

                chosen[j] = best;
            }

            double max = double.NegativeInfinity;
            for (int e = 0; e < experts; e++)
            {
                max = MaxIgnoringNaN(max, x[e]);
            }

            double sum = 0;
            for (int e = 0; e < experts; e++)
            {
                sum += p[e] = Math.Exp(x[e] - max);
            }

            double chosenSum = 0;
            for (int j = 0; j < topK; j++)
            {
                chosenSum += p[chosen[j]];
            }

            double denominator = normalizeRoutingWeights ? chosenSum : sum;
            for (int j = 0; j < topK; j++)
            {
                topkIds[t * topK + j] = chosen[j];
                topkWeights[t * topK + j] = (float)(p[chosen[j]] / denominator);
            }
        }
    }

    /// <summary>Larger logit first, ties to the lower id, NaN after every number.</summary>
    private static bool RanksBefore(float xa, int a, float xb, int b)
    {
        if (float.IsNaN(xa) != float.IsNaN(xb))
        {
            return float.IsNaN(xb);
        }

        return xa != xb && !float.IsNaN(xa) ? xa > xb : a < b;
    }

    /// <summary>C's fmax: the other operand when one is NaN.</summary>
    private static double MaxIgnoringNaN(double a, double b) => double.IsNaN(a) ? b : double.IsNaN(b) ? a : Math.Max(a, b);

    /// <summary>
    /// Sorts the top-k expert choices of every token by expert (a stable counting sort).
    /// </summary>
    /// <param name="topkExpertIds">[tokens, topK] row-major expert ids, each in 0 .. experts-1, distinct within a token.</param>
    /// <param name="topK">Experts per token, at least 1.</param>
    /// <param name="experts">Number of experts, at least 1.</param>
    /// <returns>The offsets and the permutation.</returns>
    /// <exception cref="ArgumentOutOfRangeException">topK or experts is not positive, or an id is outside 0 .. experts-1 (the message names its index and value).</exception>
    /// <exception cref="ArgumentException">The length is not a multiple of topK, or a token chose the same expert twice (the message names the token).</exception>
    public static RoutingResult Sort(ReadOnlySpan<int> topkExpertIds, int topK, int experts)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(topK);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(experts);
        if (topkExpertIds.Length % topK != 0)
        {
            throw new ArgumentException(
                $"The expert-id list has {topkExpertIds.Length} entries, not a multiple of topK = {topK}.", nameof(topkExpertIds));
        }

        int tokens = topkExpertIds.Length / topK;
        int rows = topkExpertIds.Length;
        var offsets = new int[experts + 1];
        var lastToken = new int[experts];
        Array.Fill(lastToken, -1);
        for (int slot = 0; slot < rows; slot++)
        {
            int expert = topkExpertIds[slot];
            if ((uint)expert >= (uint)experts)
            {
                throw new ArgumentOutOfRangeException(nameof(topkExpertIds), expert,
                    $"topkExpertIds[{slot}] (token {slot / topK}, choice {slot % topK}) is {expert}, outside 0 .. {experts - 1}.");
            }

            int token = slot / topK;
            if (lastToken[expert] == token)
            {
                throw new ArgumentException(
                    $"Token {token} chose expert {expert} more than once (topkExpertIds[{token * topK}..{token * topK + topK - 1}]); a router picks distinct experts.",
                    nameof(topkExpertIds));
            }

            lastToken[expert] = token;
            offsets[expert + 1]++;
        }

        for (int e = 0; e < experts; e++)
        {
            offsets[e + 1] += offsets[e];
        }

        var next = offsets.AsSpan(0, experts).ToArray();
        var sortedSlots = new int[rows];
        var slotToRow = new int[rows];
        var rowToToken = new int[rows];
        for (int slot = 0; slot < rows; slot++)
        {
            int row = next[topkExpertIds[slot]]++;
            sortedSlots[row] = slot;
            slotToRow[slot] = row;
            rowToToken[row] = slot / topK;
        }

        return new RoutingResult(tokens, topK, experts, offsets, sortedSlots, slotToRow, rowToToken);
    }
}
