#include "core/moe_parallel.hpp"

#include <algorithm>
#include <vector>

#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/validate.hpp"

namespace moecutlass {

namespace {

constexpr int64_t kPartAlignment = 256;

int64_t align_up(int64_t bytes) { return (bytes + kPartAlignment - 1) / kPartAlignment * kPartAlignment; }

}  // namespace

void require_parallel_mode(int32_t mode) {
  if (mode != MC_PARALLEL_TENSOR && mode != MC_PARALLEL_EXPERT) {
    fail(MC_STATUS_INVALID_ARGUMENT, "parallel->mode = ", mode,
         " is not MC_PARALLEL_TENSOR (1) or MC_PARALLEL_EXPERT (2)");
  }
}

void validate_parallel(const MoeLayerShape& shape, const ParallelPlan& plan) {
  require_parallel_mode(plan.mode);
  if (plan.world_size < 1 || plan.rank < 0 || plan.rank >= plan.world_size) {
    fail(MC_STATUS_INTERNAL, "communicator rank ", plan.rank, " of world size ", plan.world_size);
  }
  const int64_t w = plan.world_size;
  if (plan.mode == MC_PARALLEL_TENSOR) {
    if (shape.first_expert != 0 || shape.local_experts != shape.total_experts) {
      fail(MC_STATUS_INVALID_ARGUMENT, "desc->first_expert = ", shape.first_expert, " and desc->local_experts = ",
           shape.local_experts, ": a tensor-parallel rank (MC_PARALLEL_TENSOR) holds every expert, so they must be 0 "
           "and desc->total_experts = ", shape.total_experts);
    }
    if (shape.inter % MC_SCALE_BLOCK != 0) {
      fail(MC_STATUS_MISALIGNED, "desc->inter = ", shape.inter, " (the rank's slice I/W of a tensor-parallel layer "
           "of world size ", w, ") must be a multiple of 128 (MC_SCALE_BLOCK), so that no 128x128 weight scale block "
           "of w13 or w2 is split between ranks");
    }
    if (plan.tokens_per_rank != 0) {
      fail(MC_STATUS_INVALID_ARGUMENT, "parallel->tokens_per_rank = ", plan.tokens_per_rank,
           " must be 0 for MC_PARALLEL_TENSOR (every rank takes all the tokens, bounded by desc->max_tokens)");
    }
    return;
  }
  if (shape.total_experts % w != 0) {
    fail(MC_STATUS_INVALID_ARGUMENT, "desc->total_experts = ", shape.total_experts,
         " is not a multiple of the communicator's world size ", w,
         " (MC_PARALLEL_EXPERT splits the experts evenly between the ranks)");
  }
  const int64_t per_rank = shape.total_experts / w;
  if (shape.local_experts != per_rank) {
    fail(MC_STATUS_INVALID_ARGUMENT, "desc->local_experts = ", shape.local_experts,
         " must be desc->total_experts / world size = ", per_rank, " for MC_PARALLEL_EXPERT");
  }
  if (shape.first_expert != plan.rank * per_rank) {
    fail(MC_STATUS_INVALID_ARGUMENT, "desc->first_expert = ", shape.first_expert, " must be rank * local_experts = ",
         plan.rank, " * ", per_rank, " = ", plan.rank * per_rank,
         " for MC_PARALLEL_EXPERT (rank r holds experts r E/W .. (r+1) E/W - 1)");
  }
  require_range(plan.tokens_per_rank, 1, shape.max_tokens, "parallel->tokens_per_rank",
                "1 .. desc->max_tokens (the padded token count every rank passes to the all-gather)");
  if (w * plan.tokens_per_rank * shape.top_k > MC_MAX_ROWS) {
    fail(MC_STATUS_OUT_OF_RANGE, "world size ", w, " * parallel->tokens_per_rank (", plan.tokens_per_rank,
         ") * desc->top_k (", shape.top_k, ") = ", w * plan.tokens_per_rank * shape.top_k,
         " exceeds MC_MAX_ROWS (every gathered (token, expert) pair becomes a GEMM row)");
  }
}

MoeLayerShape parallel_inner_shape(const MoeLayerShape& shape, const ParallelPlan& plan) {
  MoeLayerShape inner = shape;
  inner.output_dtype = MC_DTYPE_FP32;  // the partials are summed in fp32 and rounded once, after the collective
  if (plan.mode == MC_PARALLEL_EXPERT) inner.max_tokens = plan.world_size * plan.tokens_per_rank;
  return inner;
}

ParallelWorkspaceLayout parallel_workspace_layout(const MoeLayerShape& shape, const ParallelPlan& plan) {
  ParallelWorkspaceLayout layout;
  int64_t at = 0;
  auto take = [&at](int64_t bytes) {
    const int64_t start = at;
    at += align_up(bytes);
    return start;
  };
  const int64_t h = shape.hidden, k = shape.top_k;
  if (plan.mode == MC_PARALLEL_TENSOR) {
    layout.partial = take(int64_t{shape.max_tokens} * h * 4);
    layout.total = at;
    return layout;
  }
  const int64_t p = plan.tokens_per_rank, gathered = plan.world_size * p;
  const int64_t input_size = dtype_size(shape.input_dtype);
  layout.partial = take(gathered * h * 4);
  layout.received = take(p * h * 4);
  layout.send_hidden = take(p * h * input_size);
  layout.gathered_hidden = take(gathered * h * input_size);
  if (shape.routing == MC_ROUTING_SOFTMAX_TOPK) {
    const int64_t logit_row = int64_t{shape.total_experts} * dtype_size(shape.logits_dtype);
    layout.send_logits = take(p * logit_row);
    layout.gathered_logits = take(gathered * logit_row);
  } else {
    layout.send_ids = take(p * k * 4);
    layout.send_weights = take(p * k * 4);
    layout.gathered_ids = take(gathered * k * 4);
    layout.gathered_weights = take(gathered * k * 4);
    layout.pad_ids = take(p * k * 4);
  }
  layout.total = at;
  return layout;
}

ParallelMoeLayer::ParallelMoeLayer(Backend& backend, const MoeLayerShape& shape, const MoeLayerWeights& weights,
                                   const ParallelPlan& plan, std::shared_ptr<Collectives> collectives)
    : backend_(backend),
      call_shape_(shape),
      plan_(plan),
      collectives_(std::move(collectives)),
      layout_(parallel_workspace_layout(shape, plan)) {
  if (!collectives_ || collectives_->world_size() != plan.world_size || collectives_->rank() != plan.rank) {
    fail(MC_STATUS_INTERNAL, "the parallel layer's collectives do not match its plan");
  }
  if (plan.mode == MC_PARALLEL_EXPERT) call_shape_.max_tokens = plan.tokens_per_rank;
  pipeline_ = std::make_unique<MoeLayerPipeline>(backend, parallel_inner_shape(shape, plan), weights);
  buffers_ = static_cast<uint8_t*>(backend.allocate(std::max<int64_t>(layout_.total, kPartAlignment)));
  if (plan.mode == MC_PARALLEL_EXPERT && shape.routing == MC_ROUTING_PRECOMPUTED) {
    try {
      // Padding rows route to the distinct experts 0 .. k-1 (valid ids, no duplicate flagged) with weight 0.
      const int64_t p = plan.tokens_per_rank, k = shape.top_k;
      std::vector<int32_t> pad(static_cast<std::size_t>(p * k));
      for (int64_t i = 0; i < p * k; ++i) pad[static_cast<std::size_t>(i)] = static_cast<int32_t>(i % k);
      BackendStream& stream = backend.default_stream();
      backend.copy(part<int32_t>(layout_.pad_ids), pad.data(), p * k * 4, MC_COPY_HOST_TO_DEVICE, stream);
      stream.synchronize();  // `pad` dies with this scope
    } catch (...) {
      backend.release(buffers_);
      throw;
    }
  }
}

ParallelMoeLayer::~ParallelMoeLayer() {
  pipeline_.reset();
  backend_.release(buffers_);
}

void ParallelMoeLayer::forward(const MoeLayerInputs& inputs, BackendStream& stream, BackendEvent* const* events) {
  if (plan_.mode == MC_PARALLEL_TENSOR) {
    forward_tensor(inputs, stream, events);
  } else {
    forward_expert(inputs, stream, events);
  }
}

void ParallelMoeLayer::forward_tensor(const MoeLayerInputs& inputs, BackendStream& stream,
                                      BackendEvent* const* events) {
  const int64_t count = int64_t{inputs.tokens} * call_shape_.hidden;
  // fp32 output: the partials go straight to the caller's buffer and are reduced in place.
  const bool direct = call_shape_.output_dtype == MC_DTYPE_FP32;
  float* partial = direct ? static_cast<float*>(inputs.output) : part<float>(layout_.partial);
  MoeLayerInputs rank_inputs = inputs;
  rank_inputs.output = partial;
  pipeline_->forward(rank_inputs, stream, events);
  collectives_->all_reduce_sum(partial, partial, count, stream);
  if (!direct) finish(partial, inputs.output, count, stream);
}

void ParallelMoeLayer::forward_expert(const MoeLayerInputs& inputs, BackendStream& stream,
                                      BackendEvent* const* events) {
  const int32_t t = inputs.tokens;
  const int32_t p = plan_.tokens_per_rank;
  const int64_t w = plan_.world_size;
  const int64_t h = call_shape_.hidden, k = call_shape_.top_k;
  const int32_t input_size = static_cast<int32_t>(dtype_size(call_shape_.input_dtype));

  Collectives::GatherPart parts[3];
  int32_t part_count = 0;
  stage_rows(inputs.hidden, t, p, h, input_size, part<void>(layout_.send_hidden), stream);
  parts[part_count++] = {part<void>(layout_.send_hidden), part<void>(layout_.gathered_hidden), p * h * input_size};
  MoeLayerInputs gathered;
  gathered.tokens = static_cast<int32_t>(w * p);
  gathered.hidden = part<void>(layout_.gathered_hidden);
  gathered.output = part<float>(layout_.partial);
  if (call_shape_.routing == MC_ROUTING_SOFTMAX_TOPK) {
    const int32_t logit_size = static_cast<int32_t>(dtype_size(call_shape_.logits_dtype));
    const int64_t e = call_shape_.total_experts;
    stage_rows(inputs.logits, t, p, e, logit_size, part<void>(layout_.send_logits), stream);
    parts[part_count++] = {part<void>(layout_.send_logits), part<void>(layout_.gathered_logits), p * e * logit_size};
    gathered.logits = part<void>(layout_.gathered_logits);
  } else {
    int32_t* send_ids = part<int32_t>(layout_.send_ids);
    if (t > 0) backend_.copy(send_ids, inputs.ids, t * k * 4, MC_COPY_DEVICE_TO_DEVICE, stream);
    if (t < p) {
      backend_.copy(send_ids + t * k, part<int32_t>(layout_.pad_ids) + t * k, (p - t) * k * 4,
                    MC_COPY_DEVICE_TO_DEVICE, stream);
    }
    stage_rows(inputs.weights, t, p, k, 4, part<void>(layout_.send_weights), stream);
    parts[part_count++] = {send_ids, part<void>(layout_.gathered_ids), p * k * 4};
    parts[part_count++] = {part<void>(layout_.send_weights), part<void>(layout_.gathered_weights), p * k * 4};
    gathered.ids = part<int32_t>(layout_.gathered_ids);
    gathered.weights = part<float>(layout_.gathered_weights);
  }
  collectives_->all_gather(parts, part_count, stream);
  pipeline_->forward(gathered, stream, events);
  float* received = part<float>(layout_.received);
  collectives_->reduce_scatter_sum(part<float>(layout_.partial), received, p * h, stream);
  finish(received, inputs.output, t * h, stream);
}

void ParallelMoeLayer::stage_rows(const void* src, int32_t rows, int32_t capacity, int64_t row_elements,
                                  int32_t element_size, void* dst, BackendStream& stream) {
  const int64_t row_bytes = row_elements * element_size;
  if (rows > 0) backend_.copy(dst, src, rows * row_bytes, MC_COPY_DEVICE_TO_DEVICE, stream);
  if (rows < capacity) {
    const uint32_t zero = 0;
    backend_.fill(static_cast<uint8_t*>(dst) + rows * row_bytes, &zero, element_size,
                  (capacity - rows) * row_elements, stream);
  }
}

void ParallelMoeLayer::finish(const float* values, void* output, int64_t count, BackendStream& stream) {
  if (count <= 0) return;
  if (call_shape_.output_dtype == MC_DTYPE_FP32) {
    backend_.copy(output, values, count * 4, MC_COPY_DEVICE_TO_DEVICE, stream);
  } else {
    backend_.convert(values, MC_DTYPE_FP32, output, call_shape_.output_dtype, count, stream);
  }
}

}  // namespace moecutlass
