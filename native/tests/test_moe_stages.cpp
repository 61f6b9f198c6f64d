// MoE layer host reference, the data stages (issue 13): gather + 1x128 FP8 quantization, SiLU-and-mul +
// requantization, and the weighted combine, each against naive double math on seeded random data, plus determinism
// (same bits twice) and the edge cases (no rows, every slot outside the slice).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/e4m3.hpp"
#include "core/error.hpp"
#include "core/float16.hpp"
#include "core/moe_layer_stages.hpp"
#include "core/moe_permutation.hpp"
#include "cpu/moe_combine.hpp"
#include "cpu/moe_gather_quantize.hpp"
#include "cpu/moe_silu_and_mul.hpp"
#include "test_support.hpp"

using namespace moecutlass;

namespace {

uint16_t encode(int32_t dtype, float x) { return dtype == MC_DTYPE_BF16 ? bf16_from_float(x) : fp16_from_float(x); }
double decode(int32_t dtype, uint16_t h) { return dtype == MC_DTYPE_BF16 ? bf16_to_float(h) : fp16_to_float(h); }

std::vector<uint16_t> random_half(uint64_t seed, int64_t count, int32_t dtype, float spread) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<uint16_t> v(static_cast<std::size_t>(count));
  for (auto& h : v) h = encode(dtype, normal(engine));
  return v;
}

struct Routing {
  std::vector<int32_t> ids, offsets, sorted_slots, slot_to_row;
  int64_t rows = 0;
};

Routing random_routing(uint64_t seed, int64_t tokens, int32_t k, ExpertSlice slice) {
  std::mt19937_64 engine(seed);
  Routing r;
  std::vector<int32_t> all(static_cast<std::size_t>(slice.total_experts));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int32_t e = 0; e < slice.total_experts; ++e) all[e] = e;
    std::shuffle(all.begin(), all.end(), engine);
    r.ids.insert(r.ids.end(), all.begin(), all.begin() + k);
  }
  r.offsets.resize(static_cast<std::size_t>(slice.local_experts) + 1);
  r.sorted_slots.resize(static_cast<std::size_t>(tokens * k));
  r.slot_to_row.resize(static_cast<std::size_t>(tokens * k));
  r.rows = permute_by_expert(r.ids.data(), tokens, k, slice, r.offsets.data(), r.sorted_slots.data(),
                             r.slot_to_row.data());
  return r;
}

// The FP8 bound of one quantized value x with block scale s: e4m3 keeps 3 mantissa bits, so a normal code is within
// half an ulp, 2^-4 relative; codes below the smallest normal (2^-6 * s) have the fixed spacing 2^-9 * s, so within
// 2^-10 * s; the fp32 division x / s adds 2^-24 relative (budgeted as 2^-22).
double fp8_bound(double x, double scale) {
  return std::ldexp(std::fabs(x), -4) + std::ldexp(scale, -10) + std::ldexp(std::fabs(x), -22);
}

