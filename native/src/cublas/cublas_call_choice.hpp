// Which cuBLAS call the cublas strategy makes for one run (issue 15): one cublasGemmGroupedBatchedEx over the
// experts with rows, or a cublasGemmEx per such expert. Host logic, here so that the CPU CI tests the rule.
//
// Why two: on the H200 with cuBLAS 13.1 the grouped call ran one 8192 x 4096 x 7168 bf16 group at 276 TFLOP/s,
// 28 % of the dense bf16 peak, where a cublasGemmEx of that shape ran 2.2x faster (docs/design/cublas-baseline.md,
// "One call or a loop"): the grouped call does not take the kernel a plain GEMM of the shape gets. A loop pays a
// host launch (and a kernel too small to fill the GPU) per expert instead, which only large groups amortise.
#pragma once

#include <cstdint>

namespace moecutlass::cublas {

enum class Call { kGrouped, kLoop };

// The loop from this many FLOPs per group on average (2 x rows x N x K / groups). Measured on the H200 over the 34
// cases of the suite and the adversarial suite, both call shapes in one device call: the loop lost every case up to
// 3.8 GFLOP per group (DeepSeek-V3 gate_up, 64 rows per expert: 1.22x slower) and won every case from 7.5 GFLOP
// (down, 256 rows per expert: 0.58x); this is between the two. A slower GPU (the path's real users: A100, L40S)
// runs each GEMM longer for the same launch cost, so the loop only gains there beyond this point too.
inline constexpr double kLoopFlopsPerGroup = 5e9;

// forced: TuningSettings::cublas_call ('g', 'l', or 0 for the rule). groups: experts with rows this run (> 0);
// rows: their total; n, k: the GEMM's.
inline Call choose_call(char forced, int32_t groups, int64_t rows, int32_t n, int32_t k) {
  if (forced == 'g') return Call::kGrouped;
  if (forced == 'l') return Call::kLoop;
  const double flops_per_group = 2.0 * static_cast<double>(rows) * n * k / (groups > 0 ? groups : 1);
  return flops_per_group >= kLoopFlopsPerGroup ? Call::kLoop : Call::kGrouped;
}

}  // namespace moecutlass::cublas
