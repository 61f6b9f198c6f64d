// The whole MoE layer on a CUDA context against the same layer on the CPU reference context (issue 13), through the
// C ABI, for every grouped-GEMM strategy; skipped without a CUDA device.
//
// Tolerance. The two layers run the same stages; they may differ only where the GPU does not reproduce the host's
// bits: the grouped GEMM (CUTLASS's fp32 accumulation order; its D is within about one bf16 ulp of the CPU
// reference's), CUDA's expf in the activation, and the router's double exp (ids identical, weights within an fp32
// ulp). A one-ulp change of a GEMM1 output moves h by ~2^-8 relative, which flips its FP8 code by one step (2^-3
// relative for that element) only when h sits within 2^-8 of a rounding midpoint: for a few percent of the elements.
// GEMM2 then averages those flips over I products with random signs, so the output's relative RMS difference stays
// near 2^-3 * sqrt(few %) / sqrt(2) ~ 0.02 in the worst case, typically far below; the test requires < 2^-5 and every
// element within the naive double layer's rigorous error bound (moe_layer_reference.hpp), doubled as on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/float16.hpp"
#include "core/moe_routing.hpp"
#include "moe_layer_reference.hpp"
#include "test_support.hpp"

using namespace moecutlass;
using namespace moecutlass::test;

namespace {

struct Case {
  const char* name;
  uint64_t seed;
  int64_t tokens;
  int32_t experts, k;
  int64_t hidden, inter;
  ExpertSlice slice;
  int32_t io_dtype;  // hidden states and output
};

// The layer's inputs in `context` and one layer over them; forward() returns the output's raw 16-bit values.
class LayerRun {
 public:
  LayerRun(mc_context context, const Problem& p, const Case& c, int32_t strategy, int32_t routing)
      : context_(context), buffers_(context), p_(p), c_(c) {
    auto slice_of = [&](const Fp8Weights& w, std::vector<uint8_t>& codes, std::vector<float>& scales) {
      const int64_t per = w.n * w.k, per_scales = scale_blocks(w.n) * scale_blocks(w.k);
      codes.assign(w.codes.begin() + c.slice.first * per, w.codes.begin() + (c.slice.first + c.slice.local_experts) * per);
      scales.assign(w.scales.begin() + c.slice.first * per_scales,
                    w.scales.begin() + (c.slice.first + c.slice.local_experts) * per_scales);
    };
    std::vector<uint8_t> c1, c2;
    std::vector<float> s1, s2;
    slice_of(p.w1, c1, s1);
    slice_of(p.w2, c2, s2);
    mc_moe_layer_weights weights{};
    weights.struct_size = sizeof weights;
    weights.w13 = buffers_.upload(c1);
    weights.w13_scales = buffers_.upload(s1);
    weights.w2 = buffers_.upload(c2);
    weights.w2_scales = buffers_.upload(s2);

    mc_moe_layer_desc desc{};
    desc.struct_size = sizeof desc;
    desc.total_experts = c.slice.total_experts;
    desc.first_expert = c.slice.first;
    desc.local_experts = c.slice.local_experts;
    desc.top_k = c.k;
    desc.hidden = static_cast<int32_t>(c.hidden);
    desc.inter = static_cast<int32_t>(c.inter);
    desc.routing = routing;
    desc.normalize_routing_weights = p.renormalize ? 1 : 0;
    desc.activation = MC_ACTIVATION_SILU_AND_MUL;
    desc.input_dtype = c.io_dtype;
    desc.logits_dtype = MC_DTYPE_FP32;
    desc.output_dtype = c.io_dtype;
    desc.max_tokens = static_cast<int32_t>(c.tokens) + 3;
    desc.strategy = strategy;
    EXPECT_EQ(mc_moe_layer_create(context, &desc, &weights, &layer_), MC_STATUS_OK) << mctest::last_error();

    std::vector<uint16_t> x(p.x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = c.io_dtype == MC_DTYPE_FP16 ? fp16_from_float(bf16_to_float(p.x[i])) : p.x[i];
    }
    args_.struct_size = sizeof args_;
    args_.tokens = static_cast<int32_t>(c.tokens);
    args_.hidden = buffers_.upload(x);
    if (routing == MC_ROUTING_SOFTMAX_TOPK) {
      args_.router_logits = buffers_.upload(p.logits);
    } else {
      std::vector<int32_t> ids(static_cast<std::size_t>(c.tokens * c.k));
      std::vector<float> w(ids.size());
      route_topk(p.logits.data(), MC_DTYPE_FP32, c.tokens, c.slice.total_experts, c.k, p.renormalize, ids.data(),
                 w.data());
      ids_ = buffers_.upload(ids);
      args_.topk_ids = ids_;
      args_.topk_weights = buffers_.upload(w);
    }
    output_ = buffers_.upload(std::vector<uint16_t>(static_cast<std::size_t>(c.tokens * c.hidden), 0xABCD));
    args_.output = output_;
  }
  ~LayerRun() { mc_moe_layer_destroy(layer_); }

