// Softmax top-k routing on the device, the same selection and (to fp32 rounding) the same weights as route_topk
// (core/moe_routing.hpp).
//
// One warp per token, 8 tokens per 256-thread block. Selection is k rounds of a warp-wide arg-max under the
// reference's total order (larger logit first, equal logits to the lower id, NaN after every number, NaNs by id):
// because the order is total, "not yet taken" is exactly "ranks after the previous round's choice", so no taken-list
// is kept and each round is a strided scan plus a butterfly reduction, whose result does not depend on the
// reduction order. Lane j keeps round j's choice, which is why top_k <= 32. Up to 512 experts each lane loads its
// logits once into registers (PerLane of them, lane + 32 * i) as 64-bit keys of the same order
// (core/moe_routing.hpp routing_rank_key), so a round is a max over the lane's keys and a five-step butterfly of
// one 64-bit value; more experts read the row again per round (L1-resident) and compare pairs. The route was
// 16-33 µs on the H200 with pair compares (ncu: one warp per token, latency-bound, about 4,500 instructions per
// warp) for a few hundred bytes per token.
//
// Weights follow the reference in double: max over the row (exact, order-free), exp(x - max) in double, the softmax
// denominator as a fixed-order sum (lane-strided partial sums in ascending expert order, then a butterfly), the
// renormalisation denominator in choice order exactly as the reference, then one IEEE double division and one
// rounding to fp32. The device's double exp and the denominator's summation order may differ from the host's in the
// last double bits only, which moves the fp32 result by at most one ulp and almost never at all.
#include <cmath>
#include <cstdint>

#include "core/float16.hpp"
#include "core/moe_routing.hpp"
#include "cuda/moe_layer/moe_stage_kernels.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr unsigned kFullWarp = 0xFFFFFFFFu;

template <int32_t Dtype>
__device__ __forceinline__ float load_logit(const void* logits, int64_t index) {
  if constexpr (Dtype == MC_DTYPE_FP32) {
    return static_cast<const float*>(logits)[index];
  } else if constexpr (Dtype == MC_DTYPE_BF16) {
    return bf16_to_float(static_cast<const uint16_t*>(logits)[index]);
  } else {
    return fp16_to_float(static_cast<const uint16_t*>(logits)[index]);
  }
}

// The reference's order (routing_ranks_before), with id -1 as "no candidate", ranking after everything.
__device__ __forceinline__ bool ranks_before(float xa, int32_t a, float xb, int32_t b) {
  if (b < 0) return a >= 0;
  if (a < 0) return false;
  return routing_ranks_before(xa, a, xb, b);
}

// The logits of one token row: PerLane > 0 keeps lane + 32 * i in registers (read once); PerLane == 0 reads the
// row from memory at every visit.
template <int32_t Dtype, int PerLane>
struct TokenLogits {
  float cached[PerLane > 0 ? PerLane : 1];
  const void* logits;
  int64_t row;
  int32_t experts;
  int lane;

  __device__ __forceinline__ TokenLogits(const void* source, int64_t row_start, int32_t count, int lane_index)
      : logits(source), row(row_start), experts(count), lane(lane_index) {
    if constexpr (PerLane > 0) {
#pragma unroll
      for (int i = 0; i < PerLane; ++i) {
        const int32_t e = lane + 32 * i;
        cached[i] = e < experts ? load_logit<Dtype>(logits, row + e) : 0.0f;
      }
    }
  }

  // f(logit, expert) for this lane's experts in ascending order.
  template <class F>
  __device__ __forceinline__ void for_each(F&& f) const {
    if constexpr (PerLane > 0) {
#pragma unroll
      for (int i = 0; i < PerLane; ++i) {
        const int32_t e = lane + 32 * i;
        if (e < experts) f(cached[i], e);
      }
    } else {
      for (int32_t e = lane; e < experts; e += 32) f(load_logit<Dtype>(logits, row + e), e);
    }
  }
};

