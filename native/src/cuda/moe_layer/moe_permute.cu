// Stable counting sort of the (token, choice) slots by local expert on the device: the same offsets, sorted_slots
// and slot_to_row as permute_by_expert (core/moe_permutation.hpp), bit for bit and run after run.
//
// Every slot gets a group: its local expert 0 .. E-1, or E for "not on this rank" (and for an id outside
// 0 .. total_experts-1, which also raises MC_DEVICE_ERROR_TOPK_ID_OUT_OF_RANGE). Sorting the slots by group,
// stably, gives exactly the reference's layout: the first offsets[E] positions are the local rows, and the non-local
// slots fill positions offsets[E] .. tokens*top_k-1, which is where the reference writes -1. So every entry of
// sorted_slots and slot_to_row is written exactly once, by the thread that owns that slot after the sort.
//
// Determinism without order-dependent atomics: the slots are split into chunks of whole tokens (at most 2048 slots,
// core/moe_layer_stages.hpp). Inside a chunk, one thread block sorts the keys (group << P | position in chunk) with
// a block radix sort; the keys are distinct, so the sorted order is unique whatever the sort's internals. P is just
// wide enough for the longest chunk, so a decode-sized sort needs few radix passes (8 slots, E = 32: 9 key bits).
// A slot's
// row is then
//     start of its group + slots of the group in earlier chunks + its rank among the group's slots in this chunk,
// all three pure functions of the ids. Counting uses shared-memory atomics, whose result is order-free.
//  - One chunk (decode: tokens * top_k <= 2048): a single block does everything, one launch, no scratch; the row is
//    simply the sorted position.
//  - Several chunks: count (a block per chunk writes its per-group counts to scratch), scan (a thread per group
//    turns the chunk counts into exclusive prefixes and totals), place (a block per chunk scans the totals into the
//    group starts, sorts its chunk again and writes its rows; block 0 also writes offsets). Three launches.
// Duplicate ids are checked per token in the count pass (or the single block) and kept as separate slots.
//
// Up to kBlockPathSlots slots and kBlockPathGroups groups (every decode step: 1024 tokens with top-8, 4096 with
// top-2) one 1024-thread block does it all in one launch, without a sort (permute_block_kernel): each of its 32
// warps owns a contiguous range of slots, in steps of 32 consecutive slots; __match_any_sync finds the lanes of a
// step with the same group, so a lane's rank among them is a popcount and the step's lowest such lane alone updates
// the warp's per-group counter in shared memory (no atomics, so nothing depends on timing). Pass 1 counts per warp
// and group; one thread per group turns the counts into each warp's first row for it (group start, from a block
// scan of the group totals, plus the earlier warps' counts); pass 2 walks the same steps again and places every
// slot at its warp's counter plus its rank. The rows are the reference's, since a slot's row is the group start
// plus the number of earlier slots of its group, and the warps, steps and lanes visit the slots in order. It
// replaces a block radix sort of one chunk, or the three launches of several (see kBlockSteps for the limit).
#include <cstdint>

#include <cub/block/block_radix_sort.cuh>
#include <cub/block/block_scan.cuh>

