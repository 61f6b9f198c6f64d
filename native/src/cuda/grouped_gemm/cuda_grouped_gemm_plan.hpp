// The CUDA grouped-GEMM plan: per-expert arrays and kernel configurations prepared once, then every run is the
// precompute kernel plus the grouped kernel(s), with no allocation, host synchronisation or descriptor encoding.
#pragma once

#include <cstdint>
#include <memory>

#include "backend.hpp"

namespace moecutlass::cuda {

struct CudaPlanEnvironment {
  int32_t device = 0;
  int32_t* error_flag = nullptr;  // the context's MC_DEVICE_ERROR_* word in device memory
  Backend* backend = nullptr;
};

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_grouped_gemm_plan(const GroupedGemmShape& shape,
                                                                  const CudaPlanEnvironment& environment);

}  // namespace moecutlass::cuda
