// The NCCL communicators and the parallel MoE layer on one GPU (issue 16; world size 1, the most one GPU can check:
// NCCL cannot put two ranks on one device). Through the C ABI:
//  - CudaCommunicator: create / info / destroy (repeatedly), create_all, and a layer refused on a communicator of
//    another context (MC_STATUS_CONTEXT_MISMATCH);
//  - CudaParallel (tensor parallel) and CudaExpertParallel: the W = 1 layer is bit-identical to the plain layer on
//    the same inputs, eager and replayed from a CUDA graph; EP with padding (tokens < tokens_per_rank) equals the
//    plain layer fed the same zero padding rows, and leaves the output rows beyond its tokens untouched.
// Skipped without a CUDA device; skipped with the reason when the library was built without NCCL or no NCCL 2.18+
// can be loaded, unless MOECUTLASS_REQUIRE_NCCL=1 (then those fail). NVLink multicast is off (NCCL_NVLS_ENABLE=0).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend.hpp"
#include "core/moe_routing.hpp"
#include "parallel_test_support.hpp"
#include "test_support.hpp"

using namespace moecutlass;
using namespace moecutlass::test;

namespace {

bool nccl_required() {
  const char* value = std::getenv("MOECUTLASS_REQUIRE_NCCL");
  return value != nullptr && std::string(value) == "1";
}

constexpr int32_t kExperts = 16, kTopK = 4, kHidden = 512, kInter = 256;
constexpr uint16_t kCanary = 0xABCD;

mc_moe_layer_desc layer_desc(int32_t routing, int32_t max_tokens) {
  mc_moe_layer_desc desc{};
  desc.struct_size = sizeof desc;
  desc.total_experts = kExperts;
  desc.first_expert = 0;
  desc.local_experts = kExperts;
  desc.top_k = kTopK;
  desc.hidden = kHidden;
  desc.inter = kInter;
  desc.routing = routing;
  desc.normalize_routing_weights = 1;
  desc.activation = MC_ACTIVATION_SILU_AND_MUL;
  desc.input_dtype = MC_DTYPE_BF16;
  desc.logits_dtype = MC_DTYPE_FP32;
  desc.output_dtype = MC_DTYPE_BF16;
  desc.max_tokens = max_tokens;
  desc.strategy = MC_STRATEGY_AUTO;
  return desc;
}

// A layer (plain or parallel) with its inputs and an output buffer of `output_rows` rows, in one context.
class LayerRun {
 public:
  // parallel == nullptr: the plain layer. `tokens` of the problem's first tokens (plus zero rows up to `tokens` when
  // the problem has fewer) are the forward's input.
  LayerRun(mc_context context, const Problem& p, int32_t routing, int32_t tokens, int32_t max_tokens,
           const mc_moe_layer_parallel_desc* parallel, int64_t output_rows)
      : context_(context), buffers_(context), output_rows_(output_rows) {
    const WeightSlice w = expert_slice(p, 0, kExperts);
    mc_moe_layer_weights weights{};
    weights.struct_size = sizeof weights;
    weights.w13 = buffers_.upload(w.w13);
    weights.w13_scales = buffers_.upload(w.w13_scales);
    weights.w2 = buffers_.upload(w.w2);
    weights.w2_scales = buffers_.upload(w.w2_scales);
    const mc_moe_layer_desc desc = layer_desc(routing, max_tokens);
    status_ = parallel == nullptr ? mc_moe_layer_create(context, &desc, &weights, &layer_)
                                  : mc_moe_layer_create_parallel(context, &desc, parallel, &weights, &layer_);
    if (status_ != MC_STATUS_OK) return;

    std::vector<uint16_t> x(static_cast<std::size_t>(tokens) * kHidden, 0);
    std::vector<float> logits(static_cast<std::size_t>(tokens) * kExperts, 0.0f);
    const int64_t real = std::min<int64_t>(tokens, p.tokens);
    std::copy(p.x.begin(), p.x.begin() + real * kHidden, x.begin());
    std::copy(p.logits.begin(), p.logits.begin() + real * kExperts, logits.begin());
    args_.struct_size = sizeof args_;
    args_.tokens = tokens;
    args_.hidden = buffers_.upload(x);
    if (routing == MC_ROUTING_SOFTMAX_TOPK) {
      args_.router_logits = buffers_.upload(logits);
    } else {
      std::vector<int32_t> ids(static_cast<std::size_t>(tokens) * kTopK);
      std::vector<float> weights_host(ids.size());
      route_topk(logits.data(), MC_DTYPE_FP32, tokens, kExperts, kTopK, true, ids.data(), weights_host.data());
      args_.topk_ids = buffers_.upload(ids);
      args_.topk_weights = buffers_.upload(weights_host);
    }
    output_ = buffers_.upload(std::vector<uint16_t>(static_cast<std::size_t>(output_rows * kHidden), kCanary));
    args_.output = output_;
  }
  ~LayerRun() { mc_moe_layer_destroy(layer_); }