#include "cuda/moe_layer/moe_stage_kernels.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {
namespace cuda {

namespace {

constexpr int kThreads = 256;
constexpr unsigned kFullWarpMask = 0xFFFFFFFFu;
constexpr int kItems = kMoePermuteChunkSlots / kThreads;  // keys per thread
constexpr int kMaxPositionBits = 11;
constexpr int32_t kMaxLocalExperts = 4096;
constexpr int kMaxGroups = kMaxLocalExperts + 1;
static_assert(kItems * kThreads == kMoePermuteChunkSlots, "a block holds one whole chunk");
static_assert((1 << kMaxPositionBits) == kMoePermuteChunkSlots, "the position field covers a chunk");

using BlockSort = cub::BlockRadixSort<uint32_t, kThreads, kItems>;
using BlockScan = cub::BlockScan<int32_t, kThreads>;

struct Geometry {
  const int32_t* ids;
  int32_t tokens;
  int32_t top_k;
  int32_t first_expert;
  int32_t local_experts;  // E; groups are 0 .. E
  int32_t total_experts;
  int32_t tokens_per_chunk;
  int32_t position_bits;  // P: bit width of (longest chunk - 1), at least 1
  int32_t end_bit;        // P + bit width of E + 1: padding keys (all ones) sort after every real key
};

struct SharedState {
  int32_t groups[kMaxGroups];  // per-group counts, then exclusive prefixes
  int32_t flags;
  union {
    typename BlockSort::TempStorage sort;
    typename BlockScan::TempStorage scan;
  } temp;
};

__device__ __forceinline__ int32_t chunk_length(const Geometry& g, int32_t chunk, int64_t* first_slot) {
  const int64_t first_token = int64_t{chunk} * g.tokens_per_chunk;
  const int64_t tokens = g.tokens - first_token < g.tokens_per_chunk ? g.tokens - first_token : g.tokens_per_chunk;
  *first_slot = first_token * g.top_k;
  return static_cast<int32_t>(tokens * g.top_k);
}

__device__ __forceinline__ int32_t group_of(const Geometry& g, int32_t id, int32_t* flags) {
  if (id < 0 || id >= g.total_experts) {
    *flags |= MC_DEVICE_ERROR_TOPK_ID_OUT_OF_RANGE;
    return g.local_experts;
  }
  const int32_t local = id - g.first_expert;
  return local >= 0 && local < g.local_experts ? local : g.local_experts;
}

// Blocked arrangement: thread t holds chunk positions t * kItems + i. Padding positions get all-ones keys.
__device__ __forceinline__ void load_keys(const Geometry& g, int64_t first_slot, int32_t length,
                                          uint32_t (&keys)[kItems], int32_t* flags) {
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int32_t position = static_cast<int32_t>(threadIdx.x) * kItems + i;
    keys[i] = 0xFFFFFFFFu;
    if (position < length) {
      const int32_t group = group_of(g, g.ids[first_slot + position], flags);
      keys[i] = (static_cast<uint32_t>(group) << g.position_bits) | static_cast<uint32_t>(position);
    }
  }
}

// Raises MC_DEVICE_ERROR_TOPK_ID_DUPLICATE for a token of the chunk whose in-range ids repeat (a thread per token).
__device__ __forceinline__ void check_duplicates(const Geometry& g, int64_t first_slot, int32_t length,
                                                 int32_t* flags) {
  const int32_t tokens = length / g.top_k;
  for (int32_t t = static_cast<int32_t>(threadIdx.x); t < tokens; t += static_cast<int32_t>(blockDim.x)) {
    const int32_t* row = g.ids + first_slot + int64_t{t} * g.top_k;
    for (int32_t j = 1; j < g.top_k; ++j) {
      const int32_t id = row[j];
      if (id < 0 || id >= g.total_experts) continue;
      for (int32_t i = 0; i < j; ++i) {
        if (row[i] == id) *flags |= MC_DEVICE_ERROR_TOPK_ID_DUPLICATE;
      }
    }
  }
}

// Counts the real keys per group into s.groups[0 .. E] (cleared first). Ends with a barrier.
__device__ __forceinline__ void count_groups(const Geometry& g, const uint32_t (&keys)[kItems], SharedState& s) {
  for (int32_t e = static_cast<int32_t>(threadIdx.x); e <= g.local_experts; e += kThreads) s.groups[e] = 0;
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    if (keys[i] != 0xFFFFFFFFu) atomicAdd(&s.groups[keys[i] >> g.position_bits], 1);  // order-free: a count
  }
  __syncthreads();
}

