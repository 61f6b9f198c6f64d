// The MoE layer through the C ABI on the CPU backend (issue 13): the forward call against the naive double layer
// (moe_layer_reference.hpp) and bit for bit against the stages composed by hand around mc_grouped_gemm_run;
// expert-parallel slices, precomputed routing, T = 0 and 1, determinism, and the argument rules (each bad argument
// named, nothing written, the layer still usable).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/float16.hpp"
#include "core/moe_permutation.hpp"
#include "core/moe_routing.hpp"
#include "cpu/moe_combine.hpp"
#include "cpu/moe_gather_quantize.hpp"
#include "cpu/moe_silu_and_mul.hpp"
#include "moe_layer_desc.hpp"
#include "moe_layer_reference.hpp"
#include "test_support.hpp"

using namespace moecutlass;
using namespace moecutlass::test;
using mctest::Context;

namespace {

template <class T>
T* upload(Context& context, const std::vector<T>& host) {
  T* device = context.alloc_array<T>(std::max<int64_t>(1, static_cast<int64_t>(host.size())));
  if (!host.empty()) std::memcpy(device, host.data(), host.size() * sizeof(T));
  return device;
}

// The local experts' slice of a weight tensor and its scales, uploaded.
struct LocalWeights {
  mc_moe_layer_weights weights{};
};

LocalWeights upload_weights(Context& context, const Problem& p, ExpertSlice slice) {
  auto slice_of = [&](const Fp8Weights& w, auto& codes, auto& scales) {
    const int64_t per_expert = w.n * w.k, per_expert_scales = scale_blocks(w.n) * scale_blocks(w.k);
    codes.assign(w.codes.begin() + slice.first * per_expert,
                 w.codes.begin() + (slice.first + slice.local_experts) * per_expert);
    scales.assign(w.scales.begin() + slice.first * per_expert_scales,
                  w.scales.begin() + (slice.first + slice.local_experts) * per_expert_scales);
  };
  std::vector<uint8_t> c1, c2;
  std::vector<float> s1, s2;
  slice_of(p.w1, c1, s1);
  slice_of(p.w2, c2, s2);
  LocalWeights out;
  out.weights.struct_size = sizeof out.weights;
  out.weights.w13 = upload(context, c1);
  out.weights.w13_scales = upload(context, s1);
  out.weights.w2 = upload(context, c2);
  out.weights.w2_scales = upload(context, s2);
  return out;
}

class Layer {
 public:
  Layer(Context& context, const mc_moe_layer_desc& desc, const mc_moe_layer_weights& weights) {
    EXPECT_EQ(mc_moe_layer_create(context, &desc, &weights, &handle_), MC_STATUS_OK) << mctest::last_error();
  }
  ~Layer() { mc_moe_layer_destroy(handle_); }
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;
  operator mc_moe_layer() const { return handle_; }

