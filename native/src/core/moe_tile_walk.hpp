// The work order of the persistent MoE grouped GEMM (issue 12): which output tile a CTA computes next, derived on the
// device from nothing but the E+1 expert offsets, N and the tile shape. No per-expert pointer or problem-size arrays,
// no precompute kernel, no host knowledge of rows per expert.
//
// Shared by the CUDA kernel's tile scheduler and the host tests (MC_HOST_DEVICE, no CUDA types), so the order that
// the GoogleTest suite checks on the CPU is exactly the order the kernel runs.
//
// Work units are cluster tiles: (cluster_m * tile_m) rows x (cluster_n * tile_n) columns of one expert's output,
// because the CTAs of a cluster share their multicast loads and must work on the same cluster tile. The linear
// index of a cluster tile runs expert by expert (ascending), and within an expert in bands of `band` cluster-row
// blocks: inside a band the row block changes fastest, so the CTAs in flight at one time cover a few row blocks
// times many column blocks of one expert. An expert's weight column block (its B tile, tile_n x K) is then read by
// the band's row blocks while it is still in L2, and the band's activation rows (band x tile_m x K) stay in L2
// across the column blocks. A band of all of an expert's row blocks would stream a large expert's activations
// once per column block; a band of one would stream its weights once per row block.
//
// Offsets are not trusted: moe_expert_rows clamps each expert's rows into [previous end, rows] (the pointer-array
// path's precompute, cuda/grouped_gemm/expert_offsets.cu, uses the same function), so a bad offset never makes a
// tile touch rows outside [0, rows); the caller reports the MC_DEVICE_ERROR_* bits through the error flag.
#pragma once

#include <cstdint>

#include "core/host_device.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

// One expert's rows after clamping, and what was wrong with its raw offsets (MC_DEVICE_ERROR_* bits). Offsets are
// judged the way the pointer-array path judges them: offsets[e + 1] by expert e, offsets[0] by expert 0 as well.
struct MoeExpertRows {
  int32_t begin = 0;
  int32_t count = 0;
  int32_t error_flags = 0;
};

MC_HOST_DEVICE inline MoeExpertRows moe_expert_rows(const int32_t* offsets, int32_t expert, int32_t rows) {
  const int32_t raw_begin = offsets[expert];
  const int32_t raw_end = offsets[expert + 1];
  MoeExpertRows out;
  if (raw_end < 0 || (expert == 0 && raw_begin < 0)) out.error_flags |= MC_DEVICE_ERROR_OFFSETS_NEGATIVE;
  if (raw_end > rows || (expert == 0 && raw_begin > rows)) out.error_flags |= MC_DEVICE_ERROR_OFFSETS_BEYOND_ROWS;
  if (raw_end < raw_begin) out.error_flags |= MC_DEVICE_ERROR_OFFSETS_NOT_MONOTONIC;
  const int32_t begin = raw_begin < 0 ? 0 : (raw_begin > rows ? rows : raw_begin);
  const int32_t end = raw_end < begin ? begin : (raw_end > rows ? rows : raw_end);
  out.begin = begin;
  out.count = end - begin;
  return out;
}

// What one launch of the persistent kernel walks. Filled on the host per plan (everything but offsets and rows is
// known when the plan is created); offsets and rows are the run's.
struct MoeTileWalkParams {
  const int32_t* offsets = nullptr;  // int32 [experts + 1], device memory on the GPU
  int32_t experts = 0;
  int32_t rows = 0;           // total rows: no expert reaches past it
  int32_t cluster_rows = 0;   // cluster_m * tile_m
  int32_t column_blocks = 0;  // ceil(N / (cluster_n * tile_n))
  int32_t band = 1;           // cluster-row blocks per band (>= 1)
  // Expert specialization as a walk parameter: only experts whose row count lies in [min_rows, max_rows] take
  // tiles in this launch; the others are skipped here, so no masked problem-size arrays are needed.
  int32_t min_rows = 1;
  int32_t max_rows = MC_MAX_ROWS;
};

// The cluster tile at one linear index. valid is false past the last tile: the CTA is done.
struct MoeClusterTile {
  bool valid = false;
  int32_t expert = 0;
  int32_t row_block = 0;     // in cluster rows, counted from the expert's first row
  int32_t column_block = 0;  // in cluster columns
  int32_t expert_begin = 0;  // the expert's first row in A and D
  int32_t expert_rows = 0;   // the expert's row count (clamped)
};

