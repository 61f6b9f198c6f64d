#include "cpu/dequantize.hpp"

#include "core/dequantize.hpp"
#include "core/shapes.hpp"

namespace moecutlass {

namespace {

// One row of k codes whose 128-wide K blocks use scale_row[0 .. ceil(k / 128) - 1].
void dequantize_row(const uint8_t* codes, const float* scale_row, int64_t k, uint16_t* out) {
  for (int64_t c = 0; c < k; ++c) out[c] = dequantize_e4m3_to_bf16(codes[c], scale_row[c / MC_SCALE_BLOCK]);
}

}  // namespace

void dequantize_activations_bf16(const uint8_t* codes, const float* scales, int64_t rows, int64_t k, uint16_t* out) {
  const int64_t k_blocks = scale_blocks(k);
  for (int64_t r = 0; r < rows; ++r) dequantize_row(codes + r * k, scales + r * k_blocks, k, out + r * k);
}

void dequantize_weights_bf16(const uint8_t* codes, const float* scales, int64_t experts, int64_t n, int64_t k,
                             uint16_t* out) {
  const int64_t k_blocks = scale_blocks(k);
  const int64_t n_blocks = scale_blocks(n);
  for (int64_t e = 0; e < experts; ++e) {
    for (int64_t row = 0; row < n; ++row) {
      const int64_t element = (e * n + row) * k;
      const float* scale_row = scales + (e * n_blocks + row / MC_SCALE_BLOCK) * k_blocks;
      dequantize_row(codes + element, scale_row, k, out + element);
    }
  }
}

}  // namespace moecutlass
