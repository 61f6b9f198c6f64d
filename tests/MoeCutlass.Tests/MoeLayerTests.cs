using System.Globalization;
using Microsoft.Extensions.Logging;

namespace MoeCutlass.Tests;

/// <summary>
/// The C# MoE layer on the CPU backend: the forward call against a double-precision reference built from the layer's
/// own quantized weights, precomputed routing against softmax routing, expert-parallel slices, T = 0, every argument
/// rule (exception type, ParamName, nothing written, the layer still usable), the weight-buffer references and the
/// lifetime rules of a context child.
/// </summary>
[TestFixture]
public sealed class MoeLayerTests : NativeTestBase
{
    private static readonly BFloat16 Canary = BFloat16.FromBits(0x7E57);

    // ---- numerics ------------------------------------------------------------------------------------------------

    [TestCase(DType.BFloat16, DType.BFloat16, false, DType.Float32)]
    [TestCase(DType.BFloat16, DType.BFloat16, true, DType.BFloat16)]
    [TestCase(DType.Float16, DType.Float16, true, DType.Float16)]
    [TestCase(DType.Float32, DType.BFloat16, false, DType.Float32)]
    public void Forward_MatchesADoublePrecisionReferenceOfItsOwnQuantizedWeights(DType input, DType output, bool normalize, DType logitsType)
    {
        var random = NewRandom();
        using var context = MoeContext.CreateCpu(threads: 2);
        // H and I not multiples of 128 (partial scale blocks); 8 experts, top-2, 13 tokens.
        var options = new MoeLayerOptions(TotalExperts: 8, TopK: 2, Hidden: 208, Intermediate: 144, MaxTokens: 16)
        {
            NormalizeRoutingWeights = normalize,
            InputDType = input,
            OutputDType = output,
            LogitsDType = logitsType,
        };
        var problem = LayerProblem.Create(random, options, tokens: 13);
        using var layer = context.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);
        using var result = AllocateOutput(context, options, problem.Tokens);

        layer.Forward(problem.Tokens, hidden, logits, result);

