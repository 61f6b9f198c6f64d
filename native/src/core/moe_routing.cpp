#include "core/moe_routing.hpp"

#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "core/float16.hpp"

namespace moecutlass {

namespace {

float load_logit(const void* logits, int32_t dtype, int64_t index) {
  switch (dtype) {
    case MC_DTYPE_FP32: return static_cast<const float*>(logits)[index];
    case MC_DTYPE_BF16: return bf16_to_float(static_cast<const uint16_t*>(logits)[index]);
    default: return fp16_to_float(static_cast<const uint16_t*>(logits)[index]);
  }
}

}  // namespace

void route_topk(const void* logits, int32_t logits_dtype, int64_t tokens, int32_t experts, int32_t top_k,
                bool renormalize, int32_t* ids, float* weights) {
  if (tokens < 0) fail(MC_STATUS_OUT_OF_RANGE, "tokens is ", tokens, "; it must be >= 0");
  if (experts < 1) fail(MC_STATUS_OUT_OF_RANGE, "experts is ", experts, "; it must be >= 1");
  if (top_k < 1 || top_k > experts) {
    fail(MC_STATUS_OUT_OF_RANGE, "top_k is ", top_k, "; it must be in 1 .. experts (", experts, ")");
  }
  if (logits_dtype != MC_DTYPE_FP32 && logits_dtype != MC_DTYPE_BF16 && logits_dtype != MC_DTYPE_FP16) {
    fail(MC_STATUS_INVALID_DTYPE, "logits_dtype is ", logits_dtype, "; the router takes fp32, bf16 or fp16 logits");
  }
  if (tokens == 0) return;
  if (!logits || !ids || !weights) fail(MC_STATUS_NULL_POINTER, "logits, ids and weights must not be null");

  std::vector<float> x(static_cast<std::size_t>(experts));
  std::vector<double> p(static_cast<std::size_t>(experts));
  std::vector<int32_t> chosen(static_cast<std::size_t>(top_k));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int32_t e = 0; e < experts; ++e) x[e] = load_logit(logits, logits_dtype, t * experts + e);

    // Selection: k passes, each taking the best expert not yet taken (k is small; this keeps the rule obvious).
    for (int32_t j = 0; j < top_k; ++j) {
      int32_t best = -1;
      for (int32_t e = 0; e < experts; ++e) {
        bool taken = false;
        for (int32_t i = 0; i < j; ++i) taken = taken || chosen[i] == e;
        if (!taken && (best < 0 || routing_ranks_before(x[e], e, x[best], best))) best = e;
      }
      chosen[j] = best;
    }

    // Softmax in double (max subtracted: exp never overflows), ascending expert order.
    double max_logit = -INFINITY;
    for (int32_t e = 0; e < experts; ++e) max_logit = std::fmax(max_logit, static_cast<double>(x[e]));
    double sum = 0.0;
    for (int32_t e = 0; e < experts; ++e) sum += p[e] = std::exp(static_cast<double>(x[e]) - max_logit);
    double chosen_sum = 0.0;
    for (int32_t j = 0; j < top_k; ++j) chosen_sum += p[chosen[j]];
    const double denominator = renormalize ? chosen_sum : sum;
    for (int32_t j = 0; j < top_k; ++j) {
      ids[t * top_k + j] = chosen[j];
      weights[t * top_k + j] = static_cast<float>(p[chosen[j]] / denominator);
    }
  }
}

void validate_topk_ids(const int32_t* ids, int64_t tokens, int32_t top_k, int32_t experts, const char* argument) {
  if (tokens < 0) fail(MC_STATUS_OUT_OF_RANGE, "tokens is ", tokens, "; it must be >= 0");
  if (top_k < 1) fail(MC_STATUS_OUT_OF_RANGE, "top_k is ", top_k, "; it must be >= 1");
  if (experts < 1) fail(MC_STATUS_OUT_OF_RANGE, "experts is ", experts, "; it must be >= 1");
  if (tokens == 0) return;
  if (!ids) fail(MC_STATUS_NULL_POINTER, argument, " must not be null");
  for (int64_t t = 0; t < tokens; ++t) {
    const int32_t* row = ids + t * top_k;
    for (int32_t j = 0; j < top_k; ++j) {
      if (row[j] < 0 || row[j] >= experts) {
        fail(MC_STATUS_INVALID_ARGUMENT, argument, "[", t, ", ", j, "] is ", row[j],
             ": expert ids must be in 0 .. ", experts - 1);
      }
      for (int32_t i = 0; i < j; ++i) {
        if (row[i] == row[j]) {
          fail(MC_STATUS_INVALID_ARGUMENT, argument, "[", t, ", ", j, "] repeats expert ", row[j], " (also at ",
               argument, "[", t, ", ", i, "]): the top-k experts of a token must be distinct");
        }
      }
    }
  }
}

}  // namespace moecutlass
