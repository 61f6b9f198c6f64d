// Host reference of the MoE layer's first stage: top-k routing from router logits, and the validation of
// precomputed top-k expert ids (issue 13). Pure, single-threaded, no C ABI: the CPU backend and the tests call it,
// and the CUDA router kernel is specified by it.
//
// Routing of one token t (logits row x = logits[t, 0 .. E-1]):
//  - selection: the k experts with the largest logits, in descending order of logit; equal logits are ordered by
//    the LOWER expert id first. Selection compares the logits themselves (softmax is monotonic), so it is exact and
//    does not depend on how exp() rounds. A NaN logit ranks below every number (it is chosen only if fewer than k
//    experts have non-NaN logits; its weight is then NaN).
//  - weights: p_i = exp(x_i - max x) / sum_j exp(x_j - max x) over all E experts (the softmax), evaluated in double
//    in ascending expert order and rounded once to fp32. With `renormalize`, the k chosen weights are instead
//    p_i / sum over the chosen p (they sum to 1; this equals a softmax over the k chosen logits), also in double.
//  - output: ids[t, j] and weights[t, j] for choice j = 0 .. k-1, in selection order.
#pragma once

#include <cstdint>

#include "core/host_device.hpp"

namespace moecutlass {

// The selection order: true when expert a (logit xa) ranks before expert b (logit xb): larger logit first, equal
// logits (-0 equals +0) to the lower id, NaN after every number and NaNs by id.
MC_HOST_DEVICE inline bool routing_ranks_before(float xa, int32_t a, float xb, int32_t b) {
  const bool nan_a = (float_bits(xa) & 0x7FFFFFFFu) > 0x7F800000u;
  const bool nan_b = (float_bits(xb) & 0x7FFFFFFFu) > 0x7F800000u;
  if (nan_a != nan_b) return nan_b;
  if (xa != xb && !nan_a) return xa > xb;
  return a < b;
}

// The same order as one unsigned 64-bit key, for a comparison (or a max) in one step: routing_rank_key(xa, a) >
// routing_rank_key(xb, b) exactly when routing_ranks_before(xa, a, xb, b), for ids 0 .. INT32_MAX. The high word is
// the logit made order-preserving (zeros folded to +0, every NaN to 0, below -inf), the low word the complement of
// the id (lower ids rank first); 0 is below every real key, a "no candidate" value.
MC_HOST_DEVICE inline uint64_t routing_rank_key(float x, int32_t id) {
  uint32_t bits = float_bits(x);
  if ((bits & 0x7FFFFFFFu) == 0u) bits = 0u;  // -0 ranks with +0
  uint32_t ordered;
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
    ordered = 0u;  // NaN
  } else if (bits & 0x80000000u) {
    ordered = ~bits;  // negative: larger magnitude, smaller key
  } else {
    ordered = bits | 0x80000000u;
  }
  return (static_cast<uint64_t>(ordered) << 32) | static_cast<uint64_t>(~static_cast<uint32_t>(id));
}

// logits: [tokens, experts] of logits_dtype (MC_DTYPE_FP32, _BF16 or _FP16), row-major.
// ids: int32 [tokens, top_k]; weights: fp32 [tokens, top_k]. tokens >= 0, 1 <= top_k <= experts.
// Throws Error (MC_STATUS_OUT_OF_RANGE / _NULL_POINTER / _INVALID_DTYPE) on invalid arguments, before writing.
void route_topk(const void* logits, int32_t logits_dtype, int64_t tokens, int32_t experts, int32_t top_k,
                bool renormalize, int32_t* ids, float* weights);

// Checks precomputed ids [tokens, top_k] against the router's rules: every id in 0 .. experts-1 and the k ids of a
// token distinct. Throws Error(MC_STATUS_INVALID_ARGUMENT, ...) naming `argument`, the token, the choice and the
// rule broken. tokens >= 0, top_k >= 1, experts >= 1.
void validate_topk_ids(const int32_t* ids, int64_t tokens, int32_t top_k, int32_t experts,
                       const char* argument = "topk_ids");

}  // namespace moecutlass
