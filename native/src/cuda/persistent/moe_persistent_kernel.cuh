// The persistent MoE kernel (see moe_persistent.hpp and docs/design/persistent-moe-kernel.md). Built from CUTLASS's
// SM90 pieces: the blockwise-scaled FP8 mainloop collective that the pointer-array path already runs (unchanged: the
// kernel hands it each tile's tensors, so the arithmetic is the same instruction for instruction), its TMA and
// cp.async pipelines, and our own kernel body, tile order and store.
//
// Warp roles (384 threads): warp group 0 loads (warp 0: A and B tiles by TMA; warp 1: the scales by cp.async), warp
// groups 1 and 2 compute and store. Cooperative configurations split each tile between the two MMA warp groups;
// pingpong ones give each warp group every other tile of the CTA's sequence, so one group's store overlaps the
// other's main loop. The two groups take turns through an order barrier, as in CUTLASS's pingpong kernels, and that
// is needed for correctness, not only speed: the second group's tile starts k_tiles pipeline positions ahead, and
// once k_tiles reaches the stage count a stage's full barrier would show the parity of the position one lap later
// as already complete. Taking turns keeps each group within one lap of the loads. Every
// role walks the same tile sequence with its own MoeTileWalker over the device offsets, so no scheduler warp or
// scheduler pipeline is needed.
//
// Swapped (swap-AB) configurations compute D^T = B * A^T: CUTLASS's A is the expert's weights (entered at
// expert * N of the [E * N, K] tensor, 128x128 scale blocks), CUTLASS's B its token rows (entered at the expert's
// first row of [rows, K], one scale per token), so a tile's M runs along the model's N and its N along the rows.
// The walk and the store work in the model's orientation (token rows x model columns) either way.
#pragma once

#include "cutlass/arch/grid_dependency_control.h"
#include "cutlass/arch/reg_reconfig.h"
#include "cutlass/device_kernel.h"
#include "cutlass/pipeline/pipeline.hpp"

#include "core/moe_tile_walk.hpp"
#include "cuda/grouped_gemm/sm90_grouped_kernel.cuh"
#include "cuda/persistent/moe_persistent.hpp"

namespace moecutlass::cuda::persistent {

using namespace cute;

template <class Config>
struct MoePersistentKernel {
  using Types = sm90::GroupedGemmTypes<Config>;
  using Mainloop = typename Types::CollectiveMainloop;
  using TileShape = typename Config::TileShape;
  using ClusterShape = typename Config::ClusterShape;
  using TiledMma = typename Mainloop::TiledMma;
  using ElementA = typename Types::ElementA;
  using ElementB = typename Types::ElementB;
  using ElementD = typename Config::ElementD;
  using StrideA = typename Types::StrideA;
  using StrideB = typename Types::StrideB;
  using MainloopPipeline = typename Mainloop::MainloopPipeline;
  using PipelineState = typename Mainloop::PipelineState;

  static constexpr int kTileM = size<0>(TileShape{});
  static constexpr int kTileN = size<1>(TileShape{});
  static constexpr int kTileK = size<2>(TileShape{});
  static constexpr int kClusterM = size<0>(ClusterShape{});
  static constexpr int kClusterN = size<1>(ClusterShape{});
  static constexpr bool kSwapped = Config::Swapped;
  static constexpr bool kCooperative = Config::kCooperative;
  // Threads of one tile's MMA: both consumer warp groups (cooperative) or one (pingpong).
  static constexpr uint32_t kMmaThreads = size(TiledMma{});
  static constexpr uint32_t kThreads = 3 * cutlass::NumThreadsPerWarpGroup;
  // Consumer warp groups that take turns on the CTA's tiles: 1 (cooperative, both share each tile) or 2 (pingpong).
  static constexpr int kTileGroups = kCooperative ? 1 : 2;
  // The tile in the model's orientation: token rows x output columns (CUTLASS's N x M when swapped).
  static constexpr int kRowTile = kSwapped ? kTileN : kTileM;
  static constexpr int kColumnTile = kSwapped ? kTileM : kTileN;
  static constexpr int kRowCluster = kSwapped ? kClusterN : kClusterM;
  static constexpr int kColumnCluster = kSwapped ? kClusterM : kClusterN;
  // The register split of CUTLASS's cooperative kernels: the load warp group gives its registers to the MMA ones.
  static constexpr uint32_t kLoadRegisters = 40;
  static constexpr uint32_t kMmaRegisters = 232;

