// MoE layer host reference, the whole chain (issue 13): route -> permute -> gather + quantize -> GEMM1 ->
// SiLU-and-mul + requantize -> GEMM2 -> weighted combine, against a naive double-precision MoE layer, on one rank
// holding all experts and on an expert-parallel slice. The GEMMs are stand-ins here: naive double products of the
// dequantized operands, rounded once to bf16 (what the grouped GEMM's D contract promises).
//
// Tolerance. The layer's inputs are the bf16 hidden states, fp32 router logits and FP8 expert weights with their
// block scales; the reference uses exactly those (the weights dequantized), so the error comes from the layer's own
// roundings. For every element the test carries an error bound through the reference, in double (a running
// interval analysis, so it is rigorous, not first order):
//   x -> FP8:       e_x = 2^-4 |x| + 2^-10 s_x            (3 mantissa bits: half an ulp is 2^-4 relative for normal
//                                                           codes; subnormal codes (< 2^-6 s) have spacing 2^-9 s)
//   GEMM1:          e_z = sum_h |W1| e_x,  + 2^-8 (|z| + e_z) for the bf16 output (bf16's half ulp: 8 significant bits)
//   SiLU-and-mul:   e_h = 1.1 e_g (|u| + e_u) + |silu(g)| e_u  (SiLU is 1.0998-Lipschitz), + 2^-20 relative (fp32)
//   h -> FP8:       e_h += 2^-4 (|h| + e_h) + 2^-10 s_h,  s_h <= max over the block of (|h| + e_h) / 448
//   GEMM2:          e_y = sum_i |W2| e_h,  + 2^-8 (|y| + e_y)
//   combine:        e_o = sum_j w_j e_y + 2^-23 w |y| (fp32 weights) + 2k 2^-24 sum w (|y| + e_y) (fp32 products and
//                   sums) + 2^-8 (|o| + e_o) (bf16 output)
// So the two FP8 quantizations dominate: relative to the absolute sums, about 2^-4 each, i.e. they compose
// additively, amplified by the SiLU slope and the |u| factor. Worst-case bounds grow with the absolute sums, which
// random signs make larger than the result, so the test also checks the typical error: with independent rounding
// errors of relative RMS 2^-4 / sqrt(3) per quantization, the relative RMS error of the output stays near
// 2 * 0.036 ~ 0.07; it must be below 2^-3. A layer with the gate and up halves swapped fails that by far (checked).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/e4m3.hpp"
#include "core/float16.hpp"
#include "core/moe_permutation.hpp"
#include "core/moe_routing.hpp"
#include "core/shapes.hpp"
#include "cpu/moe_combine.hpp"
#include "cpu/moe_gather_quantize.hpp"
#include "cpu/moe_silu_and_mul.hpp"
#include "moe_layer_reference.hpp"

using namespace moecutlass;
using namespace moecutlass::test;