 private:
  mc_moe_layer handle_ = nullptr;
};

// One forward call with softmax routing from the problem's logits; returns the bf16 output.
std::vector<uint16_t> forward(Context& context, mc_moe_layer layer, const Problem& p) {
  const int64_t T = p.tokens, H = p.hidden;
  mc_moe_layer_args args{};
  args.struct_size = sizeof args;
  args.tokens = static_cast<int32_t>(T);
  args.hidden = upload(context, p.x);
  args.router_logits = upload(context, p.logits);
  auto* output = context.alloc_array<uint16_t>(std::max<int64_t>(1, T * H));
  args.output = output;
  EXPECT_EQ(mc_moe_layer_forward(layer, &args, nullptr), MC_STATUS_OK) << mctest::last_error();
  return std::vector<uint16_t>(output, output + T * H);
}

// The same layer composed by hand: the stage references around two grouped-GEMM plans of the same context.
std::vector<uint16_t> composed(Context& context, const Problem& p, ExpertSlice slice, const mc_moe_layer_weights& w) {
  const int64_t T = p.tokens, H = p.hidden, I = p.inter;
  const int32_t k = p.k;
  const int64_t capacity = T * k;
  std::vector<int32_t> ids(static_cast<std::size_t>(capacity));
  std::vector<float> weights(static_cast<std::size_t>(capacity));
  route_topk(p.logits.data(), MC_DTYPE_FP32, T, slice.total_experts, k, p.renormalize, ids.data(), weights.data());
  auto* offsets = context.alloc_array<int32_t>(slice.local_experts + 1);
  std::vector<int32_t> sorted(static_cast<std::size_t>(capacity)), slot_to_row(static_cast<std::size_t>(capacity));
  const int64_t rows = permute_by_expert(ids.data(), T, k, slice, offsets, sorted.data(), slot_to_row.data());

  auto* a1 = context.alloc_array<uint8_t>(std::max<int64_t>(1, capacity * H));
  auto* a1_scales = context.alloc_array<float>(std::max<int64_t>(1, capacity * scale_blocks(H)));
  gather_quantize_rows(p.x.data(), MC_DTYPE_BF16, T, H, sorted.data(), rows, k, a1, a1_scales);
  auto gemm = [&](const void* a, const float* a_scales, const void* b, const float* b_scales, int32_t n, int32_t kk) {
    mc_grouped_gemm_desc desc = mctest::gemm_desc(slice.local_experts, n, kk, static_cast<int32_t>(capacity));
    mc_grouped_gemm_plan plan = nullptr;
    EXPECT_EQ(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_OK) << mctest::last_error();
    auto* d = context.alloc_array<uint16_t>(std::max<int64_t>(1, capacity * n));
    mc_grouped_gemm_args args{};
    args.struct_size = sizeof args;
    args.rows = static_cast<int32_t>(capacity);
    args.a = a;
    args.a_scales = a_scales;
    args.b = b;
    args.b_scales = b_scales;
    args.expert_offsets = offsets;
    args.d = d;
    EXPECT_EQ(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_OK) << mctest::last_error();
    mc_grouped_gemm_plan_destroy(plan);
    return d;
  };
  const uint16_t* d1 = gemm(a1, a1_scales, w.w13, w.w13_scales, static_cast<int32_t>(2 * I), static_cast<int32_t>(H));
  auto* a2 = context.alloc_array<uint8_t>(std::max<int64_t>(1, capacity * I));
  auto* a2_scales = context.alloc_array<float>(std::max<int64_t>(1, capacity * scale_blocks(I)));
  silu_and_mul_quantize(d1, MC_DTYPE_BF16, rows, I, a2, a2_scales);
  const uint16_t* d2 = gemm(a2, a2_scales, w.w2, w.w2_scales, static_cast<int32_t>(H), static_cast<int32_t>(I));
  std::vector<uint16_t> out(static_cast<std::size_t>(T * H));
  weighted_combine(d2, MC_DTYPE_BF16, rows, H, weights.data(), slot_to_row.data(), T, k, out.data(), MC_DTYPE_BF16);
  return out;
}

// Against the naive double layer: every element within its error bound (doubled: the CPU grouped GEMM rounds to
// within one bf16 ulp, the bound assumes half an ulp) and the relative RMS error within the typical-error limit.
void expect_matches_reference(const std::vector<uint16_t>& out, const Problem& p, ExpertSlice slice) {
  const Reference ref = reference_layer(p, slice);
  double error2 = 0, ref2 = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const double got = bf16_to_float(out[i]);
    ASSERT_LE(std::fabs(got - ref.out[i]), 2 * ref.bound[i]) << "element " << i << " (token " << i / p.hidden << ")";
    error2 += (got - ref.out[i]) * (got - ref.out[i]);
    ref2 += ref.out[i] * ref.out[i];
  }
  if (ref2 > 0) {
    EXPECT_LT(std::sqrt(error2 / ref2), 0.125);
  }
}

