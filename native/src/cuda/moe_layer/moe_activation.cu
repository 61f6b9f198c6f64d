// SiLU-and-mul fused with the 1x128 FP8 requantization (cpu/moe_silu_and_mul.hpp) on GEMM1's bf16 output.
//
// Same shape as the activation quantizer: a half-warp per 1x128 block of the I activations, each lane 8 columns:
// one 16-byte load of gate (columns c .. c+7) and one of up (columns I + c ..), h in registers, then the shared
// amax / scale / element rule (cuda_quantize_chunk.cuh). h = (g / (1 + expf(-g))) * u with explicitly rounded
// fp32 operations (__fadd_rn, __fdiv_rn, __fmul_rn) so the compiler cannot contract or reassociate, exactly the
// reference's sequence; expf is the accurate libdevice expf (not __expf). The only difference from the host is
// expf itself: CUDA's is within 2 ulp of exp, glibc's is (almost always) correctly rounded, so an occasional h
// differs in its last bit, which can move an e4m3 code (or a block's scale) by one step.
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

__device__ __forceinline__ float silu_and_mul_device(float gate, float up) {
  const float silu = __fdiv_rn(gate, __fadd_rn(1.0f, expf(-gate)));
  return __fmul_rn(silu, up);
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
