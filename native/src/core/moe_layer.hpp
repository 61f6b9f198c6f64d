// The MoE layer pipeline (issue 13): the workspace, the two grouped-GEMM plans and the order of the stages of one
// forward step, the same on every backend. A backend contributes its stages (core/moe_layer_stages.hpp), its
// grouped-GEMM plans and its memory; the pipeline itself never reads device memory, so a forward call enqueues
// everything on one stream without a host synchronisation and can be captured into a CUDA graph.
#pragma once

#include <cstdint>
#include <memory>

#include "backend.hpp"

namespace moecutlass {

// A validated mc_moe_layer_desc.
struct MoeLayerShape {
  int32_t total_experts = 0;
  int32_t first_expert = 0;
  int32_t local_experts = 0;
  int32_t top_k = 0;
  int32_t hidden = 0;
  int32_t inter = 0;
  int32_t routing = 0;
  bool normalize = false;
  int32_t activation = 0;
  int32_t input_dtype = 0;
  int32_t logits_dtype = 0;
  int32_t output_dtype = 0;
  int32_t max_tokens = 0;
  int32_t strategy = 0;
  int32_t max_rows() const { return max_tokens * top_k; }  // validated to fit int32
};

// Validated weight pointers (context memory, referenced for the layer's lifetime).
struct MoeLayerWeights {
  const uint8_t* w13 = nullptr;
  const float* w13_scales = nullptr;
  const uint8_t* w2 = nullptr;
  const float* w2_scales = nullptr;
};

// Validated operands of one forward call.
struct MoeLayerInputs {
  int32_t tokens = 0;
  const void* hidden = nullptr;
  const void* logits = nullptr;     // MC_ROUTING_SOFTMAX_TOPK
  const int32_t* ids = nullptr;     // MC_ROUTING_PRECOMPUTED
  const float* weights = nullptr;   // MC_ROUTING_PRECOMPUTED
  void* output = nullptr;
};

// Byte offsets of the workspace's parts for a layer shape. Buffers whose lifetimes do not overlap share memory:
// GEMM1's A (the gathered FP8 tokens) is dead once GEMM1 has run, so GEMM2's A reuses it; GEMM1's bf16 output is
// dead once activated, so GEMM2's output reuses it. Every part starts on a 256-byte boundary.
struct MoeLayerWorkspaceLayout {
  int64_t ids = 0, weights = 0;  // routing output (softmax routing only; size 0 otherwise)
  int64_t offsets = 0, sorted_slots = 0, slot_to_row = 0, permute_scratch = 0;
  int64_t permute_scratch_bytes = 0;  // the device permutation's (0 when every call fits one sorting block)
  int64_t a = 0, a_scales = 0;   // GEMM1's A (rows x H) and then GEMM2's A (rows x I)
  int64_t gemm_out = 0;          // GEMM1's D (rows x 2I bf16) and then GEMM2's D (rows x H bf16)
  int64_t total = 0;
};
MoeLayerWorkspaceLayout moe_layer_workspace_layout(const MoeLayerShape& shape);

class MoeLayerPipeline {
 public:
  // Allocates the workspace and creates both grouped-GEMM plans on `backend`; throws Error, leaking nothing.
  MoeLayerPipeline(Backend& backend, const MoeLayerShape& shape, const MoeLayerWeights& weights);
  ~MoeLayerPipeline();
  MoeLayerPipeline(const MoeLayerPipeline&) = delete;
  MoeLayerPipeline& operator=(const MoeLayerPipeline&) = delete;

  const MoeLayerShape& shape() const { return shape_; }
  const GroupedGemmShape& gemm1_shape() const { return gemm1_shape_; }
  const GroupedGemmShape& gemm2_shape() const { return gemm2_shape_; }
  int64_t workspace_bytes() const { return layout_.total; }

  static constexpr int kStageEvents = 8;  // MC_MOE_LAYER_STAGE_EVENTS

  // Enqueues route -> permute -> gather + quantize -> GEMM1 -> SiLU-and-mul + quantize -> GEMM2 -> combine. With
  // `events` (kStageEvents of them, or null) it records events[0] first and events[i] after stage i.
  void forward(const MoeLayerInputs& inputs, BackendStream& stream, BackendEvent* const* events = nullptr);

 private:
  template <class T>
  T* part(int64_t offset) const {
    return reinterpret_cast<T*>(workspace_ + offset);
  }

  Backend& backend_;
  MoeLayerShape shape_;
  MoeLayerWeights weights_;
  MoeLayerWorkspaceLayout layout_;
  GroupedGemmShape gemm1_shape_;
  GroupedGemmShape gemm2_shape_;
  uint8_t* workspace_ = nullptr;
  std::unique_ptr<GroupedGemmPlanImpl> gemm1_;
  std::unique_ptr<GroupedGemmPlanImpl> gemm2_;
};

}  // namespace moecutlass
