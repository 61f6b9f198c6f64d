// MoE layers: creation (descriptor and weight validation), info and forward calls (operand validation, then the
// pipeline of core/moe_layer.cpp on the context's backend).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "core/dtype.hpp"
#include "core/kernel_registry.hpp"
#include "core/moe_layer.hpp"
#include "core/moe_parallel.hpp"
#include "core/moe_routing.hpp"
#include "core/shapes.hpp"
#include "core/validate.hpp"
#include "nccl/nccl_collectives.hpp"

using namespace moecutlass;

namespace {

constexpr int32_t kMaxTopK = 32;

void require_float_dtype(int32_t dtype, const char* argument) {
  if (dtype != MC_DTYPE_FP32 && dtype != MC_DTYPE_BF16 && dtype != MC_DTYPE_FP16) {
    fail(MC_STATUS_INVALID_DTYPE, argument, " = ", dtype,
         " is not MC_DTYPE_FP32 (1), MC_DTYPE_BF16 (2) or MC_DTYPE_FP16 (3)");
  }
}

MoeLayerShape validate_desc(const mc_moe_layer_desc& desc) {
  require_experts(desc.total_experts, "desc->total_experts");
  require_range(desc.first_expert, 0, desc.total_experts - 1, "desc->first_expert",
                "0 .. desc->total_experts - 1");
  require_range(desc.local_experts, 1, desc.total_experts - desc.first_expert, "desc->local_experts",
                "1 .. desc->total_experts - desc->first_expert (the slice must lie inside the router's experts)");
  const int32_t max_k = std::min(desc.total_experts, kMaxTopK);
  require_range(desc.top_k, 1, max_k, "desc->top_k", "1 .. min(desc->total_experts, 32)");
  require_k(desc.hidden, "desc->hidden");
  require_k(desc.inter, "desc->inter");
  require_n(2 * static_cast<int64_t>(desc.inter), "2 * desc->inter (GEMM1's N)");
  if (desc.routing != MC_ROUTING_SOFTMAX_TOPK && desc.routing != MC_ROUTING_PRECOMPUTED) {
    fail(MC_STATUS_INVALID_ARGUMENT, "desc->routing = ", desc.routing,
         " is not MC_ROUTING_SOFTMAX_TOPK (1) or MC_ROUTING_PRECOMPUTED (2)");
  }
  require_range(desc.normalize_routing_weights, 0, 1, "desc->normalize_routing_weights", "0 or 1");
  if (desc.activation != MC_ACTIVATION_SILU_AND_MUL) {
    fail(MC_STATUS_INVALID_ARGUMENT, "desc->activation = ", desc.activation, " is not MC_ACTIVATION_SILU_AND_MUL (1)");
  }
  require_float_dtype(desc.input_dtype, "desc->input_dtype");
  if (desc.routing == MC_ROUTING_SOFTMAX_TOPK) require_float_dtype(desc.logits_dtype, "desc->logits_dtype");
  require_float_dtype(desc.output_dtype, "desc->output_dtype");
  require_range(desc.max_tokens, 0, MC_MAX_ROWS / desc.top_k, "desc->max_tokens",
                "0 .. MC_MAX_ROWS / desc->top_k (every (token, expert) pair becomes a GEMM row)");
  require_strategy(desc.strategy, "desc->strategy");

  MoeLayerShape shape;
  shape.total_experts = desc.total_experts;
  shape.first_expert = desc.first_expert;
  shape.local_experts = desc.local_experts;
  shape.top_k = desc.top_k;
  shape.hidden = desc.hidden;
  shape.inter = desc.inter;
  shape.routing = desc.routing;
  shape.normalize = desc.normalize_routing_weights != 0;
  shape.activation = desc.activation;
  shape.input_dtype = desc.input_dtype;
  shape.logits_dtype = desc.routing == MC_ROUTING_SOFTMAX_TOPK ? desc.logits_dtype : 0;
  shape.output_dtype = desc.output_dtype;
  shape.max_tokens = desc.max_tokens;
  shape.strategy = desc.strategy;
  return shape;
}

struct ByteRange {
  const void* pointer;
  int64_t bytes;
  const char* argument;
};

bool overlaps(const ByteRange& x, const ByteRange& y) {
  if (x.pointer == nullptr || y.pointer == nullptr || x.bytes <= 0 || y.bytes <= 0) return false;
  const auto a = reinterpret_cast<std::uintptr_t>(x.pointer);
  const auto b = reinterpret_cast<std::uintptr_t>(y.pointer);
  return a < b + static_cast<std::uintptr_t>(y.bytes) && b < a + static_cast<std::uintptr_t>(x.bytes);
}

std::string gemm_kernel_names(const GroupedGemmShape& shape) {
  std::string names;
  for (int32_t i = 0; i < shape.selection.config_count; ++i) {
    if (!names.empty()) names += ';';
    names += kKernelConfigs[shape.selection.configs[i]].name;
  }
  return names;
}

// mc_moe_layer_create, and with `parallel` mc_moe_layer_create_parallel (the rank's layer of a parallel one).
void create_layer(mc_context context, const mc_moe_layer_desc* desc, const mc_moe_layer_parallel_desc* parallel,
                  const mc_moe_layer_weights* weights, mc_moe_layer* layer) {
  std::shared_ptr<Context> object = resolve<Context>(context, "context");
  require_not_null(desc, "desc");
  require_struct_size(desc->struct_size, sizeof(mc_moe_layer_desc), "mc_moe_layer_desc", "desc->struct_size");
  if (parallel != nullptr) {
    require_struct_size(parallel->struct_size, sizeof(mc_moe_layer_parallel_desc), "mc_moe_layer_parallel_desc",
                        "parallel->struct_size");
    require_parallel_mode(parallel->mode);
  }
  require_not_null(weights, "weights");
  require_struct_size(weights->struct_size, sizeof(mc_moe_layer_weights), "mc_moe_layer_weights",
                      "weights->struct_size");
  require_not_null(layer, "layer");
  const MoeLayerShape shape = validate_desc(*desc);

  std::shared_ptr<Communicator> communicator;
  ParallelPlan plan;
  if (parallel != nullptr) {
    require_nccl_cuda_context(*object, "context");
    communicator = resolve<Communicator>(parallel->communicator, "parallel->communicator");
    require_same_context(*communicator, *object, "parallel->communicator", "context");
    plan.mode = parallel->mode;
    plan.world_size = communicator->world_size();
    plan.rank = communicator->rank();
    plan.tokens_per_rank = parallel->tokens_per_rank;
    validate_parallel(shape, plan);
  }

  require_tensor_pointer(weights->w13, "weights->w13");
  require_tensor_pointer(weights->w13_scales, "weights->w13_scales");
  require_tensor_pointer(weights->w2, "weights->w2");
  require_tensor_pointer(weights->w2_scales, "weights->w2_scales");
  const int64_t e = shape.local_experts, h = shape.hidden, i = shape.inter;
  require_context_memory(*object, weights->w13, weight_bytes(e, 2 * i, h), "weights->w13");
  require_context_memory(*object, weights->w13_scales, weight_scale_bytes(e, 2 * i, h), "weights->w13_scales");
  require_context_memory(*object, weights->w2, weight_bytes(e, h, i), "weights->w2");
  require_context_memory(*object, weights->w2_scales, weight_scale_bytes(e, h, i), "weights->w2_scales");
  object->require_usable();

  MoeLayerWeights pointers;
  pointers.w13 = static_cast<const uint8_t*>(weights->w13);
  pointers.w13_scales = weights->w13_scales;
  pointers.w2 = static_cast<const uint8_t*>(weights->w2);
  pointers.w2_scales = weights->w2_scales;
  std::shared_ptr<MoeLayer> created;
  if (parallel == nullptr) {
    auto pipeline = std::make_unique<MoeLayerPipeline>(object->backend(), shape, pointers);
    created = std::make_shared<MoeLayer>(object, std::move(pipeline));
  } else {
    std::shared_ptr<Collectives> collectives = make_nccl_collectives(communicator, nccl::api());
    auto rank_layer = std::make_unique<ParallelMoeLayer>(object->backend(), shape, pointers, plan, collectives);
    created = std::make_shared<MoeLayer>(object, std::move(rank_layer), communicator);
  }
  *layer = reinterpret_cast<mc_moe_layer>(Registry::instance().add(created));
}

}  // namespace