struct LayerCase {
  uint64_t seed;
  int64_t tokens;
  int32_t experts, k;
  int64_t hidden, inter;
  ExpertSlice slice;
};

}  // namespace

TEST(MoeLayerAbi, ForwardMatchesNaiveLayerAndTheHandComposedStages) {
  const LayerCase cases[] = {
      {1401, 24, 6, 2, 256, 192, {0, 6, 6}},     // all experts local
      {1402, 24, 8, 3, 208, 144, {3, 3, 8}},     // a slice; partial 128-column blocks in H and I
      {1403, 1, 4, 1, 128, 128, {0, 4, 4}},      // one token, top-1
      {1404, 40, 16, 4, 128, 64, {12, 4, 16}},   // the last experts as the slice
  };
  for (const LayerCase& c : cases) {
    SCOPED_TRACE("seed " + std::to_string(c.seed));
    Context context(2);
    const Problem p = make_problem(c.seed, c.tokens, c.experts, c.k, c.hidden, c.inter);
    const LocalWeights w = upload_weights(context, p, c.slice);
    Layer layer(context, layer_desc(p, c.slice, static_cast<int32_t>(c.tokens) + 5), w.weights);
    const std::vector<uint16_t> out = forward(context, layer, p);
    expect_matches_reference(out, p, c.slice);
    EXPECT_EQ(out, composed(context, p, c.slice, w.weights)) << "the layer differs from its stages composed by hand";
    EXPECT_EQ(forward(context, layer, p), out) << "two forward calls differ";
  }
}

TEST(MoeLayerAbi, SlicesSumToTheWholeLayerAndForeignTokensGetZeros) {
  const Problem p = make_problem(1410, 16, 8, 2, 128, 128);
  Context context(2);
  const ExpertSlice all{0, 8, 8}, low{0, 4, 8}, high{4, 4, 8};
  const LocalWeights w_all = upload_weights(context, p, all), w_low = upload_weights(context, p, low),
                     w_high = upload_weights(context, p, high);
  Layer whole(context, layer_desc(p, all, 16), w_all.weights);
  Layer first(context, layer_desc(p, low, 16), w_low.weights);
  Layer second(context, layer_desc(p, high, 16), w_high.weights);
  const std::vector<uint16_t> sum = forward(context, whole, p), a = forward(context, first, p),
                              b = forward(context, second, p);
  std::vector<int32_t> ids(32);
  std::vector<float> weights(32);
  route_topk(p.logits.data(), MC_DTYPE_FP32, 16, 8, 2, true, ids.data(), weights.data());
  int foreign_tokens = 0;
  for (int64_t t = 0; t < 16; ++t) {
    const bool none_low = ids[t * 2] >= 4 && ids[t * 2 + 1] >= 4;
    foreign_tokens += none_low ? 1 : 0;
    for (int64_t h = 0; h < 128; ++h) {
      const std::size_t i = static_cast<std::size_t>(t * 128 + h);
      if (none_low) {
        EXPECT_EQ(a[i], 0) << "token " << t << " has no expert in the low slice";
      }
      // Each slice rounds its partial sum to bf16 once and the whole layer rounds the full sum once: at most one
      // bf16 ulp (2^-7 relative) of each of the three values apart, however much the two parts cancel.
      const double x = bf16_to_float(a[i]), y = bf16_to_float(b[i]), whole_value = bf16_to_float(sum[i]);
      EXPECT_NEAR(x + y, whole_value, std::ldexp(std::fabs(x) + std::fabs(y) + std::fabs(whole_value), -7))
          << "token " << t << " column " << h;
    }
  }
  EXPECT_GT(foreign_tokens, 0) << "the seed should route some token entirely to the high slice";
}

