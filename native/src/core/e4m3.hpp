// OCP FP8 E4M3FN codec: 1 sign, 4 exponent (bias 7), 3 mantissa bits; no infinities; NaN = S.1111.111;
// largest finite 448 (0x7E); smallest subnormal 2^-9.
//
// Encoding rounds to nearest even and saturates: every finite value or infinity beyond 448 becomes +-448 (the
// DeepSeek recipe clamps rather than producing NaN, and the quantizer relies on x/scale landing at most a rounding
// error above 448). NaN encodes as 0x7F with the sign kept; -0 stays 0x80.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/minifloat.hpp"

namespace moecutlass {

namespace detail {

constexpr double power_of_two(int exponent) {
  double value = 1.0;
  for (; exponent > 0; --exponent) value *= 2.0;
  for (; exponent < 0; ++exponent) value *= 0.5;
  return value;
}

constexpr double e4m3_value(unsigned code) {
  const unsigned exponent = (code >> 3) & 0xFu;
  const unsigned mantissa = code & 0x7u;
  if (exponent == 0xFu && mantissa == 0x7u) return std::numeric_limits<double>::quiet_NaN();
  const double magnitude = exponent == 0 ? mantissa * power_of_two(-9)
                                         : (8 + mantissa) * power_of_two(static_cast<int>(exponent) - 10);
  return (code & 0x80u) ? -magnitude : magnitude;
}

template <class T>
constexpr std::array<T, 256> make_e4m3_table() {
  std::array<T, 256> table{};
  for (unsigned code = 0; code < 256; ++code) table[code] = static_cast<T>(e4m3_value(code));
  return table;
}

}  // namespace detail

// Every e4m3 value is exact in both float and double.
inline constexpr std::array<float, 256> kE4m3ToFloat = detail::make_e4m3_table<float>();
inline constexpr std::array<double, 256> kE4m3ToDouble = detail::make_e4m3_table<double>();

inline constexpr float kE4m3Max = 448.0f;

// The table entries built from bits: both NaN codes give the positive quiet NaN 0x7FC00000 (as the table's
// static_cast of a double quiet NaN does), -0 (0x80) gives -0.0f.
MC_HOST_DEVICE inline float e4m3_to_float_computed(uint8_t code) {
  const uint32_t sign = static_cast<uint32_t>(code & 0x80u) << 24;
  const uint32_t exponent = (code >> 3) & 0xFu;
  const uint32_t mantissa = code & 0x7u;
  if (exponent == 0xFu && mantissa == 0x7u) return float_from_bits(0x7FC00000u);
  if (exponent == 0) {
    // Subnormal (or zero): mantissa * 2^-9, exact in fp32.
    return float_from_bits(float_bits(static_cast<float>(mantissa) * 0.001953125f) | sign);
  }
  // 2^(exponent-7) * (1 + mantissa/8): rebias 7 -> 127, mantissa to the top of fp32's 23 bits.
  return float_from_bits(sign | ((exponent + 120u) << 23) | (mantissa << 20));
}

MC_HOST_DEVICE inline float e4m3_to_float(uint8_t code) {
#if defined(__CUDA_ARCH__)
  return e4m3_to_float_computed(code);
#else
  return kE4m3ToFloat[code];
#endif
}

// Reference encoder for double inputs (exact single rounding).
MC_HOST_DEVICE inline uint8_t e4m3_from_double(double x) {
  return static_cast<uint8_t>(round_to_minifloat(x, e4m3_format()));
}

// Fast encoder for fp32 inputs (the quantizer's hot loop); bit-identical to e4m3_from_double((double)x).
MC_HOST_DEVICE inline uint8_t e4m3_from_float(float x) {
  const uint32_t bits = float_bits(x);
  const uint32_t sign = (bits >> 24) & 0x80u;
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return static_cast<uint8_t>(sign | 0x7Fu);  // NaN
  if (magnitude >= 0x43E00000u) return static_cast<uint8_t>(sign | 0x7Eu);  // >= 448 (incl. inf): saturate
  if (magnitude < 0x3C800000u) {
    // Below 2^-6: subnormal quantum 2^-9. Scaling by 2^9 is exact, so the rounding below is the only one.
    const float value = float_from_bits(magnitude);
    const float scaled = value * 512.0f;
    const float whole = detail::round_down(scaled);
    const float fraction = scaled - whole;
    uint32_t significand = static_cast<uint32_t>(whole);
    if (fraction > 0.5f || (fraction == 0.5f && (significand & 1u))) ++significand;
    return static_cast<uint8_t>(sign | significand);  // 8 is the smallest normal, code 0x08
  }
  // Normal: rebias the exponent (127 -> 7) and round the 23-bit mantissa to 3 bits; a carry propagates into
  // the exponent field by plain addition.
  uint32_t code = (((magnitude >> 23) - 120u) << 3) | ((magnitude >> 20) & 0x7u);
  const uint32_t rest = magnitude & 0xFFFFFu;
  if (rest > 0x80000u || (rest == 0x80000u && (code & 1u))) ++code;
  return static_cast<uint8_t>(sign | (code > 0x7Eu ? 0x7Eu : code));
}

// e4m3_from_float with every case computed and the right one selected: no data-dependent branch, so the lanes of a
// GPU warp never split over it (ncu on the H200 found about 18 of 32 lanes active in the quantizers with the
// branching encoder and per-element division). Bit-identical to e4m3_from_float (test_codecs.cpp compares them).
MC_HOST_DEVICE inline uint8_t e4m3_from_float_select(float x) {
  const uint32_t bits = float_bits(x);
  const uint32_t sign = (bits >> 24) & 0x80u;
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  // Below 2^-6: x * 2^9 is exact and at most 8, rounded to the nearest even integer (clamping the input keeps the
  // conversion in range for the magnitudes that take another case).
  const float scaled = float_from_bits(magnitude < 0x3C800000u ? magnitude : 0x3C800000u) * 512.0f;
#ifdef __CUDA_ARCH__
  const uint32_t subnormal = __float2uint_rn(scaled);
#else
  const float whole = detail::round_down(scaled);
  const float fraction = scaled - whole;
  const uint32_t truncated = static_cast<uint32_t>(whole);
  const uint32_t subnormal = truncated + ((fraction > 0.5f || (fraction == 0.5f && (truncated & 1u))) ? 1u : 0u);
#endif
  // Normal (meaningless below 2^-6, where it is not selected): rebias, round the mantissa to 3 bits, carry.
  uint32_t code = (((magnitude >> 23) - 120u) << 3) | ((magnitude >> 20) & 0x7u);
  const uint32_t rest = magnitude & 0xFFFFFu;
  code += (rest > 0x80000u || (rest == 0x80000u && (code & 1u))) ? 1u : 0u;
  code = code > 0x7Eu ? 0x7Eu : code;
  uint32_t result = magnitude < 0x3C800000u ? subnormal : code;
  result = magnitude >= 0x43E00000u ? 0x7Eu : result;  // >= 448 (incl. inf): saturate
  result = magnitude > 0x7F800000u ? 0x7Fu : result;   // NaN
  return static_cast<uint8_t>(sign | result);
}

}  // namespace moecutlass
