#include "cuda/cuda_fill.hpp"

#include <algorithm>

namespace moecutlass {

namespace {

template <class T>
__global__ void fill_kernel(T* __restrict__ dst, T value, int64_t count) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    dst[i] = value;
  }
}

constexpr int kFillThreads = 256;
constexpr int64_t kMaxFillBlocks = 4096;  // grid-stride beyond this: enough blocks to saturate any GPU

template <class T>
cudaError_t launch_typed(void* dst, uint32_t pattern, int64_t count, cudaStream_t stream) {
  const int64_t blocks = std::min<int64_t>((count + kFillThreads - 1) / kFillThreads, kMaxFillBlocks);
  fill_kernel<T><<<static_cast<unsigned>(blocks), kFillThreads, 0, stream>>>(static_cast<T*>(dst),
                                                                             static_cast<T>(pattern), count);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_fill(void* dst, uint32_t pattern, int element_size, int64_t count, cudaStream_t stream) {
  if (count <= 0) return cudaSuccess;
  switch (element_size) {
    case 1: return cudaMemsetAsync(dst, static_cast<int>(pattern & 0xFFu), static_cast<size_t>(count), stream);
    case 2: return launch_typed<uint16_t>(dst, pattern, count, stream);
    case 4: return launch_typed<uint32_t>(dst, pattern, count, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace moecutlass