  static_assert(kMmaThreads == (kCooperative ? 2 : 1) * cutlass::NumThreadsPerWarpGroup,
                "cooperative tiles take both MMA warp groups, pingpong tiles one");

  // Pingpong turns: main loop, then store, alternating between the two MMA warp groups.
  using OrderBarrier = cutlass::OrderedSequenceBarrier<2, 2>;

  // The expert offsets are copied to shared memory once per CTA when E + 1 entries fit: every role's walker then
  // reads them there instead of paying a dependent global load for each expert it walks past. Measured on the H200
  // it changed nothing visible (ds-tp8-down-e256-onehot4096 186 -> 179 µs, t512 293 -> 296): the store, not the
  // walk, dominates the per-tile cost today (docs/design/persistent-moe-kernel.md section 8); kept because the walk
  // is on every role's path and E can reach 1024.
  static constexpr int kStagedOffsets = 1025;

  struct BaseStorage {
    typename Mainloop::TensorStorage tensors;
    alignas(16) typename MainloopPipeline::SharedStorage pipeline;
    alignas(16) typename OrderBarrier::SharedStorage order;
    int32_t offsets[kStagedOffsets];
  };
  static constexpr int kMaxSharedBytes = 232448;  // 227 KB per CTA on SM90

  // The store stages D in shared memory, kStoreColumns output columns of the CTA tile at a time, so that global
  // writes are whole 16-byte row segments (8 bf16/fp16) instead of the accumulator fragments' scattered pairs; rows
  // are padded by 8 elements against bank conflicts. The widest pass (up to 64 columns) that fits next to the
  // mainloop's stages, whose count was chosen leaving room for the pointer-array kernel's epilogue. One buffer serves
  // both pingpong groups: their stores take turns through the order barrier.
  static constexpr int store_columns() {
    for (int columns = 64; columns >= 8; columns /= 2) {
      const int bytes = kRowTile * (columns + 8) * static_cast<int>(sizeof(ElementD)) + 16;
      if (columns <= kColumnTile && static_cast<int>(sizeof(BaseStorage)) + bytes <= kMaxSharedBytes) return columns;
    }
    return 0;
  }
  static constexpr int kStoreColumns = store_columns();
  static constexpr int kStorePitch = kStoreColumns + 8;
  static_assert(kStoreColumns >= 8, "no room to stage even 8 columns of D next to the mainloop's stages");
  static_assert(kColumnTile % kStoreColumns == 0, "whole passes over the tile's columns");

  struct SharedStorage : BaseStorage {
    alignas(16) ElementD staged[kRowTile * kStorePitch];
  };
  static constexpr int kSharedBytes = static_cast<int>(sizeof(SharedStorage));
  // The mainloop's stage count was chosen leaving room for the pointer-array kernel's epilogue, which this kernel
  // does not have; the staged offsets must still fit the SM's 227 KB.
  static_assert(kSharedBytes <= kMaxSharedBytes, "the persistent kernel's shared memory exceeds 227 KB");

  struct Params {
    typename Mainloop::Params mainloop;
    MoeTileWalkParams walk;
    const float* a_scales;
    const float* b_scales;
    ElementD* d;
    int32_t n;
    int32_t k;
    int32_t* error_flag;
  };

