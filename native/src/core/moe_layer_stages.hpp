// The MoE layer's stages other than the two grouped GEMMs (issue 13), as one interface each backend implements:
// the CPU backend with the host references (core/moe_routing, core/moe_permutation, cpu/moe_*), the CUDA backend
// with device kernels that compute the same bits. The pipeline (core/moe_layer.cpp) sequences them on one stream.
//
// Row counts live on the device. permute writes the per-expert offsets; the stages after it take the capacity
// (tokens * top_k) from the host and read the actual number of rows, offsets[local_experts], where they run (the
// CPU reads host memory, a CUDA kernel reads device memory), so no stage needs a host synchronisation.
// Every pointer has been validated by the ABI layer or points into the layer's workspace.
#pragma once

#include <cstdint>

namespace moecutlass {

class BackendStream;

// Softmax top-k routing (core/moe_routing.hpp route_topk): logits [tokens, experts] -> ids, weights [tokens, top_k].
struct MoeRouteJob {
  const void* logits = nullptr;
  int32_t logits_dtype = 0;
  int32_t tokens = 0;
  int32_t experts = 0;  // total experts (logit columns)
  int32_t top_k = 0;
  bool renormalize = false;
  int32_t* ids = nullptr;
  float* weights = nullptr;
};

// Counting sort of the (token, choice) slots by local expert (core/moe_permutation.hpp permute_by_expert).
// Precomputed ids were checked on the host where the backend can read them (the CPU); a device backend instead
// treats an out-of-range id as non-local and raises MC_DEVICE_ERROR_TOPK_ID_OUT_OF_RANGE, and keeps duplicated ids
// as separate slots while raising MC_DEVICE_ERROR_TOPK_ID_DUPLICATE.
struct MoePermuteJob {
  const int32_t* ids = nullptr;  // [tokens, top_k] global expert ids
  int32_t tokens = 0;
  int32_t top_k = 0;
  int32_t first_expert = 0;
  int32_t local_experts = 0;
  int32_t total_experts = 0;
  int32_t* offsets = nullptr;       // [local_experts + 1]
  int32_t* sorted_slots = nullptr;  // [tokens * top_k]; rows past offsets[local_experts] get -1
  int32_t* slot_to_row = nullptr;   // [tokens * top_k]; -1 for a slot whose expert is not local
  // Device scratch of at least moe_permute_scratch_bytes(tokens capacity, top_k, local_experts) bytes, 16-byte
  // aligned, contents irrelevant on entry (the layer's workspace); null when that size is 0. The CPU ignores it.
  int32_t* scratch = nullptr;
};

// How a device permutation splits the slots: chunks of whole tokens, at most kMoePermuteChunkSlots slots each, so
// one thread block sorts one chunk in shared memory. Shared by moe_permute_scratch_bytes and the CUDA kernels so
// the layer's workspace and the launch always agree.
inline constexpr int32_t kMoePermuteChunkSlots = 2048;
inline int32_t moe_permute_tokens_per_chunk(int32_t top_k) {
  return top_k >= 1 && top_k <= kMoePermuteChunkSlots ? kMoePermuteChunkSlots / top_k : 1;
}
inline int64_t moe_permute_chunks(int32_t tokens, int32_t top_k) {
  const int64_t per_chunk = moe_permute_tokens_per_chunk(top_k);
  return tokens <= 0 ? 0 : (int64_t{tokens} + per_chunk - 1) / per_chunk;
}

// Scratch bytes the device permutation needs for up to max_tokens tokens: 0 when every such call fits one chunk
// (a single thread block does all of it: decode sizes); otherwise per-chunk counts of each local expert plus the
// non-local group, and the per-group totals: (chunks + 1) * (local_experts + 1) int32, rounded up to 16 bytes.
int64_t moe_permute_scratch_bytes(int32_t max_tokens, int32_t top_k, int32_t local_experts);

// Gather of each row's token fused with the 1x128 FP8 quantization (cpu/moe_gather_quantize.hpp).
struct MoeGatherJob {
  const void* hidden = nullptr;  // [tokens, hidden_size] of hidden_dtype
  int32_t hidden_dtype = 0;
  int32_t tokens = 0;
  int32_t hidden_size = 0;
  int32_t top_k = 0;
  const int32_t* sorted_slots = nullptr;
  const int32_t* offsets = nullptr;  // rows = offsets[local_experts]
  int32_t local_experts = 0;
  uint8_t* out = nullptr;  // e4m3 [rows, hidden_size]
  float* scales = nullptr;  // [rows, ceil(hidden_size / 128)]
};

// SiLU(gate) * up fused with the 1x128 requantization (cpu/moe_silu_and_mul.hpp), on GEMM1's bf16 output.
struct MoeActivationJob {
  const void* gemm1_out = nullptr;  // bf16 [rows, 2 * inter]
  const int32_t* offsets = nullptr;  // rows = offsets[local_experts]
  int32_t local_experts = 0;
  int32_t inter = 0;
  uint8_t* out = nullptr;   // e4m3 [rows, inter]
  float* scales = nullptr;  // [rows, ceil(inter / 128)]
};

// Weighted combine of the GEMM2 rows back to tokens in a fixed order (cpu/moe_combine.hpp).
struct MoeCombineJob {
  const void* gemm2_out = nullptr;  // bf16 [rows, hidden_size]
  int32_t hidden_size = 0;
  const float* weights = nullptr;      // [tokens, top_k]
  const int32_t* slot_to_row = nullptr;  // [tokens * top_k]
  int32_t tokens = 0;
  int32_t top_k = 0;
  void* output = nullptr;  // [tokens, hidden_size] of output_dtype
  int32_t output_dtype = 0;
};

class MoeLayerStages {
 public:
  virtual ~MoeLayerStages() = default;
  virtual void route(const MoeRouteJob& job, BackendStream& stream) = 0;
  virtual void permute(const MoePermuteJob& job, BackendStream& stream) = 0;
  virtual void gather_quantize(const MoeGatherJob& job, BackendStream& stream) = 0;
  virtual void activate_quantize(const MoeActivationJob& job, BackendStream& stream) = 0;
  virtual void combine(const MoeCombineJob& job, BackendStream& stream) = 0;
};

}  // namespace moecutlass
