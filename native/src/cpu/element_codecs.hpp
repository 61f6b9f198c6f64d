// Compile-time dtype dispatch for the CPU element loops: each MC_DTYPE_* maps to its storage type and fp32
// decode/encode, so conversion and quantization instantiate one tight loop per dtype instead of switching per
// element. fp32 is the common intermediate: every bf16, fp16 and e4m3 value is exact in fp32, so decoding to fp32
// and encoding once gives a single correctly rounded conversion.
#pragma once

#include <cstdint>
#include <type_traits>

#include "core/e4m3.hpp"
#include "core/error.hpp"
#include "core/float16.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

template <int32_t Dtype>
struct ElementCodec;

template <>
struct ElementCodec<MC_DTYPE_FP32> {
  using Storage = float;
  static float decode(float v) { return v; }
  static float encode(float v) { return v; }
};

template <>
struct ElementCodec<MC_DTYPE_BF16> {
  using Storage = uint16_t;
  static float decode(uint16_t v) { return bf16_to_float(v); }
  static uint16_t encode(float v) { return bf16_from_float(v); }
};

template <>
struct ElementCodec<MC_DTYPE_FP16> {
  using Storage = uint16_t;
  static float decode(uint16_t v) { return fp16_to_float(v); }
  static uint16_t encode(float v) { return fp16_from_float(v); }
};

template <>
struct ElementCodec<MC_DTYPE_E4M3> {
  using Storage = uint8_t;
  static float decode(uint8_t v) { return e4m3_to_float(v); }
  static uint8_t encode(float v) { return e4m3_from_float(v); }
};

// Calls f(std::integral_constant<int32_t, dtype>{}) for a validated dtype.
template <class F>
decltype(auto) dispatch_dtype(int32_t dtype, F&& f) {
  switch (dtype) {
    case MC_DTYPE_FP32: return f(std::integral_constant<int32_t, MC_DTYPE_FP32>{});
    case MC_DTYPE_BF16: return f(std::integral_constant<int32_t, MC_DTYPE_BF16>{});
    case MC_DTYPE_FP16: return f(std::integral_constant<int32_t, MC_DTYPE_FP16>{});
    case MC_DTYPE_E4M3: return f(std::integral_constant<int32_t, MC_DTYPE_E4M3>{});
    default: fail(MC_STATUS_INTERNAL, "unvalidated dtype ", dtype, " reached the CPU backend");
  }
}

// Decodes count elements of `dtype` starting at element `first` of `base` into fp32.
inline void load_as_float(const void* base, int32_t dtype, int64_t first, int64_t count, float* out) {
  dispatch_dtype(dtype, [&](auto tag) {
    using Codec = ElementCodec<decltype(tag)::value>;
    const auto* in = static_cast<const typename Codec::Storage*>(base) + first;
    for (int64_t i = 0; i < count; ++i) out[i] = Codec::decode(in[i]);
  });
}

}  // namespace moecutlass
