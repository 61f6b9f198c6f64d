namespace MoeCutlass.Tests;

[TestFixture]
public sealed class RoutingTests
{
    [Test]
    public void HandCheckedSmallCase()
    {
        // tokens: t0 -> {2, 0}, t1 -> {1, 2}, t2 -> {0, 1}, t3 -> {2, 1}
        int[] ids = [2, 0, 1, 2, 0, 1, 2, 1];
        var result = MoeRouting.Sort(ids, topK: 2, experts: 3);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(result.Tokens, Is.EqualTo(4));
            Assert.That(result.TopK, Is.EqualTo(2));
            Assert.That(result.Experts, Is.EqualTo(3));
            Assert.That(result.Rows, Is.EqualTo(8));
            Assert.That(result.ExpertOffsets, Is.EqualTo(new[] { 0, 2, 5, 8 }));
            Assert.That(result.RowsPerExpert, Is.EqualTo(new[] { 2, 3, 3 }));
            Assert.That(result.RowsOfExpert(1), Is.EqualTo(3));
            Assert.That(result.SortedSlots, Is.EqualTo(new[] { 1, 4, 2, 5, 7, 0, 3, 6 }));
            Assert.That(result.SlotToRow, Is.EqualTo(new[] { 5, 0, 2, 6, 1, 3, 7, 4 }));
            Assert.That(result.RowToToken, Is.EqualTo(new[] { 0, 2, 1, 2, 3, 0, 1, 3 }));
        }

        int[] tokenRows = [0, 1, 10, 11, 20, 21, 30, 31];
        var sorted = new int[16];
        result.Gather<int>(tokenRows, 2, sorted);
        Assert.That(sorted, Is.EqualTo(new[] { 0, 1, 20, 21, 10, 11, 20, 21, 30, 31, 0, 1, 10, 11, 30, 31 }));

        // Combine: each sorted row holds (row index), weights 1 and 0.5 per token.
        float[] expertOut = Enumerable.Range(0, 8).Select(r => (float)r).ToArray();
        float[] weights = [1f, 0.5f, 1f, 0.5f, 1f, 0.5f, 1f, 0.5f];
        var combined = new float[4];
        result.Combine(expertOut, 1, weights, combined);
        // t0: rows 5 (w1) and 0 (w.5) -> 5; t1: rows 2 and 6 -> 5; t2: rows 1 and 3 -> 2.5; t3: rows 7 and 4 -> 9
        Assert.That(combined, Is.EqualTo(new[] { 5f, 5f, 2.5f, 9f }));
    }

    [Test]
    public void RandomRoutings_SatisfyThePermutationProperties([Range(0, 19)] int iteration)
    {
        var random = new Random(HashCode.Combine(iteration, Environment.TickCount));
        int experts = random.Next(1, 65);
        int topK = random.Next(1, Math.Min(8, experts) + 1);
        int tokens = random.Next(0, 300);
        var ids = new int[tokens * topK];
        for (int t = 0; t < tokens; t++)
        {
            var chosen = Enumerable.Range(0, experts).OrderBy(_ => random.Next()).Take(topK).ToArray();
            chosen.CopyTo(ids, t * topK);
        }

        var result = MoeRouting.Sort(ids, topK, experts);
        int rows = ids.Length;
        var offsets = result.ExpertOffsets;
        Assert.That(offsets, Has.Length.EqualTo(experts + 1));
        Assert.That(offsets[0], Is.Zero);
        Assert.That(offsets[experts], Is.EqualTo(rows), "offsets sum to the rows");
        Assert.That(offsets, Is.Ordered, "monotonic");
        for (int e = 0; e < experts; e++)
        {
            Assert.That(result.RowsOfExpert(e), Is.EqualTo(ids.Count(id => id == e)), $"expert {e} count");
        }

        Assert.That(result.SortedSlots.OrderBy(s => s), Is.EqualTo(Enumerable.Range(0, rows)), "SortedSlots is a permutation");
        for (int e = 0; e < experts; e++)
        {
            for (int r = offsets[e]; r < offsets[e + 1]; r++)
            {
                int slot = result.SortedSlots[r];
                if (ids[slot] != e)
                {
                    Assert.Fail($"row {r} in expert {e}'s range holds slot {slot} of expert {ids[slot]}");
                }

                if (r > offsets[e] && result.SortedSlots[r - 1] >= slot)
                {
                    Assert.Fail($"expert {e}: rows {r - 1}, {r} are not in ascending slot order (stable)");
                }

                if (result.SlotToRow[slot] != r || result.RowToToken[r] != slot / topK)
                {
                    Assert.Fail($"row {r}: inverse or token mapping inconsistent");
                }
            }
        }
    }

    [Test]
    public void InvalidInputs_AreRejected()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(() => MoeRouting.Sort([0], 1, 0), Throws.TypeOf<ArgumentOutOfRangeException>()
                .With.Property("ParamName").EqualTo("experts"));
            Assert.That(() => MoeRouting.Sort([0], 0, 4), Throws.TypeOf<ArgumentOutOfRangeException>()
                .With.Property("ParamName").EqualTo("topK"));
            Assert.That(() => MoeRouting.Sort([0, 1, 2], 2, 4), Throws.TypeOf<ArgumentException>()
                .With.Message.Contains("3 entries").And.Message.Contains("topK = 2"));
            Assert.That(() => MoeRouting.Sort([0, 1, 2, -1], 2, 4), Throws.TypeOf<ArgumentOutOfRangeException>()
                .With.Message.Contains("topkExpertIds[3]").And.Message.Contains("is -1"));
            Assert.That(() => MoeRouting.Sort([0, 1, 4, 2], 2, 4), Throws.TypeOf<ArgumentOutOfRangeException>()
                .With.Message.Contains("topkExpertIds[2]").And.Message.Contains("is 4"));
            Assert.That(() => MoeRouting.Sort([0, 1, 3, 3], 2, 4), Throws.TypeOf<ArgumentException>()
                .With.Message.Contains("Token 1").And.Message.Contains("expert 3"));
        }
    }

    [Test]
    public void NoTokens_GiveZeroOffsets()
    {
        var result = MoeRouting.Sort([], 2, 5);
        Assert.That(result.ExpertOffsets, Is.EqualTo(new int[6]));
        Assert.That(result.Rows, Is.Zero);
    }

    [Test]
    public void Gather_ChecksLengths()
    {
        var result = MoeRouting.Sort([0, 1], 1, 2);
        Assert.That(() => result.Gather<float>(new float[3], 2, new float[4]), Throws.TypeOf<ArgumentException>()
            .With.Property("ParamName").EqualTo("tokenRows"));
        Assert.That(() => result.Gather<float>(new float[4], 2, new float[3]), Throws.TypeOf<ArgumentException>()
            .With.Property("ParamName").EqualTo("sortedRows"));
    }
}
