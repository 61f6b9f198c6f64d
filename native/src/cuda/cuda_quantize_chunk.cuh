// The 8-element chunk of the 1x128 activation quantizer, shared by the quantization kernels (cuda_quantize.cu)
// and the MoE layer's fused gather/activation quantizers (moe_layer/), so every FP8 activation the library makes on
// the device rounds through the same code as cpu/quantize.cpp. Included by .cu files only.
//
// A 128-wide scale block is 16 chunks of 8 consecutive elements: a half-warp owns one block, each lane one chunk;
// half_warp_amax reduces the block's amax with xor-shuffles that stay inside the half-warp.
#pragma once

#include <cstdint>

#include "cuda/cuda_codecs.cuh"
#include "moecutlass/moecutlass.h"

namespace moecutlass {
namespace cuda {

constexpr int kChunkElements = 8;
constexpr int kChunksPerBlockRow = MC_SCALE_BLOCK / kChunkElements;  // 16
constexpr unsigned kFullWarp = 0xFFFFFFFFu;

// 8 consecutive input elements as raw 32-bit words (fp32: one element per word; bf16/fp16: two, little-endian).
template <int32_t Dtype>
struct Chunk {
  using Codec = DeviceCodec<Dtype>;
  using Bits = typename Codec::Bits;
  static constexpr int kWords = static_cast<int>(sizeof(Bits)) * kChunkElements / 4;
  static_assert(kWords == 4 || kWords == 8, "fp32, bf16 or fp16 input");

  uint32_t word[kWords];

  __device__ __forceinline__ void clear() {
#pragma unroll
    for (int i = 0; i < kWords; ++i) word[i] = 0u;
  }

  // `source` is 16-byte aligned: the tensor base is (MC_POINTER_ALIGNMENT) and every chunk starts at an element
  // offset that is a multiple of 8 (of 16 within a row), so its byte offset is a multiple of 16.
  __device__ __forceinline__ void load(const Bits* source) {
    const uint4* vectors = reinterpret_cast<const uint4*>(source);
#pragma unroll
    for (int i = 0; i < kWords / 4; ++i) {
      const uint4 v = vectors[i];
      word[4 * i + 0] = v.x;
      word[4 * i + 1] = v.y;
      word[4 * i + 2] = v.z;
      word[4 * i + 3] = v.w;
    }
  }

  __device__ __forceinline__ float value(int j) const {
    if constexpr (sizeof(Bits) == 4) {
      return Codec::decode(word[j]);
    } else {
      return Codec::decode(static_cast<Bits>(word[j >> 1] >> ((j & 1) * 16)));
    }
  }

  // max |x| with fmaxf semantics (a NaN element is ignored), starting from `running`.
  __device__ __forceinline__ float amax(float running) const {
#pragma unroll
    for (int j = 0; j < kChunkElements; ++j) running = fmaxf(running, fabsf(value(j)));
    return running;
  }

  // The 8 e4m3 codes, element j in byte j (little-endian), for one 8-byte store.
  __device__ __forceinline__ uint2 quantize(float scale) const {
    const BlockDivisor divisor(scale);
    float q[kChunkElements];
#pragma unroll
    for (int j = 0; j < kChunkElements; ++j) q[j] = value(j);
    divisor.divide_all(q);
    return e4m3_codes8(q);
  }
};

// 8 fp32 values computed in registers (the activation stage's SiLU-and-mul results): the same amax and element
// rule as Chunk, for values that never existed in memory.
struct FloatChunk {
  float v[kChunkElements];

  __device__ __forceinline__ float amax(float running) const {
#pragma unroll
    for (int j = 0; j < kChunkElements; ++j) running = fmaxf(running, fabsf(v[j]));
    return running;
  }

  // One reciprocal-or-IEEE choice for the chunk (BlockDivisor::divide_all), as Chunk::quantize.
  __device__ __forceinline__ uint2 quantize(float scale) const {
    const BlockDivisor divisor(scale);
    float q[kChunkElements];
#pragma unroll
    for (int j = 0; j < kChunkElements; ++j) q[j] = v[j];
    divisor.divide_all(q);
    return e4m3_codes8(q);
  }
};

// The (row, block) of a half-warp's 1x128 task t = row * blocks_per_row + block as the task advances by a fixed
// grid stride: one division when the cursor starts, then an add and a compare per step (a 64-bit division is a
// long instruction sequence, and ncu found the quantizers issue-bound).
struct TaskCursor {
  int64_t row;
  int64_t block;
  int64_t row_step;
  int64_t block_step;
  int64_t blocks_per_row;

  __device__ __forceinline__ TaskCursor(int64_t first_task, int64_t task_stride, int64_t blocks)
      : row(first_task / blocks),
        block(first_task - (first_task / blocks) * blocks),
        row_step(task_stride / blocks),
        block_step(task_stride - (task_stride / blocks) * blocks),
        blocks_per_row(blocks) {}

  __device__ __forceinline__ void advance() {
    row += row_step;
    block += block_step;
    if (block >= blocks_per_row) {
      block -= blocks_per_row;
      ++row;
    }
  }
};

// The amax of a half-warp's 128-wide block from each lane's chunk amax; every lane of the warp must call it.
__device__ __forceinline__ float half_warp_amax(float amax) {
#pragma unroll
  for (int mask = kChunksPerBlockRow / 2; mask > 0; mask >>= 1) {
    amax = fmaxf(amax, __shfl_xor_sync(kFullWarp, amax, mask));  // xor < 16 stays inside the half-warp
  }
  return amax;
}

}  // namespace cuda
}  // namespace moecutlass
