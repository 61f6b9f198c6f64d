// Turns the device expert offsets of one run into the per-expert arrays the grouped kernels read.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

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

// Offsets that are negative, decreasing or beyond `rows` are clamped into [0, rows] so that every expert's rows
// lie inside the buffers (a decreasing pair gives the expert no rows), and the matching MC_DEVICE_ERROR_* bits are
// raised in the error flag. All address arithmetic is int64: E*N*K exceeds 2^31 for DeepSeek-sized stacks.
// The kernel signals programmatic completion early, so a grouped kernel launched programmatically after it can
// start its prologue; that kernel still waits for this one to finish before it reads any array.
cudaError_t launch_expert_offsets(const ExpertOffsetsJob& job, const GroupedGemmDeviceArrays& arrays,
                                  cudaStream_t stream);

}  // namespace moecutlass::cuda
