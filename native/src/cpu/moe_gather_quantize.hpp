// Host reference of the MoE layer's gather + quantize stage (issue 13): the token rows, in the permuted order of
// permute_by_expert, quantized to FP8 e4m3 with one fp32 scale per row and 128-column block -- the A operand and
// A scales of GEMM1 (DESIGN.md section 3). Quantization is quantize_activation_block (cpu/quantize.cpp): it is
// bit-identical to gathering in the input dtype and then calling mc_quantize_activations_async.
#pragma once

#include <cstdint>

namespace moecutlass {

// hidden: [tokens, hidden_size] of hidden_dtype (MC_DTYPE_BF16, _FP16 or _FP32), row-major.
// sorted_slots: [rows]; row r takes token sorted_slots[r] / top_k (each entry in 0 .. tokens*top_k-1).
// out: e4m3 [rows, hidden_size]; scales: fp32 [rows, ceil(hidden_size / 128)].
// Throws Error on invalid arguments (checked before anything is written).
void gather_quantize_rows(const void* hidden, int32_t hidden_dtype, int64_t tokens, int64_t hidden_size,
                          const int32_t* sorted_slots, int64_t rows, int32_t top_k, uint8_t* out, float* scales);

}  // namespace moecutlass