  // Host: the tensor maps over the whole tokens [rows, K] and weights [E * N, K] of this call (CUTLASS's A and B, or
  // B and A when swapped).
  static Params make_params(const MoePersistentJob& job) {
    Params params{};
    const int32_t weight_rows = job.experts * job.n;
    const uint8_t* a_bytes = kSwapped ? job.b : job.a;
    const uint8_t* b_bytes = kSwapped ? job.a : job.b;
    const int32_t a_rows = kSwapped ? weight_rows : job.rows;
    const int32_t b_rows = kSwapped ? job.rows : weight_rows;
    const auto* a = reinterpret_cast<const typename Mainloop::InternalElementA*>(a_bytes);
    const auto* b = reinterpret_cast<const typename Mainloop::InternalElementB*>(b_bytes);
    const StrideA stride_a = cutlass::make_cute_packed_stride(StrideA{}, make_shape(a_rows, job.k, 1));
    const StrideB stride_b = cutlass::make_cute_packed_stride(StrideB{}, make_shape(b_rows, job.k, 1));
    Tensor tensor_a = make_tensor(a, make_layout(make_shape(a_rows, job.k, int32_t(1)), stride_a));
    Tensor tensor_b = make_tensor(b, make_layout(make_shape(b_rows, job.k, int32_t(1)), stride_b));
    // The same factories as the collective's own Params declaration, so the types match exactly.
    params.mainloop.tma_load_a = make_tma_copy_A_sm90(typename Mainloop::GmemTiledCopyA{}, tensor_a,
                                                      typename Mainloop::SmemLayoutA{}(_, _, Int<0>{}), TileShape{},
                                                      ClusterShape{});
    params.mainloop.tma_load_b = make_tma_copy_B_sm90(typename Mainloop::GmemTiledCopyB{}, tensor_b,
                                                      typename Mainloop::SmemLayoutB{}(_, _, Int<0>{}), TileShape{},
                                                      ClusterShape{});
    params.mainloop.tma_transaction_bytes = Mainloop::TmaTransactionBytes;
    params.walk.offsets = job.offsets;
    params.walk.experts = job.experts;
    params.walk.rows = job.rows;
    params.walk.cluster_rows = kRowCluster * kRowTile;
    params.walk.column_blocks = (job.n + kColumnCluster * kColumnTile - 1) / (kColumnCluster * kColumnTile);
    params.walk.band = 8;
    params.walk.min_rows = job.min_rows;
    params.walk.max_rows = job.max_rows;
    params.a_scales = job.a_scales;
    params.b_scales = job.b_scales;
    params.d = static_cast<ElementD*>(job.d);
    params.n = job.n;
    params.k = job.k;
    params.error_flag = job.error_flag;
    return params;
  }

  // The tensors the mainloop collective slices for one tile: the token and weight tensors are windows of the whole
  // tensors that start at the expert's first row and at expert * N, the scales are the expert's own views, so the
  // collective's bounds checks stop token-scale loads at the expert's last row.
  CUTLASS_DEVICE static auto tile_inputs(Mainloop const& mainloop, Params const& params, MoeClusterTile const& tile) {
    const int32_t k_blocks = (params.k + kTileK - 1) / kTileK;
    const int32_t n_blocks = (params.n + 127) / 128;
    const float* token_scales = params.a_scales + static_cast<int64_t>(tile.expert_begin) * k_blocks;
    const float* weight_scales = params.b_scales + static_cast<int64_t>(tile.expert) * n_blocks * k_blocks;
    const int32_t weight_row = tile.expert * params.n;
    const int32_t weight_rows = params.walk.experts * params.n;
    if constexpr (kSwapped) {
      auto inputs = mainloop.load_init(make_shape(params.n, tile.expert_rows, params.k, 1), params.mainloop,
                                       weight_scales, token_scales);
      Tensor m_a = params.mainloop.tma_load_a.get_tma_tensor(make_shape(weight_rows, params.k, 1));
      Tensor m_b = params.mainloop.tma_load_b.get_tma_tensor(make_shape(params.walk.rows, params.k, 1));
      Tensor g_a = local_tile(domain_offset(make_coord(weight_row, 0, 0), m_a), TileShape{}, make_coord(_, _, _),
                              Step<_1, Underscore, _1>{});
      Tensor g_b = local_tile(domain_offset(make_coord(tile.expert_begin, 0, 0), m_b), TileShape{},
                              make_coord(_, _, _), Step<Underscore, _1, _1>{});
      return cute::make_tuple(g_a, g_b, get<2>(inputs), get<3>(inputs));
    } else {
      auto inputs = mainloop.load_init(make_shape(tile.expert_rows, params.n, params.k, 1), params.mainloop,
                                       token_scales, weight_scales);
      Tensor m_a = params.mainloop.tma_load_a.get_tma_tensor(make_shape(params.walk.rows, params.k, 1));
      Tensor m_b = params.mainloop.tma_load_b.get_tma_tensor(make_shape(weight_rows, params.k, 1));
      Tensor g_a = local_tile(domain_offset(make_coord(tile.expert_begin, 0, 0), m_a), TileShape{},
                              make_coord(_, _, _), Step<_1, Underscore, _1>{});
      Tensor g_b = local_tile(domain_offset(make_coord(weight_row, 0, 0), m_b), TileShape{}, make_coord(_, _, _),
                              Step<Underscore, _1, _1>{});
      return cute::make_tuple(g_a, g_b, get<2>(inputs), get<3>(inputs));
    }
  }

