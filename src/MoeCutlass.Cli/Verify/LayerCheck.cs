using MoeCutlass.Cli.Data;
using MoeCutlass.Cli.Suite;

namespace MoeCutlass.Cli.Verify;

/// <summary>One (layer case, strategy) check; <see cref="Passed"/> is null when it could not run.</summary>
/// <param name="Deterministic">Whether two forward calls gave identical bits (null when it could not run).</param>
/// <param name="Flags">The context's device error flags after the calls (always none on the CPU backend).</param>
internal sealed record LayerVerifyRow(
    LayerShape Shape, GemmStrategy Strategy, int RoutedRows, int ActiveExperts, LayerComparison? Comparison, bool? Deterministic,
    DeviceErrorFlags Flags, bool? Passed);

/// <summary>
/// The layer check of one case: the case's FP8 weights, hidden states and router logits generated on the checked context
/// (as <c>bench --layer</c> generates them), their bytes copied through the host to a CPU reference context, and the CPU
/// layer's output there (<see cref="Prepare"/>). <see cref="Run"/> then runs the checked context's layer with a strategy
/// twice and compares with that output under <see cref="LayerTolerance"/>.
/// </summary>
internal sealed class LayerCheck : IDisposable
{
    private readonly MoeContext _context;
    private readonly LayerWeights _weights;
    private readonly LayerData _data;
    private readonly DType _outputDType;
    private readonly double[] _reference;

    private LayerCheck(MoeContext context, LayerWeights weights, LayerData data, DType outputDType, double[] reference)
    {
        _context = context;
        _weights = weights;
        _data = data;
        _outputDType = outputDType;
        _reference = reference;
    }

    public LayerShape Shape => _data.Shape;

    /// <summary>A test hook: changes the checked output (after the determinism check) before it is compared.</summary>
    internal Action<double[]>? Tamper { get; init; }

    /// <summary>Generates the case's operands on <paramref name="context"/> and runs the CPU layer on copies of them in <paramref name="reference"/>.</summary>
    public static LayerCheck Prepare(MoeContext context, MoeContext reference, LayerShape shape, DType outputDType, ulong seed,
        Action<double[]>? tamper = null)
    {
        using MoeStream stream = context.CreateStream();
        LayerWeights weights = LayerWeights.Generate(context, LayerWeights.KeyOf(shape), shape.Experts, shape.Hidden, shape.Intermediate, seed, stream);
        LayerData? data = null;
        try
        {
            data = LayerData.Create(context, shape, seed, stream);
            double[] expected = RunReference(reference, shape.Options(GemmStrategy.Auto) with { OutputDType = outputDType }, weights, data);
            return new LayerCheck(context, weights, data, outputDType, expected) { Tamper = tamper };
        }
        catch
        {
            data?.Dispose();
            weights.Dispose();
            throw;
        }
    }

    /// <summary>Runs the layer with <paramref name="strategy"/> twice and compares with the reference.</summary>
    public LayerVerifyRow Run(GemmStrategy strategy)
    {
        LayerShape shape = _data.Shape;
        MoeLayerOptions options = shape.Options(strategy) with { OutputDType = _outputDType };
        using MoeLayer layer = _context.CreateMoeLayer(options, _weights.W13, _weights.W13Scales, _weights.W2, _weights.W2Scales);
        using MoeStream stream = _context.CreateStream();
        using DeviceBuffer first = LayerOutput.Allocate(_context, _outputDType, options.OutputElements(shape.Tokens));
        using DeviceBuffer second = LayerOutput.Allocate(_context, _outputDType, options.OutputElements(shape.Tokens));
        LayerOutput.Poison(first, stream);
        LayerOutput.Poison(second, stream);
        layer.Forward(shape.Tokens, _data.Hidden, _data.Logits, first, stream);
        layer.Forward(shape.Tokens, _data.Hidden, _data.Logits, second, stream);
        stream.Synchronize();
        DeviceErrorFlags flags = _context.QueryDeviceErrors(reset: true);
        bool deterministic = LayerOutput.Bits(first).AsSpan().SequenceEqual(LayerOutput.Bits(second));
        double[] got = LayerOutput.Values(first);
        Tamper?.Invoke(got);
        LayerComparison comparison = LayerTolerance.Compare(got, _reference, shape.Hidden, _outputDType);
        return new LayerVerifyRow(shape, strategy, _data.Routing.Rows, _data.Routing.ActiveExperts, comparison, deterministic, flags,
            comparison.Passes && deterministic && flags == DeviceErrorFlags.None);
    }

