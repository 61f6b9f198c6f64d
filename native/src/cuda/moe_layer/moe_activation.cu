// SiLU-and-mul fused with the 1x128 FP8 requantization (cpu/moe_silu_and_mul.hpp) on GEMM1's bf16 output.
//
// Same shape as the activation quantizer: a half-warp per 1x128 block of the I activations, each lane 8 columns:
// one 16-byte load of gate (columns c .. c+7) and one of up (columns I + c ..), h in registers, then the shared
// amax / scale / element rule (cuda_quantize_chunk.cuh). h = (g / (1 + expf(-g))) * u as the reference computes it,
// with expf the accurate libdevice expf (not __expf), except the division g / (1 + e): CUDA's expf is already
// within 2 ulp of the host's (almost always correctly rounded) exp, so h cannot be bit-identical to the host's and
// a correctly rounded quotient buys nothing. The quotient is the approximate reciprocal refined by one residual
// step (within 1 ulp, branch-free). With __fdiv_rn every element was its own slow-path branch and convergence
// region, two per element with the quantizer's, and the elements ran one after another: ncu found the kernel
// issue-latency bound at 3.6x its memory floor (508 µs on mixtral-layer-e8-t4096, job 25).
// The quantization of h stays exact (BlockDivisor::divide_all, one choice per chunk): every code is the host
// quantizer's code of the device's h.
//
// The job carries no capacity, so the grid is fixed (a few blocks per SM, from the caller) and grid-strides over
// rows = offsets[local_experts] read on the device.
#include <cstdint>

#include "core/shapes.hpp"
#include "cuda/cuda_quantize_chunk.cuh"
#include "cuda/moe_layer/moe_stage_kernels.hpp"

namespace moecutlass {
namespace cuda {

namespace {

constexpr int kThreads = 256;

// g / d for d = 1 + expf(-g) >= 1 (or NaN): r ~ 1/d from MUFU.RCP, q0 = g * r, then one residual correction,
// within 1 ulp of the IEEE quotient. d = inf (g below about -88.7) is SiLU's limit -0 (the correction would make
// inf * 0 = NaN); d in (2^126, inf) flushes r to 0 and gives 0 against a true value below 1e-36; a NaN g or d
// stays NaN through q0.
__device__ __forceinline__ float sigmoid_product(float gate, float d) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
  const float q0 = __fmul_rn(gate, r);
  const float q = __fmaf_rn(__fmaf_rn(-d, q0, gate), r, q0);
  return d == __int_as_float(0x7F800000) ? copysignf(0.0f, gate) : q;
}

__device__ __forceinline__ float silu_and_mul_device(float gate, float up) {
  return __fmul_rn(sigmoid_product(gate, __fadd_rn(1.0f, expf(-gate))), up);
}

__global__ void __launch_bounds__(kThreads)
    silu_and_mul_quantize_kernel(const uint16_t* __restrict__ gemm1_out, const int32_t* __restrict__ offsets,
                                 int32_t local_experts, int64_t inter, int64_t blocks_per_row,
                                 uint8_t* __restrict__ output, float* __restrict__ scales) {
  const int64_t rows = offsets[local_experts];
  const int64_t tasks = rows * blocks_per_row;
  const unsigned lane = threadIdx.x & 31u;
  const unsigned half_lane = lane & 15u;
  const int64_t first_warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warp_stride = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int64_t column_in_block = static_cast<int64_t>(half_lane) * kChunkElements;
  TaskCursor cursor(first_warp * 2 + static_cast<int64_t>(lane >> 4), warp_stride * 2, blocks_per_row);
  for (int64_t pair = first_warp; pair * 2 < tasks; pair += warp_stride, cursor.advance()) {  // uniform across the warp
    const int64_t task = pair * 2 + static_cast<int64_t>(lane >> 4);
    const int64_t row = cursor.row;
    const int64_t column = cursor.block * MC_SCALE_BLOCK + column_in_block;
    const bool active = task < tasks && column < inter;

    FloatChunk h;
#pragma unroll
    for (int j = 0; j < kChunkElements; ++j) h.v[j] = 0.0f;  // inactive lanes: 0 leaves the amax alone
    if (active) {
      Chunk<MC_DTYPE_BF16> gate;
      Chunk<MC_DTYPE_BF16> up;
      const uint16_t* source = gemm1_out + row * 2 * inter + column;
      gate.load(source);
      up.load(source + inter);  // inter % 16 == 0 keeps this 16-byte aligned
#pragma unroll
      for (int j = 0; j < kChunkElements; ++j) h.v[j] = silu_and_mul_device(gate.value(j), up.value(j));
    }
    const float scale = quantization_scale_device(half_warp_amax(h.amax(0.0f)));
    if (active) *reinterpret_cast<uint2*>(output + row * inter + column) = h.quantize(scale);
    if (task < tasks && half_lane == 0) scales[task] = scale;
  }
}

}  // namespace

cudaError_t launch_moe_activate_quantize(const MoeActivationJob& job, int32_t blocks, cudaStream_t stream) {
  if (job.inter <= 0 || blocks <= 0) return cudaSuccess;
  silu_and_mul_quantize_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const uint16_t*>(job.gemm1_out), job.offsets, job.local_experts, job.inter,
      scale_blocks(job.inter), job.out, job.scales);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace moecutlass
