// CPU reference of the FP8 -> bf16 dequantization of grouped-GEMM operands (the cuBLAS strategy's first step,
// issue 15): every element by core/dequantize.hpp's rule with the scale of its block, in the layouts the grouped
// GEMM takes (DESIGN.md section 3):
//   activations A [rows, k] e4m3 with scales [rows, ceil(k / 128)]            (1x128 blocks)
//   weights     B [experts, n, k] e4m3 with scales [experts, ceil(n / 128), ceil(k / 128)]   (128x128 blocks)
// Outputs are bf16 bit patterns of the same shapes. The callers validate the shapes (k % 16 == 0 and so on).
#pragma once

#include <cstdint>

namespace moecutlass {

void dequantize_activations_bf16(const uint8_t* codes, const float* scales, int64_t rows, int64_t k, uint16_t* out);

void dequantize_weights_bf16(const uint8_t* codes, const float* scales, int64_t experts, int64_t n, int64_t k,
                             uint16_t* out);

}  // namespace moecutlass
