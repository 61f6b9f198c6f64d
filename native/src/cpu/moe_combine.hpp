// Host reference of the MoE layer's last stage (issue 13): the weighted combine of the GEMM2 rows back to tokens.
//
// output[t, :] = sum over j = 0 .. top_k-1 (in this order) of weights[t, j] * gemm2_out[slot_to_row[t * top_k + j], :]
// skipping slots whose row is -1 (expert outside this rank's slice). Per element: acc = 0.0f; for each slot in
// order, acc = acc + (w * y) in fp32 (a rounded product, then a rounded sum: no FMA, no atomics, fixed order, so the
// result is the same bits on every run); the result is rounded once to the output dtype. A token with no local slot
// gets +0. The rounding of a GPU kernel that follows the same order is identical.
#pragma once

#include <cstdint>

namespace moecutlass {

// gemm2_out: [rows, hidden_size] of gemm2_dtype (bf16, fp16 or fp32); weights: fp32 [tokens, top_k];
// slot_to_row: int32 [tokens * top_k], each -1 or in 0 .. rows-1; output: [tokens, hidden_size] of output_dtype
// (bf16, fp16 or fp32), overwritten completely. Throws Error before writing.
void weighted_combine(const void* gemm2_out, int32_t gemm2_dtype, int64_t rows, int64_t hidden_size,
                      const float* weights, const int32_t* slot_to_row, int64_t tokens, int32_t top_k, void* output,
                      int32_t output_dtype);

}  // namespace moecutlass