  mc_status status() const { return status_; }
  mc_moe_layer layer() const { return layer_; }
  const mc_moe_layer_args& args() const { return args_; }
  void reset_output(mc_stream stream) {
    const std::vector<uint16_t> canary(static_cast<std::size_t>(output_rows_ * kHidden), kCanary);
    EXPECT_EQ(mc_memcpy_async(context_, output_, canary.data(), static_cast<int64_t>(canary.size() * 2),
                              MC_COPY_HOST_TO_DEVICE, stream),
              MC_STATUS_OK);
    EXPECT_EQ(mc_context_synchronize(context_), MC_STATUS_OK);
  }
  std::vector<uint16_t> forward(mc_stream stream = nullptr) {
    reset_output(stream);
    EXPECT_EQ(mc_moe_layer_forward(layer_, &args_, stream), MC_STATUS_OK) << mctest::last_error();
    return output();
  }
  std::vector<uint16_t> output() { return buffers_.download(output_, output_rows_ * kHidden); }

 private:
  mc_context context_;
  mctest::ContextBuffers buffers_;
  int64_t output_rows_;
  mc_status status_ = MC_STATUS_INTERNAL;
  mc_moe_layer layer_ = nullptr;
  mc_moe_layer_args args_{};
  uint16_t* output_ = nullptr;
};

std::vector<uint16_t> rows(const std::vector<uint16_t>& all, int64_t first, int64_t count) {
  return std::vector<uint16_t>(all.begin() + first * kHidden, all.begin() + (first + count) * kHidden);
}

// Captures one forward of `run` on a new stream, replays it three times (output reset to the canary before each)
// and expects `expected` every time.
void expect_graph_replays(mc_context context, LayerRun& run, const std::vector<uint16_t>& expected) {
  mc_stream stream = nullptr;
  ASSERT_EQ(mc_stream_create(context, &stream), MC_STATUS_OK);
  ASSERT_EQ(mc_stream_begin_capture(stream), MC_STATUS_OK);
  ASSERT_EQ(mc_moe_layer_forward(run.layer(), &run.args(), stream), MC_STATUS_OK) << mctest::last_error();
  mc_graph graph = nullptr;
  ASSERT_EQ(mc_stream_end_capture(stream, &graph), MC_STATUS_OK) << mctest::last_error();
  for (int replay = 0; replay < 3; ++replay) {
    run.reset_output(stream);
    ASSERT_EQ(mc_graph_launch(graph, stream), MC_STATUS_OK) << mctest::last_error();
    ASSERT_EQ(mc_stream_synchronize(stream), MC_STATUS_OK) << mctest::last_error();
    EXPECT_EQ(run.output(), expected) << "replay " << replay;
  }
  mc_graph_destroy(graph);
  mc_stream_destroy(stream);
}

// A CUDA context on device 0 and a world-size-1 communicator of it.
class NcclTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("NCCL_NVLS_ENABLE", "0", 1);  // NVLink multicast off (the device README)
    int32_t count = 0;
    ASSERT_EQ(mc_get_device_count(&count), MC_STATUS_OK);
    if (count == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
    if (!kNcclCompiledIn) {
      if (nccl_required()) FAIL() << "MOECUTLASS_REQUIRE_NCCL=1, but: " << kBuiltWithoutNccl;
      GTEST_SKIP() << kBuiltWithoutNccl;
    }
    mc_context_desc desc{};
    desc.struct_size = sizeof desc;
    desc.backend = MC_BACKEND_CUDA;
    ASSERT_EQ(mc_context_create(&desc, &context_), MC_STATUS_OK) << mctest::last_error();
    id_.struct_size = sizeof id_;
    const mc_status status = mc_nccl_get_unique_id(&id_);
    if (status == MC_STATUS_UNSUPPORTED) {
      const std::string why = mctest::last_error();
      if (nccl_required()) FAIL() << "MOECUTLASS_REQUIRE_NCCL=1, but: " << why;
      GTEST_SKIP() << why;
    }
    ASSERT_EQ(status, MC_STATUS_OK) << mctest::last_error();
    ASSERT_EQ(mc_communicator_create(context_, &id_, 1, 0, &communicator_), MC_STATUS_OK) << mctest::last_error();
  }
  void TearDown() override {
    mc_communicator_destroy(communicator_);
    mc_context_destroy(context_);
  }
  mc_moe_layer_parallel_desc parallel(int32_t mode, int32_t tokens_per_rank) const {
    mc_moe_layer_parallel_desc desc{};
    desc.struct_size = sizeof desc;
    desc.mode = mode;
    desc.communicator = communicator_;
    desc.tokens_per_rank = tokens_per_rank;
    return desc;
  }

