// e4m3, bf16 and fp16 codecs: exhaustive round trips, rounding ties, saturation/overflow, subnormals, signed zero,
// NaN, and the fast fp32 encoders against the exact double-input reference encoder.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/e4m3.hpp"
#include "core/float16.hpp"
#include "core/minifloat.hpp"

using namespace moecutlass;

namespace {

bool is_e4m3_nan(uint8_t code) { return (code & 0x7F) == 0x7F; }

// Visits a deterministic sample of all 2^32 fp32 bit patterns (every pattern with a prime stride, plus the
// neighbourhood of powers of two where exponents change).
template <class F>
void for_sampled_floats(F&& f) {
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 251) f(float_from_bits(static_cast<uint32_t>(bits)));
  for (int e = -40; e <= 40; ++e) {
    const float p = std::ldexp(1.0f, e);
    float x = p;
    for (int i = 0; i < 64; ++i) x = std::nextafter(x, 0.0f);
    for (int i = 0; i < 128; ++i, x = std::nextafter(x, INFINITY)) {
      f(x);
      f(-x);
    }
  }
}

}  // namespace

TEST(E4m3, DecodesKnownCodes) {
  EXPECT_EQ(e4m3_to_float(0x00), 0.0f);
  EXPECT_FALSE(std::signbit(e4m3_to_float(0x00)));
  EXPECT_EQ(e4m3_to_float(0x80), 0.0f);
  EXPECT_TRUE(std::signbit(e4m3_to_float(0x80)));
  EXPECT_EQ(e4m3_to_float(0x01), std::ldexp(1.0f, -9));  // smallest subnormal
  EXPECT_EQ(e4m3_to_float(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3_to_float(0x08), std::ldexp(1.0f, -6));  // smallest normal
  EXPECT_EQ(e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(e4m3_to_float(0x39), 1.125f);
  EXPECT_EQ(e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_float(0xFE), -448.0f);
  EXPECT_EQ(e4m3_to_float(0x78), 256.0f);  // exponent field 15 holds normal numbers in E4M3FN
  EXPECT_TRUE(std::isnan(e4m3_to_float(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3_to_float(0xFF)));
  EXPECT_EQ(kE4m3ToDouble[0x5A], static_cast<double>(kE4m3ToFloat[0x5A]));
}

TEST(E4m3, EveryCodeRoundTrips) {
  int checked = 0;
  for (int code = 0; code < 256; ++code) {
    const auto c = static_cast<uint8_t>(code);
    if (is_e4m3_nan(c)) continue;
    EXPECT_EQ(e4m3_from_float(e4m3_to_float(c)), c) << "code " << code;
    EXPECT_EQ(e4m3_from_double(kE4m3ToDouble[c]), c) << "code " << code;
    ++checked;
  }
  EXPECT_EQ(checked, 254);
}

TEST(E4m3, DecodedValuesAreStrictlyIncreasing) {
  for (int code = 1; code <= 0x7E; ++code) {
    EXPECT_LT(e4m3_to_float(static_cast<uint8_t>(code - 1)), e4m3_to_float(static_cast<uint8_t>(code)));
  }
}

TEST(E4m3, RoundsTiesToEven) {
  EXPECT_EQ(e4m3_from_float(1.0625f), 0x38);  // between 1.0 (even) and 1.125
  EXPECT_EQ(e4m3_from_float(1.1875f), 0x3A);  // between 1.125 and 1.25 (even)
  EXPECT_EQ(e4m3_from_float(std::nextafter(1.0625f, 2.0f)), 0x39);
  EXPECT_EQ(e4m3_from_float(std::nextafter(1.1875f, 0.0f)), 0x39);
  EXPECT_EQ(e4m3_from_float(-1.0625f), 0xB8);
  const float q = std::ldexp(1.0f, -9);  // subnormal quantum
  EXPECT_EQ(e4m3_from_float(0.5f * q), 0x00);
  EXPECT_EQ(e4m3_from_float(1.5f * q), 0x02);
  EXPECT_EQ(e4m3_from_float(2.5f * q), 0x02);
  EXPECT_EQ(e4m3_from_float(7.5f * q), 0x08);  // rounds up into the smallest normal
  EXPECT_EQ(e4m3_from_float(std::nextafter(0.5f * q, 1.0f)), 0x01);
  EXPECT_EQ(e4m3_from_float(std::ldexp(1.0f, -11)), 0x00);
  EXPECT_EQ(e4m3_from_float(416.0f + 16.0f), 0x7E);  // tie between 416 and 448 (even)
}

TEST(E4m3, EveryMidpointAndItsNeighboursMatchTheReference) {
  for (int code = 0; code < 0x7E; ++code) {
    const double lo = kE4m3ToDouble[code];
    const double hi = kE4m3ToDouble[code + 1];
    const auto mid = static_cast<float>((lo + hi) / 2);  // exact in fp32
    for (float x : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY)}) {
      EXPECT_EQ(e4m3_from_float(x), e4m3_from_double(x)) << x;
      EXPECT_EQ(e4m3_from_float(-x), e4m3_from_double(-x)) << -x;
    }
    const uint8_t even = (code % 2 == 0) ? code : code + 1;
    EXPECT_EQ(e4m3_from_double((lo + hi) / 2), even) << "midpoint of " << lo << " and " << hi;
  }
}

TEST(E4m3, SaturatesInsteadOfOverflowing) {
  EXPECT_EQ(e4m3_from_float(448.0f), 0x7E);
  EXPECT_EQ(e4m3_from_float(449.0f), 0x7E);
  EXPECT_EQ(e4m3_from_float(464.0f), 0x7E);
  EXPECT_EQ(e4m3_from_float(1e10f), 0x7E);
  EXPECT_EQ(e4m3_from_float(FLT_MAX), 0x7E);
  EXPECT_EQ(e4m3_from_float(INFINITY), 0x7E);
  EXPECT_EQ(e4m3_from_float(-INFINITY), 0xFE);
  EXPECT_EQ(e4m3_from_float(-1e10f), 0xFE);
  EXPECT_EQ(e4m3_from_double(1e300), 0x7E);
  EXPECT_EQ(e4m3_from_double(-INFINITY), 0xFE);
}

TEST(E4m3, KeepsNegativeZeroAndNaNSign) {
  EXPECT_EQ(e4m3_from_float(0.0f), 0x00);
  EXPECT_EQ(e4m3_from_float(-0.0f), 0x80);
  EXPECT_EQ(e4m3_from_float(-std::ldexp(1.0f, -12)), 0x80);  // underflows to -0
  EXPECT_EQ(e4m3_from_float(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(e4m3_from_float(-std::numeric_limits<float>::quiet_NaN()), 0xFF);
  EXPECT_EQ(e4m3_from_double(-std::numeric_limits<double>::quiet_NaN()), 0xFF);
  EXPECT_EQ(e4m3_from_float(std::numeric_limits<float>::denorm_min()), 0x00);
}

TEST(E4m3, FastFloatEncoderMatchesReference) {
  int64_t checked = 0;
  for_sampled_floats([&](float x) {
    const uint8_t fast = e4m3_from_float(x);
    const uint8_t reference = e4m3_from_double(static_cast<double>(x));
    if (fast != reference) {
      ADD_FAILURE() << "x = " << x << " (bits " << std::hex << float_bits(x) << "): fast " << int(fast)
                    << " reference " << int(reference);
    }
    ++checked;
  });
  EXPECT_GT(checked, 17000000);
}

TEST(Bf16, EveryNonNaNPatternRoundTrips) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float x = bf16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(x)) {
      EXPECT_TRUE(std::isnan(bf16_to_float(bf16_from_float(x)))) << h;
      continue;
    }
    ASSERT_EQ(bf16_from_float(x), h);
    ASSERT_EQ(bf16_from_double(x), h);
  }
}

