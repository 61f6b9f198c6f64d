// Launchers of the MoE layer's device stages (core/moe_layer_stages.hpp), one translation unit each. They only
// enqueue work and return the launch status; CudaMoeStages (cuda_moe_stages.cu) owns the device scope and turns a
// failure into an Error. None of them synchronises or allocates, so all of them can be captured into a CUDA graph.
#pragma once

#include <cuda_runtime_api.h>

#include "core/moe_layer_stages.hpp"

namespace moecutlass {
namespace cuda {

// One warp per token: k rounds of a warp-wide arg-max under the reference's total order, softmax in double.
// Returns cudaErrorInvalidValue for top_k outside 1 .. 32 (the warp holds one choice per lane).
cudaError_t launch_moe_route(const MoeRouteJob& job, cudaStream_t stream);

// Deterministic stable counting sort; error_flag receives MC_DEVICE_ERROR_TOPK_ID_* bits. Needs job.scratch when
// the tokens span more than one chunk (moe_permute_scratch_bytes); returns cudaErrorInvalidValue if it is missing.
cudaError_t launch_moe_permute(const MoePermuteJob& job, int32_t* error_flag, cudaStream_t stream);

// Gather + 1x128 quantization for the capacity tokens * top_k rows, at most max_blocks blocks (grid-stride beyond);
// the kernel reads the actual row count.
cudaError_t launch_moe_gather_quantize(const MoeGatherJob& job, int32_t capacity_rows, int32_t max_blocks,
                                       cudaStream_t stream);

// SiLU-and-mul + 1x128 quantization. The job carries no capacity, so the grid is a fixed `blocks` (a few per SM)
// that grid-strides over the row count the kernel reads from offsets[local_experts].
cudaError_t launch_moe_activate_quantize(const MoeActivationJob& job, int32_t blocks, cudaStream_t stream);

// Weighted combine of every token (tokens >= 1).
cudaError_t launch_moe_combine(const MoeCombineJob& job, cudaStream_t stream);

}  // namespace cuda
}  // namespace moecutlass