  mc_context context_ = nullptr;
  mc_nccl_unique_id id_{};
  mc_communicator communicator_ = nullptr;
};

class CudaCommunicator : public NcclTest {};
class CudaParallel : public NcclTest {};
class CudaExpertParallel : public NcclTest {};

}  // namespace

TEST_F(CudaCommunicator, CreateReportsItsRankAndDestroysOnce) {
  mc_communicator_info info{};
  info.struct_size = sizeof info;
  ASSERT_EQ(mc_communicator_get_info(communicator_, &info), MC_STATUS_OK) << mctest::last_error();
  EXPECT_EQ(info.world_size, 1);
  EXPECT_EQ(info.rank, 0);
  EXPECT_EQ(info.device, 0);
  EXPECT_GE(info.nccl_version, 21800);
  info.struct_size = 4;
  EXPECT_EQ(mc_communicator_get_info(communicator_, &info), MC_STATUS_INVALID_STRUCT_SIZE);
  // Create and destroy repeatedly: every NCCL communicator is released with its handle.
  for (int i = 0; i < 10; ++i) {
    mc_nccl_unique_id id{};
    id.struct_size = sizeof id;
    ASSERT_EQ(mc_nccl_get_unique_id(&id), MC_STATUS_OK) << mctest::last_error();
    mc_communicator communicator = nullptr;
    ASSERT_EQ(mc_communicator_create(context_, &id, 1, 0, &communicator), MC_STATUS_OK) << mctest::last_error();
    ASSERT_EQ(mc_communicator_destroy(communicator), MC_STATUS_OK);
    EXPECT_EQ(mc_communicator_destroy(communicator), MC_STATUS_INVALID_HANDLE);
  }
}

TEST_F(CudaCommunicator, CreateAllMakesOneRankPerDevice) {
  const mc_context one[] = {context_};
  mc_communicator created[1] = {nullptr};
  ASSERT_EQ(mc_communicator_create_all(one, 1, created), MC_STATUS_OK) << mctest::last_error();
  mc_communicator_info info{};
  info.struct_size = sizeof info;
  ASSERT_EQ(mc_communicator_get_info(created[0], &info), MC_STATUS_OK);
  EXPECT_EQ(info.world_size, 1);
  EXPECT_EQ(info.rank, 0);
  EXPECT_EQ(mc_communicator_destroy(created[0]), MC_STATUS_OK);

  // Two contexts of one device cannot be two ranks; nothing is written.
  mc_context_desc desc{};
  desc.struct_size = sizeof desc;
  desc.backend = MC_BACKEND_CUDA;
  mc_context second = nullptr;
  ASSERT_EQ(mc_context_create(&desc, &second), MC_STATUS_OK);
  const mc_context two[] = {context_, second};
  mc_communicator pair[2] = {nullptr, nullptr};
  MC_EXPECT_STATUS(mc_communicator_create_all(two, 2, pair), MC_STATUS_INVALID_ARGUMENT, "contexts[0] and contexts[1]",
                   "device 0");
  EXPECT_EQ(pair[0], nullptr);
  EXPECT_EQ(pair[1], nullptr);
  mc_context_destroy(second);
}

