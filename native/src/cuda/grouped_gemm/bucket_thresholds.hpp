// Which kernel configuration an expert runs in under expert specialization, by its row count: data per GPU class,
// filled from crossovers measured with `moecutlass tune` (see bench/results), not constants in the kernels.
#pragma once

#include <cstdint>

namespace moecutlass::cuda {

struct ExpertBucketThresholds {
  int32_t swap32_max_rows = 0;  // 1 .. this: swapped 128x32 tiles
  int32_t swap64_max_rows = 0;  // .. this: swapped 128x64 tiles; above: 128x128 cooperative tiles
  const char* gpu_class = "";   // the table row that matched
};

// The row of the table for a device, matched by multiprocessor count and peak memory bandwidth.
ExpertBucketThresholds expert_bucket_thresholds(int32_t multiprocessors, double peak_bandwidth_gbps);

}  // namespace moecutlass::cuda
