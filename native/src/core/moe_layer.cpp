#include "core/moe_layer.hpp"

#include "core/error.hpp"
#include "core/moe_layer_stages.hpp"
#include "core/shapes.hpp"

namespace moecutlass {

namespace {

constexpr int64_t kPartAlignment = 256;

int64_t align_up(int64_t bytes) { return (bytes + kPartAlignment - 1) / kPartAlignment * kPartAlignment; }

GroupedGemmShape gemm_shape(Backend& backend, const MoeLayerShape& shape, int32_t n, int32_t k) {
  GroupedGemmShape gemm;
  gemm.experts = shape.local_experts;
  gemm.n = n;
  gemm.k = k;
  gemm.output_dtype = MC_DTYPE_BF16;  // the intermediates stay bf16; only the combine writes output_dtype
  gemm.strategy = shape.strategy;
  gemm.max_rows = shape.max_rows();
  gemm.static_weights = true;  // the layer's weights stay unchanged while it exists (mc_moe_layer_weights)
  gemm.selection = select_plan(shape.strategy, backend.selection_device(), n, k, ConfigOverride{});
  return gemm;
}

}  // namespace

MoeLayerWorkspaceLayout moe_layer_workspace_layout(const MoeLayerShape& shape) {
  const int64_t rows = shape.max_rows();
  const int64_t slots = rows;  // one slot per (token, choice)
  MoeLayerWorkspaceLayout layout;
  int64_t at = 0;
  auto take = [&at](int64_t bytes) {
    const int64_t start = at;
    at += align_up(bytes);
    return start;
  };
  const bool routes = shape.routing == MC_ROUTING_SOFTMAX_TOPK;
  layout.ids = take(routes ? slots * 4 : 0);
  layout.weights = take(routes ? slots * 4 : 0);
  layout.offsets = take(offsets_bytes(shape.local_experts));
  layout.sorted_slots = take(slots * 4);
  layout.slot_to_row = take(slots * 4);
  layout.permute_scratch_bytes = moe_permute_scratch_bytes(shape.max_tokens, shape.top_k, shape.local_experts);
  layout.permute_scratch = take(layout.permute_scratch_bytes);
  const int64_t a_bytes = std::max(activation_bytes(rows, shape.hidden), activation_bytes(rows, shape.inter));
  const int64_t a_scale_bytes =
      std::max(activation_scale_bytes(rows, shape.hidden), activation_scale_bytes(rows, shape.inter));
  layout.a = take(a_bytes);
  layout.a_scales = take(a_scale_bytes);
  layout.gemm_out = take(std::max(rows * 2 * shape.inter, rows * static_cast<int64_t>(shape.hidden)) * 2);
  layout.total = at;
  return layout;
}

MoeLayerPipeline::MoeLayerPipeline(Backend& backend, const MoeLayerShape& shape, const MoeLayerWeights& weights)
    : backend_(backend), shape_(shape), weights_(weights), layout_(moe_layer_workspace_layout(shape)) {
  gemm1_shape_ = gemm_shape(backend, shape, 2 * shape.inter, shape.hidden);
  gemm2_shape_ = gemm_shape(backend, shape, shape.hidden, shape.inter);
  gemm1_ = backend.create_grouped_gemm_plan(gemm1_shape_);
  gemm2_ = backend.create_grouped_gemm_plan(gemm2_shape_);
  // Last: nothing after it can throw, so the destructor is the only owner that releases it.
  workspace_ = static_cast<uint8_t*>(backend.allocate(std::max<int64_t>(layout_.total, kPartAlignment)));
}

MoeLayerPipeline::~MoeLayerPipeline() {
  // Plans first: on CUDA their destruction waits for nothing, but they may reference the context's streams.
  gemm2_.reset();
  gemm1_.reset();
  backend_.release(workspace_);
}

void MoeLayerPipeline::forward(const MoeLayerInputs& inputs, BackendStream& stream, BackendEvent* const* events) {
  // The cuBLAS GEMMs read the expert offsets on the host, which a capture cannot do: refused here, before the
  // route and permutation are recorded into the capture, so the capture holds nothing of this call.
  if (gemm1_shape_.selection.cublas && backend_.is_capturing(stream)) {
    fail(MC_STATUS_UNSUPPORTED, "the layer's GEMM strategy is MC_STRATEGY_CUBLAS, which reads the expert offsets on "
         "the host between the permutation and the GEMMs, so its forward cannot be captured into a CUDA graph");
  }
  MoeLayerStages& stages = backend_.moe_stages();
  auto boundary = [&](int index) {
    if (events != nullptr) events[index]->record(stream);
  };
  boundary(0);
  const int32_t tokens = inputs.tokens;
  const int32_t k = shape_.top_k;
  // The GEMMs get the capacity as their row count: the actual count (offsets[E]) is only known on the device, and a
  // grouped GEMM touches only the rows its offsets give each expert.
  const int32_t capacity = tokens * k;
  // What the selection should assume instead: an expert-parallel slice expects its share of the slots (uniform
  // routing); the whole layer gets them all.
  const int32_t expected_rows = static_cast<int32_t>(
      (static_cast<int64_t>(capacity) * shape_.local_experts + shape_.total_experts - 1) / shape_.total_experts);

  const int32_t* ids = inputs.ids;
  const float* weights = inputs.weights;
  if (shape_.routing == MC_ROUTING_SOFTMAX_TOPK) {
    MoeRouteJob route;
    route.logits = inputs.logits;
    route.logits_dtype = shape_.logits_dtype;
    route.tokens = tokens;
    route.experts = shape_.total_experts;
    route.top_k = k;
    route.renormalize = shape_.normalize;
    route.ids = part<int32_t>(layout_.ids);
    route.weights = part<float>(layout_.weights);
    stages.route(route, stream);
    ids = route.ids;
    weights = route.weights;
  }
  boundary(1);

  int32_t* offsets = part<int32_t>(layout_.offsets);
  MoePermuteJob permute;
  permute.ids = ids;
  permute.tokens = tokens;
  permute.top_k = k;
  permute.first_expert = shape_.first_expert;
  permute.local_experts = shape_.local_experts;
  permute.total_experts = shape_.total_experts;
  permute.offsets = offsets;
  permute.sorted_slots = part<int32_t>(layout_.sorted_slots);
  permute.slot_to_row = part<int32_t>(layout_.slot_to_row);
  permute.scratch = layout_.permute_scratch_bytes > 0 ? part<int32_t>(layout_.permute_scratch) : nullptr;
  stages.permute(permute, stream);
  boundary(2);

  MoeGatherJob gather;
  gather.hidden = inputs.hidden;
  gather.hidden_dtype = shape_.input_dtype;
  gather.tokens = tokens;
  gather.hidden_size = shape_.hidden;
  gather.top_k = k;
  gather.sorted_slots = permute.sorted_slots;
  gather.offsets = offsets;
  gather.local_experts = shape_.local_experts;
  gather.out = part<uint8_t>(layout_.a);
  gather.scales = part<float>(layout_.a_scales);
  stages.gather_quantize(gather, stream);
  boundary(3);

  // Both GEMMs write the one bf16 buffer: GEMM1's output is dead once activated, so GEMM2 reuses it (in stream order).
  void* gemm_out = part<void>(layout_.gemm_out);
  auto run_gemm = [&](GroupedGemmPlanImpl& plan, const uint8_t* a, const float* a_scales, const uint8_t* b,
                      const float* b_scales) {
    GroupedGemmOperands gemm;
    gemm.rows = capacity;
    gemm.selection_rows = expected_rows;
    gemm.a = a;
    gemm.a_scales = a_scales;
    gemm.b = b;
    gemm.b_scales = b_scales;
    gemm.expert_offsets = offsets;
    gemm.d = gemm_out;
    plan.run(gemm, stream);
  };
  run_gemm(*gemm1_, gather.out, gather.scales, weights_.w13, weights_.w13_scales);
  boundary(4);

  MoeActivationJob activation;
  activation.gemm1_out = gemm_out;
  activation.offsets = offsets;
  activation.local_experts = shape_.local_experts;
  activation.inter = shape_.inter;
  activation.out = part<uint8_t>(layout_.a);  // GEMM1 has consumed its A: reuse the buffer (in stream order)
  activation.scales = part<float>(layout_.a_scales);
  stages.activate_quantize(activation, stream);
  boundary(5);

  run_gemm(*gemm2_, activation.out, activation.scales, weights_.w2, weights_.w2_scales);
  boundary(6);

  MoeCombineJob combine;
  combine.gemm2_out = gemm_out;
  combine.hidden_size = shape_.hidden;
  combine.weights = weights;
  combine.slot_to_row = permute.slot_to_row;
  combine.tokens = tokens;
  combine.top_k = k;
  combine.output = inputs.output;
  combine.output_dtype = shape_.output_dtype;
  stages.combine(combine, stream);
  boundary(7);
}

}  // namespace moecutlass
