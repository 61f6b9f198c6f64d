// Byte sizes of the tensors in the data contract (moecutlass.h), in int64: E*N*K alone exceeds 2^31 for real
// models, and every size here is at most about 2^53 given the header's limits, so int64 never overflows.
#pragma once

#include <cstdint>

#include "moecutlass/moecutlass.h"

namespace moecutlass {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline int64_t scale_blocks(int64_t extent) { return ceil_div(extent, MC_SCALE_BLOCK); }

// A: e4m3 [rows, k]
inline int64_t activation_bytes(int64_t rows, int64_t k) { return rows * k; }
// A scales: fp32 [rows, ceil(k/128)]
inline int64_t activation_scale_bytes(int64_t rows, int64_t k) { return rows * scale_blocks(k) * 4; }
// B: e4m3 [experts, n, k]
inline int64_t weight_bytes(int64_t experts, int64_t n, int64_t k) { return experts * n * k; }
// B scales: fp32 [experts, ceil(n/128), ceil(k/128)]
inline int64_t weight_scale_bytes(int64_t experts, int64_t n, int64_t k) {
  return experts * scale_blocks(n) * scale_blocks(k) * 4;
}
// expert offsets: int32 [experts + 1]
inline int64_t offsets_bytes(int64_t experts) { return (experts + 1) * 4; }

}  // namespace moecutlass
