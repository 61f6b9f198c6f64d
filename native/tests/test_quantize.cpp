// FP8 quantizers on the CPU backend: scale math on known blocks (full, partial, all-zero), the saturation of the
// block maximum, input dtypes, non-finite inputs, weight block indexing, and argument validation.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/e4m3.hpp"
#include "core/float16.hpp"
#include "test_support.hpp"

using namespace moecutlass;
using mctest::Context;

namespace {

struct ActivationResult {
  std::vector<uint8_t> q;
  std::vector<float> scales;
};

ActivationResult quantize_activations(Context& context, const std::vector<float>& input, int32_t rows, int32_t cols) {
  auto* in = context.alloc_array<float>(static_cast<int64_t>(input.size()));
  std::copy(input.begin(), input.end(), in);
  const int64_t blocks = (cols + 127) / 128;
  auto* out = context.alloc_array<uint8_t>(int64_t{rows} * cols);
  auto* scales = context.alloc_array<float>(rows * blocks);
  EXPECT_EQ(mc_quantize_activations_async(context, in, MC_DTYPE_FP32, rows, cols, out, scales, nullptr),
            MC_STATUS_OK)
      << mctest::last_error();
  return {std::vector<uint8_t>(out, out + int64_t{rows} * cols), std::vector<float>(scales, scales + rows * blocks)};
}

}  // namespace

TEST(QuantizeActivations, ScalesAreBlockAmaxOver448IncludingPartialAndZeroBlocks) {
  Context context(2);
  const int32_t rows = 3;
  const int32_t cols = 128 + 128 + 16;  // two full blocks and a partial one
  std::vector<float> x(rows * cols);
  for (int32_t r = 0; r < rows; ++r) {
    for (int32_t c = 0; c < cols; ++c) x[r * cols + c] = 0.01f * static_cast<float>((c * 7 + r * 13) % 50) - 0.2f;
  }
  x[0 * cols + 5] = -3.5f;          // row 0, block 0 amax (negative: amax uses |x|)
  x[0 * cols + 200] = 10.0f;        // row 0, block 1
  x[0 * cols + 260] = 0.75f;        // row 0, block 2 (partial)
  for (int32_t c = 128; c < 256; ++c) x[1 * cols + c] = 0.0f;  // row 1, block 1: all zero
  x[2 * cols + 271] = -1000.0f;     // row 2, last column of the partial block

  const ActivationResult result = quantize_activations(context, x, rows, cols);
  ASSERT_EQ(result.scales.size(), 9u);
  EXPECT_EQ(result.scales[0], 3.5f / 448.0f);
  EXPECT_EQ(result.scales[1], 10.0f / 448.0f);
  EXPECT_EQ(result.scales[2], 0.75f / 448.0f);
  EXPECT_EQ(result.scales[4], 1.0f);  // all-zero block
  EXPECT_EQ(result.scales[8], 1000.0f / 448.0f);

  // The block maximum lands on +-448 (x / scale may exceed 448 by a rounding error and must saturate).
  EXPECT_EQ(result.q[0 * cols + 5], 0xFE);
  EXPECT_EQ(result.q[0 * cols + 200], 0x7E);
  EXPECT_EQ(result.q[0 * cols + 260], 0x7E);
  EXPECT_EQ(result.q[2 * cols + 271], 0xFE);
  for (int32_t c = 128; c < 256; ++c) ASSERT_EQ(result.q[1 * cols + c], 0x00);

  // Every element: q = e4m3(x / scale) with fp32 division, and dequantization within e4m3's half-ulp (2^-4
  // relative) for values in the normal range.
  for (int32_t r = 0; r < rows; ++r) {
    for (int32_t c = 0; c < cols; ++c) {
      const float scale = result.scales[r * 3 + c / 128];
      const float value = x[r * cols + c];
      ASSERT_EQ(result.q[r * cols + c], e4m3_from_float(value / scale)) << r << "," << c;
      const float restored = e4m3_to_float(result.q[r * cols + c]) * scale;
      if (std::fabs(value / scale) >= std::ldexp(1.0f, -6)) {
        ASSERT_LE(std::fabs(restored - value), std::fabs(value) * 0.0625f + 1e-12f) << r << "," << c;
      }
    }
  }
}