template <int32_t Dtype, int PerLane>
__global__ void __launch_bounds__(kThreads)
    route_topk_kernel(const void* __restrict__ logits, int32_t tokens, int32_t experts, int32_t top_k,
                      bool renormalize, int32_t* __restrict__ ids, float* __restrict__ weights) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int64_t token = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (token >= tokens) return;  // uniform across the warp
  const TokenLogits<Dtype, PerLane> row(logits, token * experts, experts, lane);

  float my_x = 0.0f;   // lane j: the logit of choice j
  int32_t my_id = -1;  // lane j: choice j
  if constexpr (PerLane > 0) {
    // Selection on keys (routing_rank_key: the reference's order as one unsigned compare). Each round every lane
    // offers the best key it still holds, a butterfly max finds the round's choice, and the lane that held it
    // drops it (key 0 ranks below every real key). The keys are distinct (ids are), so the result is unique.
    uint64_t keys[PerLane];
#pragma unroll
    for (int i = 0; i < PerLane; ++i) {
      const int32_t e = lane + 32 * i;
      keys[i] = e < experts ? routing_rank_key(row.cached[i], e) : 0u;
    }
    for (int32_t j = 0; j < top_k; ++j) {
      uint64_t best = keys[0];
#pragma unroll
      for (int i = 1; i < PerLane; ++i) best = keys[i] > best ? keys[i] : best;
#pragma unroll
      for (int mask = 16; mask > 0; mask >>= 1) {
        const uint64_t other = __shfl_xor_sync(kFullWarp, best, mask);
        best = other > best ? other : best;
      }
#pragma unroll
      for (int i = 0; i < PerLane; ++i) keys[i] = keys[i] == best ? 0u : keys[i];
      // top_k <= experts, so every round finds a real key; its low word is the complemented id.
      if (lane == j) my_id = static_cast<int32_t>(~static_cast<uint32_t>(best));
    }
    // The chosen logit itself (the key keeps only its order): one load from the row this warp just read.
    if (lane < top_k) my_x = load_logit<Dtype>(logits, token * experts + my_id);
  } else {
    // Selection by rounds over the row in memory. prev_* is the previous round's choice (none before round 0).
    float prev_x = 0.0f;
    int32_t prev_id = -1;
    for (int32_t j = 0; j < top_k; ++j) {
      float best_x = 0.0f;
      int32_t best_id = -1;
      row.for_each([&](float x, int32_t e) {
        const bool after_prev = prev_id < 0 || ranks_before(prev_x, prev_id, x, e);
        if (after_prev && ranks_before(x, e, best_x, best_id)) {
          best_x = x;
          best_id = e;
        }
      });
#pragma unroll
      for (int mask = 16; mask > 0; mask >>= 1) {
        const float other_x = __shfl_xor_sync(kFullWarp, best_x, mask);
        const int32_t other_id = __shfl_xor_sync(kFullWarp, best_id, mask);
        if (ranks_before(other_x, other_id, best_x, best_id)) {
          best_x = other_x;
          best_id = other_id;
        }
      }
      // top_k <= experts, so every round finds a candidate; all lanes agree on it (a total order has one maximum).
      prev_x = best_x;
      prev_id = best_id;
      if (lane == j) {
        my_x = best_x;
        my_id = best_id;
      }
    }
  }

  // Softmax in double, max subtracted (exp never overflows). fmax ignores NaN like std::fmax.
  double max_logit = -INFINITY;
  row.for_each([&](float x, int32_t) { max_logit = fmax(max_logit, static_cast<double>(x)); });
#pragma unroll
  for (int mask = 16; mask > 0; mask >>= 1) max_logit = fmax(max_logit, __shfl_xor_sync(kFullWarp, max_logit, mask));

  double denominator = 0.0;
  if (!renormalize) {
    double partial = 0.0;
    row.for_each([&](float x, int32_t) { partial += exp(static_cast<double>(x) - max_logit); });
#pragma unroll
    for (int mask = 16; mask > 0; mask >>= 1) partial += __shfl_xor_sync(kFullWarp, partial, mask);
    denominator = partial;
  }
  const double p = lane < top_k ? exp(static_cast<double>(my_x) - max_logit) : 0.0;
  if (renormalize) {
    // In choice order, as the reference sums the chosen probabilities.
    for (int32_t j = 0; j < top_k; ++j) denominator += __shfl_sync(kFullWarp, p, j);
  }
  if (lane < top_k) {
    ids[token * top_k + lane] = my_id;
    weights[token * top_k + lane] = static_cast<float>(p / denominator);
  }
}

template <int32_t Dtype, int PerLane>
void launch_route(const MoeRouteJob& job, unsigned grid, cudaStream_t stream) {
  route_topk_kernel<Dtype, PerLane><<<grid, kThreads, 0, stream>>>(job.logits, job.tokens, job.experts, job.top_k,
                                                                   job.renormalize, job.ids, job.weights);
}

// The register-cached variant for the row width (PerLane a power of two up to 16, so up to 512 experts).
template <int32_t Dtype>
void launch_route_for_width(const MoeRouteJob& job, unsigned grid, cudaStream_t stream) {
  const int32_t per_lane = (job.experts + 31) / 32;
  if (per_lane <= 1) return launch_route<Dtype, 1>(job, grid, stream);
  if (per_lane <= 2) return launch_route<Dtype, 2>(job, grid, stream);
  if (per_lane <= 4) return launch_route<Dtype, 4>(job, grid, stream);
  if (per_lane <= 8) return launch_route<Dtype, 8>(job, grid, stream);
  if (per_lane <= 16) return launch_route<Dtype, 16>(job, grid, stream);
  launch_route<Dtype, 0>(job, grid, stream);
}

}  // namespace

cudaError_t launch_moe_route(const MoeRouteJob& job, cudaStream_t stream) {
  if (job.top_k < 1 || job.top_k > 32 || job.top_k > job.experts) return cudaErrorInvalidValue;
  if (job.tokens <= 0) return cudaSuccess;
  const int64_t blocks = (int64_t{job.tokens} + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const unsigned grid = static_cast<unsigned>(blocks);
  switch (job.logits_dtype) {
    case MC_DTYPE_FP32: launch_route_for_width<MC_DTYPE_FP32>(job, grid, stream); break;
    case MC_DTYPE_BF16: launch_route_for_width<MC_DTYPE_BF16>(job, grid, stream); break;
    case MC_DTYPE_FP16: launch_route_for_width<MC_DTYPE_FP16>(job, grid, stream); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace moecutlass
