// The cuBLAS strategy's CUDA plan (issue 15, docs/design/cublas-baseline.md): dequantize A and B to bf16
// (cuda/cuda_dequantize.hpp), then one cublasGemmGroupedBatchedEx with a group per expert that has rows.
//
// cuBLAS takes each group's sizes in host arrays, so a run copies offsets[0 .. E] to the host and waits for them:
// the one strategy that synchronises. Under stream capture a run throws MC_STATUS_UNSUPPORTED before enqueuing
// anything (the capture survives, nothing is written). Because the offsets are on the host, bad ones are refused
// exactly like the CPU backend refuses them (MC_STATUS_INVALID_OFFSETS, naming the first offending index), before
// any output is written, instead of being clamped and flagged on the device.
//
// Plan memory: the bf16 copies of B (E x N x K x 2 bytes: 15 GB for DeepSeek-V3's 256-expert gate_up) and of A
// (max_rows x K x 2), a bf16 result for fp16 output, cuBLAS's 32 MiB workspace and the per-expert pointer arrays.
// Like every plan, one run at a time.
//
// fp16 output: cuBLAS 13.1's grouped GEMM refused bf16 operands with an fp32 C (job 31: MC_STATUS_CUDA_ERROR), so
// the result is computed in bf16 and converted to fp16 (one more rounding, at most 2^-9 relative, inside the
// 2^-7 * sum |a b| bound the tests apply). fp16 operands would keep fp16's precision but not the e4m3 x scale range.
#pragma once

#include <memory>

#include "backend.hpp"
#include "cuda/grouped_gemm/cuda_grouped_gemm_plan.hpp"

namespace moecutlass::cuda {

// Throws MC_STATUS_UNSUPPORTED (naming what was tried) when no cuBLAS 12.5+ can be loaded.
std::unique_ptr<GroupedGemmPlanImpl> make_cublas_grouped_gemm_plan(const GroupedGemmShape& shape,
                                                                    const CudaPlanEnvironment& environment);

}  // namespace moecutlass::cuda
