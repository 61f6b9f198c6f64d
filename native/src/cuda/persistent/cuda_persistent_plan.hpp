// The execution path of MC_STRATEGY_PERSISTENT (see moe_persistent.hpp), and of MC_STRATEGY_AUTO where the GPU
// class's table lets auto run the persistent kernel.
#pragma once

#include <memory>

#include "backend.hpp"
#include "cuda/grouped_gemm/cuda_grouped_gemm_plan.hpp"

namespace moecutlass::cuda {

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_persistent_plan(const GroupedGemmShape& shape,
                                                                const CudaPlanEnvironment& environment);

// Auto with MC_AUTO_PERSISTENT ranges: runs pointer_array (the plan make_cuda_grouped_gemm_plan made for the same
// shape) or the persistent kernel, as each run's selection says.
std::unique_ptr<GroupedGemmPlanImpl> make_cuda_auto_plan(const GroupedGemmShape& shape,
                                                         const CudaPlanEnvironment& environment,
                                                         std::unique_ptr<GroupedGemmPlanImpl> pointer_array);

}  // namespace moecutlass::cuda
