// The descriptor of a MoE layer for a test problem (moe_layer_reference.hpp) and an expert slice of it: softmax
// top-k routing, SiLU-and-mul, bf16 in and out, strategy auto. Shared by the layer's ABI tests and the parallel
// layer's.
#pragma once

#include <cstdint>

#include "moe_layer_reference.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass::test {

inline mc_moe_layer_desc layer_desc(const Problem& p, ExpertSlice slice, int32_t max_tokens) {
  mc_moe_layer_desc desc{};
  desc.struct_size = sizeof desc;
  desc.total_experts = slice.total_experts;
  desc.first_expert = slice.first;
  desc.local_experts = slice.local_experts;
  desc.top_k = p.k;
  desc.hidden = static_cast<int32_t>(p.hidden);
  desc.inter = static_cast<int32_t>(p.inter);
  desc.routing = MC_ROUTING_SOFTMAX_TOPK;
  desc.normalize_routing_weights = p.renormalize ? 1 : 0;
  desc.activation = MC_ACTIVATION_SILU_AND_MUL;
  desc.input_dtype = MC_DTYPE_BF16;
  desc.logits_dtype = MC_DTYPE_FP32;
  desc.output_dtype = MC_DTYPE_BF16;
  desc.max_tokens = max_tokens;
  desc.strategy = MC_STRATEGY_AUTO;
  return desc;
}

}  // namespace moecutlass::test
