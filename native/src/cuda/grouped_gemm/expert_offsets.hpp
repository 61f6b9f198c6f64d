// Turns the device expert offsets of one run into the per-expert arrays the grouped kernels read.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

#include "core/gemm_selection.hpp"
#include "cuda/grouped_gemm/grouped_kernel.hpp"

namespace moecutlass::cuda {

// Base pointers and sizes of one run (already validated on the host).
struct ExpertOffsetsJob {
  const int32_t* offsets = nullptr;  // [E+1], device memory, untrusted contents
  int32_t rows = 0;                  // capacity of A and D in this run
  int32_t n = 0;
  int32_t k = 0;
  int32_t d_element_bytes = 2;
  const uint8_t* a = nullptr;
  const float* a_scales = nullptr;
  const uint8_t* b = nullptr;
  const float* b_scales = nullptr;
  uint8_t* d = nullptr;
  int32_t* error_flag = nullptr;  // the context's MC_DEVICE_ERROR_* word
};

// The kernel configurations one run launches and the row range each one takes (core/gemm_selection.hpp): an
// expert with `rows` rows runs in the configuration whose [min_rows, max_rows] holds it; every other configuration
// sees it with zero rows, so its tiles vanish there. Ranges are disjoint.
inline constexpr int kMaxKernelConfigs = kMaxPlanConfigs;

struct ConfigBucket {
  GroupedGemmDeviceArrays arrays;
  int32_t swapped = 0;  // 1: D^T = B * A^T (weights are CUTLASS's A, the expert's rows its B)
  int32_t min_rows = 1;
  int32_t max_rows = 2147483647;
};

struct ConfigBuckets {
  int32_t count = 0;
  ConfigBucket bucket[kMaxKernelConfigs];
};

// Offsets that are negative, decreasing or beyond `rows` are clamped into [0, rows] so that every expert's rows
// lie inside the buffers (a decreasing pair gives the expert no rows), and the matching MC_DEVICE_ERROR_* bits are
// raised in the error flag. All address arithmetic is int64: E*N*K exceeds 2^31 for DeepSeek-sized stacks.
// The kernel signals programmatic completion early, so a grouped kernel launched programmatically after it can
// start its prologue; that kernel still waits for this one to finish before it reads any array.
cudaError_t launch_expert_offsets(const ExpertOffsetsJob& job, const ConfigBuckets& buckets, cudaStream_t stream);

}  // namespace moecutlass::cuda
