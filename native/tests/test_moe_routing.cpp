// MoE layer host reference, routing half (issue 13): top-k routing against a naive double softmax + sort, the tie
// and NaN rules, bf16/fp16 logits, the validation of precomputed ids, and the expert-parallel permutation against a
// naive per-expert scan (the C# MoeRouting.Sort rule: rows of an expert in ascending slot order).
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/float16.hpp"
#include "core/moe_permutation.hpp"
#include "core/moe_routing.hpp"

using namespace moecutlass;

namespace {

struct Routed {
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

Routed route(const std::vector<float>& logits, int64_t tokens, int32_t experts, int32_t k, bool renormalize) {
  Routed r{std::vector<int32_t>(static_cast<std::size_t>(tokens * k), -7),
           std::vector<float>(static_cast<std::size_t>(tokens * k), -7.0f)};
  route_topk(logits.data(), MC_DTYPE_FP32, tokens, experts, k, renormalize, r.ids.data(), r.weights.data());
  return r;
}

// Naive reference: a stable sort of the expert ids by descending logit, then the softmax in long double.
Routed naive_route(const std::vector<float>& logits, int64_t tokens, int32_t experts, int32_t k, bool renormalize) {
  Routed r;
  for (int64_t t = 0; t < tokens; ++t) {
    const float* x = logits.data() + t * experts;
    std::vector<int32_t> order(static_cast<std::size_t>(experts));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
    long double sum = 0, chosen = 0;
    for (int32_t e = 0; e < experts; ++e) sum += std::exp(static_cast<long double>(x[e]));
    for (int32_t j = 0; j < k; ++j) chosen += std::exp(static_cast<long double>(x[order[j]]));
    for (int32_t j = 0; j < k; ++j) {
      r.ids.push_back(order[j]);
      r.weights.push_back(static_cast<float>(std::exp(static_cast<long double>(x[order[j]])) / (renormalize ? chosen : sum)));
    }
  }
  return r;
}

std::vector<float> random_logits(uint64_t seed, int64_t count, float spread = 3.0f) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> v(static_cast<std::size_t>(count));
  for (auto& x : v) x = normal(engine);
  return v;
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

TEST(MoeRouteTopk, MatchesNaiveSoftmaxAndSortWithAndWithoutRenormalization) {
  for (const bool renormalize : {false, true}) {
    for (const int32_t k : {1, 2, 6, 8}) {
      const int64_t tokens = 37;
      const int32_t experts = 8;
      const auto logits = random_logits(100 + k, tokens * experts);
      const Routed got = route(logits, tokens, experts, k, renormalize);
      const Routed want = naive_route(logits, tokens, experts, k, renormalize);
      ASSERT_EQ(got.ids, want.ids) << "k=" << k;
      for (std::size_t i = 0; i < got.weights.size(); ++i) {
        // Both are a double/long double value rounded once to fp32: at most one fp32 ulp apart.
        EXPECT_NEAR(got.weights[i], want.weights[i], std::ldexp(std::fabs(want.weights[i]), -23)) << i;
      }
      if (renormalize) {
        for (int64_t t = 0; t < tokens; ++t) {
          double sum = 0;
          for (int32_t j = 0; j < k; ++j) sum += got.weights[t * k + j];
          EXPECT_NEAR(sum, 1.0, k * std::ldexp(1.0, -24));
        }
      }
    }
  }
}

TEST(MoeRouteTopk, TiesGoToTheLowerExpertIdAndNaNRanksLast) {
  // Token 0: all equal -> experts 0, 1, 2 with weight 1/5 each. Token 1: expert 3 leads, experts 1 and 4 tie next.
  // Token 2: a NaN logit (expert 0) is never chosen while numbers remain.
  const std::vector<float> logits = {0, 0, 0, 0, 0,  //
                                     -1, 2, 0, 3, 2,  //
                                     NAN, -5, -6, -7, -8};
  const Routed got = route(logits, 3, 5, 3, false);
  EXPECT_EQ(got.ids, (std::vector<int32_t>{0, 1, 2, 3, 1, 4, 1, 2, 3}));
  EXPECT_EQ(got.weights[0], 0.2f);
  EXPECT_EQ(got.weights[1], 0.2f);
  EXPECT_EQ(got.weights[4], got.weights[5]);
  const Routed all = route(logits, 3, 5, 5, false);
  EXPECT_EQ(all.ids[14], 0) << "NaN ranks after every number";
  EXPECT_TRUE(std::isnan(all.weights[14]));
}

TEST(MoeRouteTopk, HalfPrecisionLogitsRouteLikeTheirFp32Values) {
  const int64_t tokens = 19;
  const int32_t experts = 16;
  const int32_t k = 4;
  const auto logits = random_logits(7, tokens * experts);
  for (const int32_t dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16}) {
    std::vector<uint16_t> half(logits.size());
    std::vector<float> decoded(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i) {
      half[i] = dtype == MC_DTYPE_BF16 ? bf16_from_float(logits[i]) : fp16_from_float(logits[i]);
      decoded[i] = dtype == MC_DTYPE_BF16 ? bf16_to_float(half[i]) : fp16_to_float(half[i]);
    }
    std::vector<int32_t> ids(tokens * k);
    std::vector<float> weights(tokens * k);
    route_topk(half.data(), dtype, tokens, experts, k, true, ids.data(), weights.data());
    const Routed want = route(decoded, tokens, experts, k, true);
    EXPECT_EQ(ids, want.ids);
    EXPECT_EQ(weights, want.weights);
  }
}

TEST(MoeRouteTopk, EdgeCasesAndArgumentErrors) {
  // T = 0 writes nothing (and needs no buffers).
  EXPECT_NO_THROW(route_topk(nullptr, MC_DTYPE_FP32, 0, 4, 2, false, nullptr, nullptr));
  // T = 1, k = 1, E = 1: the one expert with weight 1.
  const Routed one = route({3.5f}, 1, 1, 1, false);
  EXPECT_EQ(one.ids, std::vector<int32_t>{0});
  EXPECT_EQ(one.weights, std::vector<float>{1.0f});
  const std::vector<float> logits(8, 0.0f);
  int32_t ids[8];
  float weights[8];
  EXPECT_NE(error_of([&] { route_topk(logits.data(), MC_DTYPE_FP32, 1, 4, 5, false, ids, weights); },
                     MC_STATUS_OUT_OF_RANGE).find("top_k"), std::string::npos);
  error_of([&] { route_topk(logits.data(), MC_DTYPE_FP32, 1, 4, 0, false, ids, weights); }, MC_STATUS_OUT_OF_RANGE);
  error_of([&] { route_topk(logits.data(), MC_DTYPE_E4M3, 1, 4, 1, false, ids, weights); }, MC_STATUS_INVALID_DTYPE);
  error_of([&] { route_topk(logits.data(), MC_DTYPE_FP32, 1, 4, 1, false, nullptr, weights); }, MC_STATUS_NULL_POINTER);
}

TEST(MoeValidateTopkIds, AcceptsRouterOutputAndNamesTheArgumentAndRuleOnFailure) {
  const std::vector<int32_t> good = {0, 3, 2, 1, 3, 0};
  EXPECT_NO_THROW(validate_topk_ids(good.data(), 3, 2, 4, "topk_ids"));
  EXPECT_NO_THROW(validate_topk_ids(nullptr, 0, 2, 4, "topk_ids"));

  const std::vector<int32_t> out_of_range = {0, 3, 4, 1};
  std::string message = error_of([&] { validate_topk_ids(out_of_range.data(), 2, 2, 4, "expert_ids"); },
                                 MC_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("expert_ids[1, 0] is 4"), std::string::npos) << message;
  EXPECT_NE(message.find("0 .. 3"), std::string::npos) << message;
  const std::vector<int32_t> negative = {-1};
  error_of([&] { validate_topk_ids(negative.data(), 1, 1, 4); }, MC_STATUS_INVALID_ARGUMENT);

  const std::vector<int32_t> duplicate = {0, 1, 2, 2, 1, 2};
  message = error_of([&] { validate_topk_ids(duplicate.data(), 2, 3, 4, "topk_ids"); }, MC_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("topk_ids[1, 2] repeats expert 2 (also at topk_ids[1, 0])"), std::string::npos) << message;
  EXPECT_NE(message.find("distinct"), std::string::npos) << message;
}

namespace {

struct Permutation {
  int64_t rows = 0;
  std::vector<int32_t> offsets, sorted_slots, slot_to_row;
};

Permutation permute(const std::vector<int32_t>& ids, int64_t tokens, int32_t k, ExpertSlice slice) {
  Permutation p;
  p.offsets.assign(static_cast<std::size_t>(slice.local_experts) + 1, -9);
  p.sorted_slots.assign(static_cast<std::size_t>(tokens * k), -9);
  p.slot_to_row.assign(static_cast<std::size_t>(tokens * k), -9);
  p.rows = permute_by_expert(ids.data(), tokens, k, slice, p.offsets.data(), p.sorted_slots.data(),
                             p.slot_to_row.data());
  return p;
}

// Naive: for each local expert in order, scan the slots in order.
Permutation naive_permute(const std::vector<int32_t>& ids, int64_t tokens, int32_t k, ExpertSlice slice) {
  Permutation p;
  p.offsets.push_back(0);
  p.slot_to_row.assign(static_cast<std::size_t>(tokens * k), -1);
  for (int32_t e = 0; e < slice.local_experts; ++e) {
    for (int64_t s = 0; s < tokens * k; ++s) {
      if (ids[s] == slice.first + e) {
        p.slot_to_row[s] = static_cast<int32_t>(p.sorted_slots.size());
        p.sorted_slots.push_back(static_cast<int32_t>(s));
      }
    }
    p.offsets.push_back(static_cast<int32_t>(p.sorted_slots.size()));
  }
  p.rows = static_cast<int64_t>(p.sorted_slots.size());
  p.sorted_slots.resize(static_cast<std::size_t>(tokens * k), -1);
  return p;
}

std::vector<int32_t> random_ids(uint64_t seed, int64_t tokens, int32_t k, int32_t experts) {
  std::mt19937_64 engine(seed);
  std::vector<int32_t> ids;
  std::vector<int32_t> all(static_cast<std::size_t>(experts));
  for (int64_t t = 0; t < tokens; ++t) {
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), engine);
    ids.insert(ids.end(), all.begin(), all.begin() + k);
  }
  return ids;
}

}  // namespace