  // The CTA's tile coordinate in CUTLASS's (M, N) blocks.
  CUTLASS_DEVICE static auto block_coord(MoeClusterTile const& tile, int cta_m, int cta_n) {
    const int row_block = tile.row_block * kRowCluster + (kSwapped ? cta_n : cta_m);
    const int column_block = tile.column_block * kColumnCluster + (kSwapped ? cta_m : cta_n);
    return kSwapped ? make_coord(column_block, row_block, _, 0) : make_coord(row_block, column_block, _, 0);
  }

  CUTLASS_DEVICE void operator()(Params const& params, char* smem) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    SharedStorage& shared = *reinterpret_cast<SharedStorage*>(smem);
    Mainloop mainloop;
    const int thread_idx = static_cast<int>(threadIdx.x);
    const int lane_idx = cutlass::canonical_lane_idx();
    const int warp_in_group = cutlass::canonical_warp_idx_sync() % cutlass::NumWarpsPerWarpGroup;
    const int warp_group = cutlass::canonical_warp_group_idx();
    const int mma_thread_idx = thread_idx % static_cast<int>(kMmaThreads);
    const uint32_t block_rank = cute::block_rank_in_cluster();
    const bool load_warp = warp_group == 0 && warp_in_group == 0;
    const bool scale_warp = warp_group == 0 && warp_in_group == 1;

    typename MainloopPipeline::Params pipeline_params;
    if (load_warp || scale_warp) pipeline_params.role = MainloopPipeline::ThreadCategory::Producer;
    if (warp_group > 0) pipeline_params.role = MainloopPipeline::ThreadCategory::Consumer;
    pipeline_params.is_leader = thread_idx % cutlass::NumThreadsPerWarpGroup == 0;
    pipeline_params.num_consumers = kMmaThreads;
    pipeline_params.num_producers = Mainloop::NumProducerThreadEvents;
    pipeline_params.transaction_bytes = params.mainloop.tma_transaction_bytes;
    MainloopPipeline pipeline(shared.pipeline, pipeline_params, ClusterShape{});
    // Constructed by every thread (warp 0 initialises it); only the pingpong MMA groups use it.
    typename OrderBarrier::Params order_params;
    order_params.group_id = static_cast<uint32_t>(warp_group > 0 ? warp_group - 1 : 0);
    order_params.group_size = cutlass::NumThreadsPerWarpGroup;
    OrderBarrier order(shared.order, order_params);

    // The pipeline's barriers must be initialised in every CTA of the cluster before any of them is used.
    if constexpr (kClusterM * kClusterN > 1) {
      cute::cluster_arrive_relaxed();
      cute::cluster_wait();
    } else {
      __syncthreads();
    }
    // The offsets (and A) may come from the previous kernel: wait for it before the walk reads them.
    cutlass::arch::wait_on_dependent_grids();

    const dim3 in_cluster = cute::block_id_in_cluster();
    const int cta_m = static_cast<int>(in_cluster.x);
    const int cta_n = static_cast<int>(in_cluster.y);
    const int64_t cluster_index = blockIdx.x / kClusterM;
    const int64_t clusters = gridDim.x / kClusterM;
    const int k_tiles = (params.k + kTileK - 1) / kTileK;
    MoeTileWalkParams walk = params.walk;
    if (walk.experts < kStagedOffsets) {  // uniform across the CTA, so the barrier below is reached by all
      for (int i = thread_idx; i <= walk.experts; i += static_cast<int>(kThreads)) shared.offsets[i] = walk.offsets[i];
      __syncthreads();
      walk.offsets = shared.offsets;
    }
    MoeTileWalker walker(walk);