  std::vector<uint16_t> forward(mc_stream stream = nullptr) {
    EXPECT_EQ(mc_moe_layer_forward(layer_, &args_, stream), MC_STATUS_OK) << mctest::last_error();
    return output();
  }
  std::vector<uint16_t> output() { return buffers_.download(output_, c_.tokens * c_.hidden); }
  mc_moe_layer layer() const { return layer_; }
  const mc_moe_layer_args& args() const { return args_; }
  void set_ids(const std::vector<int32_t>& ids) {
    ASSERT_EQ(mc_memcpy_async(context_, ids_, ids.data(), static_cast<int64_t>(ids.size() * 4), MC_COPY_HOST_TO_DEVICE,
                              nullptr),
              MC_STATUS_OK);
    ASSERT_EQ(mc_context_synchronize(context_), MC_STATUS_OK);
  }

 private:
  mc_context context_;
  mctest::ContextBuffers buffers_;
  const Problem& p_;
  const Case& c_;
  mc_moe_layer layer_ = nullptr;
  mc_moe_layer_args args_{};
  int32_t* ids_ = nullptr;
  uint16_t* output_ = nullptr;
};

double to_double(uint16_t bits, int32_t dtype) {
  return dtype == MC_DTYPE_FP16 ? fp16_to_float(bits) : bf16_to_float(bits);
}

class CudaMoeLayer : public ::testing::Test {
 protected:
  void SetUp() override {
    int32_t count = 0;
    ASSERT_EQ(mc_get_device_count(&count), MC_STATUS_OK);
    if (count == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
    mc_context_desc desc{};
    desc.struct_size = sizeof desc;
    desc.backend = MC_BACKEND_CUDA;
    ASSERT_EQ(mc_context_create(&desc, &cuda_), MC_STATUS_OK) << mctest::last_error();
    const mc_context_desc cpu = mctest::cpu_desc(0);
    ASSERT_EQ(mc_context_create(&cpu, &cpu_), MC_STATUS_OK) << mctest::last_error();
  }
  void TearDown() override {
    mc_context_destroy(cuda_);
    mc_context_destroy(cpu_);
  }
  mc_context cuda_ = nullptr;
  mc_context cpu_ = nullptr;
};

const Case kCases[] = {
    {"deepseek-like e16 k4", 1501, 37, 16, 4, 512, 256, {0, 16, 16}, MC_DTYPE_BF16},
    {"expert-parallel slice 8 of 32", 1502, 64, 32, 8, 384, 256, {8, 8, 32}, MC_DTYPE_BF16},
    {"one token", 1503, 1, 8, 2, 256, 128, {0, 8, 8}, MC_DTYPE_BF16},
    {"fp16, partial blocks", 1504, 29, 8, 2, 208, 144, {0, 8, 8}, MC_DTYPE_FP16},
    {"several permutation chunks", 1505, 300, 64, 8, 256, 128, {0, 64, 64}, MC_DTYPE_BF16},
};

}  // namespace

TEST_F(CudaMoeLayer, MatchesTheCpuLayerForEveryStrategy) {
  const int32_t strategies[] = {MC_STRATEGY_AUTO, MC_STRATEGY_SINGLE, MC_STRATEGY_EXPERT_SPECIALIZED,
                                MC_STRATEGY_PERSISTENT};
  for (const Case& c : kCases) {
    const Problem p = make_problem(c.seed, c.tokens, c.experts, c.k, c.hidden, c.inter);
    LayerRun cpu(cpu_, p, c, MC_STRATEGY_AUTO, MC_ROUTING_SOFTMAX_TOPK);
    const std::vector<uint16_t> expected = cpu.forward();
    const Reference ref = reference_layer(p, c.slice);
    for (int32_t strategy : strategies) {
      SCOPED_TRACE(std::string(c.name) + ", strategy " + std::to_string(strategy));
      LayerRun gpu(cuda_, p, c, strategy, MC_ROUTING_SOFTMAX_TOPK);
      const std::vector<uint16_t> got = gpu.forward();
      double diff2 = 0, ref2 = 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        const double g = to_double(got[i], c.io_dtype), e = to_double(expected[i], c.io_dtype);
        ASSERT_LE(std::fabs(g - ref.out[i]), 2 * ref.bound[i] + 1e-30)
            << "element " << i << " (token " << i / c.hidden << ")";
        diff2 += (g - e) * (g - e);
        ref2 += e * e;
      }
      const double relative = ref2 > 0 ? std::sqrt(diff2 / ref2) : 0.0;
      EXPECT_LT(relative, 1.0 / 32);
      std::printf("%s, strategy %d: relative RMS difference to the CPU layer %.5f\n", c.name, strategy, relative);
      EXPECT_EQ(gpu.forward(), got) << "two forward calls differ";
      int32_t flags = -1;
      ASSERT_EQ(mc_context_query_device_errors(cuda_, 1, &flags), MC_STATUS_OK);
      EXPECT_EQ(flags, 0);
    }
  }
}