TEST(MoePermuteByExpert, MatchesANaiveScanForSlicesOfEveryShape) {
  struct Case {
    int64_t tokens;
    int32_t k, first, local, total;
  };
  for (const Case c : {Case{53, 2, 0, 8, 8}, Case{53, 2, 2, 3, 8}, Case{40, 4, 7, 1, 8}, Case{1, 3, 1, 2, 6},
                       Case{64, 1, 0, 1, 1}, Case{29, 8, 16, 16, 64}}) {
    const auto ids = random_ids(static_cast<uint64_t>(c.tokens * 131 + c.first), c.tokens, c.k, c.total);
    const ExpertSlice slice{c.first, c.local, c.total};
    const Permutation got = permute(ids, c.tokens, c.k, slice);
    const Permutation want = naive_permute(ids, c.tokens, c.k, slice);
    SCOPED_TRACE(testing::Message() << "T=" << c.tokens << " k=" << c.k << " slice [" << c.first << ", +" << c.local
                                    << ") of " << c.total);
    EXPECT_EQ(got.rows, want.rows);
    EXPECT_EQ(got.offsets, want.offsets);
    EXPECT_EQ(got.sorted_slots, want.sorted_slots);
    EXPECT_EQ(got.slot_to_row, want.slot_to_row);
    // The same ids give the same permutation (nothing depends on state).
    const Permutation again = permute(ids, c.tokens, c.k, slice);
    EXPECT_EQ(again.sorted_slots, got.sorted_slots);
  }
}