// In place exclusive prefix sums of s.groups[0 .. count-1]: each thread owns a contiguous run of entries, a block
// scan combines the runs. Ends with a barrier.
__device__ __forceinline__ void scan_groups(int32_t count, SharedState& s) {
  const int32_t per_thread = (count + kThreads - 1) / kThreads;
  const int32_t begin = static_cast<int32_t>(threadIdx.x) * per_thread;
  const int32_t end = begin + per_thread < count ? begin + per_thread : count;
  int32_t local = 0;
  for (int32_t e = begin; e < end; ++e) local += s.groups[e];
  int32_t prefix = 0;
  BlockScan(s.temp.scan).ExclusiveSum(local, prefix);
  for (int32_t e = begin; e < end; ++e) {
    const int32_t value = s.groups[e];
    s.groups[e] = prefix;
    prefix += value;
  }
  __syncthreads();
}

// Ends with a barrier. The shared and global ORs are order-free.
__device__ __forceinline__ void publish_flags_block(int32_t* shared_flags, int32_t flags, int32_t* error_flag) {
  if (flags != 0) atomicOr(shared_flags, flags);
  __syncthreads();
  if (threadIdx.x == 0 && *shared_flags != 0) atomicOr(error_flag, *shared_flags);
}

__device__ __forceinline__ void publish_flags(SharedState& s, int32_t flags, int32_t* error_flag) {
  publish_flags_block(&s.flags, flags, error_flag);
}

// The whole permutation in one block, for tokens that fit one chunk.
__global__ void __launch_bounds__(kThreads)
    permute_single_chunk_kernel(Geometry g, int32_t* __restrict__ offsets, int32_t* __restrict__ sorted_slots,
                                int32_t* __restrict__ slot_to_row, int32_t* __restrict__ error_flag) {
  __shared__ SharedState s;
  if (threadIdx.x == 0) s.flags = 0;
  int64_t first_slot = 0;
  const int32_t length = chunk_length(g, 0, &first_slot);
  int32_t flags = 0;
  uint32_t keys[kItems];
  load_keys(g, first_slot, length, keys, &flags);
  check_duplicates(g, first_slot, length, &flags);
  count_groups(g, keys, s);  // its first barrier also orders s.flags = 0 before any atomicOr
  publish_flags(s, flags, error_flag);
  scan_groups(g.local_experts + 1, s);
  for (int32_t e = static_cast<int32_t>(threadIdx.x); e <= g.local_experts; e += kThreads) offsets[e] = s.groups[e];

  BlockSort(s.temp.sort).Sort(keys, 0, g.end_bit);
  // One chunk: the sorted position is the row (group starts are the offsets, ranks follow in position order).
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int32_t row = static_cast<int32_t>(threadIdx.x) * kItems + i;
    if (row < length) {
      const int32_t group = static_cast<int32_t>(keys[i] >> g.position_bits);
      const int32_t slot = static_cast<int32_t>(keys[i] & ((1u << g.position_bits) - 1u));
      const bool local = group < g.local_experts;
      sorted_slots[row] = local ? slot : -1;
      slot_to_row[slot] = local ? row : -1;
    }
  }
}

// Pass 1 of several chunks: counts[chunk][group] into scratch, id checks.
__global__ void __launch_bounds__(kThreads)
    permute_count_kernel(Geometry g, int32_t* __restrict__ counts, int32_t* __restrict__ error_flag) {
  __shared__ SharedState s;
  if (threadIdx.x == 0) s.flags = 0;
  const int32_t chunk = static_cast<int32_t>(blockIdx.x);
  int64_t first_slot = 0;
  const int32_t length = chunk_length(g, chunk, &first_slot);
  int32_t flags = 0;
  uint32_t keys[kItems];
  load_keys(g, first_slot, length, keys, &flags);
  check_duplicates(g, first_slot, length, &flags);
  count_groups(g, keys, s);
  publish_flags(s, flags, error_flag);
  const int32_t groups = g.local_experts + 1;
  int32_t* out = counts + int64_t{chunk} * groups;
  for (int32_t e = static_cast<int32_t>(threadIdx.x); e < groups; e += kThreads) out[e] = s.groups[e];
}

