// The parallel MoE layer's host logic (issue 16, core/moe_parallel.hpp), on the CPU backend:
//  - the parallel descriptor's rules (mode, W and r against the expert slice, I/W % 128, EP token counts);
//  - the C ABI's validation and its MC_STATUS_UNSUPPORTED answers (a build without NCCL, the CPU backend);
//  - the pipeline itself with an in-process stand-in for NCCL: W ranks on W threads, each with its own CPU backend,
//    exchanging through shared memory with barriers (the collectives' semantics: all-reduce and reduce-scatter sum in
//    rank order, all-gather concatenates in rank order). At W = 1 TP and EP must give the plain layer's bits; at
//    W = 2 every rank must give exactly bf16(sum of the ranks' fp32 partials) computed from plain layers of each
//    rank's slice, and stay close to the whole layer. EP ranks pass fewer tokens than tokens_per_rank (padding),
//    and the output rows beyond a rank's tokens stay untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend.hpp"
#include "core/error.hpp"
#include "core/float16.hpp"
#include "core/moe_parallel.hpp"
#include "core/moe_routing.hpp"
#include "moe_layer_desc.hpp"
#include "parallel_test_support.hpp"
#include "test_support.hpp"

using namespace moecutlass;
using namespace moecutlass::test;

namespace {

// ---- the stand-in collectives ----------------------------------------------------------------------------------

class Exchange {
 public:
  explicit Exchange(int32_t world_size) : world_size_(world_size), posted_(static_cast<std::size_t>(world_size)) {}
  int32_t world_size() const { return world_size_; }
  // Every rank posts its send pointers, waits for all, runs `read` (all posts visible), waits again, then `write`.
  template <class Read, class Write>
  void exchange(int32_t rank, std::vector<const void*> sends, Read&& read, Write&& write) {
    posted_[static_cast<std::size_t>(rank)] = std::move(sends);
    barrier();
    read(posted_);
    barrier();  // nobody writes a buffer another rank may still be reading
    write();
  }

 private:
  void barrier() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t generation = generation_;
    if (++arrived_ == world_size_) {
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != generation; });
    }
  }

  int32_t world_size_;
  std::vector<std::vector<const void*>> posted_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int32_t arrived_ = 0;
  int64_t generation_ = 0;
};

class StandInCollectives final : public Collectives {
 public:
  StandInCollectives(Exchange& exchange, int32_t rank) : exchange_(exchange), rank_(rank) {}
  int32_t world_size() const override { return exchange_.world_size(); }
  int32_t rank() const override { return rank_; }
  int32_t calls = 0;

  void all_reduce_sum(const float* send, float* recv, int64_t count, BackendStream&) override {
    ++calls;
    std::vector<float> sum(static_cast<std::size_t>(count));
    exchange_.exchange(
        rank_, {send},
        [&](const std::vector<std::vector<const void*>>& posted) {
          for (int64_t i = 0; i < count; ++i) {
            float acc = static_cast<const float*>(posted[0][0])[i];
            for (std::size_t q = 1; q < posted.size(); ++q) acc += static_cast<const float*>(posted[q][0])[i];
            sum[static_cast<std::size_t>(i)] = acc;
          }
        },
        [&] { std::copy(sum.begin(), sum.end(), recv); });
  }

  void all_gather(const GatherPart* parts, int32_t count, BackendStream&) override {
    ++calls;
    std::vector<const void*> sends;
    for (int32_t i = 0; i < count; ++i) sends.push_back(parts[i].send);
    std::vector<std::vector<uint8_t>> gathered(static_cast<std::size_t>(count));
    exchange_.exchange(
        rank_, sends,
        [&](const std::vector<std::vector<const void*>>& posted) {
          for (int32_t i = 0; i < count; ++i) {
            for (const auto& rank_posts : posted) {
              const auto* bytes = static_cast<const uint8_t*>(rank_posts[static_cast<std::size_t>(i)]);
              gathered[static_cast<std::size_t>(i)].insert(gathered[static_cast<std::size_t>(i)].end(), bytes,
                                                           bytes + parts[i].bytes);
            }
          }
        },
        [&] {
          for (int32_t i = 0; i < count; ++i) {
            std::memcpy(parts[i].recv, gathered[static_cast<std::size_t>(i)].data(),
                        gathered[static_cast<std::size_t>(i)].size());
          }
        });
  }