TEST(MoeLayerAbi, PrecomputedRoutingEqualsSoftmaxRoutingWithTheSameChoices) {
  const Problem p = make_problem(1420, 12, 8, 2, 128, 128);
  Context context(2);
  const ExpertSlice all{0, 8, 8};
  const LocalWeights w = upload_weights(context, p, all);
  Layer routed(context, layer_desc(p, all, 12), w.weights);
  mc_moe_layer_desc desc = layer_desc(p, all, 12);
  desc.routing = MC_ROUTING_PRECOMPUTED;
  desc.logits_dtype = 0;  // ignored for precomputed routing
  Layer precomputed(context, desc, w.weights);

  std::vector<int32_t> ids(24);
  std::vector<float> weights(24);
  route_topk(p.logits.data(), MC_DTYPE_FP32, 12, 8, 2, true, ids.data(), weights.data());
  mc_moe_layer_args args{};
  args.struct_size = sizeof args;
  args.tokens = 12;
  args.hidden = upload(context, p.x);
  args.topk_ids = upload(context, ids);
  args.topk_weights = upload(context, weights);
  auto* output = context.alloc_array<uint16_t>(12 * 128);
  args.output = output;
  MC_ASSERT_OK(mc_moe_layer_forward(precomputed, &args, nullptr));
  EXPECT_EQ(std::vector<uint16_t>(output, output + 12 * 128), forward(context, routed, p));
}

TEST(MoeLayerAbi, NoTokensWritesNothingAndOneTokenWorks) {
  Context context(1);
  const Problem p = make_problem(1430, 1, 4, 2, 128, 128);
  const ExpertSlice all{0, 4, 4};
  const LocalWeights w = upload_weights(context, p, all);
  Layer layer(context, layer_desc(p, all, 4), w.weights);
  mc_moe_layer_args args{};
  args.struct_size = sizeof args;
  args.tokens = 0;
  args.hidden = upload(context, p.x);
  args.router_logits = upload(context, p.logits);
  auto* output = context.alloc_array<uint16_t>(128);
  output[0] = 0xABCD;
  args.output = output;
  MC_ASSERT_OK(mc_moe_layer_forward(layer, &args, nullptr));
  EXPECT_EQ(output[0], 0xABCD);
  expect_matches_reference(forward(context, layer, p), p, all);
}

TEST(MoeLayerAbi, ZeroMaxTokensIsAValidLayer) {
  Context context(1);
  const Problem p = make_problem(1431, 0, 4, 2, 128, 128);
  const LocalWeights w = upload_weights(context, p, {0, 4, 4});
  Layer layer(context, layer_desc(p, {0, 4, 4}, 0), w.weights);
  mc_moe_layer_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_moe_layer_get_info(layer, &info));
  EXPECT_EQ(info.max_rows, 0);
}

TEST(MoeLayerAbi, InfoReportsTheWorkspaceAndBothGemms) {
  Context context(1);
  const Problem p = make_problem(1432, 0, 8, 4, 256, 128);
  const LocalWeights w = upload_weights(context, p, {0, 8, 8});
  Layer layer(context, layer_desc(p, {0, 8, 8}, 64), w.weights);
  mc_moe_layer_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_moe_layer_get_info(layer, &info));
  EXPECT_EQ(info.backend, MC_BACKEND_CPU);
  EXPECT_EQ(info.strategy, MC_STRATEGY_AUTO);
  EXPECT_EQ(info.max_rows, 256);
  // At least GEMM1's A (256 x 256 FP8) and its bf16 output (256 x 256 x 2 bytes) must fit.
  EXPECT_GE(info.workspace_bytes, 256 * 256 + 256 * 256 * 2);
  EXPECT_GT(std::strlen(info.gemm1_kernels), 0u);
  EXPECT_GT(std::strlen(info.gemm2_kernels), 0u);
  info.struct_size = 8;
  MC_EXPECT_STATUS(mc_moe_layer_get_info(layer, &info), MC_STATUS_INVALID_STRUCT_SIZE, "info->struct_size");
}