extern "C" {

MC_API mc_status mc_moe_layer_create(mc_context context, const mc_moe_layer_desc* desc,
                                     const mc_moe_layer_weights* weights, mc_moe_layer* layer) {
  return guard("mc_moe_layer_create", [&] { create_layer(context, desc, nullptr, weights, layer); });
}

MC_API mc_status mc_moe_layer_create_parallel(mc_context context, const mc_moe_layer_desc* desc,
                                              const mc_moe_layer_parallel_desc* parallel,
                                              const mc_moe_layer_weights* weights, mc_moe_layer* layer) {
  return guard("mc_moe_layer_create_parallel", [&] {
    require_not_null(parallel, "parallel");
    create_layer(context, desc, parallel, weights, layer);
  });
}

MC_API mc_status mc_moe_layer_destroy(mc_moe_layer layer) {
  return guard("mc_moe_layer_destroy", [&] {
    if (layer == nullptr) return;
    take<MoeLayer>(layer, "layer");
  });
}

MC_API mc_status mc_moe_layer_get_info(mc_moe_layer layer, mc_moe_layer_info* info) {
  return guard("mc_moe_layer_get_info", [&] {
    std::shared_ptr<MoeLayer> object = resolve<MoeLayer>(layer, "layer");
    require_not_null(info, "info");
    require_struct_size(info->struct_size, sizeof(mc_moe_layer_info), "mc_moe_layer_info", "info->struct_size");
    const MoeLayerPipeline& pipeline = object->pipeline();  // a parallel layer's: the rank's
    mc_moe_layer_info out{};
    out.struct_size = sizeof(mc_moe_layer_info);
    out.backend = object->context().backend().kind();
    out.strategy = pipeline.shape().strategy;
    out.workspace_bytes = object->workspace_bytes();
    out.max_rows = pipeline.shape().max_rows();
    copy_text(out.gemm1_kernels, gemm_kernel_names(pipeline.gemm1_shape()).c_str());
    copy_text(out.gemm2_kernels, gemm_kernel_names(pipeline.gemm2_shape()).c_str());
    *info = out;
  });
}

}  // extern "C"

