// bf16 and IEEE fp16 codecs (round to nearest even; NaN stays NaN; fp16 overflows to infinity, as IEEE does).
//
// The fp32 encoders are the fast paths used by conversion and quantization; the double encoders (via
// round_to_minifloat) round the reference GEMM's double accumulators once, without passing through fp32.
// Everything here is host+device (core/host_device.hpp): the CUDA kernels run this very code.
#pragma once

#include <cstdint>

#include "core/host_device.hpp"
#include "core/minifloat.hpp"

namespace moecutlass {

MC_HOST_DEVICE inline float bf16_to_float(uint16_t h) { return float_from_bits(static_cast<uint32_t>(h) << 16); }

MC_HOST_DEVICE inline uint16_t bf16_from_float(float x) {
  const uint32_t bits = float_bits(x);
  // NaN: keep sign and the top payload bits, force the quiet bit so truncation cannot turn it into infinity.
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  // Adding 0x7FFF (+1 when the kept lsb is odd) rounds to nearest even; overflow carries into infinity.
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

MC_HOST_DEVICE inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {
    // Subnormal (or zero): mantissa * 2^-24, exact in fp32.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return float_from_bits(float_bits(magnitude) | sign);
  }
  if (exponent == 0x1Fu) return float_from_bits(sign | 0x7F800000u | (mantissa << 13));
  return float_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

MC_HOST_DEVICE inline uint16_t fp16_from_float(float x) {
  const uint32_t bits = float_bits(x);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
  if (magnitude >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to inf
  if (magnitude < 0x38800000u) {
    // Below 2^-14: subnormal quantum 2^-24; the scaling is exact.
    const float scaled = float_from_bits(magnitude) * 16777216.0f;
    const float whole = detail::round_down(scaled);
    const float fraction = scaled - whole;
    uint32_t significand = static_cast<uint32_t>(whole);
    if (fraction > 0.5f || (fraction == 0.5f && (significand & 1u))) ++significand;
    return static_cast<uint16_t>(sign | significand);  // 0x400 is the smallest normal
  }
  uint32_t code = (((magnitude >> 23) - 112u) << 10) | ((magnitude >> 13) & 0x3FFu);
  const uint32_t rest = magnitude & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (code & 1u))) ++code;
  return static_cast<uint16_t>(sign | code);
}

MC_HOST_DEVICE inline uint16_t bf16_from_double(double x) {
  return static_cast<uint16_t>(round_to_minifloat(x, bf16_format()));
}
MC_HOST_DEVICE inline uint16_t fp16_from_double(double x) {
  return static_cast<uint16_t>(round_to_minifloat(x, fp16_format()));
}

}  // namespace moecutlass
