#include "core/moe_permutation.hpp"

#include <limits>
#include <vector>

#include "core/error.hpp"
#include "core/moe_layer_stages.hpp"
#include "core/moe_routing.hpp"

namespace moecutlass {

int64_t permute_by_expert(const int32_t* ids, int64_t tokens, int32_t top_k, ExpertSlice slice, int32_t* offsets,
                          int32_t* sorted_slots, int32_t* slot_to_row) {
  if (slice.total_experts < 1) fail(MC_STATUS_OUT_OF_RANGE, "total_experts is ", slice.total_experts, "; it must be >= 1");
  if (slice.local_experts < 1 || slice.first < 0 ||
      int64_t{slice.first} + slice.local_experts > slice.total_experts) {
    fail(MC_STATUS_OUT_OF_RANGE, "the local expert slice [", slice.first, ", ",
         int64_t{slice.first} + slice.local_experts, ") must be a non-empty part of 0 .. ", slice.total_experts);
  }
  validate_topk_ids(ids, tokens, top_k, slice.total_experts, "topk_ids");
  const int64_t slots = tokens * top_k;
  if (slots > std::numeric_limits<int32_t>::max()) {
    fail(MC_STATUS_OUT_OF_RANGE, "tokens * top_k is ", slots, "; int32 row indices need it <= 2^31-1");
  }
  if (!offsets || (slots > 0 && (!sorted_slots || !slot_to_row))) {
    fail(MC_STATUS_NULL_POINTER, "offsets, sorted_slots and slot_to_row must not be null");
  }

  // Counting pass, then prefix sums.
  std::vector<int32_t> start(static_cast<std::size_t>(slice.local_experts) + 1, 0);
  for (int64_t s = 0; s < slots; ++s) {
    const int32_t local = ids[s] - slice.first;
    if (local >= 0 && local < slice.local_experts) ++start[local + 1];
  }
  for (int32_t e = 0; e < slice.local_experts; ++e) start[e + 1] += start[e];
  for (int32_t e = 0; e <= slice.local_experts; ++e) offsets[e] = start[e];

  // Placement pass in ascending slot order: stable.
  for (int64_t s = 0; s < slots; ++s) sorted_slots[s] = -1;
  for (int64_t s = 0; s < slots; ++s) {
    const int32_t local = ids[s] - slice.first;
    if (local >= 0 && local < slice.local_experts) {
      const int32_t row = start[local]++;
      sorted_slots[row] = static_cast<int32_t>(s);
      slot_to_row[s] = row;
    } else {
      slot_to_row[s] = -1;
    }
  }
  return offsets[slice.local_experts];
}

// The device permutation's scratch (core/moe_layer_stages.hpp): declared with the stage interface because the
// layer sizes its workspace through it, defined here so CPU-only builds have it too.
int64_t moe_permute_scratch_bytes(int32_t max_tokens, int32_t top_k, int32_t local_experts) {
  const int64_t chunks = moe_permute_chunks(max_tokens, top_k);
  if (chunks <= 1 || local_experts < 1) return 0;
  const int64_t bytes = (chunks + 1) * (int64_t{local_experts} + 1) * 4;
  return (bytes + 15) / 16 * 16;
}

}  // namespace moecutlass
