#include "cuda/grouped_gemm/bucket_thresholds.hpp"

namespace moecutlass::cuda {

namespace {

struct GpuClass {
  const char* name;
  int32_t multiprocessors;
  double min_bandwidth_gbps;
  double max_bandwidth_gbps;
  int32_t swap32_max_rows;
  int32_t swap64_max_rows;
};

// Each row's numbers are crossovers measured on that GPU class with `moecutlass tune` (every expert forced into one
// configuration, uniform rows per expert, configurations timed interleaved); the midpoints of the crossover
// intervals, agreed across shapes.
//   H100 SXM, 2026-11-21 (bench/results/h100-tune-2026-11-21.json), DeepSeek shapes N x K = 7168x2048, 7168x256
//   and 4096x7168: all three put 128x32 -> 128x64 between 32 and 40 rows and 128x64 -> 128x128 between 64 and 80.
//   tune suggests the midpoints (36, 72). The second is set to the interval's lower end, 64: real routings mix
//   row counts, and on ds-tp8-down-e256-t2048 (40-89 rows per expert) 72 made expert specialization 0.94x of
//   single against 0.98x with 64 (suite runs of 2026-11-21, strategies interleaved).
//   H200, 2026-11-21 (bench/results/h200-tune-2026-11-21.json, 4814 GB/s peak), the same three shapes: the same
//   crossover intervals, so the same row by the same rule.
constexpr GpuClass kGpuClasses[] = {
    {"H100 SXM (132 SMs, HBM3)", 132, 2800.0, 3700.0, 36, 64},
    {"H200 (132 SMs, HBM3e)", 132, 4000.0, 5300.0, 36, 64},
};

constexpr GpuClass kFallback = {"other (tile widths)", 0, 0.0, 0.0, 32, 64};

}  // namespace

ExpertBucketThresholds expert_bucket_thresholds(int32_t multiprocessors, double peak_bandwidth_gbps) {
  const GpuClass* match = &kFallback;
  for (const GpuClass& row : kGpuClasses) {
    if (row.multiprocessors == multiprocessors && peak_bandwidth_gbps >= row.min_bandwidth_gbps &&
        peak_bandwidth_gbps <= row.max_bandwidth_gbps) {
      match = &row;
      break;
    }
  }
  return {match->swap32_max_rows, match->swap64_max_rows, match->name};
}

}  // namespace moecutlass::cuda
