// The persistent MoE grouped GEMM (issue 12; design: docs/design/persistent-moe-kernel.md): one launch over base
// pointers plus the device expert offsets. No per-expert pointer or problem-size arrays, no precompute kernel, no
// tensormap rewrite when a CTA moves to another expert: A is one [rows, K] TMA tensor entered at the expert's first
// row, B one [E * N, K] TMA tensor entered at expert * N, the scales are addressed by pointer arithmetic, and the
// tile order comes from core/moe_tile_walk.hpp on the device.
//
// Every registry configuration (cooperative and pingpong, swapped and not), bf16 and fp16 output; D is stored
// straight from the accumulators with each element predicated on the expert's rows and N (no shared-memory staging
// yet), which is correct for every shape but not yet the fast store path.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace moecutlass::cuda::persistent {

struct MoePersistentJob {
  const uint8_t* a = nullptr;         // e4m3 [rows, K]
  const float* a_scales = nullptr;    // [rows, ceil(K / 128)]
  const uint8_t* b = nullptr;         // e4m3 [E, N, K]
  const float* b_scales = nullptr;    // [E, ceil(N / 128), ceil(K / 128)]
  void* d = nullptr;                  // bf16 | fp16 [rows, N]
  const int32_t* offsets = nullptr;   // int32 [E + 1], device
  int32_t* error_flag = nullptr;      // MC_DEVICE_ERROR_* bits, device
  int32_t experts = 0;
  int32_t n = 0;
  int32_t k = 0;
  int32_t rows = 0;
  int32_t output_dtype = 0;           // MC_DTYPE_BF16 | MC_DTYPE_FP16
  int32_t config = -1;                // registry index (core/kernel_configs.def)
  // Expert specialization as a walk parameter: only experts with min_rows .. max_rows rows take tiles.
  int32_t min_rows = 1;
  int32_t max_rows = 2147483647;
  int32_t multiprocessors = 0;        // the persistent grid: one CTA per SM
  int32_t max_clusters = 0;           // at most this many clusters (moe_persistent_max_clusters); 0 = no limit
  bool programmatic = false;          // launched after the previous kernel's trigger (PDL)
};

// Whether a registry configuration and output dtype have a persistent kernel in this build.
bool moe_persistent_supports(int32_t config, int32_t output_dtype);

// The entry points of one configuration's kernel, explicitly instantiated by the generated unit of each
// configuration and dtype (moe_persistent_instance.cu.in); the functions below dispatch to them.
template <int Index, int OutputDtype>
struct PersistentEntry {
  static cudaError_t prepare();
  static cudaError_t max_clusters(int32_t* clusters);
  static cudaError_t launch(const MoePersistentJob& job, cudaStream_t stream);
};

// Sets the configuration's kernel attributes on the current device; once per device before its first launch there.
cudaError_t prepare_moe_persistent(int32_t config, int32_t output_dtype);

// The number of the configuration's clusters the current device holds at once (cudaOccupancyMaxActiveClusters with
// the kernel's shared memory); after prepare_moe_persistent on this device.
cudaError_t moe_persistent_max_clusters(int32_t config, int32_t output_dtype, int32_t* clusters);

// Encodes the A and B tensor maps for the job's pointers and rows, and launches (after prepare_moe_persistent on
// this device). rows = 0 launches nothing.
cudaError_t launch_moe_persistent(const MoePersistentJob& job, cudaStream_t stream);

}  // namespace moecutlass::cuda::persistent
