#include "cuda/grouped_gemm/expert_offsets.hpp"

#include "core/moe_tile_walk.hpp"

#include "moecutlass/moecutlass.h"

namespace moecutlass::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) expert_offsets_kernel(ExpertOffsetsJob job, ConfigBuckets buckets) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Lets the grouped kernel's launch and prologue overlap this kernel; it waits for our completion (griddepcontrol)
  // before reading the arrays written below.
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
  const int64_t k = job.k;
  const int64_t n = job.n;
  const int64_t k_blocks = (k + MC_SCALE_BLOCK - 1) / MC_SCALE_BLOCK;
  const int64_t n_blocks = (n + MC_SCALE_BLOCK - 1) / MC_SCALE_BLOCK;
  int32_t flags = 0;
  const int32_t experts = buckets.bucket[0].arrays.experts;
  for (int32_t e = blockIdx.x * blockDim.x + threadIdx.x; e < experts; e += gridDim.x * blockDim.x) {
    // The same clamping and judging as the persistent kernel's walk (core/moe_tile_walk.hpp).
    const MoeExpertRows expert = moe_expert_rows(job.offsets, e, job.rows);
    flags |= expert.error_flags;
    const int32_t begin = expert.begin;
    const int32_t rows = expert.count;
    const uint8_t* activations = job.a + static_cast<int64_t>(begin) * k;
    const float* activation_scales = job.a_scales + static_cast<int64_t>(begin) * k_blocks;
    const uint8_t* weights = job.b + static_cast<int64_t>(e) * n * k;
    const float* weight_scales = job.b_scales + static_cast<int64_t>(e) * n_blocks * k_blocks;
    uint8_t* output = job.d + static_cast<int64_t>(begin) * n * job.d_element_bytes;
    for (int c = 0; c < buckets.count; ++c) {
      const ConfigBucket& bucket = buckets.bucket[c];
      const GroupedGemmDeviceArrays& arrays = bucket.arrays;
      const int32_t taken = rows >= bucket.min_rows && rows <= bucket.max_rows ? rows : 0;
      if (bucket.swapped) {
        arrays.problem_sizes[3 * e + 0] = job.n;
        arrays.problem_sizes[3 * e + 1] = taken;
        arrays.ptr_a[e] = weights;
        arrays.ptr_sfa[e] = weight_scales;
        arrays.ptr_b[e] = activations;
        arrays.ptr_sfb[e] = activation_scales;
      } else {
        arrays.problem_sizes[3 * e + 0] = taken;
        arrays.problem_sizes[3 * e + 1] = job.n;
        arrays.ptr_a[e] = activations;
        arrays.ptr_sfa[e] = activation_scales;
        arrays.ptr_b[e] = weights;
        arrays.ptr_sfb[e] = weight_scales;
      }
      arrays.problem_sizes[3 * e + 2] = job.k;
      arrays.ptr_d[e] = output;  // column-major D^T [n, rows] is the same bytes as row-major D [rows, n]
    }
  }
  if (flags != 0) atomicOr(job.error_flag, flags);
}

}  // namespace

cudaError_t launch_expert_offsets(const ExpertOffsetsJob& job, const ConfigBuckets& buckets, cudaStream_t stream) {
  // One wave of small blocks: E <= MC_MAX_EXPERTS (4096) gives at most 16 blocks.
  const int blocks = (buckets.bucket[0].arrays.experts + kThreads - 1) / kThreads;
  // cudaLaunchKernelExC rather than <<<>>>: the triple-chevron path pushes and pops a launch configuration around
  // the same launch, measurably more host time per run (see native/tests/host_overhead_benchmark.cu).
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(blocks));
  config.blockDim = dim3(kThreads);
  config.stream = stream;
  ExpertOffsetsJob job_argument = job;
  ConfigBuckets buckets_argument = buckets;
  void* arguments[] = {&job_argument, &buckets_argument};
  return cudaLaunchKernelExC(&config, reinterpret_cast<const void*>(&expert_offsets_kernel), arguments);
}

}  // namespace moecutlass::cuda