std::string error_of(const std::function<void()>& call, mc_status expected) {
  try {
    call();
  } catch (const Error& e) {
    EXPECT_EQ(e.status(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error thrown";
  return {};
}

}  // namespace

TEST(MoeGatherQuantize, MatchesNaiveBlockQuantizationAndTheLibraryQuantizer) {
  const int64_t tokens = 23;
  const int64_t hidden = 304;  // two full 128-column blocks and a partial one (a multiple of 16 for the ABI)
  const int32_t k = 3;
  const int64_t blocks = 3;
  const ExpertSlice slice{1, 3, 6};
  const Routing routing = random_routing(11, tokens, k, slice);
  ASSERT_GT(routing.rows, 0);
  mctest::Context context(2);
  for (const int32_t dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16}) {
    SCOPED_TRACE(dtype);
    auto x = random_half(12 + dtype, tokens * hidden, dtype, 2.0f);
    for (int64_t c = 128; c < 256; ++c) x[5 * hidden + c] = 0;  // an all-zero block: scale 1, codes 0
    const int64_t rows = routing.rows;
    std::vector<uint8_t> q(static_cast<std::size_t>(rows * hidden));
    std::vector<float> scales(static_cast<std::size_t>(rows * blocks));
    gather_quantize_rows(x.data(), dtype, tokens, hidden, routing.sorted_slots.data(), rows, k, q.data(), scales.data());

    // Naive double: per row and block, scale = amax / 448 and every dequantized value within the FP8 bound.
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t token = routing.sorted_slots[r] / k;
      for (int64_t b = 0; b < blocks; ++b) {
        double amax = 0;
        for (int64_t c = b * 128; c < std::min<int64_t>(hidden, b * 128 + 128); ++c) {
          amax = std::max(amax, std::fabs(decode(dtype, x[token * hidden + c])));
        }
        const double scale = amax == 0 ? 1.0 : amax / 448.0;
        ASSERT_EQ(scales[r * blocks + b], static_cast<float>(scale)) << "row " << r << " block " << b;
        for (int64_t c = b * 128; c < std::min<int64_t>(hidden, b * 128 + 128); ++c) {
          const double want = decode(dtype, x[token * hidden + c]);
          const double got = e4m3_to_float(q[r * hidden + c]) * static_cast<double>(scales[r * blocks + b]);
          ASSERT_LE(std::fabs(got - want), fp8_bound(want, scale)) << "row " << r << " col " << c;
        }
      }
    }

    // Bit-identical to gathering first and quantizing with mc_quantize_activations_async (one rounding rule).
    auto* gathered = context.alloc_array<uint16_t>(rows * hidden);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(gathered + r * hidden, x.data() + (routing.sorted_slots[r] / k) * hidden, hidden * 2);
    }
    auto* library_q = context.alloc_array<uint8_t>(rows * hidden);
    auto* library_scales = context.alloc_array<float>(rows * blocks);
    MC_ASSERT_OK(mc_quantize_activations_async(context, gathered, dtype, static_cast<int32_t>(rows),
                                               static_cast<int32_t>(hidden), library_q, library_scales, nullptr));
    MC_ASSERT_OK(mc_context_synchronize(context));
    EXPECT_EQ(std::memcmp(library_q, q.data(), q.size()), 0);
    EXPECT_EQ(std::memcmp(library_scales, scales.data(), scales.size() * 4), 0);

    // Deterministic: a second run gives the same bits.
    std::vector<uint8_t> q2(q.size());
    std::vector<float> scales2(scales.size());
    gather_quantize_rows(x.data(), dtype, tokens, hidden, routing.sorted_slots.data(), rows, k, q2.data(),
                         scales2.data());
    EXPECT_EQ(q2, q);
    EXPECT_EQ(std::memcmp(scales2.data(), scales.data(), scales.size() * 4), 0);
  }
}

TEST(MoeGatherQuantize, EdgeCasesAndArgumentErrors) {
  EXPECT_NO_THROW(gather_quantize_rows(nullptr, MC_DTYPE_BF16, 0, 128, nullptr, 0, 1, nullptr, nullptr));
  // T = 1, k = 1, one row.
  const std::vector<uint16_t> x = {bf16_from_float(448.0f), bf16_from_float(-1.0f)};
  const int32_t slot = 0;
  uint8_t q[2];
  float scale = 0;
  gather_quantize_rows(x.data(), MC_DTYPE_BF16, 1, 2, &slot, 1, 1, q, &scale);
  EXPECT_EQ(scale, 1.0f);
  EXPECT_EQ(e4m3_to_float(q[0]), 448.0f);
  EXPECT_EQ(e4m3_to_float(q[1]), -1.0f);
  const int32_t bad_slot = 2;
  const std::string message = error_of(
      [&] { gather_quantize_rows(x.data(), MC_DTYPE_BF16, 1, 2, &bad_slot, 1, 1, q, &scale); },
      MC_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("sorted_slots[0] is 2"), std::string::npos) << message;
  error_of([&] { gather_quantize_rows(x.data(), MC_DTYPE_E4M3, 1, 2, &slot, 1, 1, q, &scale); },
           MC_STATUS_INVALID_DTYPE);
  error_of([&] { gather_quantize_rows(x.data(), MC_DTYPE_BF16, 1, 2, &slot, 2, 1, q, &scale); },
           MC_STATUS_OUT_OF_RANGE);
}