TEST(MoePermuteByExpert, EdgeCases) {
  // T = 0: offsets all 0.
  int32_t offsets[3] = {5, 5, 5};
  EXPECT_EQ(permute_by_expert(nullptr, 0, 2, ExpertSlice{0, 2, 4}, offsets, nullptr, nullptr), 0);
  EXPECT_EQ(offsets[0] + offsets[1] + offsets[2], 0);
  // Every choice outside the slice: no rows, every slot -1.
  const std::vector<int32_t> ids = {0, 1, 1, 0, 5, 4};
  const Permutation none = permute(ids, 3, 2, ExpertSlice{2, 2, 6});
  EXPECT_EQ(none.rows, 0);
  EXPECT_EQ(none.offsets, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(none.slot_to_row, std::vector<int32_t>(6, -1));
  EXPECT_EQ(none.sorted_slots, std::vector<int32_t>(6, -1));
  // A hand-checked case: slice {4, 5} of 6 takes slots 5 (expert 4) and 4 (expert 5).
  const Permutation tail = permute(ids, 3, 2, ExpertSlice{4, 2, 6});
  EXPECT_EQ(tail.offsets, (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(tail.slot_to_row, (std::vector<int32_t>{-1, -1, -1, -1, 1, 0}));
}

TEST(MoePermuteByExpert, RejectsBadSlicesAndBadIdsBeforeWriting) {
  const std::vector<int32_t> ids = {0, 1, 1, 1};
  std::vector<int32_t> offsets(3, -9), sorted(4, -9), inverse(4, -9);
  const std::string message = error_of(
      [&] { permute_by_expert(ids.data(), 2, 2, ExpertSlice{0, 2, 4}, offsets.data(), sorted.data(), inverse.data()); },
      MC_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(message.find("topk_ids[1, 1] repeats expert 1"), std::string::npos) << message;
  EXPECT_EQ(offsets, std::vector<int32_t>(3, -9));
  EXPECT_EQ(inverse, std::vector<int32_t>(4, -9));
  for (const ExpertSlice bad : {ExpertSlice{3, 2, 4}, ExpertSlice{0, 0, 4}, ExpertSlice{-1, 2, 4}, ExpertSlice{0, 1, 0}}) {
    error_of([&] { permute_by_expert(ids.data(), 1, 2, bad, offsets.data(), sorted.data(), inverse.data()); },
             MC_STATUS_OUT_OF_RANGE);
  }
}

TEST(MoeRouteTopk, RankKeyOrdersExactlyLikeTheSelectionRule) {
  // The device router compares routing_rank_key values; the reference compares with routing_ranks_before.
  const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-40f, -1e-40f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY,
                            NAN, -NAN, std::nextafter(1.0f, 2.0f), std::nextafter(-1.0f, -2.0f), 3.5f, -3.5f};
  const int32_t ids[] = {0, 1, 2, 31, 32, 255, 256, 4095, INT32_MAX};
  for (float xa : specials) {
    for (float xb : specials) {
      for (int32_t a : ids) {
        for (int32_t b : ids) {
          ASSERT_EQ(routing_rank_key(xa, a) > routing_rank_key(xb, b), routing_ranks_before(xa, a, xb, b))
              << xa << "#" << a << " vs " << xb << "#" << b;
        }
      }
    }
  }
  std::mt19937 rng(11);
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_int_distribution<int32_t> id(0, 511);
  for (int i = 0; i < 200000; ++i) {
    float xa, xb;
    const uint32_t ba = bits(rng), bb = i % 3 == 0 ? ba : bits(rng);  // a third with equal logits
    std::memcpy(&xa, &ba, 4);
    std::memcpy(&xb, &bb, 4);
    const int32_t a = id(rng), b = id(rng);
    ASSERT_EQ(routing_rank_key(xa, a) > routing_rank_key(xb, b), routing_ranks_before(xa, a, xb, b));
  }
  EXPECT_GT(routing_rank_key(NAN, INT32_MAX), uint64_t{0}) << "0 stays below every real key";
}
