// A thread block per row (an activation row, or one weight row of one expert): each thread turns 16 codes (one
// 16-byte load) into 16 bf16 (two 16-byte stores), striding over the row. 16 codes never straddle a 128-wide
// scale block (k % 16 == 0, chunks start at multiples of 16), so a chunk has one scale. A block per row keeps the
// row and scale-row arithmetic out of the element loop; the activation kernel's blocks past the device row count
// exit at once, so the grid can be sized from the capacity without a host read of the count.
#include "cuda/cuda_dequantize.hpp"

#include "core/dequantize.hpp"
#include "core/shapes.hpp"

namespace moecutlass {

namespace {

constexpr int kThreads = 128;
constexpr int kChunk = 16;

__device__ __forceinline__ void dequantize_row(const uint8_t* __restrict__ codes, const float* __restrict__ scale_row,
                                               int64_t k, uint16_t* __restrict__ out) {
  for (int64_t c = static_cast<int64_t>(threadIdx.x) * kChunk; c < k; c += int64_t{kThreads} * kChunk) {
    const uint4 packed = *reinterpret_cast<const uint4*>(codes + c);
    const float scale = scale_row[c / MC_SCALE_BLOCK];
    const uint32_t words[4] = {packed.x, packed.y, packed.z, packed.w};
    uint32_t result[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t word = words[i / 2] >> (16 * (i % 2));
      const uint32_t low = dequantize_e4m3_to_bf16(static_cast<uint8_t>(word & 0xFFu), scale);
      const uint32_t high = dequantize_e4m3_to_bf16(static_cast<uint8_t>((word >> 8) & 0xFFu), scale);
      result[i] = low | (high << 16);
    }
    uint4* target = reinterpret_cast<uint4*>(out + c);
    target[0] = make_uint4(result[0], result[1], result[2], result[3]);
    target[1] = make_uint4(result[4], result[5], result[6], result[7]);
  }
}

__global__ void __launch_bounds__(kThreads)
    dequantize_activations_kernel(const uint8_t* __restrict__ codes, const float* __restrict__ scales,
                                  const int32_t* __restrict__ row_count, int64_t k, int64_t k_blocks,
                                  uint16_t* __restrict__ out) {
  const int64_t row = blockIdx.x;
  if (row >= *row_count) return;  // uniform across the block
  dequantize_row(codes + row * k, scales + row * k_blocks, k, out + row * k);
}

__global__ void __launch_bounds__(kThreads)
    dequantize_weights_kernel(const uint8_t* __restrict__ codes, const float* __restrict__ scales, int64_t n,
                              int64_t n_blocks, int64_t k, int64_t k_blocks, uint16_t* __restrict__ out) {
  const int64_t row = blockIdx.x;  // expert * n + weight row
  const int64_t expert = row / n;
  const int64_t within = row - expert * n;
  const float* scale_row = scales + (expert * n_blocks + within / MC_SCALE_BLOCK) * k_blocks;
  dequantize_row(codes + row * k, scale_row, k, out + row * k);
}

// Rows of the experts listed in experts[blockIdx.y] only (the ones a run has rows for); blockIdx.x is the weight row.
__global__ void __launch_bounds__(kThreads)
    dequantize_listed_weights_kernel(const uint8_t* __restrict__ codes, const float* __restrict__ scales,
                                     const int32_t* __restrict__ experts, int64_t n, int64_t n_blocks, int64_t k,
                                     int64_t k_blocks, uint16_t* __restrict__ out) {
  const int64_t expert = experts[blockIdx.y];
  const int64_t within = blockIdx.x;
  const int64_t row = expert * n + within;
  const float* scale_row = scales + (expert * n_blocks + within / MC_SCALE_BLOCK) * k_blocks;
  dequantize_row(codes + row * k, scale_row, k, out + row * k);
}

}  // namespace

cudaError_t launch_dequantize_activations_bf16(const uint8_t* codes, const float* scales, const int32_t* row_count,
                                               int32_t capacity_rows, int32_t k, uint16_t* out, cudaStream_t stream) {
  if (k <= 0 || k % kChunk != 0 || capacity_rows < 0) return cudaErrorInvalidValue;
  if (capacity_rows == 0) return cudaSuccess;
  dequantize_activations_kernel<<<static_cast<unsigned>(capacity_rows), kThreads, 0, stream>>>(
      codes, scales, row_count, k, scale_blocks(k), out);
  return cudaGetLastError();
}

cudaError_t launch_dequantize_weights_bf16(const uint8_t* codes, const float* scales, int32_t experts, int32_t n,
                                           int32_t k, uint16_t* out, cudaStream_t stream) {
  if (k <= 0 || k % kChunk != 0 || n <= 0 || experts < 0) return cudaErrorInvalidValue;
  const int64_t rows = int64_t{experts} * n;
  if (rows == 0) return cudaSuccess;
  if (rows > 0x7FFFFFFF) return cudaErrorInvalidValue;  // one block per row
  dequantize_weights_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(codes, scales, n, scale_blocks(n),
                                                                                   k, scale_blocks(k), out);
  return cudaGetLastError();
}

cudaError_t launch_dequantize_listed_weights_bf16(const uint8_t* codes, const float* scales, const int32_t* experts,
                                                  int32_t listed, int32_t n, int32_t k, uint16_t* out,
                                                  cudaStream_t stream) {
  if (k <= 0 || k % kChunk != 0 || n <= 0 || listed < 0 || listed > 65535) return cudaErrorInvalidValue;
  if (listed == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(listed));
  dequantize_listed_weights_kernel<<<grid, kThreads, 0, stream>>>(codes, scales, experts, n, scale_blocks(n), k,
                                                                  scale_blocks(k), out);
  return cudaGetLastError();
}

}  // namespace moecutlass
