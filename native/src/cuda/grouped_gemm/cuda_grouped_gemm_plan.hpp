// The CUDA grouped-GEMM plan: the kernels of every configuration its selection may launch, prepared once, with
// their per-expert arrays; every run is then the offsets precompute plus the kernels select_launches names, with no
// allocation, host synchronisation or descriptor encoding.
#pragma once

#include <cstdint>
#include <memory>

#include "backend.hpp"

namespace moecutlass::cuda {

struct CudaPlanEnvironment {
  int32_t device = 0;
  int32_t multiprocessors = 0;
  int32_t* error_flag = nullptr;  // the context's MC_DEVICE_ERROR_* word in device memory
  Backend* backend = nullptr;
};

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_grouped_gemm_plan(const GroupedGemmShape& shape,
                                                                  const CudaPlanEnvironment& environment);

}  // namespace moecutlass::cuda
