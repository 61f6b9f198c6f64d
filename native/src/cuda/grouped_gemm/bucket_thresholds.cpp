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

// Initial rows: the swapped tiles' widths. Replace a row's numbers with the crossovers `moecutlass tune` measures
// on that GPU class, and say where they came from in the comment.
constexpr GpuClass kGpuClasses[] = {
    {"H100 SXM (132 SMs, HBM3)", 132, 2800.0, 3700.0, 32, 64},
    {"H200 (132 SMs, HBM3e)", 132, 4000.0, 5200.0, 32, 64},
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