TEST(MoeSiluAndMul, GateIsTheFirstHalfUpTheSecondAndMatchesNaiveDouble) {
  const int64_t rows = 17;
  const int64_t inter = 200;  // one full and one partial 128-column block
  const int64_t blocks = 2;
  for (const int32_t dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16}) {
    SCOPED_TRACE(dtype);
    auto y = random_half(31 + dtype, rows * 2 * inter, dtype, 3.0f);
    y[0] = encode(dtype, -120.0f);  // exp(120) overflows fp32: SiLU must give -0, not NaN
    std::vector<uint8_t> q(static_cast<std::size_t>(rows * inter));
    std::vector<float> scales(static_cast<std::size_t>(rows * blocks));
    silu_and_mul_quantize(y.data(), dtype, rows, inter, q.data(), scales.data());
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> h(static_cast<std::size_t>(inter));
      for (int64_t i = 0; i < inter; ++i) {
        const double gate = decode(dtype, y[r * 2 * inter + i]);
        const double up = decode(dtype, y[r * 2 * inter + inter + i]);
        h[i] = gate / (1.0 + std::exp(-gate)) * up;
      }
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t end = std::min<int64_t>(inter, b * 128 + 128);
        double amax = 0;
        for (int64_t i = b * 128; i < end; ++i) amax = std::max(amax, std::fabs(h[i]));
        // h is computed in fp32 (expf, a division, two products): a few fp32 ulps, budgeted as 2^-20 relative.
        const double scale = amax / 448.0;
        const float got_scale = scales[r * blocks + b];
        ASSERT_NEAR(got_scale, scale, std::ldexp(scale, -20)) << "row " << r << " block " << b;
        for (int64_t i = b * 128; i < end; ++i) {
          const double got = e4m3_to_float(q[r * inter + i]) * static_cast<double>(got_scale);
          ASSERT_LE(std::fabs(got - h[i]), fp8_bound(h[i], scale) + std::ldexp(std::fabs(h[i]), -20))
              << "row " << r << " col " << i;
        }
      }
    }
    EXPECT_EQ(q[0] & 0x7F, 0) << "SiLU(-120) * up is +-0";
    std::vector<uint8_t> q2(q.size());
    std::vector<float> scales2(scales.size());
    silu_and_mul_quantize(y.data(), dtype, rows, inter, q2.data(), scales2.data());
    EXPECT_EQ(q2, q);
    EXPECT_EQ(std::memcmp(scales2.data(), scales.data(), scales.size() * 4), 0);
  }
}

TEST(MoeSiluAndMul, EdgeCasesAndArgumentErrors) {
  EXPECT_NO_THROW(silu_and_mul_quantize(nullptr, MC_DTYPE_BF16, 0, 64, nullptr, nullptr));
  // One row, I = 1: gate 2 (column 0), up 3 (column 1): SiLU(2) * 3 = 5.284..., quantized to the block maximum 448.
  const float y[2] = {2.0f, 3.0f};
  uint8_t q = 0;
  float scale = 0;
  silu_and_mul_quantize(y, MC_DTYPE_FP32, 1, 1, &q, &scale);
  EXPECT_EQ(e4m3_to_float(q), 448.0f);
  EXPECT_NEAR(scale * 448.0, 2.0 / (1.0 + std::exp(-2.0)) * 3.0, 1e-5);
  error_of([&] { silu_and_mul_quantize(y, MC_DTYPE_E4M3, 1, 1, &q, &scale); }, MC_STATUS_INVALID_DTYPE);
  error_of([&] { silu_and_mul_quantize(y, MC_DTYPE_FP32, 1, 0, &q, &scale); }, MC_STATUS_OUT_OF_RANGE);
}

TEST(MoeWeightedCombine, MatchesNaiveDoubleInSlotOrderForEveryOutputDtype) {
  const int64_t tokens = 31;
  const int64_t hidden = 160;
  const int32_t k = 4;
  const ExpertSlice slice{2, 4, 10};
  const Routing routing = random_routing(41, tokens, k, slice);
  const auto y = random_half(42, std::max<int64_t>(routing.rows, 1) * hidden, MC_DTYPE_BF16, 4.0f);
  std::mt19937_64 engine(43);
  std::vector<float> weights(static_cast<std::size_t>(tokens * k));
  for (auto& w : weights) w = mctest::random_float(engine, 0.0f, 1.0f);
  bool some_token_has_no_local_slot = false;
  for (const int32_t out_dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16, MC_DTYPE_FP32}) {
    SCOPED_TRACE(out_dtype);
    const int64_t element = out_dtype == MC_DTYPE_FP32 ? 4 : 2;
    std::vector<unsigned char> out(static_cast<std::size_t>(tokens * hidden * element), 0xAB);
    weighted_combine(y.data(), MC_DTYPE_BF16, routing.rows, hidden, weights.data(), routing.slot_to_row.data(), tokens,
                     k, out.data(), out_dtype);
    // Output rounding: half an ulp of the result (bf16 2^-8, fp16 2^-11, fp32 2^-24 relative); the fp32 products and
    // sums add at most 2 * k roundings of 2^-24 relative to sum |w * y|.
    const double output_half_ulp = out_dtype == MC_DTYPE_BF16 ? std::ldexp(1.0, -8)
                                   : out_dtype == MC_DTYPE_FP16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -24);
    for (int64_t t = 0; t < tokens; ++t) {
      bool any = false;
      for (int64_t c = 0; c < hidden; ++c) {
        double want = 0, magnitude = 0;
        for (int32_t j = 0; j < k; ++j) {
          const int32_t row = routing.slot_to_row[t * k + j];
          if (row < 0) continue;
          any = true;
          const double term = static_cast<double>(weights[t * k + j]) * bf16_to_float(y[row * hidden + c]);
          want += term;
          magnitude += std::fabs(term);
        }
        double got;
        if (out_dtype == MC_DTYPE_FP32) {
          float f;
          std::memcpy(&f, out.data() + (t * hidden + c) * 4, 4);
          got = f;
        } else {
          uint16_t h;
          std::memcpy(&h, out.data() + (t * hidden + c) * 2, 2);
          got = decode(out_dtype, h);
        }
        const double bound = output_half_ulp * std::fabs(want) * 1.0001 + 2 * k * std::ldexp(magnitude, -24) + 1e-30;
        ASSERT_LE(std::fabs(got - want), bound) << "token " << t << " col " << c;
        if (!any) {
          ASSERT_EQ(got, 0.0);
          ASSERT_FALSE(std::signbit(got));
        }
      }
      some_token_has_no_local_slot = some_token_has_no_local_slot || !any;
    }
    std::vector<unsigned char> again(out.size(), 0xCD);
    weighted_combine(y.data(), MC_DTYPE_BF16, routing.rows, hidden, weights.data(), routing.slot_to_row.data(), tokens,
                     k, again.data(), out_dtype);
    EXPECT_EQ(again, out) << "same input, same bits";
  }
  EXPECT_TRUE(some_token_has_no_local_slot) << "the data should exercise tokens routed only to other ranks";
}