// Walks the cluster tiles of one launch. Each CTA (cluster) keeps one walker and asks for non-decreasing linear
// indices (a persistent CTA strides by the grid size): the walker keeps the expert it reached and the number of
// tiles before it, so a CTA reads each expert's two offsets once over the whole launch, whatever E is.
class MoeTileWalker {
 public:
  MC_HOST_DEVICE explicit MoeTileWalker(const MoeTileWalkParams& params) : params_(params) { enter(0); }

  MC_HOST_DEVICE MoeClusterTile at(int64_t linear) {
    MoeClusterTile tile;
    while (expert_ < params_.experts && linear >= tiles_before_ + expert_tiles_) {
      tiles_before_ += expert_tiles_;
      enter(expert_ + 1);
    }
    if (expert_ >= params_.experts || linear < tiles_before_) return tile;
    const int64_t local = linear - tiles_before_;
    const int64_t band_tiles = static_cast<int64_t>(params_.band) * params_.column_blocks;
    const int32_t band_index = static_cast<int32_t>(local / band_tiles);
    const int32_t within = static_cast<int32_t>(local - band_index * band_tiles);
    const int32_t band_first = band_index * params_.band;
    const int32_t remaining = row_blocks_ - band_first;
    const int32_t height = remaining < params_.band ? remaining : params_.band;
    tile.valid = true;
    tile.expert = expert_;
    tile.row_block = band_first + within % height;
    tile.column_block = within / height;
    tile.expert_begin = rows_.begin;
    tile.expert_rows = rows_.count;
    return tile;
  }

  // The offsets errors of the experts this walker has entered so far.
  MC_HOST_DEVICE int32_t error_flags() const { return error_flags_; }

 private:
  MC_HOST_DEVICE void enter(int32_t expert) {
    expert_ = expert;
    expert_tiles_ = 0;
    row_blocks_ = 0;
    if (expert >= params_.experts) return;
    rows_ = moe_expert_rows(params_.offsets, expert, params_.rows);
    error_flags_ |= rows_.error_flags;
    if (rows_.count < params_.min_rows || rows_.count > params_.max_rows || rows_.count == 0) return;
    row_blocks_ = static_cast<int32_t>((static_cast<int64_t>(rows_.count) + params_.cluster_rows - 1) /
                                       params_.cluster_rows);
    expert_tiles_ = static_cast<int64_t>(row_blocks_) * params_.column_blocks;
  }

  MoeTileWalkParams params_;
  int32_t expert_ = 0;
  int64_t tiles_before_ = 0;
  int64_t expert_tiles_ = 0;
  int32_t row_blocks_ = 0;
  MoeExpertRows rows_;
  int32_t error_flags_ = 0;
};

// One CTA's part of a cluster tile: rows [row_begin, row_begin + row_count) of A and D and columns [column_begin,
// column_begin + column_count) of D. A count can be 0 when the cluster tile's lower or right CTAs lie past the
// expert's rows or past N: such a CTA still joins the cluster's multicast loads but stores nothing. Loads may run
// past the expert's rows into the next expert's (inside A, harmless); stores never do.
struct MoeCtaTile {
  int32_t row_begin = 0;  // absolute row in A and D
  int32_t row_count = 0;  // 0 .. tile_m
  int32_t column_begin = 0;
  int32_t column_count = 0;  // 0 .. tile_n
};

MC_HOST_DEVICE inline MoeCtaTile moe_cta_tile(const MoeClusterTile& tile, int32_t n, int32_t tile_m, int32_t tile_n,
                                              int32_t cluster_m, int32_t cluster_n, int32_t cta_m, int32_t cta_n) {
  MoeCtaTile out;
  const int64_t first_row = (static_cast<int64_t>(tile.row_block) * cluster_m + cta_m) * tile_m;
  const int64_t rows_left = tile.expert_rows - first_row;
  out.row_count = rows_left <= 0 ? 0 : (rows_left < tile_m ? static_cast<int32_t>(rows_left) : tile_m);
  out.row_begin = tile.expert_begin + static_cast<int32_t>(first_row < tile.expert_rows ? first_row : tile.expert_rows);
  const int64_t first_column = (static_cast<int64_t>(tile.column_block) * cluster_n + cta_n) * tile_n;
  const int64_t columns_left = n - first_column;
  out.column_count = columns_left <= 0 ? 0 : (columns_left < tile_n ? static_cast<int32_t>(columns_left) : tile_n);
  out.column_begin = static_cast<int32_t>(first_column < n ? first_column : n);
  return out;
}

}  // namespace moecutlass
