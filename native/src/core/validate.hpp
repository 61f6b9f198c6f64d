// Argument checks shared by the entry points. Each throws Error with a message that names the argument, its value
// and the rule (and the header constant behind the rule), e.g.
//   desc->k = 100 must be a multiple of 16 (MC_K_ALIGNMENT)
// The ABI guard prefixes the function name.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/error.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

template <class T>
void require_not_null(const T* pointer, const char* argument) {
  if (pointer == nullptr) fail(MC_STATUS_NULL_POINTER, argument, " is NULL");
}

// Structs are versioned by struct_size; this library version understands exactly its own sizeof.
void require_struct_size(uint32_t actual, std::size_t expected, const char* struct_name, const char* argument);

// lo <= value <= hi, else MC_STATUS_OUT_OF_RANGE; `rule` names the bound, e.g. "1 .. 4096 (MC_MAX_EXPERTS)".
void require_range(int64_t value, int64_t lo, int64_t hi, const char* argument, const char* rule);

// value % multiple == 0, else MC_STATUS_MISALIGNED; `constant` names the header constant.
void require_multiple(int64_t value, int64_t multiple, const char* argument, const char* constant);

// Pointer alignment, else MC_STATUS_MISALIGNED; `rule` explains where the requirement comes from.
void require_aligned(const void* pointer, std::size_t alignment, const char* argument, const char* rule);

// Problem dimensions: E in 1..MC_MAX_EXPERTS; N, K in 1..MC_MAX_DIM with N % 8 == 0 and K % 16 == 0.
void require_experts(int64_t experts, const char* argument);
void require_n(int64_t n, const char* argument);
void require_k(int64_t k, const char* argument);

// A grouped-GEMM strategy (MC_STRATEGY_*), else MC_STATUS_INVALID_STRATEGY.
void require_strategy(int32_t strategy, const char* argument);

// Tensor operands (A, B, D, scales, quantizer buffers) must be 16-byte aligned (MC_POINTER_ALIGNMENT) so the
// device kernels can use vector and TMA loads.
void require_tensor_pointer(const void* pointer, const char* argument);

// Exact host-side check of expert offsets (CPU backend only): offsets[0] >= 0, non-decreasing, offsets[E] <= rows.
// Reports the first offending index (MC_STATUS_INVALID_OFFSETS).
void require_valid_offsets(const int32_t* offsets, int32_t experts, int32_t rows, const char* argument);

}  // namespace moecutlass
