// Host reference of the MoE layer's permutation stage (issue 13): which (token, choice) slots this rank's local
// experts receive, per-expert counts and offsets, the stable sort by expert and its inverse for the combine.
// Mirrors MoeRouting.Sort of the C# facade, extended by the expert-parallel slice.
//
// Slots are numbered s = token * top_k + j (the row-major index into ids [tokens, top_k]). A slot whose expert is
// outside the local slice [first, first + local_experts) gets no row and contributes nothing. The rows of local
// expert e are offsets[e] .. offsets[e+1]-1, holding its slots in ascending slot order (a stable counting sort),
// which is (token, choice) order. The permutation depends only on the ids, so it is deterministic.
#pragma once

#include <cstdint>

namespace moecutlass {

// Expert-parallel slice: this rank owns global experts first .. first + local_experts - 1 of total_experts.
struct ExpertSlice {
  int32_t first = 0;
  int32_t local_experts = 0;
  int32_t total_experts = 0;
};

// Validates ids (validate_topk_ids: in 0 .. total_experts-1, distinct within a token) and the slice
// (0 <= first, 1 <= local_experts, first + local_experts <= total_experts), then writes:
//   offsets       int32 [local_experts + 1]: prefix sums of the per-local-expert counts; offsets[0] = 0 and
//                 offsets[local_experts] = rows, the number of slots routed to the slice (<= tokens * top_k);
//   sorted_slots  int32 [tokens * top_k] capacity: for row r < rows, the slot that goes there; the rest is -1;
//   slot_to_row   int32 [tokens * top_k]: the inverse, for slot s its row, or -1 when its expert is not local.
// The token of row r is sorted_slots[r] / top_k. Returns rows. Throws Error before writing anything.
int64_t permute_by_expert(const int32_t* ids, int64_t tokens, int32_t top_k, ExpertSlice slice, int32_t* offsets,
                          int32_t* sorted_slots, int32_t* slot_to_row);

}  // namespace moecutlass
