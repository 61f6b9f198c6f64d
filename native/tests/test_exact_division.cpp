// divide_by_reciprocal (core/exact_division.hpp), the GPU quantizers' per-block division, against IEEE division:
// for every divisor a quantizer can form from a block's amax (amax / 448, kept where reciprocal_division_exact),
// the e4m3 code of the quotient is the same, and the quotient itself is bit-identical wherever it is at least 2^-30
// (below that both codes are zero: the two may differ in the last bits of a quotient whose remainder underflows).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#include "core/e4m3.hpp"
#include "core/exact_division.hpp"

using namespace moecutlass;

namespace {

uint8_t quotient_code(float quotient) { return std::isnan(quotient) ? uint8_t{0x7F} : e4m3_from_float(quotient); }

void expect_same_division(float x, float d, float reciprocal) {
  const float ieee = x / d;
  const float fast = divide_by_reciprocal(x, d, reciprocal);
  ASSERT_EQ(quotient_code(fast), quotient_code(ieee)) << std::hexfloat << x << " / " << d;
  if (std::fabs(ieee) >= 0x1p-30f) {
    ASSERT_EQ(float_bits(fast), float_bits(ieee)) << std::hexfloat << x << " / " << d;
  }
}

}  // namespace

TEST(ExactDivision, DomainIsFiniteDivisorsFrom2ToTheMinus80) {
  EXPECT_TRUE(reciprocal_division_exact(1.0f));
  EXPECT_TRUE(reciprocal_division_exact(0x1p-80f));
  EXPECT_TRUE(reciprocal_division_exact(3.40282347e38f));
  EXPECT_FALSE(reciprocal_division_exact(0x1.fffffep-81f));
  EXPECT_FALSE(reciprocal_division_exact(0.0f));
  EXPECT_FALSE(reciprocal_division_exact(INFINITY));
  EXPECT_FALSE(reciprocal_division_exact(NAN));
  EXPECT_FALSE(reciprocal_division_exact(-1.0f));
}

TEST(ExactDivision, SignedZerosNaNAndExactQuotients) {
  const float d = 0.75f / 448.0f;
  const float y = 1.0f / d;
  EXPECT_EQ(float_bits(divide_by_reciprocal(-0.0f, d, y)), float_bits(-0.0f));
  EXPECT_EQ(float_bits(divide_by_reciprocal(0.0f, d, y)), float_bits(0.0f));
  EXPECT_TRUE(std::isnan(divide_by_reciprocal(NAN, d, y)));
  EXPECT_EQ(divide_by_reciprocal(6.0f, 2.0f, 0.5f), 3.0f);
  EXPECT_EQ(divide_by_reciprocal(1.0f, 3.0f, 1.0f / 3.0f), 1.0f / 3.0f);
}

TEST(ExactDivision, EveryBf16InputAgainstSampledBlockScales) {
  std::mt19937 rng(20261203);
  std::uniform_int_distribution<uint32_t> amax_bits(0x0D800000u, 0x7F7FFFFFu);  // about 2^-100 .. FLT_MAX
  for (int s = 0; s < 48; ++s) {
    const float amax = float_from_bits(amax_bits(rng) & 0xFFFF0000u);  // a bf16 block's amax
    const float d = amax / 448.0f;
    if (!reciprocal_division_exact(d)) continue;
    const float y = 1.0f / d;
    for (uint32_t h = 0; h < 0x10000u; ++h) {
      const float x = float_from_bits(h << 16);
      if (std::fabs(x) <= amax || std::isnan(x)) expect_same_division(x, d, y);
    }
  }
}

TEST(ExactDivision, RandomFp32InputsAgainstRandomScales) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<uint32_t> amax_bits(0x0D800000u, 0x7F7FFFFFu);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  for (int s = 0; s < 400; ++s) {
    const uint32_t a = amax_bits(rng);
    const float amax = float_from_bits(a);
    const float d = amax / 448.0f;
    if (!reciprocal_division_exact(d)) continue;
    const float y = 1.0f / d;
    expect_same_division(amax, d, y);
    expect_same_division(-amax, d, y);
    for (int i = 0; i < 2000; ++i) {
      // Uniform in value, and uniform in bit pattern below amax (every magnitude down to the subnormals).
      expect_same_division(static_cast<float>(unit(rng) * amax), d, y);
      const uint32_t bits = static_cast<uint32_t>(rng() % a) | (static_cast<uint32_t>(rng()) & 0x80000000u);
      expect_same_division(float_from_bits(bits), d, y);
    }
  }
}