    if (warp_group == 0) {
      cutlass::arch::warpgroup_reg_dealloc<kLoadRegisters>();
      if (load_warp || scale_warp) {
        PipelineState write_state = cutlass::make_producer_start_state<MainloopPipeline>();
        auto tensormaps = cute::make_tuple(params.mainloop.tma_load_a.get_tma_descriptor(),
                                           params.mainloop.tma_load_b.get_tma_descriptor());
        for (int64_t linear = cluster_index;; linear += clusters) {
          const MoeClusterTile tile = walker.at(linear);
          if (!tile.valid) break;
          auto inputs = tile_inputs(mainloop, params, tile);
          auto blk_coord = block_coord(tile, cta_m, cta_n);
          auto k_iter = cute::make_coord_iterator(shape<3>(get<0>(inputs)));
          if (load_warp) {
            mainloop.load(params.mainloop, pipeline, write_state, inputs, tensormaps, blk_coord, k_iter, k_tiles,
                          lane_idx, block_rank, shared.tensors);
          } else {
            mainloop.load_auxiliary(params.mainloop, pipeline, write_state, inputs, blk_coord, k_iter, k_tiles,
                                    lane_idx, block_rank, shared.tensors);
          }
          write_state.advance(k_tiles);
        }
        if (load_warp) {
          // Keeps this CTA alive until its cluster peers no longer multicast into its shared memory.
          mainloop.load_tail(pipeline, write_state);
          // Every CTA's walker has judged every expert's offsets by now; one CTA reports them.
          if (blockIdx.x == 0 && blockIdx.y == 0 && lane_idx == 0 && walker.error_flags() != 0) {
            atomicOr(params.error_flag, walker.error_flags());
          }
        }
      }
    } else {
      cutlass::arch::warpgroup_reg_alloc<kMmaRegisters>();
      TiledMma tiled_mma;
      // Pingpong: the second group starts one tile later in the CTA's sequence (and its pipeline stages), and each
      // group skips the other's tiles.
      const int turn = kCooperative ? 0 : warp_group - 1;
      PipelineState read_state;
      read_state.advance(turn * k_tiles);
      for (int64_t linear = cluster_index + turn * clusters;; linear += kTileGroups * clusters) {
        const MoeClusterTile tile = walker.at(linear);
        if (!tile.valid) break;
        Tensor accumulators = partition_fragment_C(tiled_mma, take<0, 2>(TileShape{}));
        if constexpr (!kCooperative) order.wait();
        mainloop.mma(pipeline, read_state, accumulators, k_tiles, mma_thread_idx, shared.tensors, params.mainloop);
        if constexpr (!kCooperative) order.arrive();
        mainloop.mma_tail(pipeline, read_state, k_tiles);
        read_state.advance(kTileGroups * k_tiles);
        if constexpr (!kCooperative) order.wait();
        store(params, tile, tiled_mma, accumulators, cta_m, cta_n, mma_thread_idx, shared.staged, turn);
        if constexpr (!kCooperative) order.arrive();
      }
      cutlass::arch::launch_dependent_grids();
    }
#endif
  }

  // D from the accumulators through shared memory, kStoreColumns columns per pass: every MMA thread of the tile
  // writes its fragments into the staging buffer (in D's orientation: token rows x output columns), the tile's MMA
  // threads meet at a named barrier, then each copies whole 16-byte row segments to D, predicated on the expert's
  // rows and on N: a tile that runs past its expert never writes the next expert's rows.
  template <class Accumulators>
  CUTLASS_DEVICE static void store(Params const& params, MoeClusterTile const& tile, TiledMma const& tiled_mma,
                                   Accumulators const& accumulators, int cta_m, int cta_n, int mma_thread_idx,
                                   ElementD* staged, int turn) {
    const MoeCtaTile cta = moe_cta_tile(tile, params.n, kRowTile, kColumnTile, kRowCluster, kColumnCluster,
                                        kSwapped ? cta_n : cta_m, kSwapped ? cta_m : cta_n);
    if (cta.row_count == 0 || cta.column_count == 0) return;  // uniform over the tile's threads: no barrier skipped
    auto thread_mma = tiled_mma.get_thread_slice(mma_thread_idx);
    Tensor coordinates = thread_mma.partition_C(make_identity_tensor(take<0, 2>(TileShape{})));
    ElementD* d = params.d + static_cast<int64_t>(cta.row_begin) * params.n + cta.column_begin;
    constexpr int kSegments = kStoreColumns / 8;  // 16-byte segments per staged row
    const uint32_t barrier = static_cast<uint32_t>(turn);
    CUTLASS_PRAGMA_NO_UNROLL
    for (int first = 0; first < kColumnTile; first += kStoreColumns) {
      if (first >= cta.column_count) break;  // uniform
      CUTLASS_PRAGMA_UNROLL
      for (int i = 0; i < size(accumulators); ++i) {
        const int row = kSwapped ? get<1>(coordinates(i)) : get<0>(coordinates(i));
        const int column = (kSwapped ? get<0>(coordinates(i)) : get<1>(coordinates(i))) - first;
        if (column >= 0 && column < kStoreColumns) staged[row * kStorePitch + column] = ElementD(accumulators(i));
      }
      cutlass::arch::NamedBarrier::arrive_and_wait(kMmaThreads, barrier);
      const int columns = cta.column_count - first < kStoreColumns ? cta.column_count - first : kStoreColumns;
      for (int segment = mma_thread_idx; segment < cta.row_count * kSegments; segment += static_cast<int>(kMmaThreads)) {
        const int row = segment / kSegments;
        const int column = (segment % kSegments) * 8;
        if (column >= columns) continue;
        const ElementD* from = staged + row * kStorePitch + column;
        ElementD* to = d + static_cast<int64_t>(row) * params.n + first + column;
        if (column + 8 <= columns) {
          *reinterpret_cast<uint4*>(to) = *reinterpret_cast<const uint4*>(from);
        } else {
          for (int c = 0; c < columns - column; ++c) to[c] = from[c];
        }
      }
      // The next pass (or the other pingpong group's store) overwrites the buffer.
      cutlass::arch::NamedBarrier::arrive_and_wait(kMmaThreads, barrier);
    }
  }
};

