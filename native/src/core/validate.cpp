#include "core/validate.hpp"

namespace moecutlass {

void require_struct_size(uint32_t actual, std::size_t expected, const char* struct_name, const char* argument) {
  if (actual != expected) {
    fail(MC_STATUS_INVALID_STRUCT_SIZE, argument, " = ", actual, " is not a size of ", struct_name,
         " this library understands (expected sizeof(", struct_name, ") = ", expected,
         "); set struct_size = sizeof(", struct_name, ")");
  }
}

void require_range(int64_t value, int64_t lo, int64_t hi, const char* argument, const char* rule) {
  if (value < lo || value > hi) fail(MC_STATUS_OUT_OF_RANGE, argument, " = ", value, " is outside ", rule);
}

void require_multiple(int64_t value, int64_t multiple, const char* argument, const char* constant) {
  if (value % multiple != 0) {
    fail(MC_STATUS_MISALIGNED, argument, " = ", value, " must be a multiple of ", multiple, " (", constant, ")");
  }
}

void require_aligned(const void* pointer, std::size_t alignment, const char* argument, const char* rule) {
  if (reinterpret_cast<std::uintptr_t>(pointer) % alignment != 0) {
    fail(MC_STATUS_MISALIGNED, argument, " = ", pointer_text(pointer), " must be ", alignment, "-byte aligned (",
         rule, ")");
  }
}

void require_experts(int64_t experts, const char* argument) {
  require_range(experts, 1, MC_MAX_EXPERTS, argument, "1 .. 4096 (MC_MAX_EXPERTS)");
}

void require_n(int64_t n, const char* argument) {
  require_range(n, 1, MC_MAX_DIM, argument, "1 .. 1048576 (MC_MAX_DIM)");
  require_multiple(n, MC_N_ALIGNMENT, argument, "MC_N_ALIGNMENT");
}

void require_k(int64_t k, const char* argument) {
  require_range(k, 1, MC_MAX_DIM, argument, "1 .. 1048576 (MC_MAX_DIM)");
  require_multiple(k, MC_K_ALIGNMENT, argument, "MC_K_ALIGNMENT");
}

void require_tensor_pointer(const void* pointer, const char* argument) {
  require_not_null(pointer, argument);
  require_aligned(pointer, MC_POINTER_ALIGNMENT, argument, "MC_POINTER_ALIGNMENT");
}

void require_valid_offsets(const int32_t* offsets, int32_t experts, int32_t rows, const char* argument) {
  if (offsets[0] < 0) {
    fail(MC_STATUS_INVALID_OFFSETS, argument, "[0] = ", offsets[0], " is negative (offsets must be >= 0)");
  }
  for (int32_t e = 1; e <= experts; ++e) {
    if (offsets[e] < offsets[e - 1]) {
      fail(MC_STATUS_INVALID_OFFSETS, argument, "[", e, "] = ", offsets[e], " is less than ", argument, "[",
           e - 1, "] = ", offsets[e - 1], " (offsets must be non-decreasing)");
    }
  }
  if (offsets[experts] > rows) {
    fail(MC_STATUS_INVALID_OFFSETS, argument, "[", experts, "] = ", offsets[experts], " exceeds args->rows = ",
         rows, " (the last offset must be <= rows)");
  }
}

void require_strategy(int32_t strategy, const char* argument) {
  if (strategy != MC_STRATEGY_AUTO && strategy != MC_STRATEGY_SINGLE && strategy != MC_STRATEGY_EXPERT_SPECIALIZED &&
      strategy != MC_STRATEGY_PERSISTENT && strategy != MC_STRATEGY_CUBLAS) {
    fail(MC_STATUS_INVALID_STRATEGY, argument, " = ", strategy,
         " is not MC_STRATEGY_AUTO (0), MC_STRATEGY_SINGLE (1), MC_STRATEGY_EXPERT_SPECIALIZED (2), "
         "MC_STRATEGY_PERSISTENT (3) or MC_STRATEGY_CUBLAS (4)");
  }
}

}  // namespace moecutlass
