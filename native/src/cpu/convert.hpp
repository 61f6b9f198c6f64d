// CPU element-wise conversion and FP8 quantization (mc_convert_async, mc_quantize_*_async).
#pragma once

#include <cstdint>

#include "backend.hpp"
#include "cpu/thread_pool.hpp"

namespace moecutlass {

void cpu_convert(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype, int64_t count, ThreadPool& pool);

// The block scale of the quantizers: amax / 448 in fp32. A scale of 0 (all-zero block, or amax so small that the
// division underflows) becomes 1 so that x / scale stays defined; the block then quantizes to zeros.
inline float quantization_scale(float amax) {
  const float scale = amax / 448.0f;
  return scale == 0.0f ? 1.0f : scale;
}

void cpu_quantize_activations(const ActivationQuantization& job, ThreadPool& pool);
void cpu_quantize_weights(const WeightQuantization& job, ThreadPool& pool);

}  // namespace moecutlass