TEST_F(CudaMoeLayer, PrecomputedRoutingEqualsSoftmaxRoutingAndGraphReplayEqualsEager) {
  const Case& c = kCases[1];
  const Problem p = make_problem(c.seed, c.tokens, c.experts, c.k, c.hidden, c.inter);
  LayerRun routed(cuda_, p, c, MC_STRATEGY_AUTO, MC_ROUTING_SOFTMAX_TOPK);
  LayerRun precomputed(cuda_, p, c, MC_STRATEGY_AUTO, MC_ROUTING_PRECOMPUTED);
  const std::vector<uint16_t> eager = routed.forward();
  EXPECT_EQ(precomputed.forward(), eager);

  mc_stream stream = nullptr;
  ASSERT_EQ(mc_stream_create(cuda_, &stream), MC_STATUS_OK);
  ASSERT_EQ(mc_stream_begin_capture(stream), MC_STATUS_OK);
  ASSERT_EQ(mc_moe_layer_forward(routed.layer(), &routed.args(), stream), MC_STATUS_OK) << mctest::last_error();
  mc_graph graph = nullptr;
  ASSERT_EQ(mc_stream_end_capture(stream, &graph), MC_STATUS_OK) << mctest::last_error();
  for (int replay = 0; replay < 3; ++replay) {
    std::vector<uint16_t> canary(eager.size(), 0xABCD);
    ASSERT_EQ(mc_memcpy_async(cuda_, const_cast<void*>(routed.args().output), canary.data(),
                              static_cast<int64_t>(canary.size() * 2), MC_COPY_HOST_TO_DEVICE, stream),
              MC_STATUS_OK);
    ASSERT_EQ(mc_graph_launch(graph, stream), MC_STATUS_OK);
    ASSERT_EQ(mc_stream_synchronize(stream), MC_STATUS_OK);
    EXPECT_EQ(routed.output(), eager) << "replay " << replay;
  }
  mc_graph_destroy(graph);
  mc_stream_destroy(stream);
}

TEST_F(CudaMoeLayer, BadPrecomputedIdsRaiseTheDeviceErrorFlag) {
  const Case c{"flags", 1510, 4, 8, 2, 128, 128, {0, 8, 8}, MC_DTYPE_BF16};
  const Problem p = make_problem(c.seed, c.tokens, c.experts, c.k, c.hidden, c.inter);
  LayerRun layer(cuda_, p, c, MC_STRATEGY_AUTO, MC_ROUTING_PRECOMPUTED);
  int32_t flags = -1;
  ASSERT_EQ(mc_context_query_device_errors(cuda_, 1, &flags), MC_STATUS_OK);
  layer.set_ids({0, 1, 2, 9, 4, 5, 6, 7});  // 9 is outside 0 .. 7
  layer.forward();
  ASSERT_EQ(mc_context_query_device_errors(cuda_, 1, &flags), MC_STATUS_OK);
  EXPECT_EQ(flags, MC_DEVICE_ERROR_TOPK_ID_OUT_OF_RANGE);
  layer.set_ids({0, 1, 3, 3, 4, 5, 6, 7});  // token 1 names expert 3 twice
  layer.forward();
  ASSERT_EQ(mc_context_query_device_errors(cuda_, 1, &flags), MC_STATUS_OK);
  EXPECT_EQ(flags, MC_DEVICE_ERROR_TOPK_ID_DUPLICATE);
  layer.set_ids({0, 1, 2, 3, 4, 5, 6, 7});
  layer.forward();
  ASSERT_EQ(mc_context_query_device_errors(cuda_, 1, &flags), MC_STATUS_OK);
  EXPECT_EQ(flags, 0);
}