TEST_F(CudaCommunicator, ALayerOnACommunicatorOfAnotherContextIsRefused) {
  mc_context_desc desc{};
  desc.struct_size = sizeof desc;
  desc.backend = MC_BACKEND_CUDA;
  mc_context other = nullptr;
  ASSERT_EQ(mc_context_create(&desc, &other), MC_STATUS_OK);
  {
    const Problem p = make_problem(1701, 8, kExperts, kTopK, kHidden, kInter);
    const mc_moe_layer_parallel_desc tp = parallel(MC_PARALLEL_TENSOR, 0);
    LayerRun run(other, p, MC_ROUTING_SOFTMAX_TOPK, 8, 8, &tp, 8);
    EXPECT_EQ(run.status(), MC_STATUS_CONTEXT_MISMATCH);
    EXPECT_EQ(run.layer(), nullptr);
    // The same layer on the communicator's own context is accepted.
    LayerRun own(context_, p, MC_ROUTING_SOFTMAX_TOPK, 8, 8, &tp, 8);
    EXPECT_EQ(own.status(), MC_STATUS_OK) << mctest::last_error();
  }
  mc_context_destroy(other);
}

TEST_F(CudaCommunicator, TheLayerKeepsItsCommunicatorAlive) {
  const Problem p = make_problem(1702, 8, kExperts, kTopK, kHidden, kInter);
  LayerRun plain(context_, p, MC_ROUTING_SOFTMAX_TOPK, 8, 8, nullptr, 8);
  const mc_moe_layer_parallel_desc tp = parallel(MC_PARALLEL_TENSOR, 0);
  LayerRun run(context_, p, MC_ROUTING_SOFTMAX_TOPK, 8, 8, &tp, 8);
  ASSERT_EQ(run.status(), MC_STATUS_OK) << mctest::last_error();
  ASSERT_EQ(mc_communicator_destroy(communicator_), MC_STATUS_OK);
  communicator_ = nullptr;
  EXPECT_EQ(run.forward(), plain.forward());
}

TEST_F(CudaParallel, TensorParallelWorldSizeOneIsBitIdenticalEagerAndReplayed) {
  const Problem p = make_problem(1703, 37, kExperts, kTopK, kHidden, kInter);
  for (int32_t routing : {MC_ROUTING_SOFTMAX_TOPK, MC_ROUTING_PRECOMPUTED}) {
    SCOPED_TRACE("routing " + std::to_string(routing));
    LayerRun plain(context_, p, routing, 37, 40, nullptr, 38);
    ASSERT_EQ(plain.status(), MC_STATUS_OK) << mctest::last_error();
    const mc_moe_layer_parallel_desc tp = parallel(MC_PARALLEL_TENSOR, 0);
    LayerRun run(context_, p, routing, 37, 40, &tp, 38);
    ASSERT_EQ(run.status(), MC_STATUS_OK) << mctest::last_error();
    const std::vector<uint16_t> expected = plain.forward();
    EXPECT_EQ(rows(expected, 37, 1), std::vector<uint16_t>(kHidden, kCanary));
    EXPECT_EQ(run.forward(), expected);
    EXPECT_EQ(run.forward(), expected) << "a second forward differs";
    expect_graph_replays(context_, run, expected);
    int32_t flags = -1;
    ASSERT_EQ(mc_context_query_device_errors(context_, 1, &flags), MC_STATUS_OK);
    EXPECT_EQ(flags, 0);
  }
}

