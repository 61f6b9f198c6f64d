// The device half of CudaE4m3 (test_cuda_e4m3.cpp): e4m3_code_quad, as the quantization kernels run it on this
// device, against the host rule (NaN -> 0x7F, else core/e4m3.hpp's branching e4m3_from_float) on all 2^32 inputs.
// Each input x is encoded with a partner y as the word (x, y, y, x), so x is checked in bytes 0 and 3 and the
// partners (a multiplicative hash of x's bits, also every float) in bytes 1 and 2.
#include "e4m3_device_sweep.hpp"

#include <cuda_runtime.h>

#include "cuda/cuda_codecs.cuh"

namespace moecutlass {
namespace testing {

namespace {

constexpr uint32_t kHighMultiplier = 2654435761u;

struct SweepCounters {
  unsigned long long mismatches;
  unsigned long long first_index;
};

__device__ uint32_t expected_code(float x) {
  return cuda::is_nan_bits(x) ? 0x7Fu : static_cast<uint32_t>(e4m3_from_float(x));
}

__device__ uint32_t device_codes(float low, float high) { return cuda::e4m3_code_quad(low, high, high, low); }

__device__ uint32_t expected_codes(float low, float high) {
  const uint32_t a = expected_code(low);
  const uint32_t b = expected_code(high);
  return a | (b << 8) | (b << 16) | (a << 24);
}

__global__ void sweep_kernel(SweepCounters* counters) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  for (uint64_t i = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (uint64_t{1} << 32); i += stride) {
    const uint32_t low_bits = static_cast<uint32_t>(i);
    const uint32_t high_bits = low_bits * kHighMultiplier;
    const float low = float_from_bits(low_bits);
    const float high = float_from_bits(high_bits);
    if (device_codes(low, high) != expected_codes(low, high)) {
      atomicAdd(&counters->mismatches, 1ull);
      atomicMin(&counters->first_index, static_cast<unsigned long long>(i));
    }
  }
}

__global__ void describe_kernel(uint64_t index, uint32_t* out) {
  const uint32_t low_bits = static_cast<uint32_t>(index);
  const uint32_t high_bits = low_bits * kHighMultiplier;
  const float low = float_from_bits(low_bits);
  const float high = float_from_bits(high_bits);
  out[0] = low_bits;
  out[1] = high_bits;
  out[2] = device_codes(low, high);
  out[3] = expected_codes(low, high);
}

}  // namespace

E4m3SweepResult sweep_e4m3_pair_encoder() {
  E4m3SweepResult result;
  SweepCounters* counters = nullptr;
  uint32_t* described = nullptr;
  cudaError_t status = cudaMalloc(&counters, sizeof(SweepCounters));
  if (status == cudaSuccess) status = cudaMalloc(&described, 4 * sizeof(uint32_t));
  const SweepCounters start{0ull, ~0ull};
  if (status == cudaSuccess) status = cudaMemcpy(counters, &start, sizeof start, cudaMemcpyHostToDevice);
  if (status == cudaSuccess) {
    sweep_kernel<<<4096, 256>>>(counters);
    status = cudaGetLastError();
  }
  SweepCounters found{};
  if (status == cudaSuccess) status = cudaMemcpy(&found, counters, sizeof found, cudaMemcpyDeviceToHost);
  if (status == cudaSuccess) {
    result.inputs = uint64_t{1} << 32;
    result.mismatches = found.mismatches;
    if (found.mismatches > 0) {
      result.first_index = found.first_index;
      describe_kernel<<<1, 1>>>(found.first_index, described);
      uint32_t words[4] = {};
      status = cudaGetLastError();
      if (status == cudaSuccess) status = cudaMemcpy(words, described, sizeof words, cudaMemcpyDeviceToHost);
      result.first_low = words[0];
      result.first_high = words[1];
      result.first_codes = words[2];
      result.expected_codes = words[3];
    }
  }
  if (status != cudaSuccess) result.error = cudaGetErrorName(status);
  cudaFree(counters);
  cudaFree(described);
  return result;
}

}  // namespace testing
}  // namespace moecutlass
