// MC_DTYPE_* helpers shared by validation and the backends.
#pragma once

#include <cstdint>

#include "moecutlass/moecutlass.h"

namespace moecutlass {

inline bool is_known_dtype(int32_t dtype) { return dtype >= MC_DTYPE_FP32 && dtype <= MC_DTYPE_E4M3; }

// Bytes per element; 0 for unknown dtypes.
inline int64_t dtype_size(int32_t dtype) {
  switch (dtype) {
    case MC_DTYPE_FP32: return 4;
    case MC_DTYPE_BF16:
    case MC_DTYPE_FP16: return 2;
    case MC_DTYPE_E4M3: return 1;
    default: return 0;
  }
}

inline const char* dtype_name(int32_t dtype) {
  switch (dtype) {
    case MC_DTYPE_FP32: return "MC_DTYPE_FP32";
    case MC_DTYPE_BF16: return "MC_DTYPE_BF16";
    case MC_DTYPE_FP16: return "MC_DTYPE_FP16";
    case MC_DTYPE_E4M3: return "MC_DTYPE_E4M3";
    default: return "unknown";
  }
}

}  // namespace moecutlass
