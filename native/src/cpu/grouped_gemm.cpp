#include "cpu/grouped_gemm.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/e4m3.hpp"
#include "core/float16.hpp"
#include "core/shapes.hpp"

namespace moecutlass {

namespace {

// A task computes a kTaskRows x kTaskCols tile of D for one expert. kTaskCols divides the 128-wide scale block, so
// one weight scale covers the tile at each K step; the packed operands (64 KiB each) stay in L2 while the
// micro-kernel reuses them kTaskRows/4 and kTaskCols/8 times.
constexpr int64_t kTaskRows = 64;
constexpr int64_t kTaskCols = 64;
constexpr int64_t kDepth = MC_SCALE_BLOCK;
static_assert(MC_SCALE_BLOCK % kTaskCols == 0, "a task must not straddle weight-scale blocks");
static_assert(kTaskRows % kMicroRows == 0 && kTaskCols % kMicroCols == 0, "tiles must split into micro-tiles");

constexpr uint8_t kZeroRow[kDepth] = {};

struct Task {
  int32_t expert;
  int32_t row_begin;
  int32_t row_end;
  int32_t col_begin;
};

struct Scratch {
  std::vector<double> a_packed;  // [row panel][k][4]
  std::vector<double> b_packed;  // [col panel][k][8]
  std::vector<double> accumulator;
  double tile[kMicroRows * kMicroCols];
};

Scratch& thread_scratch() {
  thread_local Scratch scratch{std::vector<double>(kTaskRows * kDepth), std::vector<double>(kTaskCols * kDepth),
                               std::vector<double>(kTaskRows * kTaskCols), {}};
  return scratch;
}

void run_task(const Task& task, const GroupedGemmShape& shape, const GroupedGemmOperands& op, MicroKernel kernel) {
  const int64_t n = shape.n;
  const int64_t k = shape.k;
  const int64_t k_blocks = scale_blocks(k);
  const int64_t rows = task.row_end - task.row_begin;
  const int64_t row_panels = ceil_div(rows, kMicroRows);
  const int64_t cols = std::min<int64_t>(kTaskCols, n - task.col_begin);  // a multiple of 8 since N % 8 == 0
  const int64_t col_panels = cols / kMicroCols;
  const auto& decode = kE4m3ToDouble;

  Scratch& scratch = thread_scratch();
  double* a_packed = scratch.a_packed.data();
  double* b_packed = scratch.b_packed.data();
  double* acc = scratch.accumulator.data();
  std::fill(acc, acc + rows * cols, 0.0);

  const uint8_t* b_expert = op.b + (static_cast<int64_t>(task.expert) * n + task.col_begin) * k;
  const float* b_scale_row =
      op.b_scales + (static_cast<int64_t>(task.expert) * scale_blocks(n) + task.col_begin / MC_SCALE_BLOCK) * k_blocks;

  for (int64_t kb = 0; kb < k_blocks; ++kb) {
    const int64_t k0 = kb * kDepth;
    const int64_t depth = std::min<int64_t>(kDepth, k - k0);

    // Pack A (k-major panels of 4 rows). Rows past the task's end read a zero row (e4m3 0x00 decodes to 0.0);
    // their results are discarded.
    for (int64_t p = 0; p < row_panels; ++p) {
      double* panel = a_packed + p * depth * kMicroRows;
      const uint8_t* src[kMicroRows];
      for (int64_t i = 0; i < kMicroRows; ++i) {
        const int64_t r = p * kMicroRows + i;
        src[i] = r < rows ? op.a + (task.row_begin + r) * k + k0 : kZeroRow;
      }
      for (int64_t kk = 0; kk < depth; ++kk) {
        for (int64_t i = 0; i < kMicroRows; ++i) panel[kk * kMicroRows + i] = decode[src[i][kk]];
      }
    }
    // Pack B (transposed to k-major panels of 8 columns): reads 8 rows side by side, writes sequentially.
    for (int64_t q = 0; q < col_panels; ++q) {
      double* panel = b_packed + q * depth * kMicroCols;
      const uint8_t* src[kMicroCols];
      for (int64_t j = 0; j < kMicroCols; ++j) src[j] = b_expert + (q * kMicroCols + j) * k + k0;
      for (int64_t kk = 0; kk < depth; ++kk) {
        for (int64_t j = 0; j < kMicroCols; ++j) panel[kk * kMicroCols + j] = decode[src[j][kk]];
      }
    }

    const double b_scale = static_cast<double>(b_scale_row[kb]);
    for (int64_t p = 0; p < row_panels; ++p) {
      double scale[kMicroRows];
      const int64_t panel_rows = std::min<int64_t>(kMicroRows, rows - p * kMicroRows);
      for (int64_t i = 0; i < panel_rows; ++i) {
        const int64_t r = task.row_begin + p * kMicroRows + i;
        scale[i] = static_cast<double>(op.a_scales[r * k_blocks + kb]) * b_scale;  // exact: 24 x 24 bits
      }
      for (int64_t q = 0; q < col_panels; ++q) {
        kernel(static_cast<int>(depth), a_packed + p * depth * kMicroRows, b_packed + q * depth * kMicroCols,
               scratch.tile);
        for (int64_t i = 0; i < panel_rows; ++i) {
          double* out = acc + (p * kMicroRows + i) * cols + q * kMicroCols;
          const double* t = scratch.tile + i * kMicroCols;
          for (int64_t j = 0; j < kMicroCols; ++j) out[j] += t[j] * scale[i];
        }
      }
    }
  }

  for (int64_t r = 0; r < rows; ++r) {
    const double* src = acc + r * cols;
    const int64_t first = (task.row_begin + r) * n + task.col_begin;
    if (shape.output_dtype == MC_DTYPE_BF16) {
      uint16_t* dst = static_cast<uint16_t*>(op.d) + first;
      for (int64_t c = 0; c < cols; ++c) dst[c] = bf16_from_double(src[c]);
    } else {
      uint16_t* dst = static_cast<uint16_t*>(op.d) + first;
      for (int64_t c = 0; c < cols; ++c) dst[c] = fp16_from_double(src[c]);
    }
  }
}

class CpuGroupedGemmPlan final : public GroupedGemmPlanImpl {
 public:
  CpuGroupedGemmPlan(const GroupedGemmShape& shape, ThreadPool& pool) : shape_(shape), pool_(pool) {}

