using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Data;

/// <summary>
/// One set of FP8 expert weights of a layer bench: W13 e4m3 [E, 2I, H] and W2 e4m3 [E, H, I] with fp32 128x128 block
/// scales, generated like <see cref="ProblemData"/> generates B (seeded bf16 values with per-block magnitudes, uploaded in
/// chunks and quantized on the device). Experts are laid out one after the other, so the first e experts of a set are
/// a valid set of e experts: a layer over fewer experts reads a prefix of the same buffers.
/// </summary>
internal sealed class LayerWeights : IDisposable
{
    private LayerWeights(string key, int experts, int hidden, int intermediate, DeviceBuffer<byte> w13, DeviceBuffer<float> w13Scales,
        DeviceBuffer<byte> w2, DeviceBuffer<float> w2Scales)
    {
        Key = key;
        Experts = experts;
        Hidden = hidden;
        Intermediate = intermediate;
        W13 = w13;
        W13Scales = w13Scales;
        W2 = w2;
        W2Scales = w2Scales;
    }

    /// <summary>"model H=... I=...": cases with the same key can share the set.</summary>
    public string Key { get; }

    public int Experts { get; }

    public int Hidden { get; }

    public int Intermediate { get; }

    public DeviceBuffer<byte> W13 { get; }

    public DeviceBuffer<float> W13Scales { get; }

    public DeviceBuffer<byte> W2 { get; }

    public DeviceBuffer<float> W2Scales { get; }

    /// <summary>Bytes of the set on the device (e4m3 weights and fp32 scales).</summary>
    public long Bytes => W13.SizeInBytes + W13Scales.SizeInBytes + W2.SizeInBytes + W2Scales.SizeInBytes;

    /// <summary>The key of the set <paramref name="shape"/> reads: its model, H and I (the seed depends on nothing else).</summary>
    public static string KeyOf(LayerShape shape) => $"{(shape.Case.Model.Length > 0 ? shape.Case.Model : "(no model)")} H={shape.Hidden} I={shape.Intermediate}";

    /// <summary>Generates <paramref name="experts"/> experts of weights for <paramref name="key"/>'s H and I.</summary>
    public static LayerWeights Generate(MoeContext context, string key, int experts, int hidden, int intermediate, ulong seed, MoeStream stream)
    {
        ulong setSeed = CounterRandom.Derive(seed, "layer-weights " + key);
        var owned = new List<IDisposable>();
        try
        {
            var w13 = Track(owned, context.Allocate<byte>((long)experts * 2 * intermediate * hidden));
            var w13Scales = Track(owned, context.Allocate<float>((long)experts * MoeContext.ScaleBlocks(2 * intermediate) * MoeContext.ScaleBlocks(hidden)));
            var w2 = Track(owned, context.Allocate<byte>((long)experts * hidden * intermediate));
            var w2Scales = Track(owned, context.Allocate<float>((long)experts * MoeContext.ScaleBlocks(hidden) * MoeContext.ScaleBlocks(intermediate)));
            Quantize(context, experts, 2 * intermediate, hidden, w13, w13Scales, CounterRandom.Derive(setSeed, "W13"), stream);
            Quantize(context, experts, hidden, intermediate, w2, w2Scales, CounterRandom.Derive(setSeed, "W2"), stream);
            owned.Clear();
            return new LayerWeights(key, experts, hidden, intermediate, w13, w13Scales, w2, w2Scales);
        }
        finally
        {
            foreach (IDisposable buffer in owned)
            {
                buffer.Dispose();
            }
        }
    }

    public void Dispose()
    {
        W13.Dispose();
        W13Scales.Dispose();
        W2.Dispose();
        W2Scales.Dispose();
    }

    /// <summary>[E, N, K] bf16 values staged on the device, quantized with 128x128 scales; the staging is freed at once.</summary>
    private static void Quantize(MoeContext context, int experts, int n, int k, DeviceBuffer<byte> output, DeviceBuffer<float> scales, ulong seed,
        MoeStream stream)
    {
        int nBlocks = MoeContext.ScaleBlocks(n);
        int kBlocks = MoeContext.ScaleBlocks(k);
        using DeviceBuffer<BFloat16> staging = context.Allocate<BFloat16>((long)experts * n * k);
        ProblemData.UploadGenerated(staging, (long)experts * n, k, CounterRandom.Derive(seed, "values"), CounterRandom.Derive(seed, "blocks"),
            (row, kb) => (ulong)((((row / n * nBlocks) + (row % n / 128)) * kBlocks) + kb));
        context.QuantizeWeights(staging, experts, n, k, output, scales, stream);
        stream.Synchronize();
    }

    private static T Track<T>(List<IDisposable> owned, T item)
        where T : IDisposable
    {
        owned.Add(item);
        return item;
    }
}

/// <summary>
/// Keeps at most one <see cref="LayerWeights"/> set alive: the cases of one model share it (the set holds the most experts
/// any of them reads), and moving on to another model frees it before the next is generated, so two DeepSeek-sized sets
/// (11 GB each) never coexist. Callers measure the cases grouped by key (<see cref="Order"/>).
/// </summary>
internal sealed class LayerWeightCache(MoeContext context, ulong seed, IReadOnlyList<LayerShape> shapes) : IDisposable
{
    private LayerWeights? _current;

    /// <summary>Sets generated so far (a test hook; also in the JSON run metadata).</summary>
    public int Generations { get; private set; }

    /// <summary><paramref name="shapes"/> in run order: grouped by weight key, the groups in order of first appearance.</summary>
    public static IReadOnlyList<LayerShape> Order(IReadOnlyList<LayerShape> shapes)
    {
        var keys = shapes.Select(LayerWeights.KeyOf).Distinct().ToList();
        return shapes.OrderBy(s => keys.IndexOf(LayerWeights.KeyOf(s))).ToList();
    }

    /// <summary>The set for <paramref name="shape"/> and whether it was generated just now.</summary>
    public (LayerWeights Weights, bool Generated) For(LayerShape shape, MoeStream stream)
    {
        string key = LayerWeights.KeyOf(shape);
        if (_current is not null && _current.Key == key && _current.Experts >= shape.Experts)
        {
            return (_current, false);
        }

        _current?.Dispose();
        _current = null;
        int experts = shapes.Where(s => LayerWeights.KeyOf(s) == key).Max(s => s.Experts);
        _current = LayerWeights.Generate(context, key, Math.Max(experts, shape.Experts), shape.Hidden, shape.Intermediate, seed, stream);
        Generations++;
        return (_current, true);
    }

    public void Dispose() => _current?.Dispose();
}
