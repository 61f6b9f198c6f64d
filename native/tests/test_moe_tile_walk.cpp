// The persistent MoE kernel's work order (core/moe_tile_walk.hpp), simulated on the CPU: a grid of persistent CTAs,
// each striding through the linear tile indices with its own walker, must cover every (row, column) of every
// expert's output exactly once, never store outside the expert's rows or [0, N), skip the experts outside a
// launch's row range, keep in-flight tiles on few weight column blocks, and survive garbage offsets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/moe_tile_walk.hpp"

using namespace moecutlass;

namespace {

struct Shape {
  int32_t n;
  int32_t tile_m;
  int32_t tile_n;
  int32_t cluster_m;
  int32_t cluster_n;
  int32_t band;
};

// 128x128 c1x2 (the wide configuration), 256x128 c2x1 (tall), 64x128 c1x2 with an N that is not a multiple of the
// cluster width.
const Shape kShapes[] = {{4096, 128, 128, 1, 2, 8}, {7168, 128, 128, 2, 1, 4}, {384, 64, 128, 1, 2, 1}};

std::vector<int32_t> offsets_of(const std::vector<int32_t>& rows_per_expert) {
  std::vector<int32_t> offsets(rows_per_expert.size() + 1, 0);
  for (size_t e = 0; e < rows_per_expert.size(); ++e) offsets[e + 1] = offsets[e] + rows_per_expert[e];
  return offsets;
}

MoeTileWalkParams params_of(const std::vector<int32_t>& offsets, int32_t rows, const Shape& shape) {
  MoeTileWalkParams params;
  params.offsets = offsets.data();
  params.experts = static_cast<int32_t>(offsets.size()) - 1;
  params.rows = rows;
  params.cluster_rows = shape.cluster_m * shape.tile_m;
  params.column_blocks = (shape.n + shape.cluster_n * shape.tile_n - 1) / (shape.cluster_n * shape.tile_n);
  params.band = shape.band;
  return params;
}

struct Walked {
  std::vector<MoeClusterTile> by_linear;  // in linear order
  int32_t error_flags = 0;
};

// A persistent grid of `clusters` clusters, each walking linear = c, c + clusters, ... until its walker is done.
Walked walk(const MoeTileWalkParams& params, int32_t clusters) {
  std::map<int64_t, MoeClusterTile> tiles;
  Walked out;
  for (int32_t c = 0; c < clusters; ++c) {
    MoeTileWalker walker(params);
    for (int64_t linear = c;; linear += clusters) {
      const MoeClusterTile tile = walker.at(linear);
      if (!tile.valid) break;
      EXPECT_TRUE(tiles.emplace(linear, tile).second);
    }
    out.error_flags |= walker.error_flags();
  }
  for (const auto& [linear, tile] : tiles) out.by_linear.push_back(tile);
  // The linear indices handed out are exactly 0 .. count - 1: no CTA stops early, none runs past the end.
  if (!tiles.empty()) {
    EXPECT_EQ(tiles.rbegin()->first, static_cast<int64_t>(tiles.size()) - 1);
  }
  return out;
}

// Every stored (row, column) of D, from every CTA of every cluster tile: each must lie inside its expert's rows and
// [0, N), and appear once.
void expect_exact_cover(const std::vector<int32_t>& rows_per_expert, const Shape& shape, const Walked& walked,
                        const std::string& what) {
  const std::vector<int32_t> offsets = offsets_of(rows_per_expert);
  std::vector<int32_t> row_hits(offsets.back(), 0);  // summed over column tiles: must be N per row
  std::set<std::tuple<int32_t, int32_t, int32_t>> seen;
  for (const MoeClusterTile& tile : walked.by_linear) {
    EXPECT_TRUE(seen.emplace(tile.expert, tile.row_block, tile.column_block).second) << what;
    for (int32_t cm = 0; cm < shape.cluster_m; ++cm) {
      for (int32_t cn = 0; cn < shape.cluster_n; ++cn) {
        const MoeCtaTile cta =
            moe_cta_tile(tile, shape.n, shape.tile_m, shape.tile_n, shape.cluster_m, shape.cluster_n, cm, cn);
        ASSERT_GE(cta.row_count, 0);
        ASSERT_LE(cta.row_count, shape.tile_m);
        ASSERT_GE(cta.column_count, 0);
        ASSERT_LE(cta.column_count, shape.tile_n);
        ASSERT_GE(cta.column_begin, 0);
        ASSERT_LE(cta.column_begin + cta.column_count, shape.n) << what;
        if (cta.row_count == 0 || cta.column_count == 0) continue;
        ASSERT_GE(cta.row_begin, offsets[tile.expert]) << what;
        ASSERT_LE(cta.row_begin + cta.row_count, offsets[tile.expert + 1]) << what << " expert " << tile.expert;
        for (int32_t r = cta.row_begin; r < cta.row_begin + cta.row_count; ++r) row_hits[r] += cta.column_count;
      }
    }
  }
  for (size_t r = 0; r < row_hits.size(); ++r) {
    ASSERT_EQ(row_hits[r], shape.n) << what << ": row " << r;
  }
  int64_t expected_tiles = 0;
  const int64_t cluster_rows = shape.cluster_m * shape.tile_m;
  const int64_t column_blocks = (shape.n + shape.cluster_n * shape.tile_n - 1) / (shape.cluster_n * shape.tile_n);
  for (int32_t rows : rows_per_expert) expected_tiles += (rows + cluster_rows - 1) / cluster_rows * column_blocks;
  EXPECT_EQ(static_cast<int64_t>(walked.by_linear.size()), expected_tiles) << what;
  EXPECT_EQ(walked.error_flags, 0) << what;
}

std::vector<int32_t> zipf_rows(int32_t experts, int32_t total, uint32_t seed) {
  std::vector<double> weight(experts);
  double sum = 0;
  for (int32_t e = 0; e < experts; ++e) sum += weight[e] = 1.0 / (e + 1);
  std::vector<int32_t> rows(experts);
  int32_t given = 0;
  for (int32_t e = 0; e < experts; ++e) given += rows[e] = static_cast<int32_t>(std::floor(total * weight[e] / sum));
  rows[0] += total - given;
  std::shuffle(rows.begin(), rows.end(), std::mt19937(seed));
  return rows;
}

// The distributions the issue names, plus odd sizes: rows not multiples of 8, single rows, large E.
std::map<std::string, std::vector<int32_t>> distributions() {
  std::map<std::string, std::vector<int32_t>> out;
  out["uniform-e8-m256"] = std::vector<int32_t>(8, 256);
  out["mixtral-e8"] = {280, 250, 275, 241, 252, 263, 237, 250};
  std::vector<int32_t> one_hot(32, 0);
  one_hot[17] = 4099;
  out["one-expert-holds-all"] = one_hot;
  std::vector<int32_t> half(16);
  for (int32_t e = 0; e < 16; ++e) half[e] = e % 2 ? 0 : 131 + 7 * e;
  out["half-empty"] = half;
  out["zipf-e32"] = zipf_rows(32, 8192, 7);
  out["all-empty"] = std::vector<int32_t>(12, 0);
  out["e1"] = {1001};
  std::vector<int32_t> many(512);
  std::mt19937 random(11);
  for (int32_t& r : many) r = static_cast<int32_t>(random() % 23);  // 0 .. 22: decode-sized, many empty
  out["e512-decode"] = many;
  out["single-rows"] = {1, 1, 1, 0, 1, 3, 5, 7};
  return out;
}

}  // namespace