TEST(Bf16, RoundsToNearestEvenAndOverflowsToInfinity) {
  const float ulp = std::ldexp(1.0f, -7);
  EXPECT_EQ(bf16_from_float(1.0f + ulp / 2), 0x3F80);      // tie -> even (1.0)
  EXPECT_EQ(bf16_from_float(1.0f + 3 * ulp / 2), 0x3F82);  // tie -> even (1 + 2 ulp)
  EXPECT_EQ(bf16_from_float(std::nextafter(1.0f + ulp / 2, 2.0f)), 0x3F81);
  EXPECT_EQ(bf16_from_float(FLT_MAX), 0x7F80);
  EXPECT_EQ(bf16_from_float(-INFINITY), 0xFF80);
  EXPECT_EQ(bf16_from_float(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(bf16_to_float(bf16_from_float(std::numeric_limits<float>::quiet_NaN()))));
  // A signalling NaN whose payload sits only in the low bits must not truncate to infinity.
  EXPECT_TRUE(std::isnan(bf16_to_float(bf16_from_float(float_from_bits(0x7F800001u)))));
}

TEST(Bf16, DoubleInputIsRoundedOnceNotThroughFloat) {
  // Just above the tie between 1.0 and 1 + 2^-7; the excess (2^-30) is lost when going through fp32 first, which
  // would then round the exact tie down to even.
  const double x = 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -30);
  EXPECT_EQ(bf16_from_double(x), 0x3F81);
  EXPECT_EQ(bf16_from_float(static_cast<float>(x)), 0x3F80);
}