// Pass 2: for each group (a thread each), exclusive prefixes over the chunks in place, and the group's total.
__global__ void __launch_bounds__(kThreads)
    permute_scan_chunks_kernel(int32_t* __restrict__ counts, int32_t* __restrict__ totals, int32_t chunks,
                               int32_t groups) {
  const int32_t group = static_cast<int32_t>(blockIdx.x) * kThreads + static_cast<int32_t>(threadIdx.x);
  if (group >= groups) return;
  int32_t running = 0;
  for (int32_t c = 0; c < chunks; ++c) {
    int32_t* entry = counts + int64_t{c} * groups + group;
    const int32_t value = *entry;
    *entry = running;
    running += value;
  }
  totals[group] = running;
}

// Pass 3: group starts from the totals, the chunk sorted again, every slot of the chunk placed.
__global__ void __launch_bounds__(kThreads)
    permute_place_kernel(Geometry g, const int32_t* __restrict__ chunk_bases, const int32_t* __restrict__ totals,
                         int32_t* __restrict__ offsets, int32_t* __restrict__ sorted_slots,
                         int32_t* __restrict__ slot_to_row) {
  __shared__ SharedState s;
  __shared__ uint32_t sorted_keys[kMoePermuteChunkSlots];
  const int32_t chunk = static_cast<int32_t>(blockIdx.x);
  const int32_t groups = g.local_experts + 1;
  for (int32_t e = static_cast<int32_t>(threadIdx.x); e < groups; e += kThreads) s.groups[e] = totals[e];
  __syncthreads();
  scan_groups(groups, s);
  if (chunk == 0) {
    for (int32_t e = static_cast<int32_t>(threadIdx.x); e < groups; e += kThreads) offsets[e] = s.groups[e];
  }

  int64_t first_slot = 0;
  const int32_t length = chunk_length(g, chunk, &first_slot);
  int32_t unused_flags = 0;  // raised by the count pass already
  uint32_t keys[kItems];
  load_keys(g, first_slot, length, keys, &unused_flags);
  BlockSort(s.temp.sort).Sort(keys, 0, g.end_bit);
#pragma unroll
  for (int i = 0; i < kItems; ++i) sorted_keys[threadIdx.x * kItems + i] = keys[i];
  __syncthreads();

  const int32_t* bases = chunk_bases + int64_t{chunk} * groups;
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int32_t p = static_cast<int32_t>(threadIdx.x) * kItems + i;
    if (p >= length) continue;
    const uint32_t group_key = keys[i] >> g.position_bits;
    const int32_t group = static_cast<int32_t>(group_key);
    // First sorted position of this group in the chunk: lower bound of (group << P).
    const uint32_t needle = group_key << g.position_bits;
    int32_t low = 0;
    int32_t high = p;
    while (low < high) {
      const int32_t mid = (low + high) >> 1;
      if (sorted_keys[mid] < needle) {
        low = mid + 1;
      } else {
        high = mid;
      }
    }
    const int32_t row = s.groups[group] + bases[group] + (p - low);
    const int64_t slot = first_slot + static_cast<int64_t>(keys[i] & ((1u << g.position_bits) - 1u));
    const bool local = group < g.local_experts;
    sorted_slots[row] = local ? static_cast<int32_t>(slot) : -1;
    slot_to_row[slot] = local ? row : -1;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// One block, no sort (the header's one-block path).

constexpr int kBlockThreads = 1024;
constexpr int kBlockWarps = kBlockThreads / 32;
// Steps of 32 slots per warp, their groups held in registers. Job 29 ran 32 steps with the ids read again in pass 2:
// 43 µs on 32768 slots (each step waited for its load), against 23 µs for the sort path's three launches; the block
// path won up to 8192 slots (e.g. 30.0 -> 21.0 µs, mixtral-layer-e8-t4096, stage times).
constexpr int kBlockSteps = 8;
constexpr int32_t kBlockPathSlots = kBlockWarps * kBlockSteps * 32;  // 8192
// Per-warp counters are 16-bit (a row below kBlockPathSlots fits): 32 warps x 512 groups x 2 bytes = 32 KB.
constexpr int32_t kBlockPathGroups = 512;
constexpr uint32_t kNoGroup = 0xFFFFu;  // past the last slot: a group of its own, never counted or placed

using GroupScan = cub::BlockScan<int32_t, kBlockThreads>;

struct BlockPathShared {
  uint16_t counter[kBlockWarps][kBlockPathGroups];  // pass 1: counts; then each warp's next row per group
  int32_t flags;
  typename GroupScan::TempStorage scan;
};

__global__ void __launch_bounds__(kBlockThreads, 1)
    permute_block_kernel(Geometry g, int32_t* __restrict__ offsets, int32_t* __restrict__ sorted_slots,
                         int32_t* __restrict__ slot_to_row, int32_t* __restrict__ error_flag) {
  __shared__ BlockPathShared s;
  const int32_t slots = g.tokens * g.top_k;
  const int32_t groups = g.local_experts + 1;
  const int warp = static_cast<int>(threadIdx.x >> 5);
  const unsigned lane = threadIdx.x & 31u;
  const unsigned lanes_below = (1u << lane) - 1u;
  // Warp w owns slots [w * range, (w + 1) * range), range a multiple of 32 with range * 32 >= slots.
  const int32_t steps = (slots + kBlockWarps * 32 - 1) / (kBlockWarps * 32);
  const int32_t first = warp * steps * 32 + static_cast<int32_t>(lane);

  if (threadIdx.x == 0) s.flags = 0;
  for (int32_t i = static_cast<int32_t>(threadIdx.x); i < kBlockWarps * groups; i += kBlockThreads) {
    s.counter[i / groups][i % groups] = 0;
  }
  int32_t flags = 0;
  // Every load issued before the first match (ids are read once).
  uint32_t held[kBlockSteps];
#pragma unroll
  for (int i = 0; i < kBlockSteps; ++i) {
    const int32_t slot = first + i * 32;
    held[i] = i < steps && slot < slots ? static_cast<uint32_t>(group_of(g, g.ids[slot], &flags)) : kNoGroup;
  }
  check_duplicates(g, 0, slots, &flags);
  __syncthreads();  // counters cleared, s.flags = 0 ordered before any atomicOr

  // Pass 1: per-warp counts. One lane per distinct group of a step adds the step's count for it.
#pragma unroll
  for (int i = 0; i < kBlockSteps; ++i) {
    if (i < steps) {  // uniform across the block
      const uint32_t group = held[i];
      const unsigned peers = __match_any_sync(kFullWarpMask, group);
      if (group != kNoGroup && (peers & lanes_below) == 0u) {
        s.counter[warp][group] = static_cast<uint16_t>(s.counter[warp][group] + __popc(peers));
      }
      __syncwarp();  // the next step's lowest lane for this group may be another lane: order the update first
    }
  }
  publish_flags_block(&s.flags, flags, error_flag);  // ends with a barrier: every count is in

  // A thread per group: its total, the group start by a block scan, then each warp's first row for it.
  const int32_t my_group = static_cast<int32_t>(threadIdx.x);
  int32_t total = 0;
  if (my_group < groups) {
    for (int w = 0; w < kBlockWarps; ++w) total += s.counter[w][my_group];
  }
  int32_t start = 0;
  GroupScan(s.scan).ExclusiveSum(total, start);
  if (my_group < groups) {
    offsets[my_group] = start;
    int32_t row = start;
    for (int w = 0; w < kBlockWarps; ++w) {
      const int32_t count = s.counter[w][my_group];
      s.counter[w][my_group] = static_cast<uint16_t>(row);
      row += count;
    }
  }
  __syncthreads();

  // Pass 2: the same steps in the same order; a slot's row is its warp's counter for the group plus its rank.
#pragma unroll
  for (int i = 0; i < kBlockSteps; ++i) {
    if (i < steps) {
      const uint32_t group = held[i];
      const unsigned peers = __match_any_sync(kFullWarpMask, group);
      if (group != kNoGroup) {
        const int32_t row = s.counter[warp][group] + __popc(peers & lanes_below);
        const int32_t slot = first + i * 32;
        const bool local = static_cast<int32_t>(group) < g.local_experts;
        sorted_slots[row] = local ? slot : -1;
        slot_to_row[slot] = local ? row : -1;
      }
      __syncwarp();  // every peer has read the counter before its lowest lane advances it
      if (group != kNoGroup && (peers & lanes_below) == 0u) {
        s.counter[warp][group] = static_cast<uint16_t>(s.counter[warp][group] + __popc(peers));
      }
      __syncwarp();
    }
  }
}

int bit_width(uint32_t value) {
  int bits = 0;
  for (; value != 0; value >>= 1) ++bits;
  return bits;
}

}  // namespace