  void reduce_scatter_sum(const float* send, float* recv, int64_t count, BackendStream&) override {
    ++calls;
    std::vector<float> sum(static_cast<std::size_t>(count));
    exchange_.exchange(
        rank_, {send},
        [&](const std::vector<std::vector<const void*>>& posted) {
          for (int64_t i = 0; i < count; ++i) {
            const int64_t at = rank_ * count + i;
            float acc = static_cast<const float*>(posted[0][0])[at];
            for (std::size_t q = 1; q < posted.size(); ++q) acc += static_cast<const float*>(posted[q][0])[at];
            sum[static_cast<std::size_t>(i)] = acc;
          }
        },
        [&] { std::copy(sum.begin(), sum.end(), recv); });
  }

 private:
  Exchange& exchange_;
  int32_t rank_;
};

// ---- layers on a CPU backend, through the internal API ------------------------------------------------------

constexpr int32_t kExperts = 8, kTopK = 2, kHidden = 256;

MoeLayerShape layer_shape(int32_t inter, ExpertSlice slice, int32_t max_tokens, int32_t routing,
                          int32_t output_dtype) {
  MoeLayerShape shape;
  shape.total_experts = slice.total_experts;
  shape.first_expert = slice.first;
  shape.local_experts = slice.local_experts;
  shape.top_k = kTopK;
  shape.hidden = kHidden;
  shape.inter = inter;
  shape.routing = routing;
  shape.normalize = true;
  shape.activation = MC_ACTIVATION_SILU_AND_MUL;
  shape.input_dtype = MC_DTYPE_BF16;
  shape.logits_dtype = routing == MC_ROUTING_SOFTMAX_TOPK ? MC_DTYPE_FP32 : 0;
  shape.output_dtype = output_dtype;
  shape.max_tokens = max_tokens;
  shape.strategy = MC_STRATEGY_AUTO;
  return shape;
}

// One CPU backend with the memory it hands out (host memory: filled and read with memcpy).
class HostBackend {
 public:
  HostBackend() : backend_(make_cpu_backend(1)) {}
  ~HostBackend() {
    for (void* pointer : owned_) backend_->release(pointer);
  }
  Backend& get() { return *backend_; }
  template <class T>
  T* put(const std::vector<T>& host, int64_t min_count = 0) {
    const int64_t count = std::max<int64_t>(static_cast<int64_t>(host.size()), min_count);
    void* pointer = backend_->allocate(std::max<int64_t>(16, count * static_cast<int64_t>(sizeof(T))));
    owned_.push_back(pointer);
    if (!host.empty()) std::memcpy(pointer, host.data(), host.size() * sizeof(T));
    return static_cast<T*>(pointer);
  }
  MoeLayerWeights weights(const WeightSlice& s) {
    MoeLayerWeights w;
    w.w13 = put(s.w13);
    w.w13_scales = put(s.w13_scales);
    w.w2 = put(s.w2);
    w.w2_scales = put(s.w2_scales);
    return w;
  }

 private:
  std::unique_ptr<Backend> backend_;
  std::vector<void*> owned_;
};

// The tokens [first, first + count) of the problem and their routing inputs.
struct TokenRange {
  int64_t first = 0, count = 0;
};

struct Inputs {
  std::vector<uint16_t> x;
  std::vector<float> logits;
  std::vector<int32_t> ids;
  std::vector<float> weights;
};

Inputs inputs_of(const Problem& p, TokenRange range) {
  Inputs in;
  const int64_t h = p.hidden, e = kExperts;
  in.x.assign(p.x.begin() + range.first * h, p.x.begin() + (range.first + range.count) * h);
  in.logits.assign(p.logits.begin() + range.first * e, p.logits.begin() + (range.first + range.count) * e);
  in.ids.resize(static_cast<std::size_t>(range.count * kTopK));
  in.weights.resize(in.ids.size());
  route_topk(in.logits.data(), MC_DTYPE_FP32, range.count, kExperts, kTopK, p.renormalize, in.ids.data(),
             in.weights.data());
  return in;
}

