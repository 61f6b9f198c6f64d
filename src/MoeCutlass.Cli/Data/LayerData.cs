using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Data;

/// <summary>
/// The device operands of one layer case apart from the weights: hidden states bf16 [T, H] (generated like
/// <see cref="ProblemData"/>'s A, before quantization), router logits fp32 [T, router experts] (<see cref="LayerRouting"/>),
/// the output bf16 [T, H], and the operands of the "GEMMs alone" measurement over the routed rows: A1 e4m3 [rows, H] and
/// A2 e4m3 [rows, I] with 1x128 scales, the expert offsets of the host routing, and bf16 outputs [rows, 2I] and [rows, H].
/// </summary>
internal sealed class LayerData : IDisposable
{
    private readonly List<IDisposable> _owned;

    private LayerData(LayerShape shape, LayerRouting routing, List<IDisposable> owned)
    {
        Shape = shape;
        Routing = routing;
        _owned = owned;
    }

    public LayerShape Shape { get; }

    public LayerRouting Routing { get; }

    public DeviceBuffer<BFloat16> Hidden { get; private init; } = null!;

    public DeviceBuffer<float> Logits { get; private init; } = null!;

    public DeviceBuffer<BFloat16> Output { get; private init; } = null!;

    public DeviceBuffer<byte> A1 { get; private init; } = null!;

    public DeviceBuffer<float> A1Scales { get; private init; } = null!;

    public DeviceBuffer<byte> A2 { get; private init; } = null!;

    public DeviceBuffer<float> A2Scales { get; private init; } = null!;

    public DeviceBuffer<int> Offsets { get; private init; } = null!;

    public DeviceBuffer<BFloat16> D1 { get; private init; } = null!;

    public DeviceBuffer<BFloat16> D2 { get; private init; } = null!;

    public static LayerData Create(MoeContext context, LayerShape shape, ulong seed, MoeStream stream)
    {
        LayerRouting routing = LayerRouting.Create(shape, seed);
        ulong caseSeed = CounterRandom.Derive(seed, "layer " + shape.Case.Name);
        var owned = new List<IDisposable>();
        try
        {
            int t = shape.Tokens, h = shape.Hidden, i = shape.Intermediate, rows = routing.Rows;
            var hidden = Track(owned, context.Allocate<BFloat16>((long)t * h));
            Generate(hidden, t, h, CounterRandom.Derive(caseSeed, "hidden"));
            var data = new LayerData(shape, routing, owned)
            {
                Hidden = hidden,
                Logits = Track(owned, context.Upload<float>(routing.Logits)),
                Output = Track(owned, context.Allocate<BFloat16>((long)t * h)),
                A1 = Track(owned, context.Allocate<byte>(Math.Max(1L, (long)rows * h))),
                A1Scales = Track(owned, context.Allocate<float>(Math.Max(1L, (long)rows * MoeContext.ScaleBlocks(h)))),
                A2 = Track(owned, context.Allocate<byte>(Math.Max(1L, (long)rows * i))),
                A2Scales = Track(owned, context.Allocate<float>(Math.Max(1L, (long)rows * MoeContext.ScaleBlocks(i)))),
                Offsets = Track(owned, context.Upload<int>(routing.ExpertOffsets())),
                D1 = Track(owned, context.Allocate<BFloat16>(Math.Max(1L, (long)rows * 2 * i))),
                D2 = Track(owned, context.Allocate<BFloat16>(Math.Max(1L, (long)rows * h))),
            };
            if (rows > 0)
            {
                Quantized(context, rows, h, data.A1, data.A1Scales, CounterRandom.Derive(caseSeed, "A1"), stream);
                Quantized(context, rows, i, data.A2, data.A2Scales, CounterRandom.Derive(caseSeed, "A2"), stream);
            }

            owned = [];
            return data;
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
        foreach (IDisposable buffer in _owned)
        {
            buffer.Dispose();
        }
    }

    private static void Generate(DeviceBuffer<BFloat16> target, int rows, int cols, ulong seed) =>
        ProblemData.UploadGenerated(target, rows, cols, CounterRandom.Derive(seed, "values"), CounterRandom.Derive(seed, "blocks"),
            (row, kb) => ((ulong)row * (ulong)MoeContext.ScaleBlocks(cols)) + (ulong)kb);

    private static void Quantized(MoeContext context, int rows, int cols, DeviceBuffer<byte> output, DeviceBuffer<float> scales, ulong seed,
        MoeStream stream)
    {
        using DeviceBuffer<BFloat16> staging = context.Allocate<BFloat16>((long)rows * cols);
        Generate(staging, rows, cols, seed);
        context.QuantizeActivations(staging, rows, cols, output, scales, stream);
        stream.Synchronize();
    }

    private static T Track<T>(List<IDisposable> owned, T item)
        where T : IDisposable
    {
        owned.Add(item);
        return item;
    }
}