TEST(QuantizeActivations, Bf16AndFp16InputsMatchTheirFp32Values) {
  Context context(2);
  const int32_t rows = 4;
  const int32_t cols = 160;
  std::vector<float> values(rows * cols);
  std::vector<uint16_t> bf16(values.size()), fp16(values.size());
  auto& engine = mctest::rng();
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float v = mctest::random_float(engine, -20.0f, 20.0f);
    bf16[i] = bf16_from_float(v);
    fp16[i] = fp16_from_float(v);
  }
  for (int32_t dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16}) {
    const std::vector<uint16_t>& encoded = dtype == MC_DTYPE_BF16 ? bf16 : fp16;
    for (std::size_t i = 0; i < values.size(); ++i) {
      values[i] = dtype == MC_DTYPE_BF16 ? bf16_to_float(encoded[i]) : fp16_to_float(encoded[i]);
    }
    const ActivationResult expected = quantize_activations(context, values, rows, cols);
    auto* in = context.alloc_array<uint16_t>(rows * cols);
    std::copy(encoded.begin(), encoded.end(), in);
    auto* out = context.alloc_array<uint8_t>(rows * cols);
    auto* scales = context.alloc_array<float>(rows * 2);
    MC_ASSERT_OK(mc_quantize_activations_async(context, in, dtype, rows, cols, out, scales, nullptr));
    EXPECT_EQ(std::vector<uint8_t>(out, out + rows * cols), expected.q);
    EXPECT_EQ(std::vector<float>(scales, scales + rows * 2), expected.scales);
  }
}

TEST(QuantizeActivations, NonFiniteInputsAreDeterministic) {
  Context context(1);
  const int32_t cols = 128;
  std::vector<float> x(2 * cols, 0.5f);
  x[3] = -std::numeric_limits<float>::quiet_NaN();  // row 0: NaN is ignored by amax
  x[4] = 2.0f;
  x[cols + 7] = INFINITY;  // row 1: infinite amax and scale
  const ActivationResult result = quantize_activations(context, x, 2, cols);
  EXPECT_EQ(result.scales[0], 2.0f / 448.0f);
  EXPECT_EQ(result.q[3], 0x7F);  // NaN stays NaN, canonically positive
  EXPECT_EQ(result.q[4], 0x7E);
  EXPECT_TRUE(std::isinf(result.scales[1]));
  EXPECT_EQ(result.q[cols + 0], 0x00);  // finite / inf = 0
  EXPECT_EQ(result.q[cols + 7], 0x7F);  // inf / inf = NaN (x86's default NaN is negative: not carried over)
}

TEST(QuantizeActivations, ZeroRowsIsANoOp) {
  Context context(1);
  auto* in = context.alloc_array<float>(16);
  auto* out = context.alloc_array<uint8_t>(16);
  auto* scales = context.alloc_array<float>(4);
  out[0] = 0xAB;
  MC_ASSERT_OK(mc_quantize_activations_async(context, in, MC_DTYPE_FP32, 0, 16, out, scales, nullptr));
  EXPECT_EQ(out[0], 0xAB);
}

TEST(QuantizeWeights, OneScalePer128x128BlockWithPartialEdges) {
  Context context(2);
  const int32_t experts = 2, n = 128 + 8, k = 128 + 16;  // 2 x 2 blocks per expert, partial in both directions
  std::vector<float> w(static_cast<std::size_t>(experts) * n * k);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = 0.001f * static_cast<float>(i % 97);
  auto at = [&](int e, int row, int col) -> float& { return w[(static_cast<std::size_t>(e) * n + row) * k + col]; };
  // A distinct maximum inside each block, so an indexing error shows up as a wrong scale.
  const float maxima[2][2][2] = {{{1.0f, 2.0f}, {3.0f, 4.0f}}, {{5.0f, 6.0f}, {7.0f, -8.0f}}};
  for (int e = 0; e < experts; ++e) {
    at(e, 5, 9) = maxima[e][0][0];
    at(e, 127, 130) = maxima[e][0][1];
    at(e, 135, 0) = maxima[e][1][0];
    at(e, 130, 143) = maxima[e][1][1];
  }
  for (int e = 0; e < experts; ++e) {
    for (int row = 128; row < n; ++row) {
      for (int col = 128; col < k; ++col) {
        if (!(row == 130 && col == 143)) at(e, row, col) = 0.0f;  // lone maximum in the corner block
      }
    }
  }
  auto* in = context.alloc_array<float>(static_cast<int64_t>(w.size()));
  std::copy(w.begin(), w.end(), in);
  auto* out = context.alloc_array<uint8_t>(static_cast<int64_t>(w.size()));
  auto* scales = context.alloc_array<float>(experts * 4);
  MC_ASSERT_OK(mc_quantize_weights_async(context, in, MC_DTYPE_FP32, experts, n, k, out, scales, nullptr));
  for (int e = 0; e < experts; ++e) {
    for (int nb = 0; nb < 2; ++nb) {
      for (int kb = 0; kb < 2; ++kb) {
        EXPECT_EQ(scales[(e * 2 + nb) * 2 + kb], std::fabs(maxima[e][nb][kb]) / 448.0f) << e << nb << kb;
      }
    }
  }
  for (int e = 0; e < experts; ++e) {
    for (int row = 0; row < n; ++row) {
      for (int col = 0; col < k; ++col) {
        const float scale = scales[(e * 2 + row / 128) * 2 + col / 128];
        const std::size_t i = (static_cast<std::size_t>(e) * n + row) * k + col;
        ASSERT_EQ(out[i], e4m3_from_float(w[i] / scale)) << e << "," << row << "," << col;
      }
    }
  }
  EXPECT_EQ(out[(static_cast<std::size_t>(1) * n + 130) * k + 143], 0xFE);  // -8 is its block's maximum
}