cudaError_t launch_moe_permute(const MoePermuteJob& job, int32_t* error_flag, cudaStream_t stream) {
  const int32_t experts = job.local_experts;
  if (experts < 1 || experts > kMaxLocalExperts || job.top_k < 1 || job.top_k > kMoePermuteChunkSlots ||
      job.tokens < 0 || int64_t{job.tokens} * job.top_k > INT32_MAX) {
    return cudaErrorInvalidValue;
  }
  const int64_t chunks = moe_permute_chunks(job.tokens, job.top_k);
  if (chunks == 0) {
    return cudaMemsetAsync(job.offsets, 0, (static_cast<size_t>(experts) + 1) * sizeof(int32_t), stream);
  }
  Geometry g;
  g.ids = job.ids;
  g.tokens = job.tokens;
  g.top_k = job.top_k;
  g.first_expert = job.first_expert;
  g.local_experts = experts;
  g.total_experts = job.total_experts;
  g.tokens_per_chunk = moe_permute_tokens_per_chunk(job.top_k);
  const int64_t longest_chunk = int64_t{job.tokens < g.tokens_per_chunk ? job.tokens : g.tokens_per_chunk} * job.top_k;
  g.position_bits = longest_chunk > 1 ? bit_width(static_cast<uint32_t>(longest_chunk - 1)) : 1;
  g.end_bit = g.position_bits + bit_width(static_cast<uint32_t>(experts) + 1u);
  if (int64_t{job.tokens} * job.top_k <= kBlockPathSlots && experts + 1 <= kBlockPathGroups) {
    permute_block_kernel<<<1, kBlockThreads, 0, stream>>>(g, job.offsets, job.sorted_slots, job.slot_to_row,
                                                           error_flag);
    return cudaGetLastError();
  }
  if (chunks == 1) {
    permute_single_chunk_kernel<<<1, kThreads, 0, stream>>>(g, job.offsets, job.sorted_slots, job.slot_to_row,
                                                           error_flag);
    return cudaGetLastError();
  }
  if (job.scratch == nullptr) return cudaErrorInvalidValue;  // the layer must size it with moe_permute_scratch_bytes
  const int32_t groups = experts + 1;
  int32_t* counts = job.scratch;
  int32_t* totals = job.scratch + chunks * groups;
  const unsigned grid = static_cast<unsigned>(chunks);
  permute_count_kernel<<<grid, kThreads, 0, stream>>>(g, counts, error_flag);
  cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) return error;
  permute_scan_chunks_kernel<<<static_cast<unsigned>((groups + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      counts, totals, static_cast<int32_t>(chunks), groups);
  error = cudaGetLastError();
  if (error != cudaSuccess) return error;
  permute_place_kernel<<<grid, kThreads, 0, stream>>>(g, counts, totals, job.offsets, job.sorted_slots,
                                                     job.slot_to_row);
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace moecutlass