TEST(MoeWeightedCombine, AllSlotsOutsideTheSliceGiveZerosAndBadRowsAreRejected) {
  EXPECT_NO_THROW(weighted_combine(nullptr, MC_DTYPE_BF16, 0, 8, nullptr, nullptr, 0, 2, nullptr, MC_DTYPE_BF16));
  const std::vector<int32_t> none(6, -1);
  const std::vector<float> weights(6, 0.5f);
  std::vector<uint16_t> out(3 * 4, 0xFFFF);
  weighted_combine(nullptr, MC_DTYPE_BF16, 0, 4, weights.data(), none.data(), 3, 2, out.data(), MC_DTYPE_BF16);
  EXPECT_EQ(out, std::vector<uint16_t>(12, 0));
  // k = 1, E_local = 1: the output is weight * row, rounded once.
  const std::vector<float> y = {1.0f, -2.0f, 3.0f, 0.25f};
  const std::vector<int32_t> one = {0};
  const float w = 0.75f;
  std::vector<float> single(4);
  weighted_combine(y.data(), MC_DTYPE_FP32, 1, 4, &w, one.data(), 1, 1, single.data(), MC_DTYPE_FP32);
  EXPECT_EQ(single, (std::vector<float>{0.75f, -1.5f, 2.25f, 0.1875f}));
  const std::vector<int32_t> bad = {1};
  const std::string message = error_of(
      [&] { weighted_combine(y.data(), MC_DTYPE_FP32, 1, 4, &w, bad.data(), 1, 1, single.data(), MC_DTYPE_FP32); },
      MC_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("slot_to_row[0] is 1"), std::string::npos) << message;
  error_of([&] { weighted_combine(y.data(), MC_DTYPE_FP32, 1, 4, &w, one.data(), 1, 1, single.data(), MC_DTYPE_E4M3); },
           MC_STATUS_INVALID_DTYPE);
}

// The device permutation's scratch: none while every call fits one 2048-slot chunk (decode), otherwise the
// per-chunk group counts plus the totals, (chunks + 1) * (local_experts + 1) int32 rounded up to 16 bytes.
TEST(MoePermuteScratch, SizedForTheChunksOfTheCapacity) {
  EXPECT_EQ(moe_permute_scratch_bytes(0, 8, 32), 0);
  EXPECT_EQ(moe_permute_scratch_bytes(256, 8, 256), 0);  // 2048 slots: one chunk
  EXPECT_EQ(moe_permute_tokens_per_chunk(8), 256);
  EXPECT_EQ(moe_permute_tokens_per_chunk(3), 682);
  EXPECT_EQ(moe_permute_chunks(257, 8), 2);
  EXPECT_EQ(moe_permute_scratch_bytes(257, 8, 32), 3 * 33 * 4 + 4);  // 396 -> 400
  EXPECT_EQ(moe_permute_scratch_bytes(32768, 8, 256), (128 + 1) * 257 * 4 + 12);
  EXPECT_EQ(moe_permute_scratch_bytes(65536, 8, 4096) % 16, 0);
}

