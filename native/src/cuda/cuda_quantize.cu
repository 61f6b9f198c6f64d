// FP8 quantization kernels (see cuda_quantize.hpp for the rules).
//
// Both kernels move data in chunks of 8 consecutive elements: one or two 16-byte loads per chunk (bf16/fp16: one,
// fp32: two) and one 8-byte store of the e4m3 codes. A 128-wide scale block is 16 chunks, so:
//  - activations: a half-warp owns one 1x128 block (a warp two adjacent blocks: 256 contiguous elements); the block
//    amax is reduced with xor-shuffles inside each half-warp.
//  - weights: a 256-thread block owns one 128x128 block; thread t holds chunk column t % 16 of rows t / 16 + 16 i
//    (i < 8) in registers, so the tile is read from memory exactly once; warp shuffles plus 8 shared floats reduce
//    the amax.
// Partial blocks at the right and bottom edges simply have inactive chunks: cols and k are multiples of 16 (the
// ABI's MC_K_ALIGNMENT), so a chunk is either entirely inside the tensor or entirely outside. All element offsets
// are int64 (experts * n * k exceeds 2^31); grids are 1-D, capped, and grid-stride over the work.
#include "cuda/cuda_quantize.hpp"

#include <algorithm>
#include <cstdint>

#include "core/shapes.hpp"
#include "cuda/cuda_codecs.cuh"
#include "cuda/cuda_quantize_chunk.cuh"

namespace moecutlass {

using cuda::Chunk;
using cuda::kChunkElements;
using cuda::kChunksPerBlockRow;
using cuda::kFullWarp;

namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int kTileRowsPerPass = kThreads / kChunksPerBlockRow;                     // 16
constexpr int kChunksPerThread = MC_SCALE_BLOCK / kTileRowsPerPass;                 // 8
constexpr int64_t kMaxActivationBlocks = int64_t{1} << 16;
constexpr int64_t kMaxWeightBlocks = int64_t{1} << 20;  // far below gridDim.x's 2^31 - 1; grid-stride beyond

static_assert(kChunksPerBlockRow == 16, "a half-warp covers one 128-wide scale block");
static_assert(kChunksPerThread * kTileRowsPerPass == MC_SCALE_BLOCK, "the weight tile covers 128 rows");

// Task t = row * blocks_per_row + block is the 1x128 scale block whose scale lands in scales[t]; consecutive tasks
// are consecutive in memory. Warp w takes tasks 2w and 2w + 1 (lanes 0-15 and 16-31), then strides by the grid.
template <int32_t Dtype>
__global__ void __launch_bounds__(kThreads)
    quantize_activations_kernel(const typename cuda::DeviceCodec<Dtype>::Bits* __restrict__ input,
                                uint8_t* __restrict__ output, float* __restrict__ scales, int64_t cols,
                                int64_t blocks_per_row, int64_t tasks) {
  const unsigned lane = threadIdx.x & 31u;
  const unsigned half_lane = lane & 15u;
  const int64_t first_warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t warp_stride = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int64_t column_in_block = static_cast<int64_t>(half_lane) * kChunkElements;
  cuda::TaskCursor cursor(first_warp * 2 + static_cast<int64_t>(lane >> 4), warp_stride * 2, blocks_per_row);
  // The loop condition is uniform across the warp, so every lane reaches every shuffle.
  for (int64_t pair = first_warp; pair * 2 < tasks; pair += warp_stride, cursor.advance()) {
    const int64_t task = pair * 2 + static_cast<int64_t>(lane >> 4);
    const int64_t row = cursor.row;
    const int64_t column = cursor.block * MC_SCALE_BLOCK + column_in_block;
    const bool active = task < tasks && column < cols;
    const int64_t offset = row * cols + column;

    Chunk<Dtype> chunk;
    chunk.clear();
    if (active) chunk.load(input + offset);
    // Inactive lanes contribute 0, which never changes a max of |x| values.
    const float amax = cuda::half_warp_amax(chunk.amax(0.0f));
    const float scale = cuda::quantization_scale_device(amax);
    if (active) *reinterpret_cast<uint2*>(output + offset) = chunk.quantize(scale);
    if (task < tasks && half_lane == 0) scales[task] = scale;
  }
}

// Tile t = (expert * n_blocks + block_row) * k_blocks + block_col: the scale index itself.
template <int32_t Dtype>
__global__ void __launch_bounds__(kThreads)
    quantize_weights_kernel(const typename cuda::DeviceCodec<Dtype>::Bits* __restrict__ input,
                            uint8_t* __restrict__ output, float* __restrict__ scales, int64_t n, int64_t k,
                            int64_t n_blocks, int64_t k_blocks, int64_t tiles) {
  __shared__ float warp_amax[kWarpsPerBlock];
  const unsigned lane = threadIdx.x & 31u;
  const unsigned warp = threadIdx.x >> 5;
  const int64_t chunk_column = static_cast<int64_t>(threadIdx.x % kChunksPerBlockRow) * kChunkElements;
  const int first_row = static_cast<int>(threadIdx.x / kChunksPerBlockRow);

  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {  // uniform across the thread block
    const int64_t block_col = tile % k_blocks;
    const int64_t rest = tile / k_blocks;
    const int64_t block_row = rest % n_blocks;
    const int64_t expert = rest / n_blocks;
    const int64_t row0 = block_row * MC_SCALE_BLOCK;
    const int64_t height = n - row0 < MC_SCALE_BLOCK ? n - row0 : MC_SCALE_BLOCK;
    const int64_t column = block_col * MC_SCALE_BLOCK + chunk_column;
    const bool column_inside = column < k;
    const int64_t base = (expert * n + row0) * k + column;  // element offset of this thread's chunk in tile row 0

    Chunk<Dtype> chunks[kChunksPerThread];
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i) {
      const int row = first_row + i * kTileRowsPerPass;
      chunks[i].clear();
      if (column_inside && row < height) chunks[i].load(input + base + static_cast<int64_t>(row) * k);
    }
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i) amax = chunks[i].amax(amax);
#pragma unroll
    for (int mask = 16; mask > 0; mask >>= 1) amax = fmaxf(amax, __shfl_xor_sync(kFullWarp, amax, mask));
    if (lane == 0) warp_amax[warp] = amax;
    __syncthreads();
    float tile_amax = warp_amax[0];
#pragma unroll
    for (int w = 1; w < kWarpsPerBlock; ++w) tile_amax = fmaxf(tile_amax, warp_amax[w]);
    const float scale = cuda::quantization_scale_device(tile_amax);
    if (threadIdx.x == 0) scales[tile] = scale;
#pragma unroll
    for (int i = 0; i < kChunksPerThread; ++i) {
      const int row = first_row + i * kTileRowsPerPass;
      if (column_inside && row < height) {
        *reinterpret_cast<uint2*>(output + base + static_cast<int64_t>(row) * k) = chunks[i].quantize(scale);
      }
    }
    __syncthreads();  // every thread has read warp_amax before the next tile overwrites it
  }
}