namespace {

// The chain under test; the GEMMs are naive dequantized double products rounded to bf16.
std::vector<uint16_t> run_chain(const Problem& p, ExpertSlice slice, std::vector<int32_t>* ids_out = nullptr) {
  const int64_t T = p.tokens, H = p.hidden, I = p.inter;
  const int32_t k = p.k;
  std::vector<int32_t> ids(static_cast<std::size_t>(T * k));
  std::vector<float> weights(static_cast<std::size_t>(T * k));
  route_topk(p.logits.data(), MC_DTYPE_FP32, T, slice.total_experts, k, p.renormalize, ids.data(), weights.data());
  if (ids_out) *ids_out = ids;

  std::vector<int32_t> offsets(static_cast<std::size_t>(slice.local_experts) + 1);
  std::vector<int32_t> sorted(static_cast<std::size_t>(T * k)), slot_to_row(static_cast<std::size_t>(T * k));
  const int64_t rows = permute_by_expert(ids.data(), T, k, slice, offsets.data(), sorted.data(), slot_to_row.data());

  std::vector<uint8_t> a1(static_cast<std::size_t>(rows * H));
  std::vector<float> a1_scales(static_cast<std::size_t>(rows * scale_blocks(H)));
  gather_quantize_rows(p.x.data(), MC_DTYPE_BF16, T, H, sorted.data(), rows, k, a1.data(), a1_scales.data());

  auto gemm = [&](const std::vector<uint8_t>& a, const std::vector<float>& a_scales, int64_t K, const Fp8Weights& w,
                  int64_t N) {
    std::vector<uint16_t> d(static_cast<std::size_t>(rows * N));
    for (int32_t e = 0; e < slice.local_experts; ++e) {
      for (int64_t r = offsets[e]; r < offsets[e + 1]; ++r) {
        for (int64_t n = 0; n < N; ++n) {
          double acc = 0;
          for (int64_t c = 0; c < K; ++c) {
            const double a_value = static_cast<double>(e4m3_to_float(a[r * K + c])) * a_scales[r * scale_blocks(K) + c / 128];
            acc += a_value * w.at(slice.first + e, n, c);
          }
          d[r * N + n] = bf16_from_double(acc);
        }
      }
    }
    return d;
  };
  const std::vector<uint16_t> d1 = gemm(a1, a1_scales, H, p.w1, 2 * I);

  std::vector<uint8_t> a2(static_cast<std::size_t>(rows * I));
  std::vector<float> a2_scales(static_cast<std::size_t>(rows * scale_blocks(I)));
  silu_and_mul_quantize(d1.data(), MC_DTYPE_BF16, rows, I, a2.data(), a2_scales.data());
  const std::vector<uint16_t> d2 = gemm(a2, a2_scales, I, p.w2, H);

  std::vector<uint16_t> out(static_cast<std::size_t>(T * H));
  weighted_combine(d2.data(), MC_DTYPE_BF16, rows, H, weights.data(), slot_to_row.data(), T, k, out.data(),
                   MC_DTYPE_BF16);
  return out;
}

void check_layer(const Problem& p, ExpertSlice slice) {
  std::vector<int32_t> ids;
  const std::vector<uint16_t> out = run_chain(p, slice, &ids);
  const Reference ref = reference_layer(p, slice);
  ASSERT_EQ(ids, ref.ids) << "routing differs from the naive sort";
  double error2 = 0, ref2 = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double got = bf16_to_float(out[i]);
    ASSERT_LE(std::fabs(got - ref.out[i]), ref.bound[i]) << "element " << i << " (token " << i / p.hidden << ")";
    error2 += (got - ref.out[i]) * (got - ref.out[i]);
    ref2 += ref.out[i] * ref.out[i];
  }
  ASSERT_GT(ref2, 0.0);
  const double relative_rms = std::sqrt(error2 / ref2);
  EXPECT_LT(relative_rms, 0.125);
  std::printf("relative RMS error of the layer: %.4f\n", relative_rms);
  testing::Test::RecordProperty("relative_rms_error", std::to_string(relative_rms));

  // The test can fail: the layer with gate and up swapped is far outside the typical error.
  const Reference wrong = reference_layer(p, slice, true);
  double wrong2 = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    wrong2 += (bf16_to_float(out[i]) - wrong.out[i]) * (bf16_to_float(out[i]) - wrong.out[i]);
  }
  EXPECT_GT(std::sqrt(wrong2 / ref2), 0.5);

  // Deterministic: the whole chain twice gives the same bits.
  EXPECT_EQ(run_chain(p, slice), out);
}

}  // namespace

TEST(MoeLayerChain, AllExpertsOnOneRankMatchNaiveDoubleLayer) {
  const Problem p = make_problem(1301, 24, 6, 2, 256, 192);
  check_layer(p, ExpertSlice{0, 6, 6});
}

TEST(MoeLayerChain, ExpertParallelSliceMatchesNaiveDoubleLayer) {
  const Problem p = make_problem(1302, 24, 8, 3, 200, 136);  // partial 128-column blocks in H and I
  check_layer(p, ExpertSlice{3, 3, 8});
}

TEST(MoeLayerChain, TopOneWithOneLocalExpertAndOneToken) {
  const Problem p = make_problem(1303, 1, 4, 1, 128, 128);
  std::vector<int32_t> ids;
  run_chain(p, ExpertSlice{0, 4, 4}, &ids);
  // E_local = 1 holding the chosen expert: the layer matches; holding another one: exact zeros.
  check_layer(p, ExpertSlice{ids[0], 1, 4});
  const std::vector<uint16_t> elsewhere = run_chain(p, ExpertSlice{(ids[0] + 1) % 4, 1, 4});
  EXPECT_EQ(elsewhere, std::vector<uint16_t>(128, 0));
}

TEST(MoeLayerChain, NoTokens) {
  const Problem p = make_problem(1304, 0, 4, 2, 128, 128);
  EXPECT_TRUE(run_chain(p, ExpertSlice{0, 4, 4}).empty());
}