  // No device workspace: the reference computes every strategy's result with the same kernel.
  GroupedGemmPlanDetails details() const override { return {0}; }

  void run(const GroupedGemmOperands& operands, BackendStream&) override { cpu_grouped_gemm(shape_, operands, pool_); }

 private:
  GroupedGemmShape shape_;
  ThreadPool& pool_;
};

}  // namespace

void cpu_grouped_gemm(const GroupedGemmShape& shape, const GroupedGemmOperands& operands, ThreadPool& pool,
                      MicroKernel kernel) {
  std::vector<Task> tasks;
  for (int32_t e = 0; e < shape.experts; ++e) {
    const int32_t begin = operands.expert_offsets[e];
    const int32_t end = operands.expert_offsets[e + 1];
    for (int64_t r0 = begin; r0 < end; r0 += kTaskRows) {
      const int32_t r1 = static_cast<int32_t>(std::min<int64_t>(end, r0 + kTaskRows));
      for (int64_t c0 = 0; c0 < shape.n; c0 += kTaskCols) {
        tasks.push_back(Task{e, static_cast<int32_t>(r0), r1, static_cast<int32_t>(c0)});
      }
    }
  }
  pool.parallel_for(static_cast<int64_t>(tasks.size()),
                    [&](int64_t i) { run_task(tasks[static_cast<std::size_t>(i)], shape, operands, kernel); });
}

std::unique_ptr<GroupedGemmPlanImpl> make_cpu_grouped_gemm_plan(const GroupedGemmShape& shape, ThreadPool& pool) {
  return std::make_unique<CpuGroupedGemmPlan>(shape, pool);
}

}  // namespace moecutlass
