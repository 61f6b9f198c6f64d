// Correctly rounded fp32 division from the divisor's correctly rounded reciprocal (Markstein): with y = RN(1/d),
// q0 = RN(x * y) is within one ulp of x / d, the remainder r = x - d * q0 is exact (one fused multiply-add), and
// RN(q0 + r * y) is RN(x / d). The quantizers divide a whole 1x128 (or 128x128) block by one scale, so one
// reciprocal per block turns each element's IEEE division (reciprocal, refinement, range check and a slow-path
// branch on a GPU) into a multiply and two fused multiply-adds.
//
// The identity needs the remainder to stay exact: no overflow, and no underflow where it matters. kMinReciprocalDivisor
// keeps the divisor in the range where that holds for every quotient that can reach an e4m3 code other than zero
// (|x / d| >= 2^-11 implies |x| >= 2^-91, far above the subnormal range); callers divide by smaller (or
// non-finite) divisors with IEEE division. A zero remainder returns q0 itself, which is exact then and keeps the
// sign of a zero quotient (-0 / d is -0). test_exact_division.cpp checks the identity against IEEE division.
#pragma once

#include <cmath>

#include "core/host_device.hpp"

namespace moecutlass {

inline constexpr float kMinReciprocalDivisor = 0x1p-80f;

// Whether divide_by_reciprocal is exact for this divisor (a finite d in [2^-80, FLT_MAX]).
MC_HOST_DEVICE inline bool reciprocal_division_exact(float d) {
  return d >= kMinReciprocalDivisor && d <= 3.40282347e38f;
}

// RN(x / d) for d with reciprocal_division_exact(d), given reciprocal = RN(1 / d).
MC_HOST_DEVICE inline float divide_by_reciprocal(float x, float d, float reciprocal) {
#ifdef __CUDA_ARCH__
  const float q0 = __fmul_rn(x, reciprocal);
  const float r = __fmaf_rn(-d, q0, x);
  return r == 0.0f ? q0 : __fmaf_rn(r, reciprocal, q0);
#else
  const float q0 = x * reciprocal;
  const float r = std::fma(-d, q0, x);
  return r == 0.0f ? q0 : std::fma(r, reciprocal, q0);
#endif
}

}  // namespace moecutlass
