using MoeCutlass;

// A Mixture-of-Experts layer: 8 experts with hidden size H = 256 and intermediate size I = 128; each token goes to its
// top 2 experts by router logit.
const int experts = 8, hidden = 256, inter = 128, tokens = 4;
var random = new Random(13);
float Next(double scale) => (float)((random.NextDouble() * 2 - 1) * scale);
float[] w13 = [.. Enumerable.Range(0, experts * 2 * inter * hidden).Select(_ => Next(0.1))]; // [E, 2I, H]: gate rows, then up rows
float[] w2 = [.. Enumerable.Range(0, experts * hidden * inter).Select(_ => Next(0.1))];       // [E, H, I]
BFloat16[] x = [.. Enumerable.Range(0, tokens * hidden).Select(_ => (BFloat16)Next(1))];     // hidden states [T, H]
float[] logits = [.. Enumerable.Range(0, tokens * experts).Select(_ => Next(2))];            // router logits [T, E]

using MoeContext context = MoeContext.CreateCpu(); // MoeContext.CreateCuda(0) on an H100/H200

// Quantizes the weights to FP8 (128x128 block scales) into buffers the layer owns; the workspace fits MaxTokens.
var options = new MoeLayerOptions(TotalExperts: experts, TopK: 2, Hidden: hidden, Intermediate: inter, MaxTokens: 64)
{
    NormalizeRoutingWeights = true, // softmax over the 2 chosen logits
};
using MoeLayer layer = context.CreateMoeLayerFromHost(options, w13, w2);

// One forward call: route, gather + quantize, GEMM1, SiLU-and-mul, GEMM2, weighted combine, all on the device.
using DeviceBuffer<BFloat16> input = context.Upload<BFloat16>(x);
using DeviceBuffer<float> routerLogits = context.Upload<float>(logits);
using DeviceBuffer<BFloat16> output = context.Allocate<BFloat16>(options.OutputElements(tokens));
layer.Forward(tokens, input, routerLogits, output);

BFloat16[] y = output.ToArray(); // waits for the call, then copies [tokens, hidden] back
Console.WriteLine($"y[0, 0..3] = {y[0]}, {y[1]}, {y[2]}, {y[3]}");
