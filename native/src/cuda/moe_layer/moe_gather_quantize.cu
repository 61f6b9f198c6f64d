// Gather of each permuted row's token fused with the 1x128 FP8 quantization, bit-identical to
// gather_quantize_rows (cpu/moe_gather_quantize.hpp), which is itself bit-identical to gathering and then running
// the activation quantizer: so this kernel is cuda_quantize.cu's activation kernel with a gathered source row, and
// it quantizes through the same Chunk code (cuda_quantize_chunk.cuh).
//
// A half-warp per 1x128 block (a warp two consecutive blocks), 16-byte loads, one 8-byte store per lane; task
// t = row * blocks_per_row + block indexes the scale directly. The grid is sized for the capacity tokens * top_k
// rows (capped, grid-stride beyond); the actual row count offsets[local_experts] is read on the device, and warps
// past it exit, so rows past the count are never written.
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
constexpr int64_t kMaxBlocks = int64_t{1} << 16;

template <int32_t Dtype>
__global__ void __launch_bounds__(kThreads)
    gather_quantize_kernel(const typename DeviceCodec<Dtype>::Bits* __restrict__ hidden,
                           const int32_t* __restrict__ sorted_slots, const int32_t* __restrict__ offsets,
                           int32_t local_experts, int32_t top_k, int64_t cols, int64_t blocks_per_row,
                           uint8_t* __restrict__ output, float* __restrict__ scales) {
  const int64_t rows = offsets[local_experts];
  const int64_t tasks = rows * blocks_per_row;
  const unsigned lane = threadIdx.x & 31u;
  const unsigned half_lane = lane & 15u;
  const int64_t first_warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warp_stride = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int64_t column_in_block = static_cast<int64_t>(half_lane) * kChunkElements;
  TaskCursor cursor(first_warp * 2 + static_cast<int64_t>(lane >> 4), warp_stride * 2, blocks_per_row);
  // The loop condition is uniform across the warp, so every lane reaches every shuffle.
  for (int64_t pair = first_warp; pair * 2 < tasks; pair += warp_stride, cursor.advance()) {
    const int64_t task = pair * 2 + static_cast<int64_t>(lane >> 4);
    const int64_t row = cursor.row;
    const int64_t column = cursor.block * MC_SCALE_BLOCK + column_in_block;
    const bool active = task < tasks && column < cols;

    Chunk<Dtype> chunk;
    chunk.clear();
    if (active) {
      const int64_t token = sorted_slots[row] / top_k;
      chunk.load(hidden + token * cols + column);
    }
    const float scale = quantization_scale_device(half_warp_amax(chunk.amax(0.0f)));
    if (active) *reinterpret_cast<uint2*>(output + row * cols + column) = chunk.quantize(scale);
    if (task < tasks && half_lane == 0) scales[task] = scale;
  }
}

template <int32_t Dtype>
cudaError_t launch_typed(const MoeGatherJob& job, int32_t capacity_rows, cudaStream_t stream) {
  using Bits = typename DeviceCodec<Dtype>::Bits;
  const int64_t blocks_per_row = scale_blocks(job.hidden_size);
  const int64_t warps = (int64_t{capacity_rows} * blocks_per_row + 1) / 2;
  const int64_t blocks = std::min<int64_t>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock, kMaxBlocks);
  gather_quantize_kernel<Dtype><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const Bits*>(job.hidden), job.sorted_slots, job.offsets, job.local_experts, job.top_k,
      job.hidden_size, blocks_per_row, job.out, job.scales);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_moe_gather_quantize(const MoeGatherJob& job, int32_t capacity_rows, cudaStream_t stream) {
  if (capacity_rows <= 0 || job.hidden_size <= 0) return cudaSuccess;
  switch (job.hidden_dtype) {
    case MC_DTYPE_FP32: return launch_typed<MC_DTYPE_FP32>(job, capacity_rows, stream);
    case MC_DTYPE_BF16: return launch_typed<MC_DTYPE_BF16>(job, capacity_rows, stream);
    case MC_DTYPE_FP16: return launch_typed<MC_DTYPE_FP16>(job, capacity_rows, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace moecutlass