TEST_F(CudaParallel, TensorParallelRequiresWholeScaleBlocksOfI) {
  const Problem p = make_problem(1704, 8, kExperts, kTopK, kHidden, 144);
  mctest::ContextBuffers buffers(context_);
  const WeightSlice w = expert_slice(p, 0, kExperts);
  mc_moe_layer_weights weights{sizeof(mc_moe_layer_weights), buffers.upload(w.w13), buffers.upload(w.w13_scales),
                               buffers.upload(w.w2), buffers.upload(w.w2_scales)};
  mc_moe_layer_desc desc = layer_desc(MC_ROUTING_SOFTMAX_TOPK, 8);
  desc.inter = 144;
  const mc_moe_layer_parallel_desc tp = parallel(MC_PARALLEL_TENSOR, 0);
  mc_moe_layer layer = nullptr;
  MC_EXPECT_STATUS(mc_moe_layer_create_parallel(context_, &desc, &tp, &weights, &layer), MC_STATUS_MISALIGNED,
                   "desc->inter = 144", "multiple of 128");
  EXPECT_EQ(layer, nullptr);
}

TEST_F(CudaExpertParallel, WorldSizeOneIsBitIdenticalEagerAndReplayed) {
  const Problem p = make_problem(1705, 40, kExperts, kTopK, kHidden, kInter);
  for (int32_t routing : {MC_ROUTING_SOFTMAX_TOPK, MC_ROUTING_PRECOMPUTED}) {
    SCOPED_TRACE("routing " + std::to_string(routing));
    LayerRun plain(context_, p, routing, 40, 40, nullptr, 40);
    const mc_moe_layer_parallel_desc ep = parallel(MC_PARALLEL_EXPERT, 40);
    LayerRun run(context_, p, routing, 40, 40, &ep, 40);
    ASSERT_EQ(run.status(), MC_STATUS_OK) << mctest::last_error();
    const std::vector<uint16_t> expected = plain.forward();
    EXPECT_EQ(run.forward(), expected);
    expect_graph_replays(context_, run, expected);
    int32_t flags = -1;
    ASSERT_EQ(mc_context_query_device_errors(context_, 1, &flags), MC_STATUS_OK);
    EXPECT_EQ(flags, 0);
  }
}

TEST_F(CudaExpertParallel, PaddingRowsAddNothingAndTheirOutputRowsAreNotWritten) {
  // 37 tokens padded to 40: the same as the plain layer fed the 37 tokens plus three zero rows (same GEMM rows, so
  // the same kernels), on the first 37 rows; rows 37..39 of the output keep the canary.
  const Problem p = make_problem(1706, 37, kExperts, kTopK, kHidden, kInter);
  for (int32_t routing : {MC_ROUTING_SOFTMAX_TOPK, MC_ROUTING_PRECOMPUTED}) {
    SCOPED_TRACE("routing " + std::to_string(routing));
    LayerRun plain(context_, p, routing, 40, 40, nullptr, 40);
    const mc_moe_layer_parallel_desc ep = parallel(MC_PARALLEL_EXPERT, 40);
    LayerRun run(context_, p, routing, 37, 40, &ep, 40);
    ASSERT_EQ(run.status(), MC_STATUS_OK) << mctest::last_error();
    const std::vector<uint16_t> expected = plain.forward();
    const std::vector<uint16_t> got = run.forward();
    EXPECT_EQ(rows(got, 0, 37), rows(expected, 0, 37));
    EXPECT_EQ(rows(got, 37, 3), std::vector<uint16_t>(3 * kHidden, kCanary));
    std::vector<uint16_t> replay_expected = got;
    expect_graph_replays(context_, run, replay_expected);
    int32_t flags = -1;
    ASSERT_EQ(mc_context_query_device_errors(context_, 1, &flags), MC_STATUS_OK);
    EXPECT_EQ(flags, 0) << "the padding rows' ids raised the device error flag";
  }
}

TEST_F(CudaExpertParallel, ForwardTakesAtMostTokensPerRank) {
  const Problem p = make_problem(1707, 8, kExperts, kTopK, kHidden, kInter);
  const mc_moe_layer_parallel_desc ep = parallel(MC_PARALLEL_EXPERT, 8);
  LayerRun run(context_, p, MC_ROUTING_SOFTMAX_TOPK, 8, 16, &ep, 8);
  ASSERT_EQ(run.status(), MC_STATUS_OK) << mctest::last_error();
  mc_moe_layer_args args = run.args();
  args.tokens = 9;
  MC_EXPECT_STATUS(mc_moe_layer_forward(run.layer(), &args, nullptr), MC_STATUS_OUT_OF_RANGE, "args->tokens = 9",
                   "tokens_per_rank");
}
