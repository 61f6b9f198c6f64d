// The execution path of MC_STRATEGY_PERSISTENT (see moe_persistent.hpp).
#pragma once

#include <memory>

#include "backend.hpp"
#include "cuda/grouped_gemm/cuda_grouped_gemm_plan.hpp"

namespace moecutlass::cuda {

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_persistent_plan(const GroupedGemmShape& shape,
                                                                const CudaPlanEnvironment& environment);

}  // namespace moecutlass::cuda
