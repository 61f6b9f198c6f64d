// FP8 quantizers of the DeepSeek-V3 recipe: one fp32 scale per 1x128 activation block and per 128x128 weight
// block (partial blocks at the edges), scale = amax / 448, q = e4m3(x / scale).
//
// Numerics are specified so that a GPU kernel can reproduce them bit for bit:
//  - inputs are decoded to fp32; amax = max |x| over the block with fmaxf semantics, so NaN inputs are ignored
//    (and encode to NaN themselves); an infinite input makes amax and the scale infinite, and then every finite
//    value of that block quantizes to +-0 and the infinities to NaN.
//  - scale = amax / 448.0f, an IEEE fp32 division; 0 (all-zero block, or underflow) is replaced by 1.
//  - q = e4m3(x / scale): an fp32 division -- not a multiplication by a reciprocal, which rounds differently --
//    then round-to-nearest-even with saturation to +-448.
//  - a NaN quotient (NaN input, or inf / inf) becomes 0x7F, the positive e4m3 NaN: the sign of a NaN produced by
//    arithmetic differs between CPUs (x86 yields a negative default NaN) and GPUs, so it is not carried over.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/shapes.hpp"
#include "cpu/convert.hpp"
#include "cpu/element_codecs.hpp"

namespace moecutlass {

namespace {

float block_amax(const float* values, int64_t count, float amax) {
  for (int64_t i = 0; i < count; ++i) amax = std::fmax(amax, std::fabs(values[i]));
  return amax;
}

void quantize_values(const float* values, int64_t count, float scale, uint8_t* out) {
  for (int64_t i = 0; i < count; ++i) {
    const float quotient = values[i] / scale;
    out[i] = std::isnan(quotient) ? uint8_t{0x7F} : e4m3_from_float(quotient);
  }
}

}  // namespace

float quantize_activation_block(const float* values, int64_t width, uint8_t* out) {
  const float scale = quantization_scale(block_amax(values, width, 0.0f));
  quantize_values(values, width, scale, out);
  return scale;
}

void quantize_activation_row(const float* values, int64_t cols, uint8_t* out, float* scales) {
  for (int64_t c0 = 0, b = 0; c0 < cols; c0 += MC_SCALE_BLOCK, ++b) {
    scales[b] = quantize_activation_block(values + c0, std::min<int64_t>(MC_SCALE_BLOCK, cols - c0), out + c0);
  }
}

void cpu_quantize_activations(const ActivationQuantization& job, ThreadPool& pool) {
  const int64_t rows = job.rows;
  const int64_t cols = job.cols;
  const int64_t blocks = scale_blocks(cols);
  // Enough rows per task that a task handles ~64K elements.
  const int64_t rows_per_task = std::max<int64_t>(1, (int64_t{1} << 16) / cols);
  const int64_t tasks = ceil_div(rows, rows_per_task);
  pool.parallel_for(tasks, [&](int64_t task) {
    float block[MC_SCALE_BLOCK];
    const int64_t row_end = std::min(rows, (task + 1) * rows_per_task);
    for (int64_t r = task * rows_per_task; r < row_end; ++r) {
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t c0 = b * MC_SCALE_BLOCK;
        const int64_t width = std::min<int64_t>(MC_SCALE_BLOCK, cols - c0);
        load_as_float(job.input, job.input_dtype, r * cols + c0, width, block);
        job.scales[r * blocks + b] = quantize_activation_block(block, width, job.output + r * cols + c0);
      }
    }
  });
}

void cpu_quantize_weights(const WeightQuantization& job, ThreadPool& pool) {
  const int64_t n = job.n;
  const int64_t k = job.k;
  const int64_t n_blocks = scale_blocks(n);
  const int64_t k_blocks = scale_blocks(k);
  // One task per (expert, 128-row band): it owns whole scale blocks.
  pool.parallel_for(job.experts * n_blocks, [&](int64_t task) {
    const int64_t expert = task / n_blocks;
    const int64_t band = task % n_blocks;
    const int64_t r0 = band * MC_SCALE_BLOCK;
    const int64_t height = std::min<int64_t>(MC_SCALE_BLOCK, n - r0);
    std::vector<float> block(static_cast<std::size_t>(MC_SCALE_BLOCK * MC_SCALE_BLOCK));
    for (int64_t kb = 0; kb < k_blocks; ++kb) {
      const int64_t c0 = kb * MC_SCALE_BLOCK;
      const int64_t width = std::min<int64_t>(MC_SCALE_BLOCK, k - c0);
      // Decode the block once; it is read twice (amax, then quantization).
      for (int64_t r = 0; r < height; ++r) {
        load_as_float(job.input, job.input_dtype, (expert * n + r0 + r) * k + c0, width, block.data() + r * width);
      }
      const float scale = quantization_scale(block_amax(block.data(), height * width, 0.0f));
      for (int64_t r = 0; r < height; ++r) {
        quantize_values(block.data() + r * width, width, scale, job.output + (expert * n + r0 + r) * k + c0);
      }
      job.scales[(expert * n_blocks + band) * k_blocks + kb] = scale;
    }
  });
}

}  // namespace moecutlass