TEST(MoeTileWalk, EveryOutputElementIsStoredExactlyOnce) {
  for (const Shape& shape : kShapes) {
    for (const auto& [name, rows_per_expert] : distributions()) {
      const std::vector<int32_t> offsets = offsets_of(rows_per_expert);
      for (int32_t clusters : {1, 3, 66, 132}) {
        const std::string what = name + ", tile " + std::to_string(shape.tile_m) + "x" +
                                 std::to_string(shape.tile_n) + ", " + std::to_string(clusters) + " clusters";
        const Walked walked = walk(params_of(offsets, offsets.back(), shape), clusters);
        expect_exact_cover(rows_per_expert, shape, walked, what);
      }
    }
  }
}

TEST(MoeTileWalk, NoRowsMeansNoTiles) {
  const std::vector<int32_t> offsets = offsets_of(std::vector<int32_t>(8, 0));
  MoeTileWalker walker(params_of(offsets, 0, kShapes[0]));
  EXPECT_FALSE(walker.at(0).valid);
  EXPECT_FALSE(walker.at(1000).valid);
  EXPECT_EQ(walker.error_flags(), 0);
}

TEST(MoeTileWalk, ALaunchTakesOnlyTheExpertsInItsRowRange) {
  // Expert specialization as a walk parameter: three launches with disjoint ranges partition the experts.
  const std::vector<int32_t> rows_per_expert = zipf_rows(64, 6000, 3);
  const std::vector<int32_t> offsets = offsets_of(rows_per_expert);
  const Shape& shape = kShapes[0];
  const int32_t bounds[][2] = {{1, 32}, {33, 64}, {65, MC_MAX_ROWS}};
  std::set<int32_t> experts_seen;
  for (const auto& bound : bounds) {
    MoeTileWalkParams params = params_of(offsets, offsets.back(), shape);
    params.min_rows = bound[0];
    params.max_rows = bound[1];
    const Walked walked = walk(params, 132);
    for (const MoeClusterTile& tile : walked.by_linear) {
      const int32_t rows = rows_per_expert[tile.expert];
      EXPECT_GE(rows, bound[0]);
      EXPECT_LE(rows, bound[1]);
      experts_seen.insert(tile.expert);
    }
  }
  for (int32_t e = 0; e < 64; ++e) {
    EXPECT_EQ(experts_seen.count(e), rows_per_expert[e] > 0 ? 1u : 0u) << "expert " << e;
  }
}

