// Gather of each permuted row's token fused with the 1x128 FP8 quantization, bit-identical to
// gather_quantize_rows (cpu/moe_gather_quantize.hpp), which is itself bit-identical to gathering and then running
// the activation quantizer: so this kernel is cuda_quantize.cu's activation kernel with a gathered source row, and
// it quantizes through the same Chunk code (cuda_quantize_chunk.cuh).
//
// A warp per row segment of 8 blocks of 1x128 (a half-warp per block, four blocks per half-warp), 16-byte loads,
// 8-byte stores. The grid is sized for the capacity tokens * top_k rows but capped at a few blocks per SM
// (grid-stride beyond); the actual row count offsets[local_experts] is read on the device, and warps past it exit
// before any setup, so rows past the count are never written.
#include <algorithm>
#include <cstdint>

#include "core/shapes.hpp"
#include "cuda/cuda_quantize_chunk.cuh"
#include "cuda/moe_layer/moe_stage_kernels.hpp"

namespace moecutlass {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
// A warp's task is a row segment of kSegmentBlocks 1x128 blocks: half-warp h owns blocks h, h + 2, h + 4, h + 6,
// so each lane has kChunksPerLane 16-byte loads in flight before it waits (one load per lane per task left each
// warp a single 512-byte dependent chain; ncu: about 1 TB/s, latency-bound).
constexpr int kSegmentBlocks = 8;
constexpr int kChunksPerLane = kSegmentBlocks / 2;

template <int32_t Dtype>
__global__ void __launch_bounds__(kThreads)
    gather_quantize_kernel(const typename DeviceCodec<Dtype>::Bits* __restrict__ hidden,
                           const int32_t* __restrict__ sorted_slots, const int32_t* __restrict__ offsets,
                           int32_t local_experts, int32_t top_k, int64_t cols, int64_t blocks_per_row,
                           int64_t segments_per_row, uint8_t* __restrict__ output, float* __restrict__ scales) {
  const int64_t rows = offsets[local_experts];
  const int64_t tasks = rows * segments_per_row;
  const int64_t first_warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warp_stride = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  if (first_warp >= tasks) return;  // uniform across the warp; no setup for warps without work
  const unsigned lane = threadIdx.x & 31u;
  const int64_t half = static_cast<int64_t>(lane >> 4);
  const int64_t column_in_block = static_cast<int64_t>(lane & 15u) * kChunkElements;
  TaskCursor cursor(first_warp, warp_stride, segments_per_row);
  // The loop condition is uniform across the warp, so every lane reaches every shuffle.
  for (int64_t task = first_warp; task < tasks; task += warp_stride, cursor.advance()) {
    const int64_t row = cursor.row;
    const int64_t first_block = cursor.block * kSegmentBlocks + half;
    const int64_t token = sorted_slots[row] / top_k;  // one address for the whole warp
    const auto* source = hidden + token * cols;
    Chunk<Dtype> chunk[kChunksPerLane];
#pragma unroll
    for (int i = 0; i < kChunksPerLane; ++i) {
      const int64_t column = (first_block + 2 * i) * MC_SCALE_BLOCK + column_in_block;
      chunk[i].clear();
      if (first_block + 2 * i < blocks_per_row && column < cols) chunk[i].load(source + column);
    }
#pragma unroll
    for (int i = 0; i < kChunksPerLane; ++i) {
      const int64_t block = first_block + 2 * i;
      const int64_t column = block * MC_SCALE_BLOCK + column_in_block;
      // Inactive lanes hold zeros, which never change a max of |x| values.
      const float scale = quantization_scale_device(half_warp_amax(chunk[i].amax(0.0f)));
      if (block < blocks_per_row && column < cols) {
        *reinterpret_cast<uint2*>(output + row * cols + column) = chunk[i].quantize(scale);
      }
      if (block < blocks_per_row && column_in_block == 0) scales[row * blocks_per_row + block] = scale;
    }
  }
}

template <int32_t Dtype>
cudaError_t launch_typed(const MoeGatherJob& job, int32_t capacity_rows, int32_t max_blocks, cudaStream_t stream) {
  using Bits = typename DeviceCodec<Dtype>::Bits;
  const int64_t blocks_per_row = scale_blocks(job.hidden_size);
  const int64_t segments_per_row = (blocks_per_row + kSegmentBlocks - 1) / kSegmentBlocks;
  // Sized for the capacity but never beyond max_blocks: the row count is only known on the device, and an
  // expert-parallel slice keeps a fraction of tokens * top_k, so a capacity-sized grid was mostly empty blocks.
  const int64_t warps = int64_t{capacity_rows} * segments_per_row;
  const int64_t blocks = std::min<int64_t>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock, max_blocks);
  gather_quantize_kernel<Dtype><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const Bits*>(job.hidden), job.sorted_slots, job.offsets, job.local_experts, job.top_k,
      job.hidden_size, blocks_per_row, segments_per_row, job.out, job.scales);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_moe_gather_quantize(const MoeGatherJob& job, int32_t capacity_rows, int32_t max_blocks,
                                       cudaStream_t stream) {
  if (capacity_rows <= 0 || job.hidden_size <= 0 || max_blocks <= 0) return cudaSuccess;
  switch (job.hidden_dtype) {
    case MC_DTYPE_FP32: return launch_typed<MC_DTYPE_FP32>(job, capacity_rows, max_blocks, stream);
    case MC_DTYPE_BF16: return launch_typed<MC_DTYPE_BF16>(job, capacity_rows, max_blocks, stream);
    case MC_DTYPE_FP16: return launch_typed<MC_DTYPE_FP16>(job, capacity_rows, max_blocks, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace moecutlass
