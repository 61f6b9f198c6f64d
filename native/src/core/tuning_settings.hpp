// The measurement overrides of the grouped-GEMM plans, read once per plan from the environment into one struct.
// They exist to measure alternatives against the defaults (bench/results), not to tune production runs; a value
// that does not parse is ignored (the default stays), because a typo must not change what a service runs.
//
//   MOECUTLASS_RASTER=M|N|H       grouped scheduler raster order: along M (default), along N, CUTLASS's heuristic
//   MOECUTLASS_SWIZZLE=1|2|4|8    grouped scheduler swizzle (default 2)
//   MOECUTLASS_PDL=0              launch the grouped kernels in plain stream order instead of programmatically
//                                 after the offsets precompute
//   MOECUTLASS_ES_LAUNCH=pdl      expert specialization chains its configurations programmatically on the caller's
//                                 stream instead of running them on forked streams (the default)
//   MOECUTLASS_CUBLAS_CALL=grouped|loop
//                                 the cublas strategy's call shape: one cublasGemmGroupedBatchedEx, or a
//                                 cublasGemmEx per expert with rows; without it the plan chooses per run
//                                 (cuda/cublas/cublas_call_choice.hpp)
//
// Which configurations run is not an environment knob: mc_grouped_gemm_desc.configs forces them per plan.
#pragma once

namespace moecutlass {

struct TuningSettings {
  // Along M with swizzle 2 keeps a weight tile in L2 while the expert's row tiles pass over it; on the H100 it was
  // the best of 8 settings on all four anchor cases, by about 1% (within noise: a preference, not a finding).
  char raster_order = 'M';
  int max_swizzle = 2;
  bool programmatic = true;
  // Forked streams beat the programmatic chain on all 7 H100 cases measured, by 1-14 µs: an empty configuration
  // overlaps the busy one instead of following it.
  bool forked = true;
  // MOECUTLASS_CUBLAS_CALL: 'g' grouped, 'l' loop, 0 the plan's own choice.
  char cublas_call = 0;
};

// getenv is a parameter so that tests can feed values; production passes std::getenv.
using EnvironmentReader = const char* (*)(const char* name);
TuningSettings read_tuning_settings(EnvironmentReader getenv_function);

}  // namespace moecutlass
