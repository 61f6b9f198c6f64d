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
  // Persistent tile scheduler knobs (core/tuning_settings.hpp).
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

// The kernel of registry configuration `Index` (core/kernel_configs.def) with output dtype `Dtype` (MC_DTYPE_BF16
// or MC_DTYPE_FP16). Declared here and explicitly instantiated in the CMake-generated translation units (one per
// configuration and dtype, sm90_grouped_instance.cu.in), so nothing that includes this header compiles CUTLASS.
template <int Index, int Dtype>
std::unique_ptr<GroupedGemmKernel> make_grouped_kernel(const GroupedGemmKernelSetup& setup);

// The factory of a registry configuration and output dtype, by index (grouped_kernel_factory.cu).
using GroupedKernelFactory = std::unique_ptr<GroupedGemmKernel> (*)(const GroupedGemmKernelSetup&);
GroupedKernelFactory grouped_kernel_factory(int32_t config, int32_t output_dtype);

// True when the CUTLASS kernels were compiled to wait on programmatic dependencies (CUTLASS_ENABLE_GDC_FOR_SM90);
// launching them programmatically without it would let them read per-expert arrays before they are written.
bool grouped_kernels_support_programmatic_launch();

}  // namespace moecutlass::cuda