        double[] got = ReadDoubles(result);
        var (ids, weights) = problem.Route();
        double[] reference = Reference(context, layer, problem.Hidden, problem.Tokens, ids, weights, swapGateUp: false);
        double[] swapped = Reference(context, layer, problem.Hidden, problem.Tokens, ids, weights, swapGateUp: true);
        double error = RelativeRms(got, reference), swappedError = RelativeRms(got, swapped);
        TestContext.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"relative RMS error {error:G3}; against the gate/up-swapped reference {swappedError:G3}"));
        using (Assert.EnterMultipleScope())
        {
            // The native test's typical-error limit: FP8 activations (twice) and bf16 intermediates.
            Assert.That(error, Is.LessThan(0.125));
            // The check can fail: a layer that mixed up the gate and up halves of W13 would be this far off.
            Assert.That(swappedError, Is.GreaterThan(0.5));
            Assert.That(got.All(double.IsFinite), Is.True);
        }

        // Deterministic: a second call gives the same bits.
        using var again = AllocateOutput(context, options, problem.Tokens);
        layer.Forward(problem.Tokens, hidden, logits, again);
        Assert.That(ReadBits(again), Is.EqualTo(ReadBits(result)));
    }

    [Test]
    public void CublasStrategy_OnTheCpu_GivesTheBitsOfEveryOtherStrategy_AndNamesNoKernel()
    {
        // The CPU reference computes the same math whatever the strategy; a layer that rejected cublas, or ran its
        // GEMMs on other rows or weights, would differ.
        var random = NewRandom();
        using var context = MoeContext.CreateCpu(threads: 2);
        var options = new MoeLayerOptions(TotalExperts: 8, TopK: 2, Hidden: 208, Intermediate: 144, MaxTokens: 16);
        var problem = LayerProblem.Create(random, options, tokens: 11);
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);
        ushort[] Forward(GemmStrategy strategy, out MoeLayer created)
        {
            created = context.CreateMoeLayerFromHost(options with { Strategy = strategy }, problem.W13, problem.W2);
            using var output = AllocateOutput(context, options, problem.Tokens);
            created.Forward(problem.Tokens, hidden, logits, output);
            return ReadBits(output);
        }

        ushort[] cublas = Forward(GemmStrategy.Cublas, out MoeLayer cublasLayer);
        using (cublasLayer)
        {
            using (Assert.EnterMultipleScope())
            {
                Assert.That(cublasLayer.Gemm1Kernels, Is.Empty, "cuBLAS picks its own kernels");
                Assert.That(cublasLayer.Gemm2Kernels, Is.Empty);
                Assert.That(cublas.Any(bits => (bits & 0x7FFF) != 0), Is.True, "the output is not all zeros");
                foreach (GemmStrategy other in new[] { GemmStrategy.Auto, GemmStrategy.Single, GemmStrategy.Persistent })
                {
                    ushort[] bits = Forward(other, out MoeLayer layer);
                    layer.Dispose();
                    Assert.That(cublas, Is.EqualTo(bits), $"cublas against {other}");
                }
            }
        }
    }

    [Test]
    public void FromHost_Float16AndBFloat16Weights_QuantizeLikeTheSameValuesAsFloat()
    {
        var random = NewRandom();
        using var context = MoeContext.CreateCpu(threads: 2);
        var options = new MoeLayerOptions(6, 2, 128, 64, 8);
        var problem = LayerProblem.Create(random, options, tokens: 5);
        // Values exact in both 16-bit formats: bf16's 8 significant bits inside fp16's range.
        float[] w13 = [.. problem.W13.Select(v => (float)(Half)(float)(BFloat16)v)];
        float[] w2 = [.. problem.W2.Select(v => (float)(Half)(float)(BFloat16)v)];
        using var fromFloat = context.CreateMoeLayerFromHost(options, w13, w2);
        using var fromHalf = context.CreateMoeLayerFromHost(options, w13.Select(v => (Half)v).ToArray(), w2.Select(v => (Half)v).ToArray());
        using var fromBf16 = context.CreateMoeLayerFromHost(options, w13.Select(v => (BFloat16)v).ToArray(), w2.Select(v => (BFloat16)v).ToArray());
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);

        ushort[] Run(MoeLayer layer)
        {
            using var output = context.Allocate<BFloat16>(options.OutputElements(problem.Tokens));
            layer.Forward(problem.Tokens, hidden, logits, output);
            return ReadBits(output);
        }

        ushort[] expected = Run(fromFloat);
        using (Assert.EnterMultipleScope())
        {
            foreach (var layer in new[] { fromHalf, fromBf16 })
            {
                Assert.That(layer.OwnsWeights, Is.True);
                Assert.That(layer.W13.ToArray(), Is.EqualTo(fromFloat.W13.ToArray()));
                Assert.That(layer.W2Scales.ToArray(), Is.EqualTo(fromFloat.W2Scales.ToArray()));
                Assert.That(Run(layer), Is.EqualTo(expected));
            }
        }
    }

    [TestCase(false)]
    [TestCase(true)]
    public void PrecomputedRouting_WithTheHostRoutersIdsAndWeights_EqualsSoftmaxRouting(bool normalize)
    {
        var random = NewRandom();
        using var context = MoeContext.CreateCpu(threads: 2);
        var options = new MoeLayerOptions(8, 3, 128, 96, 12) { NormalizeRoutingWeights = normalize };
        var problem = LayerProblem.Create(random, options, tokens: 12);
        using var routed = context.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        // The same FP8 weights, referenced by a second layer.
        using var precomputed = context.CreateMoeLayer(options with { Routing = MoeRoutingMode.Precomputed },
            routed.W13, routed.W13Scales, routed.W2, routed.W2Scales);
        var (ids, weights) = problem.Route();
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);
        using var idBuffer = context.Upload<int>(ids);
        using var weightBuffer = context.Upload<float>(weights);
        using var a = context.Allocate<BFloat16>(options.OutputElements(12));
        using var b = context.Allocate<BFloat16>(options.OutputElements(12));

        routed.Forward(12, hidden, logits, a);
        precomputed.ForwardPrecomputed(12, hidden, idBuffer, weightBuffer, b);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(precomputed.OwnsWeights, Is.False);
            Assert.That(ReadBits(b), Is.EqualTo(ReadBits(a)));
            Assert.That(ReadBits(a).Any(bits => bits != 0), Is.True);
        }
    }

    [Test]
    public void HostRouter_PicksTheLargestLogitsWithTiesToTheLowerId_AndSoftmaxWeights()
    {
        float[] logits = [1f, 3f, 3f, 0f, /* token 1 */ -1f, -1f, -1f, -1f];
        var ids = new int[4];
        var weights = new float[4];
        MoeRouting.SoftmaxTopK(logits, experts: 4, topK: 2, normalizeRoutingWeights: false, ids, weights);
        double sum = Math.Exp(-2) + 1 + 1 + Math.Exp(-3);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(ids, Is.EqualTo(new[] { 1, 2, 0, 1 }));
            Assert.That(weights[0], Is.EqualTo((float)(1 / sum)));
            Assert.That(weights[2], Is.EqualTo(0.25f));
        }

        MoeRouting.SoftmaxTopK(logits, experts: 4, topK: 2, normalizeRoutingWeights: true, ids, weights);
        Assert.That(weights, Is.EqualTo(new[] { 0.5f, 0.5f, 0.5f, 0.5f }));
        Assert.That(() => MoeRouting.SoftmaxTopK(logits, 4, 5, false, ids, weights), Throws.TypeOf<ArgumentOutOfRangeException>());
        Assert.That(() => MoeRouting.SoftmaxTopK(logits, 4, 2, false, new int[3], weights),
            Throws.ArgumentException.With.Property("ParamName").EqualTo("topkIds"));
    }

    [Test]
    public void ExpertParallelSlices_SumToTheWholeLayer_AndTokensRoutedElsewhereGetZeros()
    {
        var random = NewRandom();
        using var context = MoeContext.CreateCpu(threads: 2);
        const int experts = 8, tokens = 24;
        var options = new MoeLayerOptions(experts, 2, 128, 128, tokens) { NormalizeRoutingWeights = true };
        var problem = LayerProblem.Create(random, options, tokens);
        // Every fourth token prefers two experts of the upper half by far: it has no expert in the lower slice.
        for (int t = 0; t < tokens; t += 4)
        {
            problem.Logits[t * experts + 5] += 20f;
            problem.Logits[t * experts + 6] += 20f;
        }

        using var whole = context.CreateMoeLayerFromHost(options, problem.W13, problem.W2);
        byte[] w13 = whole.W13.ToArray(), w2 = whole.W2.ToArray();
        float[] s13 = whole.W13Scales.ToArray(), s2 = whole.W2Scales.ToArray();
        MoeLayer Slice(int first, int count)
        {
            var o = options with { FirstExpert = first, LocalExperts = count };
            long per13 = o.W13Elements / count, perS13 = o.W13ScaleElements / count, per2 = o.W2Elements / count, perS2 = o.W2ScaleElements / count;
            var q13 = context.Upload<byte>(w13.AsSpan((int)(first * per13), (int)(count * per13)));
            var q13s = context.Upload<float>(s13.AsSpan((int)(first * perS13), (int)(count * perS13)));
            var q2 = context.Upload<byte>(w2.AsSpan((int)(first * per2), (int)(count * per2)));
            var q2s = context.Upload<float>(s2.AsSpan((int)(first * perS2), (int)(count * perS2)));
            var layer = context.CreateMoeLayer(o, q13, q13s, q2, q2s);
            // The layer holds its own references: the caller's buffers can go now.
            q13.Dispose();
            q13s.Dispose();
            q2.Dispose();
            q2s.Dispose();
            return layer;
        }

        using var low = Slice(0, experts / 2);
        using var high = Slice(experts / 2, experts / 2);
        Assert.That(low.Options.LocalExperts, Is.EqualTo(4));
        using var hidden = problem.UploadHidden(context);
        using var logits = problem.UploadLogits(context);
        double[] Run(MoeLayer layer)
        {
            using var output = context.Allocate<BFloat16>(options.OutputElements(tokens));
            layer.Forward(tokens, hidden, logits, output);
            return ReadDoubles(output);
        }

        double[] sum = Run(whole), a = Run(low), b = Run(high);
        var (ids, _) = problem.Route();
        int foreign = 0;
        for (int t = 0; t < tokens; t++)
        {
            bool noneLow = ids[t * 2] >= 4 && ids[t * 2 + 1] >= 4;
            foreign += noneLow ? 1 : 0;
            for (int h = 0; h < options.Hidden; h++)
            {
                int i = t * options.Hidden + h;
                if (noneLow && a[i] != 0)
                {
                    Assert.Fail($"token {t} has no expert in the low slice, but its output [{h}] is {a[i]}");
                }

                // Each slice rounds its partial sum to bf16 once, the whole layer the full sum once: at most one bf16 ulp
                // (2^-7 relative) of each of the three values apart, however much the two parts cancel.
                double bound = Math.ScaleB(Math.Abs(a[i]) + Math.Abs(b[i]) + Math.Abs(sum[i]), -7);
                if (Math.Abs(a[i] + b[i] - sum[i]) > bound)
                {
                    Assert.Fail($"token {t} column {h}: slices {a[i]} + {b[i]} vs whole {sum[i]} (bound {bound})");
                }
            }
        }

        Assert.That(foreign, Is.GreaterThanOrEqualTo(tokens / 4));
    }

    [Test]
    public void ZeroTokens_WritesNothing_WithFullOrEmptyBuffers()
    {
        using var fixture = new LayerFixture();
        fixture.Routed.Forward(0, fixture.Hidden, fixture.Logits, fixture.Output);
        Assert.That(fixture.OutputUntouched(), Is.True);

        using var empty16 = fixture.Context.Allocate<BFloat16>(0);
        using var empty32 = fixture.Context.Allocate<float>(0);
        using var emptyIds = fixture.Context.Allocate<int>(0);
        fixture.Routed.Forward(0, empty16, empty32, fixture.Output);
        fixture.Routed.Forward(0, fixture.Hidden, fixture.Logits, empty16);
        fixture.Precomputed.ForwardPrecomputed(0, empty16, emptyIds, empty32, empty16);
        fixture.Precomputed.ForwardPrecomputed(0, fixture.Hidden, fixture.Ids, fixture.Weights, fixture.Output);
        Assert.That(fixture.OutputUntouched(), Is.True);
    }

    // ---- argument rules ------------------------------------------------------------------------------------------

    public static IEnumerable<TestCaseData> ForwardRules()
    {
        static TestCaseData Case(string name, Action<LayerFixture> call, Type exception, string? param, MoeStatus? status) =>
            new TestCaseData(call, exception, param, status).SetArgDisplayNames(name);
        var arg = typeof(MoeCutlassArgumentException);
        const int T = LayerFixture.Tokens;
        yield return Case("hidden of float for a bf16 layer", f => f.Routed.Forward(T, f.Logits, f.Logits, f.Output), arg, "hidden", MoeStatus.InvalidDtype);
        yield return Case("hidden too small", f => f.Routed.Forward(T, f.Small16, f.Logits, f.Output), arg, "hidden", MoeStatus.BufferTooSmall);
        yield return Case("logits of bf16 for fp32 logits", f => f.Routed.Forward(T, f.Hidden, f.Hidden, f.Output), arg, "routerLogits", MoeStatus.InvalidDtype);
        yield return Case("logits too small", f => f.Routed.Forward(T, f.Hidden, f.Weights, f.Output), arg, "routerLogits", MoeStatus.BufferTooSmall);
        yield return Case("output of Half for a bf16 layer", f => f.Routed.Forward(T, f.Hidden, f.Logits, f.HalfOutput), arg, "output", MoeStatus.InvalidDtype);
        yield return Case("output too small", f => f.Routed.Forward(T, f.Hidden, f.Logits, f.Small16), arg, "output", MoeStatus.BufferTooSmall);
        yield return Case("output is the hidden buffer", f => f.Routed.Forward(T, f.Output, f.Logits, f.Output), arg, "output", MoeStatus.InvalidArgument);
        yield return Case("tokens beyond MaxTokens", f => f.Routed.Forward(LayerFixture.MaxTokens + 1, f.Hidden, f.Logits, f.Output), arg, "tokens", MoeStatus.OutOfRange);
        yield return Case("negative tokens", f => f.Routed.Forward(-1, f.Hidden, f.Logits, f.Output), arg, "tokens", MoeStatus.OutOfRange);
        yield return Case("hidden of another context", f => f.Routed.Forward(T, f.ForeignHidden, f.Logits, f.Output), arg, "hidden", MoeStatus.InvalidArgument);
        yield return Case("stream of another context", f => f.Routed.Forward(T, f.Hidden, f.Logits, f.Output, f.ForeignStream), arg, "stream", MoeStatus.ContextMismatch);
        yield return Case("null hidden", f => f.Routed.Forward(T, null!, f.Logits, f.Output), typeof(ArgumentNullException), "hidden", null);
        yield return Case("ForwardPrecomputed on a routing layer", f => f.Routed.ForwardPrecomputed(T, f.Hidden, f.Ids, f.Weights, f.Output), arg, "topkIds", MoeStatus.InvalidArgument);
        yield return Case("Forward on a precomputed layer", f => f.Precomputed.Forward(T, f.Hidden, f.Logits, f.Output), arg, "routerLogits", MoeStatus.InvalidArgument);
        yield return Case("ids of float", f => f.Precomputed.ForwardPrecomputed(T, f.Hidden, f.Weights, f.Weights, f.Output), arg, "topkIds", MoeStatus.InvalidDtype);
        yield return Case("weights of int", f => f.Precomputed.ForwardPrecomputed(T, f.Hidden, f.Ids, f.Ids, f.Output), arg, "topkWeights", MoeStatus.InvalidDtype);
        yield return Case("weights too small", f => f.Precomputed.ForwardPrecomputed(T, f.Hidden, f.Ids, f.SmallWeights, f.Output), arg, "topkWeights", MoeStatus.BufferTooSmall);
        yield return Case("id out of range", f => f.Precomputed.ForwardPrecomputed(T, f.Hidden, f.BadIds, f.Weights, f.Output), arg, "topkIds", MoeStatus.InvalidArgument);
        yield return Case("id repeated in a token", f => f.Precomputed.ForwardPrecomputed(T, f.Hidden, f.RepeatedIds, f.Weights, f.Output), arg, "topkIds", MoeStatus.InvalidArgument);
    }

    [TestCaseSource(nameof(ForwardRules))]
    public void ForwardRule_ThrowsNamingTheParameter_WritesNothing_AndTheLayerStaysUsable(Action<LayerFixture> call, Type exception, string? param,
        MoeStatus? status)
    {
        using var fixture = new LayerFixture();
        var thrown = Assert.Throws(exception, () => call(fixture))!;
        TestContext.Out.WriteLine(thrown.Message);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(((ArgumentException)thrown).ParamName, Is.EqualTo(param));
            if (status is { } expected)
            {
                Assert.That(((IMoeCutlassException)thrown).Status, Is.EqualTo(expected));
                Assert.That(thrown.Message, Does.Contain(param).And.Not.Contain("args->"));
            }

            Assert.That(fixture.OutputUntouched(), Is.True, "a rejected call wrote the output");
        }

        fixture.Routed.Forward(LayerFixture.Tokens, fixture.Hidden, fixture.Logits, fixture.Output);
        Assert.That(fixture.OutputUntouched(), Is.False, "the layer should still run");
        fixture.Precomputed.ForwardPrecomputed(LayerFixture.Tokens, fixture.Hidden, fixture.Ids, fixture.Weights, fixture.Output);
    }

    public static IEnumerable<TestCaseData> OptionRules()
    {
        static TestCaseData Case(Func<MoeLayerOptions, MoeLayerOptions> edit, MoeStatus status, string property) =>
            new TestCaseData(edit, status, property).SetArgDisplayNames(property + " " + status);
        yield return Case(o => o with { TotalExperts = 0 }, MoeStatus.OutOfRange, "options.TotalExperts");
        yield return Case(o => o with { FirstExpert = -1 }, MoeStatus.OutOfRange, "options.FirstExpert");
        yield return Case(o => o with { FirstExpert = 2, LocalExperts = 8 }, MoeStatus.OutOfRange, "options.LocalExperts");
        yield return Case(o => o with { TopK = 0 }, MoeStatus.OutOfRange, "options.TopK");
        yield return Case(o => o with { TopK = 9 }, MoeStatus.OutOfRange, "options.TopK");
        yield return Case(o => o with { Hidden = 100 }, MoeStatus.Misaligned, "options.Hidden");
        yield return Case(o => o with { Intermediate = 600_000 }, MoeStatus.OutOfRange, "2 * options.Intermediate");
        yield return Case(o => o with { Routing = (MoeRoutingMode)7 }, MoeStatus.InvalidArgument, "options.Routing");
        yield return Case(o => o with { Activation = 0 }, MoeStatus.InvalidArgument, "options.Activation");
        yield return Case(o => o with { InputDType = DType.Float8E4M3 }, MoeStatus.InvalidDtype, "options.InputDType");
        yield return Case(o => o with { LogitsDType = (DType)9 }, MoeStatus.InvalidDtype, "options.LogitsDType");
        yield return Case(o => o with { OutputDType = 0 }, MoeStatus.InvalidDtype, "options.OutputDType");
        yield return Case(o => o with { MaxTokens = -1 }, MoeStatus.OutOfRange, "options.MaxTokens");
        yield return Case(o => o with { Strategy = (GemmStrategy)42 }, MoeStatus.InvalidStrategy, "options.Strategy");
    }

    [TestCaseSource(nameof(OptionRules))]
    public void CreateRule_NamesTheOption_AndLeavesNothingAllocated(Func<MoeLayerOptions, MoeLayerOptions> edit, MoeStatus status, string property)
    {
        using var fixture = new LayerFixture();
        MoeLayerOptions options = edit(LayerFixture.Options);
        long allocations = fixture.Context.AllocationCount;
        var thrown = Assert.Throws<MoeCutlassArgumentException>(() =>
            fixture.Context.CreateMoeLayer(options, fixture.Routed.W13, fixture.Routed.W13Scales, fixture.Routed.W2, fixture.Routed.W2Scales))!;
        TestContext.Out.WriteLine(thrown.Message);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(thrown.Status, Is.EqualTo(status));
            Assert.That(thrown.ParamName, Is.EqualTo("options"));
            Assert.That(thrown.Message, Does.StartWith(property).And.Not.Contain("desc->"));
            Assert.That(fixture.Context.AllocationCount, Is.EqualTo(allocations));
        }

        if (options.LocalExperts > 0 && options.Hidden > 0 && options.Intermediate is > 0 and < 4096)
        {
            // The host path reports the same option before quantizing anything, and frees what it allocated.
            var host = Assert.Throws<MoeCutlassArgumentException>(() =>
                fixture.Context.CreateMoeLayerFromHost(options, new float[Math.Max(0, options.W13Elements)], new float[Math.Max(0, options.W2Elements)]))!;
            Assert.That(host.Status, Is.EqualTo(status));
            Assert.That(host.ParamName, Is.EqualTo("options"));
            Assert.That(fixture.Context.AllocationCount, Is.EqualTo(allocations));
        }
    }

    [Test]
    public void CreateRules_ForWeightBuffers_NameTheBuffer()
    {
        using var fixture = new LayerFixture();
        using var other = MoeContext.CreateCpu(threads: 1);
        var o = LayerFixture.Options;
        var l = fixture.Routed;
        using var shortW13 = fixture.Context.Allocate<byte>(o.W13Elements - 1);
        using var foreignW2 = other.Allocate<byte>(o.W2Elements);
        long allocations = fixture.Context.AllocationCount;
        using (Assert.EnterMultipleScope())
        {
            AssertRejected(() => fixture.Context.CreateMoeLayer(o, shortW13, l.W13Scales, l.W2, l.W2Scales), "w13", MoeStatus.BufferTooSmall);
            AssertRejected(() => fixture.Context.CreateMoeLayer(o, l.W13, l.W13Scales, l.W2, l.W2), "w2Scales", MoeStatus.InvalidDtype);
            AssertRejected(() => fixture.Context.CreateMoeLayer(o, l.W13, l.W13, l.W2, l.W2Scales), "w13Scales", MoeStatus.InvalidDtype);
            AssertRejected(() => fixture.Context.CreateMoeLayer(o, l.W13, l.W13Scales, foreignW2, l.W2Scales), "w2", MoeStatus.InvalidArgument);
            AssertRejected(() => fixture.Context.CreateMoeLayer(o with { TotalExperts = 9, LocalExperts = 9 }, l.W13, l.W13Scales, l.W2, l.W2Scales),
                "w13", MoeStatus.BufferTooSmall);
            AssertRejected(() => fixture.Context.CreateMoeLayerFromHost(o, new float[o.W13Elements], new float[o.W2Elements + 1]), "w2",
                MoeStatus.InvalidArgument);
            AssertRejected(() => fixture.Context.CreateMoeLayerFromHost(o, new float[3], new float[o.W2Elements]), "w13", MoeStatus.InvalidArgument);
            Assert.That(() => fixture.Context.CreateMoeLayer(o, null!, l.W13Scales, l.W2, l.W2Scales),
                Throws.ArgumentNullException.With.Property("ParamName").EqualTo("w13"));
            Assert.That(fixture.Context.AllocationCount, Is.EqualTo(allocations), "a rejected create left allocations behind");
        }
    }

    // ---- lifetime ------------------------------------------------------------------------------------------------

    [Test]
    public void Dispose_IsIdempotent_AndUseAfterDisposeThrowsObjectDisposed()
    {
        using var fixture = new LayerFixture();
        var layer = fixture.Routed;
        layer.Dispose();
        layer.Dispose();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(layer.IsDisposed, Is.True);
            Assert.That(() => layer.Forward(LayerFixture.Tokens, fixture.Hidden, fixture.Logits, fixture.Output), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(() => layer.Forward(0, fixture.Hidden, fixture.Logits, fixture.Output), Throws.TypeOf<ObjectDisposedException>());
            Assert.That(layer.W13.IsDisposed, Is.True, "a host-created layer disposes the weights it owns");
            Assert.That(fixture.OutputUntouched(), Is.True);
        }

        fixture.Hidden.Dispose();
        Assert.That(() => fixture.Precomputed.ForwardPrecomputed(LayerFixture.Tokens, fixture.Hidden, fixture.Ids, fixture.Weights, fixture.Output),
            Throws.TypeOf<ObjectDisposedException>());
    }

    [Test]
    public void WeightBuffers_DisposedByTheCaller_StayAllocatedUntilTheLayerIsDisposed()
    {
        using var fixture = new LayerFixture();
        var source = fixture.Routed;
        var o = LayerFixture.Options;
        var w13 = fixture.Context.Allocate<byte>(o.W13Elements);
        var s13 = fixture.Context.Allocate<float>(o.W13ScaleElements);
        var w2 = fixture.Context.Allocate<byte>(o.W2Elements);
        var s2 = fixture.Context.Allocate<float>(o.W2ScaleElements);
        w13.CopyFrom(source.W13);
        s13.CopyFrom(source.W13Scales);
        w2.CopyFrom(source.W2);
        s2.CopyFrom(source.W2Scales);
        long before = fixture.Context.AllocationCount;
        var layer = fixture.Context.CreateMoeLayer(o, w13, s13, w2, s2);
        long withLayer = fixture.Context.AllocationCount;
        w13.Dispose();
        s13.Dispose();
        w2.Dispose();
        s2.Dispose();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(w13.IsDisposed, Is.True);
            Assert.That(fixture.Context.AllocationCount, Is.EqualTo(withLayer), "the layer's references keep the weights allocated");
        }

        layer.Forward(LayerFixture.Tokens, fixture.Hidden, fixture.Logits, fixture.Output);
        ushort[] viaCopy = ReadBits(fixture.Output);
        fixture.Output.Fill(Canary);
        source.Forward(LayerFixture.Tokens, fixture.Hidden, fixture.Logits, fixture.Output);
        Assert.That(viaCopy, Is.EqualTo(ReadBits(fixture.Output)));

        layer.Dispose();
        Assert.That(fixture.Context.AllocationCount, Is.LessThanOrEqualTo(before - 4), "the weights and the workspace are freed with the layer");
    }

    [Test]
    public void HostCreatedLayer_FreesItsWeightsAndWorkspace_OnDispose()
    {
        using var context = MoeContext.CreateCpu(threads: 1);
        long before = context.AllocationCount, bytes = context.AllocatedBytes;
        var options = LayerFixture.Options;
        var layer = context.CreateMoeLayerFromHost(options, new float[options.W13Elements], new float[options.W2Elements]);
        Assert.That(context.AllocatedBytes - bytes, Is.GreaterThanOrEqualTo(options.W13Elements + options.W2Elements));
        layer.Dispose();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(context.AllocationCount, Is.EqualTo(before));
            Assert.That(context.AllocatedBytes, Is.EqualTo(bytes));
        }
    }

    [Test]
    public void DisposingTheContextFirst_KeepsTheLayerUsable_UntilItIsDisposed()
    {
        // A layer is a child of its context like a plan: the context's Dispose marks the context disposed, the layer
        // keeps the native context alive and works until it is disposed itself (see MoeContext's remarks).
        var fixture = new LayerFixture();
        fixture.Context.Dispose();
        using (Assert.EnterMultipleScope())
        {
            Assert.That(fixture.Context.IsDisposed, Is.True);
            Assert.That(fixture.Routed.IsDisposed, Is.False);
            Assert.That(() => fixture.Context.CreateMoeLayerFromHost(LayerFixture.Options, new float[1], new float[1]),
                Throws.TypeOf<ObjectDisposedException>());
        }

        fixture.Routed.Forward(LayerFixture.Tokens, fixture.Hidden, fixture.Logits, fixture.Output);
        Assert.That(fixture.OutputUntouched(), Is.False);
        fixture.Dispose(); // every child: the native context goes with the last one
        Assert.That(fixture.Routed.IsDisposed, Is.True);
    }

    // ---- info, logging, options ----------------------------------------------------------------------------------

    [Test]
    public void Info_ReportsWorkspaceAndKernels_AndCreationIsLoggedAtInformation()
    {
        var provider = new CapturingLoggerProvider();
        var options = new MoeLayerOptions(16, 4, 256, 128, 64) { FirstExpert = 8, LocalExperts = 8, Strategy = GemmStrategy.Single };
        using (var factory = LoggerFactory.Create(builder => builder.AddProvider(provider).SetMinimumLevel(LogLevel.Trace)))
        using (var context = MoeContext.CreateCpu(threads: 1, loggerFactory: factory))
        using (var layer = context.CreateMoeLayerFromHost(options, new float[options.W13Elements], new float[options.W2Elements]))
        {
            using (Assert.EnterMultipleScope())
            {
                Assert.That(layer.Options, Is.SameAs(options));
                Assert.That(layer.Context, Is.SameAs(context));
                // At least GEMM1's FP8 A and bf16 D for max tokens * top-k = 256 rows.
                Assert.That(layer.WorkspaceBytes, Is.GreaterThanOrEqualTo(256L * 256 + 256L * 256 * 2));
                Assert.That(layer.Gemm1Kernels, Is.Not.Empty);
                Assert.That(layer.Gemm2Kernels, Is.Not.Empty);
                Assert.That(layer.Gemm1Kernels, Is.SubsetOf(MoeCutlassLibrary.KernelConfigurations.Select(c => c.Name)));
                Assert.That(layer.ToString(), Does.Contain("experts 8..15 of 16").And.Contain(layer.Gemm1KernelList));
            }
        }

        var created = provider.Entries.Single(e => e.EventId.Id == MoeCutlassLogEvents.MoeLayerCreated);
        var destroyed = provider.Entries.Single(e => e.EventId.Id == MoeCutlassLogEvents.MoeLayerDestroyed);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(created.Category, Is.EqualTo("MoeCutlass.MoeLayer"));
            Assert.That(created.Level, Is.EqualTo(LogLevel.Information));
            Assert.That(created.State["Strategy"], Is.EqualTo(GemmStrategy.Single));
            Assert.That(created.State["Hidden"], Is.EqualTo(256));
            Assert.That(created.State["FirstExpert"], Is.EqualTo(8));
            Assert.That((string)created.State["Gemm1Kernels"]!, Is.Not.Empty);
            Assert.That((long)created.State["WorkspaceBytes"]!, Is.GreaterThan(0));
            Assert.That(created.Message, Does.Contain("GEMM2 kernels ["));
            Assert.That(destroyed.Level, Is.EqualTo(LogLevel.Debug));
        }
    }

    [Test]
    public void Options_Defaults_ElementCounts_BytesAndFlops()
    {
        // DeepSeek-V3's routed experts: 256 experts, top-8, H = 7168, I = 2048.
        var o = new MoeLayerOptions(256, 8, 7168, 2048, 4096);
        var slice = o with { FirstExpert = 64, LocalExperts = 32 };
        using (Assert.EnterMultipleScope())
        {
            Assert.That(o.FirstExpert, Is.Zero);
            Assert.That(o.LocalExperts, Is.EqualTo(256));
            Assert.That((o with { FirstExpert = 192 }).LocalExperts, Is.EqualTo(64));
            Assert.That(o.Routing, Is.EqualTo(MoeRoutingMode.SoftmaxTopK));
            Assert.That(o.Activation, Is.EqualTo(MoeActivation.SiluAndMul));
            Assert.That(o.NormalizeRoutingWeights, Is.False);
            Assert.That((o.InputDType, o.LogitsDType, o.OutputDType, o.Strategy),
                Is.EqualTo((DType.BFloat16, DType.Float32, DType.BFloat16, GemmStrategy.Auto)));
            Assert.That(o.MaxRows, Is.EqualTo(4096L * 8));
            Assert.That(slice.W13Elements, Is.EqualTo(32L * 4096 * 7168));
            Assert.That(slice.W13ScaleElements, Is.EqualTo(32L * 32 * 56));
            Assert.That(slice.W2Elements, Is.EqualTo(32L * 7168 * 2048));
            Assert.That(slice.W2ScaleElements, Is.EqualTo(32L * 56 * 16));
            Assert.That(o.HiddenElements(3), Is.EqualTo(3L * 7168));
            Assert.That(o.OutputElements(3), Is.EqualTo(3L * 7168));
            Assert.That(o.LogitElements(3), Is.EqualTo(3L * 256));
            Assert.That(o.TopKElements(3), Is.EqualTo(24));
            Assert.That(o.ExpertWeightBytes, Is.EqualTo(3L * 2048 * 7168 + 4L * (32 * 56 + 56 * 16)));
            Assert.That(o.WeightStreamBytes(10), Is.EqualTo(10 * o.ExpertWeightBytes));
            Assert.That(o.Flops(8), Is.EqualTo(2.0 * 8 * 4096 * 7168 + 2.0 * 8 * 7168 * 2048));
            Assert.That(o.ExpectedActiveExperts(1), Is.EqualTo(8).Within(1e-9));
            Assert.That(o.ExpectedActiveExperts(100_000), Is.EqualTo(256).Within(1e-9));
            Assert.That(o.Gemm1Options, Is.EqualTo(new GroupedGemmOptions(256, 4096, 7168, DType.BFloat16, GemmStrategy.Auto, 32768)));
            Assert.That(o.Gemm2Options.N, Is.EqualTo(7168));
            Assert.That((int)DeviceErrorFlags.TopKIdOutOfRange, Is.EqualTo(8));
            Assert.That((int)DeviceErrorFlags.TopKIdDuplicate, Is.EqualTo(16));
            Assert.That((int)MoeRoutingMode.Precomputed, Is.EqualTo(2));
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    private static void AssertRejected(Func<object> call, string param, MoeStatus status)
    {
        var thrown = Assert.Throws<MoeCutlassArgumentException>(() => call())!;
        Assert.That((thrown.ParamName, thrown.Status), Is.EqualTo((param, status)), thrown.Message);
    }

    internal static DeviceBuffer AllocateOutput(MoeContext context, MoeLayerOptions options, int tokens)
    {
        long n = options.OutputElements(tokens);
        DeviceBuffer buffer = options.OutputDType switch
        {
            DType.Float16 => context.Allocate<Half>(n),
            DType.Float32 => context.Allocate<float>(n),
            _ => context.Allocate<BFloat16>(n),
        };
        return buffer;
    }

    internal static double[] ReadDoubles(DeviceBuffer buffer) => buffer switch
    {
        DeviceBuffer<BFloat16> b => [.. b.ToArray().Select(v => (double)v)],
        DeviceBuffer<Half> h => [.. h.ToArray().Select(v => (double)v)],
        DeviceBuffer<float> f => [.. f.ToArray().Select(v => (double)v)],
        _ => throw new ArgumentException(buffer.TypeDisplayName),
    };

    internal static ushort[] ReadBits(DeviceBuffer buffer) => buffer switch
    {
        DeviceBuffer<BFloat16> b => [.. b.ToArray().Select(v => v.Bits)],
        DeviceBuffer<Half> h => [.. h.ToArray().Select(BitConverter.HalfToUInt16Bits)],
        _ => throw new ArgumentException(buffer.TypeDisplayName),
    };

    internal static double RelativeRms(double[] got, double[] reference)
    {
        double error2 = 0, reference2 = 0;
        for (int i = 0; i < got.Length; i++)
        {
            error2 += (got[i] - reference[i]) * (got[i] - reference[i]);
            reference2 += reference[i] * reference[i];
        }

        return reference2 == 0 ? Math.Sqrt(error2) : Math.Sqrt(error2 / reference2);
    }

    /// <summary>
    /// The layer in double precision from its own FP8 weights (read back and dequantized), with the activations quantized
    /// by the library's 1x128 quantizer where the layer quantizes them (its input, and h after SiLU-and-mul) and GEMM1's
    /// output rounded to bf16 as the layer stores it. <paramref name="swapGateUp"/> computes silu(up) * gate instead.
    /// </summary>
    internal static double[] Reference(MoeContext cpu, MoeLayer layer, float[] hidden, int tokens, int[] ids, float[] weights, bool swapGateUp)
    {
        MoeLayerOptions o = layer.Options;
        int h = o.Hidden, inter = o.Intermediate, k = o.TopK;
        double[] w13 = Dequantize(layer.W13.ToArray(), layer.W13Scales.ToArray(), o.LocalExperts, 2 * inter, h);
        double[] w2 = Dequantize(layer.W2.ToArray(), layer.W2Scales.ToArray(), o.LocalExperts, h, inter);
        double[] x = QuantizeActivations(cpu, hidden, tokens, h);

        var slots = new List<(int Token, int Expert, float Weight)>();
        var activations = new List<float>();
        for (int t = 0; t < tokens; t++)
        {
            for (int j = 0; j < k; j++)
            {
                int e = ids[t * k + j] - o.FirstExpert;
                if (e < 0 || e >= o.LocalExperts)
                {
                    continue;
                }

                var z = new double[2 * inter];
                for (int n = 0; n < 2 * inter; n++)
                {
                    double sum = 0;
                    for (int c = 0; c < h; c++)
                    {
                        sum += x[t * h + c] * w13[((long)e * 2 * inter + n) * h + c];
                    }

                    z[n] = (float)(BFloat16)(float)sum;
                }

                for (int i = 0; i < inter; i++)
                {
                    double gate = swapGateUp ? z[inter + i] : z[i], up = swapGateUp ? z[i] : z[inter + i];
                    activations.Add((float)(gate / (1 + Math.Exp(-gate)) * up));
                }

                slots.Add((t, e, weights[t * k + j]));
            }
        }

        double[] hq = QuantizeActivations(cpu, [.. activations], slots.Count, inter);
        var output = new double[(long)tokens * h];
        for (int r = 0; r < slots.Count; r++)
        {
            var (t, e, weight) = slots[r];
            for (int n = 0; n < h; n++)
            {
                double sum = 0;
                for (int i = 0; i < inter; i++)
                {
                    sum += hq[(long)r * inter + i] * w2[((long)e * h + n) * inter + i];
                }

                output[(long)t * h + n] += weight * (float)(BFloat16)(float)sum;
            }
        }

        return output;
    }

    private static double[] Dequantize(byte[] codes, float[] scales, int experts, int n, int k)
    {
        int nb = MoeContext.ScaleBlocks(n), kb = MoeContext.ScaleBlocks(k);
        var values = new double[codes.Length];
        for (int e = 0; e < experts; e++)
        {
            for (int r = 0; r < n; r++)
            {
                for (int c = 0; c < k; c++)
                {
                    long i = ((long)e * n + r) * k + c;
                    values[i] = Numerics.DecodeE4M3(codes[i]) * scales[((long)e * nb + r / 128) * kb + c / 128];
                }
            }
        }

        return values;
    }

    private static double[] QuantizeActivations(MoeContext cpu, float[] values, int rows, int cols)
    {
        if (rows == 0)
        {
            return [];
        }

        using var input = cpu.Upload<float>(values);
        using var codes = cpu.Allocate<byte>((long)rows * cols);
        using var scales = cpu.Allocate<float>((long)rows * MoeContext.ScaleBlocks(cols));
        cpu.QuantizeActivations(input, rows, cols, codes, scales);
        byte[] c = codes.ToArray();
        float[] s = scales.ToArray();
        int blocks = MoeContext.ScaleBlocks(cols);
        var result = new double[c.Length];
        for (int i = 0; i < c.Length; i++)
        {
            result[i] = Numerics.DecodeE4M3(c[i]) * s[(i / cols) * blocks + (i % cols) / 128];
        }

        return result;
    }
}

/// <summary>Random weights, hidden states and router logits for a layer, held on the host in float.</summary>
internal sealed class LayerProblem
{
    private LayerProblem(MoeLayerOptions options, int tokens, float[] w13, float[] w2, float[] hidden, float[] logits)
    {
        Options = options;
        Tokens = tokens;
        W13 = w13;
        W2 = w2;
        Hidden = hidden;
        Logits = logits;
    }

    public MoeLayerOptions Options { get; }

    public int Tokens { get; }

    public float[] W13 { get; }

    public float[] W2 { get; }

    /// <summary>[tokens, H], already rounded to the input dtype.</summary>
    public float[] Hidden { get; }

    /// <summary>[tokens, TotalExperts], fp32 (rounded to the logits dtype when it is 16-bit).</summary>
    public float[] Logits { get; }

    public static LayerProblem Create(Random random, MoeLayerOptions o, int tokens)
    {
        // Weights ~ N(0, 1/sqrt(K)) with a per-expert factor (1 .. 2) so the 128x128 block scales differ; hidden states
        // uniform in (-1, 1); logits ~ N(0, 2).
        float[] Weights(long perExpert, int k) =>
            [.. Enumerable.Range(0, (int)(perExpert * o.LocalExperts)).Select(i =>
                (float)(Numerics.Gaussian(random) / Math.Sqrt(k) * (1 + (double)(i / perExpert) / o.LocalExperts)))];
        float[] w13 = Weights(o.W13Elements / o.LocalExperts, o.Hidden);
        float[] w2 = Weights(o.W2Elements / o.LocalExperts, o.Intermediate);
        float[] hidden = [.. Enumerable.Range(0, tokens * o.Hidden).Select(_ => RoundTo(o.InputDType, (float)(random.NextDouble() * 2 - 1)))];
        float[] logits = [.. Enumerable.Range(0, tokens * o.TotalExperts).Select(_ => RoundTo(o.LogitsDType, (float)(2 * Numerics.Gaussian(random))))];
        return new LayerProblem(o, tokens, w13, w2, hidden, logits);
    }

    public static float RoundTo(DType dtype, float value) => dtype switch
    {
        DType.BFloat16 => (float)(BFloat16)value,
        DType.Float16 => (float)(Half)value,
        _ => value,
    };

    /// <summary>The host router's choices (what the layer's router computes).</summary>
    public (int[] Ids, float[] Weights) Route()
    {
        float[] logits = [.. Logits.Select(v => RoundTo(Options.LogitsDType, v))];
        var ids = new int[Tokens * Options.TopK];
        var weights = new float[ids.Length];
        MoeRouting.SoftmaxTopK(logits, Options.TotalExperts, Options.TopK, Options.NormalizeRoutingWeights, ids, weights);
        return (ids, weights);
    }

    public DeviceBuffer UploadHidden(MoeContext context) => Upload(context, Options.InputDType, Hidden);

    public DeviceBuffer UploadLogits(MoeContext context) => Upload(context, Options.LogitsDType, Logits);

    private static DeviceBuffer Upload(MoeContext context, DType dtype, float[] values) => dtype switch
    {
        DType.BFloat16 => context.Upload<BFloat16>(values.Select(v => (BFloat16)v).ToArray()),
        DType.Float16 => context.Upload<Half>(values.Select(v => (Half)v).ToArray()),
        _ => context.Upload<float>(values),
    };
}

/// <summary>A CPU context with a routing and a precomputed layer over the same small weights, and valid operands.</summary>
public sealed class LayerFixture : IDisposable
{
    public const int Tokens = 4;
    public const int MaxTokens = 6;
    internal static readonly MoeLayerOptions Options = new(8, 2, 128, 128, MaxTokens);
    private static readonly BFloat16 Canary = BFloat16.FromBits(0x7E57);

    public LayerFixture()
    {
        Context = MoeContext.CreateCpu(threads: 1);
        Foreign = MoeContext.CreateCpu(threads: 1);
        var problem = LayerProblem.Create(new Random(1234), Options, Tokens);
        Routed = Context.CreateMoeLayerFromHost(Options, problem.W13, problem.W2);
        Precomputed = Context.CreateMoeLayer(Options with { Routing = MoeRoutingMode.Precomputed }, Routed.W13, Routed.W13Scales, Routed.W2,
            Routed.W2Scales);
        Hidden = (DeviceBuffer<BFloat16>)problem.UploadHidden(Context);
        Logits = (DeviceBuffer<float>)problem.UploadLogits(Context);
        Ids = Context.Upload<int>([0, 1, 2, 3, 4, 5, 6, 7]);
        BadIds = Context.Upload<int>([0, 1, 2, 3, 4, 8, 6, 7]);
        RepeatedIds = Context.Upload<int>([0, 1, 2, 3, 4, 5, 7, 7]);
        Weights = Context.Upload<float>([.. Enumerable.Repeat(0.5f, 8)]);
        SmallWeights = Context.Upload<float>([0.5f, 0.5f]);
        Small16 = Context.Allocate<BFloat16>(Options.Hidden * Tokens - 1);
        Output = Context.Allocate<BFloat16>(Options.OutputElements(MaxTokens));
        Output.Fill(Canary);
        HalfOutput = Context.Allocate<Half>(Options.OutputElements(MaxTokens));
        ForeignHidden = Foreign.Allocate<BFloat16>(Options.HiddenElements(MaxTokens));
        ForeignStream = Foreign.CreateStream();
    }

    public MoeContext Context { get; }

    public MoeContext Foreign { get; }

    public MoeLayer Routed { get; }

    public MoeLayer Precomputed { get; }

    public DeviceBuffer<BFloat16> Hidden { get; }

    public DeviceBuffer<float> Logits { get; }

    public DeviceBuffer<int> Ids { get; }

    public DeviceBuffer<int> BadIds { get; }

    public DeviceBuffer<int> RepeatedIds { get; }

    public DeviceBuffer<float> Weights { get; }

    public DeviceBuffer<float> SmallWeights { get; }

    public DeviceBuffer<BFloat16> Small16 { get; }

    public DeviceBuffer<BFloat16> Output { get; }

    public DeviceBuffer<Half> HalfOutput { get; }

    public DeviceBuffer<BFloat16> ForeignHidden { get; }

    public MoeStream ForeignStream { get; }

    /// <summary>Whether the output still holds only the canary pattern.</summary>
    public bool OutputUntouched() => Output.ToArray().All(v => v.Bits == Canary.Bits);

    public void Dispose()
    {
        Routed.Dispose();
        Precomputed.Dispose();
        foreach (var buffer in new DeviceBuffer[] { Hidden, Logits, Ids, BadIds, RepeatedIds, Weights, SmallWeights, Small16, Output, HalfOutput, ForeignHidden })
        {
            buffer.Dispose();
        }

        ForeignStream.Dispose();
        Context.Dispose();
        Foreign.Dispose();
    }
}