TEST(QuantizeValidation, RejectsBadShapesDtypesAndBuffers) {
  Context context(1);
  auto* in = context.alloc_array<float>(64 * 128);
  auto* out = context.alloc_array<uint8_t>(64 * 128);
  auto* scales = context.alloc_array<float>(16);
  MC_EXPECT_STATUS(mc_quantize_activations_async(context, in, MC_DTYPE_FP32, 4, 100, out, scales, nullptr),
                   MC_STATUS_MISALIGNED, "cols = 100", "MC_K_ALIGNMENT");
  MC_EXPECT_STATUS(mc_quantize_activations_async(context, in, MC_DTYPE_FP32, -1, 128, out, scales, nullptr),
                   MC_STATUS_OUT_OF_RANGE, "rows = -1");
  MC_EXPECT_STATUS(mc_quantize_activations_async(context, in, MC_DTYPE_E4M3, 4, 128, out, scales, nullptr),
                   MC_STATUS_INVALID_DTYPE, "input_dtype = 4");
  MC_EXPECT_STATUS(mc_quantize_activations_async(context, in, 77, 4, 128, out, scales, nullptr),
                   MC_STATUS_INVALID_DTYPE, "input_dtype = 77");
  MC_EXPECT_STATUS(mc_quantize_activations_async(context, nullptr, MC_DTYPE_FP32, 4, 128, out, scales, nullptr),
                   MC_STATUS_NULL_POINTER, "input is NULL");
  MC_EXPECT_STATUS(mc_quantize_activations_async(context, in + 1, MC_DTYPE_FP32, 4, 128, out, scales, nullptr),
                   MC_STATUS_MISALIGNED, "input = 0x", "16-byte aligned");
  MC_EXPECT_STATUS(mc_quantize_activations_async(context, in, MC_DTYPE_FP32, 65, 128, out, scales, nullptr),
                   MC_STATUS_BUFFER_TOO_SMALL, "input", "needs 33280 bytes");
  MC_EXPECT_STATUS(mc_quantize_activations_async(context, in, MC_DTYPE_FP32, 32, 128, out, scales, nullptr),
                   MC_STATUS_BUFFER_TOO_SMALL, "scales = 0x", "needs 128 bytes", "only 64 bytes remain");
  MC_EXPECT_STATUS(mc_quantize_weights_async(context, in, MC_DTYPE_FP32, 1, 12, 128, out, scales, nullptr),
                   MC_STATUS_MISALIGNED, "n = 12", "MC_N_ALIGNMENT");
  MC_EXPECT_STATUS(mc_quantize_weights_async(context, in, MC_DTYPE_FP32, 0, 8, 128, out, scales, nullptr),
                   MC_STATUS_OUT_OF_RANGE, "experts = 0");
  MC_EXPECT_STATUS(mc_quantize_weights_async(context, in, MC_DTYPE_FP32, 1, 8, 1048576 + 16, out, scales, nullptr),
                   MC_STATUS_OUT_OF_RANGE, "k = 1048592");
  MC_EXPECT_STATUS(mc_quantize_weights_async(context, in, MC_DTYPE_FP32, 1, 128, 128, out, scales + 1, nullptr),
                   MC_STATUS_MISALIGNED, "scales");
}