    public void Dispose()
    {
        _data.Dispose();
        _weights.Dispose();
    }

    /// <summary>The CPU layer over host copies of the checked context's weight, hidden-state and logit bytes.</summary>
    private static double[] RunReference(MoeContext reference, MoeLayerOptions options, LayerWeights weights, LayerData data)
    {
        using DeviceBuffer<byte> w13 = reference.Upload<byte>(weights.W13.ToArray());
        using DeviceBuffer<float> w13Scales = reference.Upload<float>(weights.W13Scales.ToArray());
        using DeviceBuffer<byte> w2 = reference.Upload<byte>(weights.W2.ToArray());
        using DeviceBuffer<float> w2Scales = reference.Upload<float>(weights.W2Scales.ToArray());
        using DeviceBuffer<BFloat16> hidden = reference.Upload<BFloat16>(data.Hidden.ToArray());
        using DeviceBuffer<float> logits = reference.Upload<float>(data.Logits.ToArray());
        using MoeLayer layer = reference.CreateMoeLayer(options, w13, w13Scales, w2, w2Scales);
        using MoeStream stream = reference.CreateStream();
        using DeviceBuffer output = LayerOutput.Allocate(reference, options.OutputDType, options.OutputElements(data.Shape.Tokens));
        LayerOutput.Poison(output, stream);
        layer.Forward(data.Shape.Tokens, hidden, logits, output, stream);
        stream.Synchronize();
        return LayerOutput.Values(output);
    }
}

/// <summary>Layer output buffers of a 16-bit dtype: allocation, NaN poisoning (unwritten elements fail the check), reading back.</summary>
internal static class LayerOutput
{
    public static DeviceBuffer Allocate(MoeContext context, DType dtype, long elements) => dtype switch
    {
        DType.BFloat16 => context.Allocate<BFloat16>(elements),
        DType.Float16 => context.Allocate<Half>(elements),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "the layer check reads bf16 or fp16 output"),
    };

    public static void Poison(DeviceBuffer buffer, MoeStream stream)
    {
        switch (buffer)
        {
            case DeviceBuffer<BFloat16> b:
                b.Fill(BFloat16.FromBits(0x7FC1), stream);
                break;
            case DeviceBuffer<Half> h:
                h.Fill(BitConverter.UInt16BitsToHalf(0x7E01), stream);
                break;
            default:
                throw new ArgumentException(buffer.TypeDisplayName, nameof(buffer));
        }
    }

    public static double[] Values(DeviceBuffer buffer) => buffer switch
    {
        DeviceBuffer<BFloat16> b => [.. b.ToArray().Select(v => (double)v)],
        DeviceBuffer<Half> h => [.. h.ToArray().Select(v => (double)v)],
        _ => throw new ArgumentException(buffer.TypeDisplayName, nameof(buffer)),
    };

    public static ushort[] Bits(DeviceBuffer buffer) => buffer switch
    {
        DeviceBuffer<BFloat16> b => [.. b.ToArray().Select(v => v.Bits)],
        DeviceBuffer<Half> h => [.. h.ToArray().Select(BitConverter.HalfToUInt16Bits)],
        _ => throw new ArgumentException(buffer.TypeDisplayName, nameof(buffer)),
    };
}