template <int32_t Dtype>
cudaError_t launch_activations_typed(const ActivationQuantization& job, cudaStream_t stream) {
  using Bits = typename cuda::DeviceCodec<Dtype>::Bits;
  const int64_t cols = job.cols;
  const int64_t blocks_per_row = scale_blocks(cols);
  const int64_t tasks = int64_t{job.rows} * blocks_per_row;
  const int64_t warps = (tasks + 1) / 2;
  const int64_t blocks = std::min<int64_t>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock, kMaxActivationBlocks);
  quantize_activations_kernel<Dtype><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const Bits*>(job.input), job.output, job.scales, cols, blocks_per_row, tasks);
  return cudaGetLastError();
}

template <int32_t Dtype>
cudaError_t launch_weights_typed(const WeightQuantization& job, cudaStream_t stream) {
  using Bits = typename cuda::DeviceCodec<Dtype>::Bits;
  const int64_t n_blocks = scale_blocks(job.n);
  const int64_t k_blocks = scale_blocks(job.k);
  const int64_t tiles = int64_t{job.experts} * n_blocks * k_blocks;
  const int64_t blocks = std::min<int64_t>(tiles, kMaxWeightBlocks);
  quantize_weights_kernel<Dtype><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      static_cast<const Bits*>(job.input), job.output, job.scales, job.n, job.k, n_blocks, k_blocks, tiles);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_quantize_activations(const ActivationQuantization& job, cudaStream_t stream) {
  if (job.rows <= 0 || job.cols <= 0) return cudaSuccess;
  switch (job.input_dtype) {
    case MC_DTYPE_FP32: return launch_activations_typed<MC_DTYPE_FP32>(job, stream);
    case MC_DTYPE_BF16: return launch_activations_typed<MC_DTYPE_BF16>(job, stream);
    case MC_DTYPE_FP16: return launch_activations_typed<MC_DTYPE_FP16>(job, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t launch_quantize_weights(const WeightQuantization& job, cudaStream_t stream) {
  if (job.experts <= 0 || job.n <= 0 || job.k <= 0) return cudaSuccess;
  switch (job.input_dtype) {
    case MC_DTYPE_FP32: return launch_weights_typed<MC_DTYPE_FP32>(job, stream);
    case MC_DTYPE_BF16: return launch_weights_typed<MC_DTYPE_BF16>(job, stream);
    case MC_DTYPE_FP16: return launch_weights_typed<MC_DTYPE_FP16>(job, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace moecutlass