MoeLayerInputs layer_inputs(HostBackend& backend, const Inputs& in, int32_t tokens, int32_t routing, void* output) {
  MoeLayerInputs inputs;
  inputs.tokens = tokens;
  inputs.hidden = backend.put(in.x);
  if (routing == MC_ROUTING_SOFTMAX_TOPK) {
    inputs.logits = backend.put(in.logits);
  } else {
    inputs.ids = backend.put(in.ids);
    inputs.weights = backend.put(in.weights);
  }
  inputs.output = output;
  return inputs;
}

// A plain (one-device) layer's output on the problem's tokens in `range`, raw 32-bit words (fp32) or 16-bit codes.
template <class Out>
std::vector<Out> plain_forward(const Problem& p, const WeightSlice& weights, int32_t inter, ExpertSlice slice,
                               TokenRange range, int32_t routing, int32_t output_dtype) {
  HostBackend backend;
  const MoeLayerShape shape = layer_shape(inter, slice, static_cast<int32_t>(range.count), routing, output_dtype);
  MoeLayerPipeline layer(backend.get(), shape, backend.weights(weights));
  Out* output = backend.put(std::vector<Out>(static_cast<std::size_t>(range.count * p.hidden)));
  layer.forward(layer_inputs(backend, inputs_of(p, range), static_cast<int32_t>(range.count), routing, output),
                backend.get().default_stream());
  return std::vector<Out>(output, output + range.count * p.hidden);
}

struct RankRun {
  std::vector<uint16_t> out;  // [tokens_per_rank or T, H]: the rank's output rows, then the canary rows
  int32_t collective_calls = 0;
};

