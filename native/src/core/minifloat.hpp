// Exact round-to-nearest-even from double to the small float formats used by the library (e4m3, bf16, fp16).
//
// This is the slow, obviously-correct path: one routine parameterised by the format, used where the input is a
// double (the CPU reference GEMM rounds its double accumulators once, directly, so there is no double rounding
// through fp32) and as the oracle the fast fp32 bit-twiddling encoders are tested against. Host and device share it
// (core/host_device.hpp); the device pass swaps the <cmath> calls for CUDA's own or for bit tests.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/host_device.hpp"

namespace moecutlass {

struct MinifloatFormat {
  int exponent_bits;
  int mantissa_bits;
  // true: OCP E4M3FN style (no infinities, overflow saturates to max_finite_code, NaN = all ones);
  // false: IEEE style (overflow rounds to infinity).
  bool saturate;
  uint32_t max_finite_code;
  uint32_t nan_code;
};

// Functions rather than namespace-scope constants: device code may not reference a host variable of class type.
MC_HOST_DEVICE constexpr MinifloatFormat e4m3_format() { return MinifloatFormat{4, 3, true, 0x7Eu, 0x7Fu}; }
MC_HOST_DEVICE constexpr MinifloatFormat bf16_format() { return MinifloatFormat{8, 7, false, 0x7F7Fu, 0x7FC0u}; }
MC_HOST_DEVICE constexpr MinifloatFormat fp16_format() { return MinifloatFormat{5, 10, false, 0x7BFFu, 0x7E00u}; }

namespace detail {

// <cmath> on the host; CUDA's math library or bit tests on the device (same results: all of them are exact).
MC_HOST_DEVICE inline bool sign_bit(double x) {
#if defined(__CUDA_ARCH__)
  return (double_bits(x) >> 63) != 0;
#else
  return std::signbit(x);
#endif
}

MC_HOST_DEVICE inline bool is_nan(double x) {
#if defined(__CUDA_ARCH__)
  return (double_bits(x) & 0x7FFFFFFFFFFFFFFFull) > 0x7FF0000000000000ull;
#else
  return std::isnan(x);
#endif
}

MC_HOST_DEVICE inline bool is_inf(double x) {
#if defined(__CUDA_ARCH__)
  return (double_bits(x) & 0x7FFFFFFFFFFFFFFFull) == 0x7FF0000000000000ull;
#else
  return std::isinf(x);
#endif
}

MC_HOST_DEVICE inline double abs_value(double x) {
#if defined(__CUDA_ARCH__)
  return ::fabs(x);
#else
  return std::fabs(x);
#endif
}

MC_HOST_DEVICE inline double split_exponent(double x, int* exponent) {
#if defined(__CUDA_ARCH__)
  return ::frexp(x, exponent);
#else
  return std::frexp(x, exponent);
#endif
}

MC_HOST_DEVICE inline double scale_by_power_of_two(double x, int exponent) {
#if defined(__CUDA_ARCH__)
  return ::ldexp(x, exponent);
#else
  return std::ldexp(x, exponent);
#endif
}

MC_HOST_DEVICE inline double round_down(double x) {
#if defined(__CUDA_ARCH__)
  return ::floor(x);
#else
  return std::floor(x);
#endif
}

MC_HOST_DEVICE inline float round_down(float x) {
#if defined(__CUDA_ARCH__)
  return ::floorf(x);
#else
  return std::floor(x);
#endif
}

}  // namespace detail

// Bit pattern (sign in bit exponent_bits + mantissa_bits) of x rounded to nearest, ties to even. NaN maps to the
// format's canonical quiet NaN with x's sign; -0 stays -0. Independent of the floating-point rounding mode.
MC_HOST_DEVICE inline uint32_t round_to_minifloat(double x, MinifloatFormat format) {
  const int width = format.exponent_bits + format.mantissa_bits;
  const uint32_t sign = detail::sign_bit(x) ? (1u << width) : 0u;
  if (detail::is_nan(x)) return sign | format.nan_code;
  const uint32_t infinity_code = ((1u << format.exponent_bits) - 1u) << format.mantissa_bits;
  const uint32_t overflow_code = format.saturate ? format.max_finite_code : infinity_code;
  const double magnitude = detail::abs_value(x);
  if (detail::is_inf(magnitude)) return sign | overflow_code;
  if (magnitude == 0.0) return sign;

  const int bias = (1 << (format.exponent_bits - 1)) - 1;
  const int min_normal_exponent = 1 - bias;
  int frexp_exponent = 0;
  detail::split_exponent(magnitude, &frexp_exponent);  // magnitude = f * 2^e, f in [0.5, 1)
  int exponent = frexp_exponent - 1;
  if (exponent < min_normal_exponent) exponent = min_normal_exponent;  // subnormal range: fixed quantum

  // Significand in units of the target's quantum at this exponent (scaling by 2^k is exact).
  const double scaled = detail::scale_by_power_of_two(magnitude, format.mantissa_bits - exponent);
  const double whole = detail::round_down(scaled);
  const double fraction = scaled - whole;  // exact: both operands share the exponent range
  uint64_t significand = static_cast<uint64_t>(whole);
  if (fraction > 0.5 || (fraction == 0.5 && (significand & 1u))) ++significand;

  // For subnormals significand < 2^mantissa_bits and the exponent field comes out 0; a carry out of the
  // significand (2^(mantissa_bits+1)) moves into the exponent field by plain addition.
  const uint64_t code =
      (static_cast<uint64_t>(exponent - min_normal_exponent) << format.mantissa_bits) + significand;
  if (format.saturate ? code > format.max_finite_code : code >= infinity_code) return sign | overflow_code;
  return sign | static_cast<uint32_t>(code);
}

}  // namespace moecutlass