TEST(Bf16, FastFloatEncoderMatchesReference) {
  for_sampled_floats([&](float x) {
    const uint16_t fast = bf16_from_float(x);
    const uint16_t reference = bf16_from_double(x);
    if (std::isnan(x)) {
      if (!std::isnan(bf16_to_float(fast))) ADD_FAILURE() << "NaN lost";
    } else if (fast != reference) {
      ADD_FAILURE() << "x = " << x << ": fast " << fast << " reference " << reference;
    }
  });
}

TEST(Fp16, EveryNonNaNPatternRoundTripsAndDecodesExactly) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const float x = fp16_to_float(static_cast<uint16_t>(h));
    const uint32_t exponent = (h >> 10) & 0x1F;
    const uint32_t mantissa = h & 0x3FF;
    if (exponent == 0x1F && mantissa != 0) {
      EXPECT_TRUE(std::isnan(x)) << h;
      EXPECT_TRUE(std::isnan(fp16_to_float(fp16_from_float(x)))) << h;
      continue;
    }
    double expected = exponent == 0 ? std::ldexp(static_cast<double>(mantissa), -24)
                      : exponent == 0x1F ? INFINITY
                                         : std::ldexp(1.0 + mantissa / 1024.0, static_cast<int>(exponent) - 15);
    if (h & 0x8000) expected = -expected;
    ASSERT_EQ(static_cast<double>(x), expected) << h;
    ASSERT_EQ(std::signbit(x), (h & 0x8000) != 0) << h;
    ASSERT_EQ(fp16_from_float(x), h);
    ASSERT_EQ(fp16_from_double(x), h);
  }
}

TEST(Fp16, RoundsToNearestEvenOverflowsAndHandlesSubnormals) {
  EXPECT_EQ(fp16_from_float(65504.0f), 0x7BFF);
  EXPECT_EQ(fp16_from_float(65519.0f), 0x7BFF);
  EXPECT_EQ(fp16_from_float(65520.0f), 0x7C00);  // tie above the largest finite rounds to infinity
  EXPECT_EQ(fp16_from_float(1e6f), 0x7C00);
  EXPECT_EQ(fp16_from_float(-INFINITY), 0xFC00);
  const float q = std::ldexp(1.0f, -24);
  EXPECT_EQ(fp16_from_float(q), 0x0001);
  EXPECT_EQ(fp16_from_float(q / 2), 0x0000);      // tie -> even (0)
  EXPECT_EQ(fp16_from_float(3 * q / 2), 0x0002);  // tie -> even (2)
  EXPECT_EQ(fp16_from_float(-q / 4), 0x8000);
  EXPECT_EQ(fp16_from_float(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie -> even (1.0)
  EXPECT_EQ(fp16_from_float(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  EXPECT_EQ(fp16_from_float(std::numeric_limits<float>::quiet_NaN()) & 0x7E00, 0x7E00);
}

TEST(Fp16, FastFloatEncoderMatchesReference) {
  for_sampled_floats([&](float x) {
    const uint16_t fast = fp16_from_float(x);
    const uint16_t reference = fp16_from_double(x);
    if (std::isnan(x)) {
      if (!std::isnan(fp16_to_float(fast))) ADD_FAILURE() << "NaN lost";
    } else if (fast != reference) {
      ADD_FAILURE() << "x = " << x << ": fast " << fast << " reference " << reference;
    }
  });
}

TEST(E4m3Codec, SelectEncoderMatchesTheBranchingEncoder) {
  // The GPU quantizers encode with e4m3_from_float_select; the CPU reference with e4m3_from_float. Both were
  // compared on all 2^32 patterns once (identical); here a deterministic sample plus every e4m3 rounding
  // boundary (each midpoint between neighbouring codes and its float neighbours).
  for_sampled_floats([](float x) { ASSERT_EQ(e4m3_from_float_select(x), e4m3_from_float(x)) << std::hexfloat << x; });
  for (uint32_t code = 0; code < 0x7E; ++code) {
    const float midpoint = (kE4m3ToFloat[code] + kE4m3ToFloat[code + 1]) / 2.0f;  // exact: a 4-bit significand
    float x = midpoint;
    for (int i = 0; i < 4; ++i) x = std::nextafter(x, 0.0f);
    for (int i = 0; i < 9; ++i, x = std::nextafter(x, INFINITY)) {
      ASSERT_EQ(e4m3_from_float_select(x), e4m3_from_float(x)) << std::hexfloat << x;
      ASSERT_EQ(e4m3_from_float_select(-x), e4m3_from_float(-x)) << std::hexfloat << -x;
    }
  }
  for (const float x : {0.0f, -0.0f, 448.0f, 464.0f, 465.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MAX, FLT_TRUE_MIN}) {
    EXPECT_EQ(e4m3_from_float_select(x), e4m3_from_float(x)) << std::hexfloat << x;
  }
}
