// CPU reference grouped GEMM: the correctness oracle for the GPU kernels (DESIGN.md section 3).
//
//   D[r, n] = sum_k A[r, k] * sa[r, k/128] * B[e, n, k] * sb[e, n/128, k/128]   for r in expert e's rows
//
// computed in double: per 128-wide K block the raw e4m3 products are summed exactly (see gemm_microkernel.hpp),
// the block sum is multiplied by (double(sa) * double(sb)) -- itself exact -- and added to a double accumulator in
// ascending K-block order; the result is rounded once (nearest even) to bf16/fp16. Every step is either exact or a
// single IEEE double operation in a fixed order, so the result does not depend on thread count or CPU features.
// Rows outside [offsets[0], offsets[E]) are not written.
#pragma once

#include <memory>

#include "backend.hpp"
#include "cpu/gemm_microkernel.hpp"
#include "cpu/thread_pool.hpp"

namespace moecutlass {

// Offsets must already be validated (require_valid_offsets).
void cpu_grouped_gemm(const GroupedGemmShape& shape, const GroupedGemmOperands& operands, ThreadPool& pool,
                      MicroKernel kernel = best_microkernel());

std::unique_ptr<GroupedGemmPlanImpl> make_cpu_grouped_gemm_plan(const GroupedGemmShape& shape, ThreadPool& pool);

}  // namespace moecutlass
