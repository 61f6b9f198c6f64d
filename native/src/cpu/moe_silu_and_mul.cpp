#include "cpu/moe_silu_and_mul.hpp"

#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/shapes.hpp"
#include "cpu/convert.hpp"
#include "cpu/element_codecs.hpp"

namespace moecutlass {

float silu_and_mul(float gate, float up) {
  // For gate < -88, exp(-gate) is +inf and gate / inf is -0: the limit of SiLU, no NaN.
  const float silu = gate / (1.0f + std::exp(-gate));
  return silu * up;
}

void silu_and_mul_quantize(const void* gemm1_out, int32_t dtype, int64_t rows, int64_t inter, uint8_t* out,
                           float* scales) {
  if (dtype != MC_DTYPE_BF16 && dtype != MC_DTYPE_FP16 && dtype != MC_DTYPE_FP32) {
    fail(MC_STATUS_INVALID_DTYPE, "the GEMM1 output dtype is ", dtype, "; SiLU-and-mul takes bf16, fp16 or fp32");
  }
  if (rows < 0 || inter < 1) fail(MC_STATUS_OUT_OF_RANGE, "rows (", rows, ") must be >= 0 and inter (", inter, ") >= 1");
  if (rows == 0) return;
  if (!gemm1_out || !out || !scales) fail(MC_STATUS_NULL_POINTER, "gemm1_out, out and scales must not be null");
  const int64_t blocks = scale_blocks(inter);
  std::vector<float> pair(static_cast<std::size_t>(2 * inter));
  for (int64_t r = 0; r < rows; ++r) {
    load_as_float(gemm1_out, dtype, r * 2 * inter, 2 * inter, pair.data());
    for (int64_t i = 0; i < inter; ++i) pair[i] = silu_and_mul(pair[i], pair[inter + i]);
    quantize_activation_row(pair.data(), inter, out + r * inter, scales + r * blocks);
  }
}

}  // namespace moecutlass