namespace {

// The body of both forward entry points; `events` (already validated) may be null.
void forward_layer(mc_moe_layer layer, const mc_moe_layer_args* args, mc_stream stream,
                   const std::vector<std::shared_ptr<Event>>& events) {
  std::shared_ptr<MoeLayer> object = resolve<MoeLayer>(layer, "layer");
  require_not_null(args, "args");
  require_struct_size(args->struct_size, sizeof(mc_moe_layer_args), "mc_moe_layer_args", "args->struct_size");
  const MoeLayerShape& shape = object->call_shape();
  require_range(args->tokens, 0, shape.max_tokens, "args->tokens",
                object->parallel() != nullptr && object->parallel()->plan().mode == MC_PARALLEL_EXPERT
                    ? "0 .. the expert-parallel layer's tokens_per_rank"
                    : "0 .. the layer's max_tokens");
  require_tensor_pointer(args->hidden, "args->hidden");
  require_tensor_pointer(args->output, "args->output");
  const bool routes = shape.routing == MC_ROUTING_SOFTMAX_TOPK;
  if (routes) {
    require_not_null(args->router_logits, "args->router_logits");
    require_aligned(args->router_logits, static_cast<std::size_t>(dtype_size(shape.logits_dtype)),
                    "args->router_logits", "element alignment of desc->logits_dtype");
    if (args->topk_ids != nullptr || args->topk_weights != nullptr) {
      fail(MC_STATUS_INVALID_ARGUMENT, args->topk_ids != nullptr ? "args->topk_ids" : "args->topk_weights",
           " must be NULL: the layer routes from args->router_logits (MC_ROUTING_SOFTMAX_TOPK)");
    }
  } else {
    require_not_null(args->topk_ids, "args->topk_ids");
    require_not_null(args->topk_weights, "args->topk_weights");
    require_aligned(args->topk_ids, 4, "args->topk_ids", "int32 alignment");
    require_aligned(args->topk_weights, 4, "args->topk_weights", "fp32 alignment");
    if (args->router_logits != nullptr) {
      fail(MC_STATUS_INVALID_ARGUMENT,
           "args->router_logits must be NULL: the layer takes precomputed routing (MC_ROUTING_PRECOMPUTED)");
    }
  }

  Context& context = object->context();
  std::shared_ptr<Stream> keep;
  BackendStream& queue = resolve_stream(stream, context, keep, "stream");
  context.require_usable();

  const int64_t t = args->tokens;
  const int64_t k = shape.top_k;
  const ByteRange inputs[] = {
      {args->hidden, t * shape.hidden * dtype_size(shape.input_dtype), "args->hidden"},
      {args->router_logits, routes ? t * shape.total_experts * dtype_size(shape.logits_dtype) : 0,
       "args->router_logits"},
      {args->topk_ids, routes ? 0 : t * k * 4, "args->topk_ids"},
      {args->topk_weights, routes ? 0 : t * k * 4, "args->topk_weights"},
  };
  for (const ByteRange& input : inputs) {
    if (input.pointer != nullptr) require_context_memory(context, input.pointer, input.bytes, input.argument);
  }
  const ByteRange output{args->output, t * shape.hidden * dtype_size(shape.output_dtype), "args->output"};
  require_context_memory(context, output.pointer, output.bytes, output.argument);
  for (const ByteRange& input : inputs) {
    if (overlaps(output, input)) {
      fail(MC_STATUS_INVALID_ARGUMENT, "args->output overlaps ", input.argument,
           ": the output is written while the inputs are still read");
    }
  }
  // Host-readable ids are checked exactly, before anything is written; a device backend flags them instead.
  if (!routes && context.backend().host_accessible_memory()) {
    validate_topk_ids(args->topk_ids, t, shape.top_k, shape.total_experts, "args->topk_ids");
  }

  MoeLayerInputs operands;
  operands.tokens = args->tokens;
  operands.hidden = args->hidden;
  operands.logits = args->router_logits;
  operands.ids = args->topk_ids;
  operands.weights = args->topk_weights;
  operands.output = args->output;
  BackendEvent* stage_events[MoeLayerPipeline::kStageEvents] = {};
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::string name = "events[" + std::to_string(i) + "]";
    require_same_context(*events[i], context, name.c_str(), "layer");
    stage_events[i] = &events[i]->impl();
  }
  const MoeLayer::ForwardScope running(*object);  // MC_STATUS_BUSY while another thread runs this layer
  object->forward(operands, queue, events.empty() ? nullptr : stage_events);
  for (const auto& event : events) event->mark_recorded();
}

}  // namespace

extern "C" {

MC_API mc_status mc_moe_layer_forward(mc_moe_layer layer, const mc_moe_layer_args* args, mc_stream stream) {
  return guard("mc_moe_layer_forward", [&] { forward_layer(layer, args, stream, {}); });
}

MC_API mc_status mc_moe_layer_forward_timed(mc_moe_layer layer, const mc_moe_layer_args* args, mc_stream stream,
                                            const mc_event* events, int32_t event_count) {
  return guard("mc_moe_layer_forward_timed", [&] {
    require_not_null(events, "events");
    if (event_count != MoeLayerPipeline::kStageEvents) {
      fail(MC_STATUS_OUT_OF_RANGE, "event_count = ", event_count, " is not MC_MOE_LAYER_STAGE_EVENTS (8)");
    }
    std::vector<std::shared_ptr<Event>> resolved;
    for (int32_t i = 0; i < event_count; ++i) {
      const std::string name = "events[" + std::to_string(i) + "]";
      resolved.push_back(resolve<Event>(events[i], name.c_str()));
    }
    forward_layer(layer, args, stream, resolved);
  });
}

}  // extern "C"