// Runs one forward of a parallel layer on W threads; rank r gets `weights[r]` and the tokens `ranges[r]`, and an
// output buffer of `output_rows` rows pre-filled with a canary.
std::vector<RankRun> parallel_forward(const Problem& p, int32_t mode, int32_t world_size,
                                      const std::vector<WeightSlice>& weights, const std::vector<TokenRange>& ranges,
                                      int32_t inter, int32_t tokens_per_rank, int32_t max_tokens, int32_t routing,
                                      int64_t output_rows) {
  Exchange exchange(world_size);
  std::vector<RankRun> runs(static_cast<std::size_t>(world_size));
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(world_size));
  auto rank_body = [&](int32_t rank) {
    try {
      HostBackend backend;
      ExpertSlice slice{0, kExperts, kExperts};
      if (mode == MC_PARALLEL_EXPERT) {
        slice = {rank * kExperts / world_size, kExperts / world_size, kExperts};
      }
      const MoeLayerShape shape = layer_shape(inter, slice, max_tokens, routing, MC_DTYPE_BF16);
      ParallelPlan plan;
      plan.mode = mode;
      plan.world_size = world_size;
      plan.rank = rank;
      plan.tokens_per_rank = tokens_per_rank;
      validate_parallel(shape, plan);
      auto collectives = std::make_shared<StandInCollectives>(exchange, rank);
      ParallelMoeLayer layer(backend.get(), shape, backend.weights(weights[static_cast<std::size_t>(rank)]), plan,
                             collectives);
      const TokenRange range = ranges[static_cast<std::size_t>(rank)];
      auto* output = backend.put(std::vector<uint16_t>(static_cast<std::size_t>(output_rows * p.hidden), 0xABCD));
      layer.forward(layer_inputs(backend, inputs_of(p, range), static_cast<int32_t>(range.count), routing, output),
                    backend.get().default_stream());
      runs[static_cast<std::size_t>(rank)].out.assign(output, output + output_rows * p.hidden);
      runs[static_cast<std::size_t>(rank)].collective_calls = collectives->calls;
    } catch (...) {
      errors[static_cast<std::size_t>(rank)] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (int32_t rank = 0; rank < world_size; ++rank) threads.emplace_back(rank_body, rank);
  for (auto& thread : threads) thread.join();
  for (auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
  return runs;
}

// bf16 of a + b (fp32 sums, rank order), the exact result of the collectives over two ranks' partials.
std::vector<uint16_t> bf16_of_sum(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<uint16_t> out(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = bf16_from_float(a[i] + b[i]);
  return out;
}

double relative_rms(const std::vector<uint16_t>& got, const std::vector<uint16_t>& expected) {
  double diff2 = 0, ref2 = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = bf16_to_float(got[i]), e = bf16_to_float(expected[i]);
    diff2 += (g - e) * (g - e);
    ref2 += e * e;
  }
  return ref2 > 0 ? std::sqrt(diff2 / ref2) : 1.0;
}

std::vector<uint16_t> rows(const std::vector<uint16_t>& all, int64_t first, int64_t count) {
  return std::vector<uint16_t>(all.begin() + first * kHidden, all.begin() + (first + count) * kHidden);
}

}  // namespace

// ---- the descriptor's rules -----------------------------------------------------------------------------------

TEST(ParallelValidation, TensorParallelRanksHoldEveryExpertAndWholeScaleBlocksOfI) {
  ParallelPlan plan{MC_PARALLEL_TENSOR, 2, 1, 0};
  const MoeLayerShape ok = layer_shape(128, {0, 8, 8}, 16, MC_ROUTING_SOFTMAX_TOPK, MC_DTYPE_BF16);
  EXPECT_NO_THROW(validate_parallel(ok, plan));
  auto expect_error = [](const MoeLayerShape& shape, const ParallelPlan& plan, mc_status status,
                         std::vector<std::string> fragments) {
    try {
      validate_parallel(shape, plan);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), status) << e.what();
      for (const auto& fragment : fragments) EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error(layer_shape(144, {0, 8, 8}, 16, MC_ROUTING_SOFTMAX_TOPK, MC_DTYPE_BF16), plan, MC_STATUS_MISALIGNED,
               {"desc->inter = 144", "multiple of 128"});
  expect_error(layer_shape(128, {0, 4, 8}, 16, MC_ROUTING_SOFTMAX_TOPK, MC_DTYPE_BF16), plan,
               MC_STATUS_INVALID_ARGUMENT, {"desc->local_experts = 4", "holds every expert"});
  expect_error(ok, ParallelPlan{MC_PARALLEL_TENSOR, 2, 1, 4}, MC_STATUS_INVALID_ARGUMENT,
               {"parallel->tokens_per_rank = 4", "must be 0"});
  expect_error(ok, ParallelPlan{3, 2, 1, 0}, MC_STATUS_INVALID_ARGUMENT, {"parallel->mode = 3"});
}

TEST(ParallelValidation, ExpertParallelSlicesFollowTheRankAndTokensFitTheLayer) {
  auto check = [](ExpertSlice slice, ParallelPlan plan, int32_t max_tokens) {
    validate_parallel(layer_shape(128, slice, max_tokens, MC_ROUTING_SOFTMAX_TOPK, MC_DTYPE_BF16), plan);
  };
  EXPECT_NO_THROW(check({4, 4, 8}, {MC_PARALLEL_EXPERT, 2, 1, 16}, 16));
  EXPECT_NO_THROW(check({0, 8, 8}, {MC_PARALLEL_EXPERT, 1, 0, 1}, 16));
  auto expect_error = [&](ExpertSlice slice, ParallelPlan plan, int32_t max_tokens, mc_status status,
                          const char* fragment) {
    try {
      check(slice, plan, max_tokens);
      ADD_FAILURE() << "accepted: " << fragment;
    } catch (const Error& e) {
      EXPECT_EQ(e.status(), status) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error({0, 2, 8}, {MC_PARALLEL_EXPERT, 3, 0, 4}, 16, MC_STATUS_INVALID_ARGUMENT,
               "desc->total_experts = 8 is not a multiple of the communicator's world size 3");
  expect_error({0, 2, 8}, {MC_PARALLEL_EXPERT, 2, 0, 4}, 16, MC_STATUS_INVALID_ARGUMENT,
               "desc->local_experts = 2 must be desc->total_experts / world size = 4");
  expect_error({0, 4, 8}, {MC_PARALLEL_EXPERT, 2, 1, 4}, 16, MC_STATUS_INVALID_ARGUMENT,
               "desc->first_expert = 0 must be rank * local_experts = 1 * 4 = 4");
  expect_error({4, 4, 8}, {MC_PARALLEL_EXPERT, 2, 1, 0}, 16, MC_STATUS_OUT_OF_RANGE, "parallel->tokens_per_rank");
  expect_error({4, 4, 8}, {MC_PARALLEL_EXPERT, 2, 1, 17}, 16, MC_STATUS_OUT_OF_RANGE, "1 .. desc->max_tokens");
  expect_error({4, 4, 8}, {MC_PARALLEL_EXPERT, 2, 1, 600000000}, 600000000, MC_STATUS_OUT_OF_RANGE,
               "exceeds MC_MAX_ROWS");
}

TEST(ParallelValidation, TheRankRunsFp32PartialsOverAllGatheredTokens) {
  const MoeLayerShape shape = layer_shape(128, {4, 4, 8}, 16, MC_ROUTING_PRECOMPUTED, MC_DTYPE_FP16);
  const ParallelPlan ep{MC_PARALLEL_EXPERT, 2, 1, 6};
  const MoeLayerShape inner = parallel_inner_shape(shape, ep);
  EXPECT_EQ(inner.output_dtype, MC_DTYPE_FP32);
  EXPECT_EQ(inner.max_tokens, 12);
  EXPECT_EQ(inner.first_expert, 4);
  const ParallelWorkspaceLayout layout = parallel_workspace_layout(shape, ep);
  const int64_t h = kHidden;
  EXPECT_GE(layout.received - layout.partial, 12 * h * 4);          // W P rows of fp32 partials
  EXPECT_GE(layout.gathered_hidden - layout.send_hidden, 6 * h * 2);  // P rows of bf16 hidden states
  EXPECT_GE(layout.total - layout.pad_ids, 6 * kTopK * 4);
  for (int64_t offset : {layout.partial, layout.received, layout.send_hidden, layout.gathered_hidden, layout.send_ids,
                         layout.send_weights, layout.gathered_ids, layout.gathered_weights, layout.pad_ids}) {
    EXPECT_EQ(offset % 256, 0);
  }
  const MoeLayerShape tp_shape = layer_shape(128, {0, 8, 8}, 16, MC_ROUTING_SOFTMAX_TOPK, MC_DTYPE_BF16);
  const ParallelPlan tp{MC_PARALLEL_TENSOR, 2, 0, 0};
  EXPECT_EQ(parallel_inner_shape(tp_shape, tp).max_tokens, 16);
  EXPECT_EQ(parallel_workspace_layout(tp_shape, tp).total, 16 * h * 4);
}

// ---- the C ABI --------------------------------------------------------------------------------------------------

TEST(ParallelAbi, CommunicatorsNeedNcclAndACudaContext) {
  mctest::Context cpu;
  mc_nccl_unique_id id{};
  id.struct_size = sizeof id;
  mc_communicator communicator = reinterpret_cast<mc_communicator>(0x1234);
  MC_EXPECT_STATUS(mc_nccl_get_unique_id(nullptr), MC_STATUS_NULL_POINTER, "id is NULL");
  MC_EXPECT_STATUS(mc_communicator_create(cpu, nullptr, 1, 0, &communicator), MC_STATUS_NULL_POINTER, "id is NULL");
  MC_EXPECT_STATUS(mc_communicator_create(cpu, &id, 0, 0, &communicator), MC_STATUS_OUT_OF_RANGE, "world_size = 0");
  MC_EXPECT_STATUS(mc_communicator_create(cpu, &id, 2, 2, &communicator), MC_STATUS_OUT_OF_RANGE, "rank = 2",
                   "0 .. world_size - 1");
  MC_EXPECT_STATUS(mc_communicator_create(cpu, &id, 1, 0, nullptr), MC_STATUS_NULL_POINTER, "communicator is NULL");
  id.struct_size = 4;
  MC_EXPECT_STATUS(mc_communicator_create(cpu, &id, 1, 0, &communicator), MC_STATUS_INVALID_STRUCT_SIZE,
                   "id->struct_size");
  MC_EXPECT_STATUS(mc_nccl_get_unique_id(&id), MC_STATUS_INVALID_STRUCT_SIZE, "id->struct_size");
  id.struct_size = sizeof id;
  MC_EXPECT_STATUS(mc_communicator_create(nullptr, &id, 1, 0, &communicator), MC_STATUS_NULL_POINTER, "context");
  if (!kNcclCompiledIn) {
    MC_EXPECT_STATUS(mc_nccl_get_unique_id(&id), MC_STATUS_UNSUPPORTED, "built without NCCL");
    MC_EXPECT_STATUS(mc_communicator_create(cpu, &id, 1, 0, &communicator), MC_STATUS_UNSUPPORTED,
                     "built without NCCL");
  } else {
    MC_EXPECT_STATUS(mc_communicator_create(cpu, &id, 1, 0, &communicator), MC_STATUS_UNSUPPORTED, "CPU backend",
                     "CUDA context");
  }
  const mc_context contexts[] = {cpu.get()};
  mc_communicator created[1] = {reinterpret_cast<mc_communicator>(0x1234)};
  MC_EXPECT_STATUS(mc_communicator_create_all(contexts, 0, created), MC_STATUS_OUT_OF_RANGE, "count = 0");
  MC_EXPECT_STATUS(mc_communicator_create_all(nullptr, 1, created), MC_STATUS_NULL_POINTER, "contexts is NULL");
  MC_EXPECT_STATUS(mc_communicator_create_all(contexts, 1, created), MC_STATUS_UNSUPPORTED,
                   kNcclCompiledIn ? "contexts[0] is a context of the CPU backend" : "built without NCCL");
  // A rejected call writes nothing.
  EXPECT_EQ(communicator, reinterpret_cast<mc_communicator>(0x1234));
  EXPECT_EQ(created[0], reinterpret_cast<mc_communicator>(0x1234));

  EXPECT_EQ(mc_communicator_destroy(nullptr), MC_STATUS_OK);
  MC_EXPECT_STATUS(mc_communicator_destroy(reinterpret_cast<mc_communicator>(0x1234)), MC_STATUS_INVALID_HANDLE,
                   "communicator");
  mc_communicator_info info{};
  info.struct_size = sizeof info;
  MC_EXPECT_STATUS(mc_communicator_get_info(nullptr, &info), MC_STATUS_NULL_POINTER, "communicator is NULL");
  // A handle of another kind is refused by kind.
  MC_EXPECT_STATUS(mc_communicator_get_info(reinterpret_cast<mc_communicator>(cpu.get()), &info),
                   MC_STATUS_INVALID_HANDLE, "mc_communicator");
}

TEST(ParallelAbi, ParallelLayersValidateTheDescriptorThenNeedNcclAndCuda) {
  mctest::Context cpu;
  const Problem p = make_problem(1601, 4, kExperts, kTopK, kHidden, 128);
  const WeightSlice slice = expert_slice(p, 0, kExperts);
  auto* w13 = cpu.alloc_array<uint8_t>(static_cast<int64_t>(slice.w13.size()));
  auto* w13_scales = cpu.alloc_array<float>(static_cast<int64_t>(slice.w13_scales.size()));
  auto* w2 = cpu.alloc_array<uint8_t>(static_cast<int64_t>(slice.w2.size()));
  auto* w2_scales = cpu.alloc_array<float>(static_cast<int64_t>(slice.w2_scales.size()));
  mc_moe_layer_weights weights{sizeof(mc_moe_layer_weights), w13, w13_scales, w2, w2_scales};
  mc_moe_layer_desc desc = layer_desc(p, {0, kExperts, kExperts}, 16);
  mc_moe_layer_parallel_desc parallel{};
  parallel.struct_size = sizeof parallel;
  parallel.mode = MC_PARALLEL_TENSOR;
  parallel.communicator = nullptr;
  mc_moe_layer layer = reinterpret_cast<mc_moe_layer>(0x4321);

  MC_EXPECT_STATUS(mc_moe_layer_create_parallel(cpu, &desc, nullptr, &weights, &layer), MC_STATUS_NULL_POINTER,
                   "parallel is NULL");
  parallel.struct_size = 8;
  MC_EXPECT_STATUS(mc_moe_layer_create_parallel(cpu, &desc, &parallel, &weights, &layer),
                   MC_STATUS_INVALID_STRUCT_SIZE, "parallel->struct_size");
  parallel.struct_size = sizeof parallel;
  parallel.mode = 0;
  MC_EXPECT_STATUS(mc_moe_layer_create_parallel(cpu, &desc, &parallel, &weights, &layer),
                   MC_STATUS_INVALID_ARGUMENT, "parallel->mode = 0");
  parallel.mode = MC_PARALLEL_EXPERT;
  desc.top_k = 0;
  MC_EXPECT_STATUS(mc_moe_layer_create_parallel(cpu, &desc, &parallel, &weights, &layer), MC_STATUS_OUT_OF_RANGE,
                   "desc->top_k");
  desc.top_k = kTopK;
  MC_EXPECT_STATUS(mc_moe_layer_create_parallel(cpu, &desc, &parallel, &weights, &layer), MC_STATUS_UNSUPPORTED,
                   kNcclCompiledIn ? "CPU backend" : "built without NCCL");
  EXPECT_EQ(layer, reinterpret_cast<mc_moe_layer>(0x4321));
  // The plain layer over the same descriptor and weights is fine on the CPU.
  MC_ASSERT_OK(mc_moe_layer_create(cpu, &desc, &weights, &layer));
  EXPECT_EQ(mc_moe_layer_destroy(layer), MC_STATUS_OK);
}

// ---- the pipeline with the stand-in collectives ------------------------------------------------------------------

TEST(ParallelPipeline, TensorParallelWorldSizeOneIsBitIdenticalToThePlainLayer) {
  const Problem p = make_problem(1602, 9, kExperts, kTopK, kHidden, 128);
  const ExpertSlice all{0, kExperts, kExperts};
  const TokenRange tokens{0, 9};
  for (int32_t routing : {MC_ROUTING_SOFTMAX_TOPK, MC_ROUTING_PRECOMPUTED}) {
    SCOPED_TRACE("routing " + std::to_string(routing));
    const auto expected = plain_forward<uint16_t>(p, expert_slice(p, 0, kExperts), 128, all, tokens, routing,
                                                  MC_DTYPE_BF16);
    const auto runs = parallel_forward(p, MC_PARALLEL_TENSOR, 1, {tensor_slice(p, 1, 0)}, {tokens}, 128, 0, 12,
                                       routing, 10);
    EXPECT_EQ(rows(runs[0].out, 0, 9), expected);
    EXPECT_EQ(rows(runs[0].out, 9, 1), std::vector<uint16_t>(kHidden, 0xABCD)) << "a row beyond T was written";
    EXPECT_EQ(runs[0].collective_calls, 1);  // one all-reduce
  }
}

TEST(ParallelPipeline, TensorParallelRanksSumTheirSlicesOfI) {
  const int32_t inter = 256;
  const Problem p = make_problem(1603, 11, kExperts, kTopK, kHidden, inter);
  const ExpertSlice all{0, kExperts, kExperts};
  const TokenRange tokens{0, 11};
  const WeightSlice s0 = tensor_slice(p, 2, 0), s1 = tensor_slice(p, 2, 1);
  const auto expected = bf16_of_sum(
      plain_forward<float>(p, s0, inter / 2, all, tokens, MC_ROUTING_SOFTMAX_TOPK, MC_DTYPE_FP32),
      plain_forward<float>(p, s1, inter / 2, all, tokens, MC_ROUTING_SOFTMAX_TOPK, MC_DTYPE_FP32));
  const auto runs = parallel_forward(p, MC_PARALLEL_TENSOR, 2, {s0, s1}, {tokens, tokens}, inter / 2, 0, 11,
                                     MC_ROUTING_SOFTMAX_TOPK, 11);
  EXPECT_EQ(runs[0].out, expected);
  EXPECT_EQ(runs[1].out, expected);
  // The slices (gate and up rows of w13, columns of w2) add up to the whole layer: only GEMM2's split K rounds.
  const auto whole = plain_forward<uint16_t>(p, expert_slice(p, 0, kExperts), inter, all, tokens,
                                             MC_ROUTING_SOFTMAX_TOPK, MC_DTYPE_BF16);
  const double rms = relative_rms(runs[0].out, whole);
  EXPECT_LT(rms, 1.0 / 64) << "the TP slices do not make up the whole layer";
  // A wrong slice (the two ranks' w2 swapped) is far off: the comparison can fail.
  WeightSlice wrong0 = s0, wrong1 = s1;
  std::swap(wrong0.w2, wrong1.w2);
  std::swap(wrong0.w2_scales, wrong1.w2_scales);
  const auto swapped = parallel_forward(p, MC_PARALLEL_TENSOR, 2, {wrong0, wrong1}, {tokens, tokens}, inter / 2, 0,
                                        11, MC_ROUTING_SOFTMAX_TOPK, 11);
  EXPECT_GT(relative_rms(swapped[0].out, whole), 0.25);
}

TEST(ParallelPipeline, ExpertParallelWorldSizeOneIsBitIdenticalToThePlainLayerWithPadding) {
  const Problem p = make_problem(1604, 9, kExperts, kTopK, kHidden, 128);
  const ExpertSlice all{0, kExperts, kExperts};
  const TokenRange tokens{0, 9};
  for (int32_t routing : {MC_ROUTING_SOFTMAX_TOPK, MC_ROUTING_PRECOMPUTED}) {
    SCOPED_TRACE("routing " + std::to_string(routing));
    const auto expected = plain_forward<uint16_t>(p, expert_slice(p, 0, kExperts), 128, all, tokens, routing,
                                                  MC_DTYPE_BF16);
    // tokens_per_rank 12 > T = 9: three padding rows go through the layer and are dropped.
    const auto runs = parallel_forward(p, MC_PARALLEL_EXPERT, 1, {expert_slice(p, 0, kExperts)}, {tokens}, 128, 12,
                                       16, routing, 12);
    EXPECT_EQ(rows(runs[0].out, 0, 9), expected);
    for (int64_t row = 9; row < 12; ++row) {
      EXPECT_EQ(rows(runs[0].out, row, 1), std::vector<uint16_t>(kHidden, 0xABCD)) << "row " << row << " written";
    }
    EXPECT_EQ(runs[0].collective_calls, 2);  // one (grouped) all-gather, one reduce-scatter
  }
}

TEST(ParallelPipeline, ExpertParallelRanksGatherPadAndScatterTheirOwnTokens) {
  const Problem p = make_problem(1605, 12, kExperts, kTopK, kHidden, 128);
  const ExpertSlice all{0, kExperts, kExperts};
  const WeightSlice s0 = expert_slice(p, 0, 4), s1 = expert_slice(p, 4, 4);
  const TokenRange everything{0, 12};
  // The partials of each rank's experts over every real token (a token's output depends only on its own row).
  const auto partial0 = plain_forward<float>(p, s0, 128, {0, 4, kExperts}, everything, MC_ROUTING_SOFTMAX_TOPK,
                                             MC_DTYPE_FP32);
  const auto partial1 = plain_forward<float>(p, s1, 128, {4, 4, kExperts}, everything, MC_ROUTING_SOFTMAX_TOPK,
                                             MC_DTYPE_FP32);
  const auto expected = bf16_of_sum(partial0, partial1);
  const auto whole = plain_forward<uint16_t>(p, expert_slice(p, 0, kExperts), 128, all, everything,
                                             MC_ROUTING_SOFTMAX_TOPK, MC_DTYPE_BF16);
  EXPECT_LT(relative_rms(expected, whole), 1.0 / 128) << "the expert slices do not make up the whole layer";
  const int32_t per_rank = 8;
  // Rank 0 has 7 tokens, rank 1 has 5; then rank 0 all 8 (no padding) and rank 1 none.
  for (const auto& split : std::vector<std::pair<int64_t, int64_t>>{{7, 5}, {8, 4}, {8, 0}}) {
    const std::vector<TokenRange> ranges = {{0, split.first}, {split.first, split.second}};
    std::vector<uint16_t> softmax_out[2];
    for (int32_t routing : {MC_ROUTING_SOFTMAX_TOPK, MC_ROUTING_PRECOMPUTED}) {
      SCOPED_TRACE("split " + std::to_string(split.first) + "+" + std::to_string(split.second) + ", routing " +
                   std::to_string(routing));
      const auto runs =
          parallel_forward(p, MC_PARALLEL_EXPERT, 2, {s0, s1}, ranges, 128, per_rank, 8, routing, per_rank);
      for (int32_t rank = 0; rank < 2; ++rank) {
        const TokenRange range = ranges[static_cast<std::size_t>(rank)];
        EXPECT_EQ(rows(runs[static_cast<std::size_t>(rank)].out, 0, range.count), rows(expected, range.first, range.count))
            << "rank " << rank;
        for (int64_t row = range.count; row < per_rank; ++row) {
          EXPECT_EQ(rows(runs[static_cast<std::size_t>(rank)].out, row, 1), std::vector<uint16_t>(kHidden, 0xABCD))
              << "rank " << rank << " wrote row " << row;
        }
        if (routing == MC_ROUTING_SOFTMAX_TOPK) {
          softmax_out[rank] = runs[static_cast<std::size_t>(rank)].out;
        } else {
          EXPECT_EQ(runs[static_cast<std::size_t>(rank)].out, softmax_out[rank]);
        }
      }
    }
  }
}
