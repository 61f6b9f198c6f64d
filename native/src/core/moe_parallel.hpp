// The tensor- and expert-parallel MoE layer (issue 16, docs/design/multi-gpu.md): one rank's layer, the one-GPU
// pipeline (core/moe_layer.hpp) unchanged inside, with collectives around it. Host code only: the collectives are an
// interface (NCCL through nccl/nccl_collectives.hpp on CUDA; a stand-in in the unit tests), and every other step is a
// Backend copy, fill or conversion on the forward call's stream, so a forward enqueues everything without a host
// synchronisation and stays capturable into a CUDA graph.
//
// - Tensor parallel: the rank's pipeline (inter = I/W) writes fp32 partials [T, H]; one all-reduce (sum) of them;
//   one conversion to the output dtype. With W = 1 the fp32 partial converted once is exactly what the plain layer's
//   combine writes (it rounds its fp32 sum once), so world size 1 is bit-identical to the plain layer.
// - Expert parallel: the rank's T <= P (tokens_per_rank) rows of hidden states and routing inputs are copied into
//   send buffers of P rows and the P - T padding rows zeroed (precomputed ids get the distinct ids 0 .. k-1, with
//   weight 0, so no device check flags them); all-gather to W P rows; the pipeline of the rank's experts on all W P
//   tokens into fp32 partials; reduce-scatter (sum) to the rank's P rows; conversion of its first T rows.
#pragma once

#include <cstdint>
#include <memory>

#include "backend.hpp"
#include "core/moe_layer.hpp"

namespace moecutlass {

// The collectives one rank's layer needs, enqueued on a stream of the rank's context (collective calls: every rank
// makes the same calls in the same order).
class Collectives {
 public:
  virtual ~Collectives() = default;
  virtual int32_t world_size() const = 0;
  virtual int32_t rank() const = 0;
  // recv[i] = sum over the ranks of their send[i], count fp32 values; send == recv allowed.
  virtual void all_reduce_sum(const float* send, float* recv, int64_t count, BackendStream& stream) = 0;
  // One all-gather per part, issued together: recv [W * bytes] gets rank q's send [bytes] at q * bytes.
  struct GatherPart {
    const void* send = nullptr;
    void* recv = nullptr;
    int64_t bytes = 0;
  };
  virtual void all_gather(const GatherPart* parts, int32_t count, BackendStream& stream) = 0;
  // recv[i] = sum over the ranks q of their send[rank * count + i], i < count (send holds W * count fp32 values).
  virtual void reduce_scatter_sum(const float* send, float* recv, int64_t count, BackendStream& stream) = 0;
};

struct ParallelPlan {
  int32_t mode = 0;             // MC_PARALLEL_TENSOR or MC_PARALLEL_EXPERT
  int32_t world_size = 1;       // W
  int32_t rank = 0;             // r
  int32_t tokens_per_rank = 0;  // EP: P; TP: 0
};

// Throws MC_STATUS_INVALID_ARGUMENT unless `mode` is MC_PARALLEL_TENSOR or MC_PARALLEL_EXPERT.
void require_parallel_mode(int32_t mode);

// Checks the rank's layer shape against the parallel plan (mc_moe_layer_parallel_desc's rules, see moecutlass.h);
// throws Error naming the argument and the rule. `shape` is already a valid mc_moe_layer_desc.
void validate_parallel(const MoeLayerShape& shape, const ParallelPlan& plan);

// The shape of the pipeline a rank runs: fp32 output (the partials); EP: max_tokens = W * P.
MoeLayerShape parallel_inner_shape(const MoeLayerShape& shape, const ParallelPlan& plan);

// Byte offsets of the parallel layer's own buffers (apart from its pipeline's workspace), 256-byte aligned parts.
struct ParallelWorkspaceLayout {
  int64_t partial = 0;        // fp32 partials: TP [max_tokens, H]; EP [W P, H]
  int64_t send_hidden = 0;    // EP: [P, H] input dtype
  int64_t send_logits = 0;    // EP softmax routing: [P, total_experts] logits dtype
  int64_t send_ids = 0;       // EP precomputed routing: int32 [P, k]
  int64_t send_weights = 0;   // EP precomputed routing: fp32 [P, k]
  int64_t gathered_hidden = 0, gathered_logits = 0, gathered_ids = 0, gathered_weights = 0;  // EP: W P rows each
  int64_t pad_ids = 0;        // EP precomputed routing: int32 [P, k], row j = 0 .. k-1 (written once at creation)
  int64_t received = 0;       // EP: fp32 [P, H] (the reduce-scatter's output)
  int64_t total = 0;
};
ParallelWorkspaceLayout parallel_workspace_layout(const MoeLayerShape& shape, const ParallelPlan& plan);

class ParallelMoeLayer {
 public:
  // `shape` and `weights` are the rank's (validated, and validate_parallel passed); allocates the pipeline and the
  // buffers on `backend`; throws Error, leaking nothing.
  ParallelMoeLayer(Backend& backend, const MoeLayerShape& shape, const MoeLayerWeights& weights,
                   const ParallelPlan& plan, std::shared_ptr<Collectives> collectives);
  ~ParallelMoeLayer();
  ParallelMoeLayer(const ParallelMoeLayer&) = delete;
  ParallelMoeLayer& operator=(const ParallelMoeLayer&) = delete;

  // What one forward call takes: the rank's shape, with max_tokens = P for EP.
  const MoeLayerShape& call_shape() const { return call_shape_; }
  const ParallelPlan& plan() const { return plan_; }
  MoeLayerPipeline& pipeline() { return *pipeline_; }
  const MoeLayerPipeline& pipeline() const { return *pipeline_; }
  int64_t workspace_bytes() const { return pipeline_->workspace_bytes() + layout_.total; }

  // A collective forward call (validated inputs of call_shape()); `events` as MoeLayerPipeline::forward, recorded
  // around the rank's pipeline (the collectives come after events[7]).
  void forward(const MoeLayerInputs& inputs, BackendStream& stream, BackendEvent* const* events = nullptr);

 private:
  template <class T>
  T* part(int64_t offset) const {
    return reinterpret_cast<T*>(buffers_ + offset);
  }
  void forward_tensor(const MoeLayerInputs& inputs, BackendStream& stream, BackendEvent* const* events);
  void forward_expert(const MoeLayerInputs& inputs, BackendStream& stream, BackendEvent* const* events);
  // dst [rows, row_bytes] <- src's first `rows` rows, the other (capacity - rows) rows zeroed (element_size fill).
  void stage_rows(const void* src, int32_t rows, int32_t capacity, int64_t row_elements, int32_t element_size,
                  void* dst, BackendStream& stream);
  // output (output dtype) <- fp32 values.
  void finish(const float* values, void* output, int64_t count, BackendStream& stream);

  Backend& backend_;
  MoeLayerShape call_shape_;
  ParallelPlan plan_;
  std::shared_ptr<Collectives> collectives_;
  ParallelWorkspaceLayout layout_;
  std::unique_ptr<MoeLayerPipeline> pipeline_;
  uint8_t* buffers_ = nullptr;
};

}  // namespace moecutlass