template <class Kernel>
__global__ void __launch_bounds__(Kernel::kThreads, 1)
    moe_persistent_entry(CUTLASS_GRID_CONSTANT typename Kernel::Params const params) {
  extern __shared__ char smem[];
  Kernel kernel;
  kernel(params, smem);
}

// The kernel's shared-memory size is a per-device function attribute: set it on the current device before the first
// launch there (the plan does at creation, on its device), not once per process.
template <class Kernel>
cudaError_t prepare_kernel() {
  return cudaFuncSetAttribute(&moe_persistent_entry<Kernel>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              Kernel::kSharedBytes);
}

// How many of the kernel's clusters the device can hold at once, with its real shared memory (after prepare_kernel).
// A persistent grid larger than that would leave clusters waiting for others to finish their whole share of tiles.
template <class Kernel>
cudaError_t max_active_clusters(int32_t* clusters) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(Kernel::kClusterM, Kernel::kClusterN, 1);
  config.blockDim = dim3(Kernel::kThreads, 1, 1);
  config.dynamicSmemBytes = Kernel::kSharedBytes;
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = Kernel::kClusterM;
  attribute.val.clusterDim.y = Kernel::kClusterN;
  attribute.val.clusterDim.z = 1;
  config.attrs = &attribute;
  config.numAttrs = 1;
  int count = 0;
  const cudaError_t result = cudaOccupancyMaxActiveClusters(&count, &moe_persistent_entry<Kernel>, &config);
  *clusters = count;
  return result;
}

template <class Kernel>
cudaError_t launch_kernel(const MoePersistentJob& job, cudaStream_t stream) {
  if (job.rows == 0) return cudaSuccess;
  const typename Kernel::Params params = Kernel::make_params(job);
  auto* entry = &moe_persistent_entry<Kernel>;
  const int cluster_size = Kernel::kClusterM * Kernel::kClusterN;
  int clusters = job.multiprocessors / cluster_size;
  if (job.max_clusters > 0 && job.max_clusters < clusters) clusters = job.max_clusters;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(Kernel::kClusterM * clusters), Kernel::kClusterN, 1);
  config.blockDim = dim3(Kernel::kThreads, 1, 1);
  config.dynamicSmemBytes = Kernel::kSharedBytes;
  config.stream = stream;
  cudaLaunchAttribute attributes[2] = {};
  attributes[0].id = cudaLaunchAttributeClusterDimension;
  attributes[0].val.clusterDim.x = Kernel::kClusterM;
  attributes[0].val.clusterDim.y = Kernel::kClusterN;
  attributes[0].val.clusterDim.z = 1;
  attributes[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attributes[1].val.programmaticStreamSerializationAllowed = job.programmatic ? 1 : 0;
  config.attrs = attributes;
  config.numAttrs = 2;
  return cudaLaunchKernelEx(&config, entry, params);
}

}  // namespace moecutlass::cuda::persistent