TEST(MoeLayerAbi, DescriptorRulesNameTheArgument) {
  Context context(1);
  const Problem p = make_problem(1440, 0, 8, 2, 128, 128);
  const ExpertSlice all{0, 8, 8};
  const LocalWeights w = upload_weights(context, p, all);
  struct Case {
    void (*edit)(mc_moe_layer_desc&);
    mc_status status;
    const char* fragment;
  };
  const Case cases[] = {
      {[](mc_moe_layer_desc& d) { d.struct_size = 12; }, MC_STATUS_INVALID_STRUCT_SIZE, "desc->struct_size"},
      {[](mc_moe_layer_desc& d) { d.total_experts = 0; }, MC_STATUS_OUT_OF_RANGE, "desc->total_experts"},
      {[](mc_moe_layer_desc& d) { d.first_expert = -1; }, MC_STATUS_OUT_OF_RANGE, "desc->first_expert"},
      {[](mc_moe_layer_desc& d) { d.first_expert = 2; }, MC_STATUS_OUT_OF_RANGE, "desc->local_experts"},
      {[](mc_moe_layer_desc& d) { d.top_k = 9; }, MC_STATUS_OUT_OF_RANGE, "desc->top_k"},
      {[](mc_moe_layer_desc& d) { d.top_k = 0; }, MC_STATUS_OUT_OF_RANGE, "desc->top_k"},
      {[](mc_moe_layer_desc& d) { d.hidden = 100; }, MC_STATUS_MISALIGNED, "desc->hidden"},
      {[](mc_moe_layer_desc& d) { d.inter = 0; }, MC_STATUS_OUT_OF_RANGE, "desc->inter"},
      {[](mc_moe_layer_desc& d) { d.routing = 7; }, MC_STATUS_INVALID_ARGUMENT, "desc->routing"},
      {[](mc_moe_layer_desc& d) { d.normalize_routing_weights = 2; }, MC_STATUS_OUT_OF_RANGE,
       "desc->normalize_routing_weights"},
      {[](mc_moe_layer_desc& d) { d.activation = 0; }, MC_STATUS_INVALID_ARGUMENT, "desc->activation"},
      {[](mc_moe_layer_desc& d) { d.input_dtype = MC_DTYPE_E4M3; }, MC_STATUS_INVALID_DTYPE, "desc->input_dtype"},
      {[](mc_moe_layer_desc& d) { d.logits_dtype = 9; }, MC_STATUS_INVALID_DTYPE, "desc->logits_dtype"},
      {[](mc_moe_layer_desc& d) { d.output_dtype = 0; }, MC_STATUS_INVALID_DTYPE, "desc->output_dtype"},
      {[](mc_moe_layer_desc& d) { d.max_tokens = -1; }, MC_STATUS_OUT_OF_RANGE, "desc->max_tokens"},
      {[](mc_moe_layer_desc& d) { d.max_tokens = 1 << 30; }, MC_STATUS_OUT_OF_RANGE, "MC_MAX_ROWS / desc->top_k"},
      {[](mc_moe_layer_desc& d) { d.strategy = 42; }, MC_STATUS_INVALID_STRATEGY, "desc->strategy"},
  };
  for (const Case& c : cases) {
    mc_moe_layer_desc desc = layer_desc(p, all, 8);
    c.edit(desc);
    mc_moe_layer layer = reinterpret_cast<mc_moe_layer>(0x1);
    MC_EXPECT_STATUS(mc_moe_layer_create(context, &desc, &w.weights, &layer), c.status, c.fragment);
    EXPECT_EQ(layer, reinterpret_cast<mc_moe_layer>(0x1)) << "a rejected create wrote the handle";
  }
  mc_moe_layer_desc desc = layer_desc(p, all, 8);
  mc_moe_layer layer = nullptr;
  MC_EXPECT_STATUS(mc_moe_layer_create(context, nullptr, &w.weights, &layer), MC_STATUS_NULL_POINTER, "desc is NULL");
  MC_EXPECT_STATUS(mc_moe_layer_create(context, &desc, nullptr, &layer), MC_STATUS_NULL_POINTER, "weights is NULL");
  MC_EXPECT_STATUS(mc_moe_layer_create(context, &desc, &w.weights, nullptr), MC_STATUS_NULL_POINTER, "layer is NULL");

  // Weights: too small for the shape (a layer of 9 experts over 8 experts' buffers), and foreign host memory.
  mc_moe_layer_desc larger = layer_desc(p, {0, 8, 9}, 8);
  larger.total_experts = 9;
  larger.local_experts = 9;
  MC_EXPECT_STATUS(mc_moe_layer_create(context, &larger, &w.weights, &layer), MC_STATUS_BUFFER_TOO_SMALL,
                   "weights->w13");
  std::vector<float> host_scales(4096);
  mc_moe_layer_weights foreign = w.weights;
  foreign.w2_scales = host_scales.data();
  MC_EXPECT_STATUS(mc_moe_layer_create(context, &desc, &foreign, &layer), MC_STATUS_INVALID_ARGUMENT,
                   "weights->w2_scales");
}