TEST(MoeTileWalk, TilesInFlightShareFewWeightColumnBlocks) {
  // 132 consecutive linear indices run at once on a 132-SM GPU. For Mixtral gate_up (N 28672, 224 column blocks of
  // 128, 2-3 row blocks per expert) they must cover each weight column block with all of its expert's row blocks,
  // so a B tile is fetched from DRAM once: about 132 / 3 column blocks in flight, never 132.
  const std::vector<int32_t> rows_per_expert = {280, 250, 275, 241, 252, 263, 237, 250};
  const std::vector<int32_t> offsets = offsets_of(rows_per_expert);
  const Shape shape{28672, 128, 128, 1, 1, 8};
  const Walked walked = walk(params_of(offsets, offsets.back(), shape), 132);
  std::map<std::pair<int32_t, int32_t>, int32_t> first_seen;  // (expert, column block) -> first linear index
  std::map<std::pair<int32_t, int32_t>, int32_t> last_seen;
  for (size_t i = 0; i < walked.by_linear.size(); ++i) {
    const MoeClusterTile& tile = walked.by_linear[i];
    const auto key = std::make_pair(tile.expert, tile.column_block);
    first_seen.emplace(key, static_cast<int32_t>(i));
    last_seen[key] = static_cast<int32_t>(i);
  }
  for (const auto& [key, first] : first_seen) {
    EXPECT_LT(last_seen[key] - first, 3) << "expert " << key.first << " column block " << key.second;
  }
  // One huge expert (16384 rows, K-sized A far beyond L2): bands bound the rows in flight to 8 row blocks, so its
  // activation rows are re-read per band, not per column block.
  const std::vector<int32_t> big = offsets_of({16384});
  const Shape wide{4096, 128, 128, 1, 1, 8};
  const Walked one = walk(params_of(big, 16384, wide), 132);
  for (size_t start = 0; start + 132 <= one.by_linear.size(); start += 132) {
    std::set<int32_t> row_blocks;
    for (size_t i = start; i < start + 132; ++i) row_blocks.insert(one.by_linear[i].row_block);
    EXPECT_LE(row_blocks.size(), 16u) << "window at " << start;  // at most two bands
  }
}

TEST(MoeTileWalk, GarbageOffsetsAreClampedAndFlagged) {
  const Shape& shape = kShapes[0];
  struct Case {
    std::vector<int32_t> offsets;
    int32_t rows;
    int32_t flags;
  };
  const Case cases[] = {
      {{0, 100, 50, 300}, 300, MC_DEVICE_ERROR_OFFSETS_NOT_MONOTONIC},
      {{-5, 100, 200}, 200, MC_DEVICE_ERROR_OFFSETS_NEGATIVE},
      {{0, 100, 9000}, 200, MC_DEVICE_ERROR_OFFSETS_BEYOND_ROWS},
      {{0, 100, 200, -7, 2147483647}, 200, MC_DEVICE_ERROR_OFFSETS_NEGATIVE | MC_DEVICE_ERROR_OFFSETS_BEYOND_ROWS |
                                               MC_DEVICE_ERROR_OFFSETS_NOT_MONOTONIC},
      {{500, 600}, 200, MC_DEVICE_ERROR_OFFSETS_BEYOND_ROWS},
  };
  for (const Case& c : cases) {
    const Walked walked = walk(params_of(c.offsets, c.rows, shape), 7);
    EXPECT_EQ(walked.error_flags, c.flags);
    for (const MoeClusterTile& tile : walked.by_linear) {
      for (int32_t cm = 0; cm < shape.cluster_m; ++cm) {
        const MoeCtaTile cta = moe_cta_tile(tile, shape.n, shape.tile_m, shape.tile_n, shape.cluster_m,
                                            shape.cluster_n, cm, 0);
        EXPECT_GE(cta.row_begin, 0);
        EXPECT_LE(cta.row_begin + cta.row_count, c.rows);
      }
    }
  }
}

TEST(MoeTileWalk, ExpertRowsClampLikeThePointerArrayPath) {
  const int32_t offsets[] = {0, 10, 5, 40};
  MoeExpertRows rows = moe_expert_rows(offsets, 1, 30);
  EXPECT_EQ(rows.begin, 10);
  EXPECT_EQ(rows.count, 0);
  EXPECT_EQ(rows.error_flags, MC_DEVICE_ERROR_OFFSETS_NOT_MONOTONIC);
  rows = moe_expert_rows(offsets, 2, 30);
  EXPECT_EQ(rows.begin, 5);
  EXPECT_EQ(rows.count, 25);
  EXPECT_EQ(rows.error_flags, MC_DEVICE_ERROR_OFFSETS_BEYOND_ROWS);
}
