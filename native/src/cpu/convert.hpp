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

// One 1x128 activation block of `width` (<= 128) fp32 values: writes the e4m3 codes and returns the block's scale,
// with the numerics described at the top of quantize.cpp. The fused MoE stages quantize through this, so every
// FP8 activation of the library rounds the same way.
float quantize_activation_block(const float* values, int64_t width, uint8_t* out);
// One activation row of `cols` fp32 values: codes out[cols], scales[ceil(cols / 128)].
void quantize_activation_row(const float* values, int64_t cols, uint8_t* out, float* scales);

void cpu_quantize_activations(const ActivationQuantization& job, ThreadPool& pool);
void cpu_quantize_weights(const WeightQuantization& job, ThreadPool& pool);

}  // namespace moecutlass