TEST(MoeLayerAbi, ForwardRulesNameTheArgumentAndWriteNothing) {
  Context context(1);
  const Problem p = make_problem(1450, 4, 8, 2, 128, 128);
  const ExpertSlice all{0, 8, 8};
  const LocalWeights w = upload_weights(context, p, all);
  Layer routed(context, layer_desc(p, all, 4), w.weights);
  mc_moe_layer_desc desc = layer_desc(p, all, 4);
  desc.routing = MC_ROUTING_PRECOMPUTED;
  Layer precomputed(context, desc, w.weights);

  auto* hidden = upload(context, p.x);
  auto* logits = upload(context, p.logits);
  std::vector<int32_t> good_ids = {0, 1, 2, 3, 4, 5, 6, 7};
  auto* ids = upload(context, good_ids);
  auto* weights = upload(context, std::vector<float>(8, 0.5f));
  auto* output = context.alloc_array<uint16_t>(4 * 128);
  auto fresh_output = [&] { std::fill(output, output + 4 * 128, uint16_t{0xABCD}); };
  auto untouched = [&] {
    for (int i = 0; i < 4 * 128; ++i) {
      if (output[i] != 0xABCD) return false;
    }
    return true;
  };
  auto routed_args = [&] {
    mc_moe_layer_args a{};
    a.struct_size = sizeof a;
    a.tokens = 4;
    a.hidden = hidden;
    a.router_logits = logits;
    a.output = output;
    return a;
  };
  auto precomputed_args = [&] {
    mc_moe_layer_args a = routed_args();
    a.router_logits = nullptr;
    a.topk_ids = ids;
    a.topk_weights = weights;
    return a;
  };

  struct Case {
    mc_moe_layer layer;
    mc_moe_layer_args args;
    mc_status status;
    const char* fragment;
  };
  std::vector<Case> cases;
  auto add = [&](mc_moe_layer layer, mc_moe_layer_args a, mc_status status, const char* fragment) {
    cases.push_back({layer, a, status, fragment});
  };
  {
    auto a = routed_args();
    a.tokens = 5;
    add(routed, a, MC_STATUS_OUT_OF_RANGE, "args->tokens");
  }
  {
    auto a = routed_args();
    a.tokens = -1;
    add(routed, a, MC_STATUS_OUT_OF_RANGE, "args->tokens");
  }
  {
    auto a = routed_args();
    a.hidden = nullptr;
    add(routed, a, MC_STATUS_NULL_POINTER, "args->hidden");
  }
  {
    auto a = routed_args();
    a.router_logits = nullptr;
    add(routed, a, MC_STATUS_NULL_POINTER, "args->router_logits");
  }
  {
    auto a = routed_args();
    a.topk_ids = ids;
    add(routed, a, MC_STATUS_INVALID_ARGUMENT, "args->topk_ids must be NULL");
  }
  {
    auto a = precomputed_args();
    a.router_logits = logits;
    add(precomputed, a, MC_STATUS_INVALID_ARGUMENT, "args->router_logits must be NULL");
  }
  {
    auto a = precomputed_args();
    a.topk_weights = nullptr;
    add(precomputed, a, MC_STATUS_NULL_POINTER, "args->topk_weights");
  }
  {
    auto a = routed_args();
    a.struct_size = 4;
    add(routed, a, MC_STATUS_INVALID_STRUCT_SIZE, "args->struct_size");
  }
  {
    auto a = routed_args();
    a.output = reinterpret_cast<uint8_t*>(output) + 2;
    add(routed, a, MC_STATUS_MISALIGNED, "args->output");
  }
  {
    auto a = routed_args();
    a.hidden = output;  // the output would overwrite the tokens it still reads
    add(routed, a, MC_STATUS_INVALID_ARGUMENT, "args->output overlaps args->hidden");
  }
  for (const Case& c : cases) {
    fresh_output();
    MC_EXPECT_STATUS(mc_moe_layer_forward(c.layer, &c.args, nullptr), c.status, c.fragment);
    EXPECT_TRUE(untouched()) << "a rejected forward wrote the output: " << c.fragment;
  }

  // Precomputed ids are checked exactly on the CPU: out of range and duplicated within a token.
  const std::vector<std::pair<std::vector<int32_t>, const char*>> bad_ids = {
      {{0, 1, 2, 8, 4, 5, 6, 7}, "args->topk_ids"},
      {{0, 1, 2, -1, 4, 5, 6, 7}, "args->topk_ids"},
      {{0, 1, 3, 3, 4, 5, 6, 7}, "args->topk_ids"},
  };
  for (const auto& [values, fragment] : bad_ids) {
    std::memcpy(ids, values.data(), values.size() * sizeof(int32_t));
    fresh_output();
    auto a = precomputed_args();
    MC_EXPECT_STATUS(mc_moe_layer_forward(precomputed, &a, nullptr), MC_STATUS_INVALID_ARGUMENT, fragment);
    EXPECT_TRUE(untouched());
  }

  // After all that, both layers still work.
  std::memcpy(ids, good_ids.data(), good_ids.size() * sizeof(int32_t));
  auto a = precomputed_args();
  MC_ASSERT_OK(mc_moe_layer_forward(precomputed, &a, nullptr));
  EXPECT_FALSE(untouched());
  expect_matches_reference(forward(context, routed, p), p, all);
}

