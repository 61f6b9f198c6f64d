// The CPU reference of the FP8 -> bf16 dequantization (cpu/dequantize.hpp) against values worked out here without
// its code: every code's exact e4m3 value (core/e4m3.hpp's table is not used; the value is rebuilt from the bits),
// scales chosen so that the fp32 product is exact, and the bf16 rounding done here with integer arithmetic on the
// exact value. Each block gets its own scale, so a wrong scale index shows as a wrong power of two.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/dequantize.hpp"

namespace moecutlass {
namespace {

// e4m3 value from the bits: 1 sign, 4 exponent (bias 7), 3 mantissa; S.1111.111 is NaN.
double e4m3_exact(uint8_t code) {
  const int exponent = (code >> 3) & 0xF;
  const int mantissa = code & 0x7;
  if (exponent == 0xF && mantissa == 0x7) return std::nan("");
  const double magnitude = exponent == 0 ? std::ldexp(mantissa, -9) : std::ldexp(8 + mantissa, exponent - 10);
  return (code & 0x80) ? -magnitude : magnitude;
}

// bf16 nearest-even of a value exact in fp32 (integer rounding of the fp32 bits), NaN -> any NaN pattern.
uint16_t bf16_of_exact(double value) {
  const float f = static_cast<float>(value);  // exact by the callers' choice of scales
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint32_t lower = bits & 0xFFFFu;
  uint32_t upper = bits >> 16;
  if (lower > 0x8000u || (lower == 0x8000u && (upper & 1u))) ++upper;
  return static_cast<uint16_t>(upper);
}

bool bf16_is_nan(uint16_t h) { return (h & 0x7F80u) == 0x7F80u && (h & 0x7Fu) != 0; }

void expect_bf16(uint16_t actual, double exact, const std::string& where) {
  if (std::isnan(exact)) {
    EXPECT_TRUE(bf16_is_nan(actual)) << where;
  } else {
    EXPECT_EQ(actual, bf16_of_exact(exact)) << where << ": exact " << exact;
  }
}

TEST(Dequantize, ActivationsUseTheirRowAndKBlockScale) {
  // k = 272: blocks of 128, 128 and 16 (a partial last block). Scale of (row r, block b) = 2^(r - 2b) * 1.5.
  const int64_t rows = 5, k = 272, k_blocks = 3;
  std::vector<uint8_t> codes(static_cast<size_t>(rows * k));
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>((i * 37 + 11) & 0xFF);
  std::vector<float> scales(static_cast<size_t>(rows * k_blocks));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < k_blocks; ++b) scales[r * k_blocks + b] = std::ldexp(1.5f, static_cast<int>(r - 2 * b));
  }
  std::vector<uint16_t> out(codes.size(), 0xDEAD);
  dequantize_activations_bf16(codes.data(), scales.data(), rows, k, out.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      const double scale = std::ldexp(1.5, static_cast<int>(r - 2 * (c / 128)));
      expect_bf16(out[r * k + c], e4m3_exact(codes[r * k + c]) * scale,
                  "row " + std::to_string(r) + " col " + std::to_string(c));
    }
  }
}

TEST(Dequantize, WeightsUseTheirExpertNBlockAndKBlockScale) {
  // n = 136 (blocks of 128 and 8 rows), k = 144 (128 and 16 columns), 3 experts.
  const int64_t experts = 3, n = 136, k = 144, n_blocks = 2, k_blocks = 2;
  std::vector<uint8_t> codes(static_cast<size_t>(experts * n * k));
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>((i * 101 + 3) & 0xFF);
  std::vector<float> scales(static_cast<size_t>(experts * n_blocks * k_blocks));
  auto scale_of = [](int64_t e, int64_t nb, int64_t kb) {
    return std::ldexp(1.25, static_cast<int>(3 * e - nb + 4 * kb - 6));
  };
  for (int64_t e = 0; e < experts; ++e) {
    for (int64_t nb = 0; nb < n_blocks; ++nb) {
      for (int64_t kb = 0; kb < k_blocks; ++kb) {
        scales[(e * n_blocks + nb) * k_blocks + kb] = static_cast<float>(scale_of(e, nb, kb));
      }
    }
  }
  std::vector<uint16_t> out(codes.size(), 0xDEAD);
  dequantize_weights_bf16(codes.data(), scales.data(), experts, n, k, out.data());
  for (int64_t e = 0; e < experts; ++e) {
    for (int64_t row = 0; row < n; ++row) {
      for (int64_t c = 0; c < k; ++c) {
        const int64_t i = (e * n + row) * k + c;
        expect_bf16(out[i], e4m3_exact(codes[i]) * scale_of(e, row / 128, c / 128),
                    "expert " + std::to_string(e) + " row " + std::to_string(row) + " col " + std::to_string(c));
      }
    }
  }
}

TEST(Dequantize, RoundsTheProductToNearestEvenBf16) {
  // Scales of 9 to 12 significant bits: the product (at most 16 bits) is exact in fp32 but mostly not in bf16
  // (8 bits), so most elements exercise the bf16 rounding, some of them exact ties (e.g. 9/8 * (1 + 2^-7) has
  // its ninth significant bit set and nothing below).
  const float trial_scales[] = {1.0078125f, 1.01171875f, 1.99951171875f, 0.7548828125f, 3.0009765625f};
  const int64_t k = 128;
  for (const float scale : trial_scales) {
    std::vector<uint8_t> codes(512);  // every code twice: 4 rows of 128
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i & 0xFF);
    const int64_t rows = static_cast<int64_t>(codes.size()) / k;
    std::vector<float> scales(static_cast<size_t>(rows), scale);
    std::vector<uint16_t> out(codes.size());
    dequantize_activations_bf16(codes.data(), scales.data(), rows, k, out.data());
    int64_t rounded = 0;
    for (size_t i = 0; i < codes.size(); ++i) {
      const double exact = e4m3_exact(codes[i]) * static_cast<double>(scale);
      expect_bf16(out[i], exact, "code " + std::to_string(codes[i]) + " scale " + std::to_string(scale));
      if (!std::isnan(exact) && static_cast<double>(static_cast<float>(exact)) == exact) {
        uint32_t bits;
        const float f = static_cast<float>(exact);
        std::memcpy(&bits, &f, sizeof bits);
        if ((bits & 0xFFFFu) != 0) ++rounded;
      }
    }
    EXPECT_GT(rounded, 100) << "scale " << scale << " should need bf16 rounding for most codes";
  }
}

TEST(Dequantize, ZeroAndNegativeZeroAndNaNCodes) {
  const uint8_t codes[16] = {0x00, 0x80, 0x7F, 0xFF, 0x01, 0x81, 0x7E, 0xFE, 0, 0, 0, 0, 0, 0, 0, 0};
  const float scale = 3.0f;
  uint16_t out[16];
  dequantize_activations_bf16(codes, &scale, 1, 16, out);
  EXPECT_EQ(out[0], 0x0000);
  EXPECT_EQ(out[1], 0x8000);  // -0 * 3 = -0
  EXPECT_TRUE(bf16_is_nan(out[2]));
  EXPECT_TRUE(bf16_is_nan(out[3]));
  expect_bf16(out[4], std::ldexp(1.0, -9) * 3.0, "smallest subnormal");
  expect_bf16(out[5], -std::ldexp(1.0, -9) * 3.0, "negative smallest subnormal");
  expect_bf16(out[6], 448.0 * 3.0, "largest");
  expect_bf16(out[7], -448.0 * 3.0, "negative largest");
}

}  // namespace
}  // namespace moecutlass
