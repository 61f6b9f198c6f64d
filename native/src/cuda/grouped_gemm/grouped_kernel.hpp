// A grouped-GEMM kernel configuration as the plan sees it: no CUTLASS types cross this header, so the plan and the
// precompute kernel compile in seconds while each CUTLASS configuration lives in its own translation unit.
#pragma once

#include <cstdint>
#include <memory>

#include <cuda_runtime_api.h>

namespace moecutlass {
class Backend;
}

namespace moecutlass::cuda {

// Per-expert device arrays that one launch reads. The plan owns them and the precompute kernel rewrites them on
// the stream before every launch, so the kernel's parameters (which point at these arrays) never change after
// initialization: a run is a launch and nothing else, and can be captured in a CUDA graph.
struct GroupedGemmDeviceArrays {
  int32_t experts = 0;
  int32_t* problem_sizes = nullptr;  // [E][3]: M (rows of the expert), N, K
  // CUTLASS's operands: A is the expert's rows and B its weights, or the other way round in a swapped
  // configuration (D^T = B * A^T); D is the expert's output rows either way.
  const void** ptr_a = nullptr;
  const void** ptr_b = nullptr;
  const float** ptr_sfa = nullptr;
  const float** ptr_sfb = nullptr;
  void** ptr_d = nullptr;
};

struct GroupedGemmKernelSetup {
  GroupedGemmDeviceArrays arrays;
  int32_t n = 0;
  int32_t k = 0;
  int32_t device = 0;
  int32_t sm_count = 0;
  Backend* backend = nullptr;  // for error mapping (sticky errors mark the context faulted)
  // Persistent tile scheduler knobs. Along M with swizzle 2 keeps a weight tile in L2 while the expert's row
  // tiles pass over it; on the H100 it was the best of 8 settings on all four anchor cases, by about 1% (within
  // run-to-run noise, so a preference rather than a finding). Overridable for measurements through
  // MOECUTLASS_RASTER=M|N|H and MOECUTLASS_SWIZZLE=1|2|4|8.
  char raster_order = 'M';
  int max_swizzle = 2;
};

class GroupedGemmKernel {
 public:
  virtual ~GroupedGemmKernel() = default;
  virtual const char* name() const = 0;
  // Device bytes the configuration owns (stride and layout arrays, CUTLASS workspace).
  virtual int64_t workspace_bytes() const = 0;
  // Enqueues the kernel. With `programmatic` the launch may begin while the previous kernel on the stream (the
  // precompute) finishes; the kernel waits for it before reading any per-expert array.
  virtual void launch(cudaStream_t stream, bool programmatic) = 0;
};

// One factory per translation unit (each CUTLASS configuration takes a minute or more of nvcc).
std::unique_ptr<GroupedGemmKernel> make_sm90_grouped_128x128x128_c1x2_bf16(const GroupedGemmKernelSetup& setup);
std::unique_ptr<GroupedGemmKernel> make_sm90_grouped_128x128x128_c1x2_fp16(const GroupedGemmKernelSetup& setup);
std::unique_ptr<GroupedGemmKernel> make_sm90_grouped_swap_128x32x128_c2x1_bf16(const GroupedGemmKernelSetup& setup);
std::unique_ptr<GroupedGemmKernel> make_sm90_grouped_swap_128x32x128_c2x1_fp16(const GroupedGemmKernelSetup& setup);
std::unique_ptr<GroupedGemmKernel> make_sm90_grouped_swap_128x64x128_c2x1_bf16(const GroupedGemmKernelSetup& setup);
std::unique_ptr<GroupedGemmKernel> make_sm90_grouped_swap_128x64x128_c2x1_fp16(const GroupedGemmKernelSetup& setup);

// True when the CUTLASS kernels were compiled to wait on programmatic dependencies (CUTLASS_ENABLE_GDC_FOR_SM90);
// launching them programmatically without it would let them read per-expert arrays before they are written.
bool grouped_kernels_support_programmatic_launch();

}  // namespace moecutlass::cuda