TEST(MoeLayerAbi, HandlesAreCheckedAndDestroyedOnce) {
  Context context(1);
  const Problem p = make_problem(1460, 0, 4, 2, 128, 128);
  const LocalWeights w = upload_weights(context, p, {0, 4, 4});
  const mc_moe_layer_desc desc = layer_desc(p, {0, 4, 4}, 4);
  mc_moe_layer layer = nullptr;
  MC_ASSERT_OK(mc_moe_layer_create(context, &desc, &w.weights, &layer));
  EXPECT_EQ(mc_moe_layer_destroy(nullptr), MC_STATUS_OK);
  MC_ASSERT_OK(mc_moe_layer_destroy(layer));
  MC_EXPECT_STATUS(mc_moe_layer_destroy(layer), MC_STATUS_INVALID_HANDLE, "layer");
  mc_moe_layer_info info{};
  info.struct_size = sizeof info;
  MC_EXPECT_STATUS(mc_moe_layer_get_info(layer, &info), MC_STATUS_INVALID_HANDLE, "layer");
  // A context handle is not a layer.
  MC_EXPECT_STATUS(mc_moe_layer_get_info(reinterpret_cast<mc_moe_layer>(context.get()), &info),
                   MC_STATUS_INVALID_HANDLE, "layer");
  // A layer still alive when its context is destroyed goes with it.
  mc_context other = nullptr;
  const mc_context_desc cd = mctest::cpu_desc(1);
  MC_ASSERT_OK(mc_context_create(&cd, &other));
  void* buffers[4];
  const int64_t sizes[4] = {4 * 256 * 128, 4 * 2 * 1 * 4, 4 * 128 * 128, 4 * 1 * 1 * 4};
  for (int i = 0; i < 4; ++i) MC_ASSERT_OK(mc_malloc(other, sizes[i], &buffers[i]));
  mc_moe_layer_weights ow{};
  ow.struct_size = sizeof ow;
  ow.w13 = buffers[0];
  ow.w13_scales = static_cast<float*>(buffers[1]);
  ow.w2 = buffers[2];
  ow.w2_scales = static_cast<float*>(buffers[3]);
  MC_ASSERT_OK(mc_moe_layer_create(other, &desc, &ow, &layer));
  MC_ASSERT_OK(mc_context_destroy(other));
  MC_EXPECT_STATUS(mc_moe_layer_destroy(layer), MC_STATUS_INVALID_HANDLE, "layer");
}

