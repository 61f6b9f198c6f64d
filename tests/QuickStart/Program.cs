using MoeCutlass;

// Two experts with N = 256 output columns and K = 128; rows 0-2 go to expert 0, row 3 to expert 1.
const int experts = 2, n = 256, k = 128, rows = 4;
float[] x = [.. Enumerable.Range(0, rows * k).Select(i => (float)(i % 3 - 1))];
float[] w = [.. Enumerable.Range(0, experts * n * k).Select(i => (i % 5 - 2) * 0.5f)];

using MoeContext context = MoeContext.CreateCpu(); // MoeContext.CreateCuda(0) on an H100/H200

// FP8 e4m3 operands with fp32 block scales: 1x128 for the activations A, 128x128 for the weights B.
using DeviceBuffer<float> x32 = context.Upload<float>(x), w32 = context.Upload<float>(w);
using DeviceBuffer<byte> a = context.Allocate<byte>(rows * k), b = context.Allocate<byte>(experts * n * k);
using DeviceBuffer<float> aScales = context.Allocate<float>(rows * MoeContext.ScaleBlocks(k));
using DeviceBuffer<float> bScales = context.Allocate<float>(experts * MoeContext.ScaleBlocks(n) * MoeContext.ScaleBlocks(k));
context.QuantizeActivations(x32, rows, k, a, aScales);
context.QuantizeWeights(w32, experts, n, k, b, bScales);

// Expert e owns rows offsets[e] .. offsets[e+1] of A and D; the offsets stay in device memory.
using DeviceBuffer<int> offsets = context.Upload<int>([0, 3, rows]);
using DeviceBuffer<BFloat16> d = context.Allocate<BFloat16>(rows * n);

// Create a plan once (it owns its workspace), then run it as often as needed.
using GroupedGemmPlan plan = context.CreateGroupedGemmPlan(new(experts, n, k, DType.BFloat16, GemmStrategy.Auto, MaxRows: rows));
plan.Run(rows, a, aScales, b, bScales, offsets, d);

BFloat16[] result = d.ToArray(); // waits for the run, then copies D [rows, n] back
Console.WriteLine($"D[0,1] = {(float)result[1]}, D[3,3] = {(float)result[3 * n + 3]}");
