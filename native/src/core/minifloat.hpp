// Exact round-to-nearest-even from double to the small float formats used by the library (e4m3, bf16, fp16).
//
// This is the slow, obviously-correct path: one routine parameterised by the format, used where the input is a
// double (the CPU reference GEMM rounds its double accumulators once, directly, so there is no double rounding
// through fp32) and as the oracle the fast fp32 bit-twiddling encoders are tested against.
#pragma once

#include <cmath>
#include <cstdint>

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

inline constexpr MinifloatFormat kE4m3Format{4, 3, true, 0x7Eu, 0x7Fu};
inline constexpr MinifloatFormat kBf16Format{8, 7, false, 0x7F7Fu, 0x7FC0u};
inline constexpr MinifloatFormat kFp16Format{5, 10, false, 0x7BFFu, 0x7E00u};

// Bit pattern (sign in bit exponent_bits + mantissa_bits) of x rounded to nearest, ties to even. NaN maps to the
// format's canonical quiet NaN with x's sign; -0 stays -0. Independent of the floating-point rounding mode.
inline uint32_t round_to_minifloat(double x, const MinifloatFormat& format) {
  const int width = format.exponent_bits + format.mantissa_bits;
  const uint32_t sign = std::signbit(x) ? (1u << width) : 0u;
  if (std::isnan(x)) return sign | format.nan_code;
  const uint32_t infinity_code = ((1u << format.exponent_bits) - 1u) << format.mantissa_bits;
  const uint32_t overflow_code = format.saturate ? format.max_finite_code : infinity_code;
  const double magnitude = std::fabs(x);
  if (std::isinf(magnitude)) return sign | overflow_code;
  if (magnitude == 0.0) return sign;

  const int bias = (1 << (format.exponent_bits - 1)) - 1;
  const int min_normal_exponent = 1 - bias;
  int frexp_exponent = 0;
  std::frexp(magnitude, &frexp_exponent);  // magnitude = f * 2^e, f in [0.5, 1)
  int exponent = frexp_exponent - 1;
  if (exponent < min_normal_exponent) exponent = min_normal_exponent;  // subnormal range: fixed quantum

  // Significand in units of the target's quantum at this exponent (scaling by 2^k is exact).
  const double scaled = std::ldexp(magnitude, format.mantissa_bits - exponent);
  const double whole = std::floor(scaled);
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