TEST(MoeLayerAbi, TimedForwardRecordsEveryStageBoundaryAndComputesTheSame) {
  Context context(1);
  const Problem p = make_problem(1470, 6, 4, 2, 128, 128);
  const ExpertSlice all{0, 4, 4};
  const LocalWeights w = upload_weights(context, p, all);
  Layer layer(context, layer_desc(p, all, 6), w.weights);
  mc_event events[MC_MOE_LAYER_STAGE_EVENTS] = {};
  for (auto& event : events) MC_ASSERT_OK(mc_event_create(context, &event));
  mc_moe_layer_args args{};
  args.struct_size = sizeof args;
  args.tokens = 6;
  args.hidden = upload(context, p.x);
  args.router_logits = upload(context, p.logits);
  auto* output = context.alloc_array<uint16_t>(6 * 128);
  args.output = output;

  MC_EXPECT_STATUS(mc_moe_layer_forward_timed(layer, &args, nullptr, events, 7), MC_STATUS_OUT_OF_RANGE,
                   "event_count = 7");
  MC_EXPECT_STATUS(mc_moe_layer_forward_timed(layer, &args, nullptr, nullptr, 8), MC_STATUS_NULL_POINTER, "events");
  mc_event missing = events[3];
  events[3] = nullptr;
  MC_EXPECT_STATUS(mc_moe_layer_forward_timed(layer, &args, nullptr, events, 8), MC_STATUS_NULL_POINTER,
                   "events[3]");
  Context other(1);
  MC_ASSERT_OK(mc_event_create(other, &events[3]));
  MC_EXPECT_STATUS(mc_moe_layer_forward_timed(layer, &args, nullptr, events, 8), MC_STATUS_CONTEXT_MISMATCH,
                   "events[3]");
  events[3] = missing;
  // None of the rejected calls recorded anything.
  float ms = 0;
  MC_EXPECT_STATUS(mc_event_elapsed_ms(events[0], events[7], &ms), MC_STATUS_INVALID_ARGUMENT, "never recorded");

  MC_ASSERT_OK(mc_moe_layer_forward_timed(layer, &args, nullptr, events, MC_MOE_LAYER_STAGE_EVENTS));
  for (int i = 1; i < MC_MOE_LAYER_STAGE_EVENTS; ++i) {
    MC_ASSERT_OK(mc_event_elapsed_ms(events[i - 1], events[i], &ms));
    EXPECT_GE(ms, 0.0f) << "stage " << i;
  }
  EXPECT_EQ(std::vector<uint16_t>(output, output + 6 * 128), forward(context, layer, p));
}
