// The cuBLAS strategy on the CUDA backend through the C ABI (skipped without a CUDA device or without a loadable
// cuBLAS 12.5+, which the skip message names), against the CPU reference on the same e4m3 bytes and scales.
//
// Tolerance (docs/design/cublas-baseline.md): the cuBLAS path rounds every dequantized operand to bf16 (relative
// error at most 2^-9 each after the fp32 product, so at most about 2^-8 per product) and accumulates in fp32, while
// the reference sums the exact products; so per element |D - D_ref| <= 2^-7 * sum_i |a_i b_i| + ulp(D_ref), the
// 2^-7 leaving room for fp32 accumulation and the output rounding of both sides (the reference's D_ref is itself
// rounded to the output dtype, hence the ulp; fp16 output goes through a bf16 result, one more rounding of at most
// 2^-9 relative, still inside the 2^-7). A wrong expert, row, column or scale block breaks it by orders of
// magnitude. Also: rows past offsets[E] stay untouched; a run under stream capture is refused with
// MC_STATUS_UNSUPPORTED and leaves the capture and the output intact; bad offsets are refused before writing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "core/e4m3.hpp"
#include "core/float16.hpp"
#include "cublas/cublas_loader.hpp"
#include "gemm_operands.hpp"
#include "test_support.hpp"

namespace {

constexpr uint16_t kCanary = 0x7E01;  // a NaN payload neither backend produces

struct Buffers {
  void* a = nullptr;
  void* a_scales = nullptr;
  void* b = nullptr;
  void* b_scales = nullptr;
  void* offsets = nullptr;
  void* d = nullptr;
};

class CudaCublas : public ::testing::Test {
 protected:
  void SetUp() override {
    int32_t count = 0;
    ASSERT_EQ(mc_get_device_count(&count), MC_STATUS_OK);
    if (count == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
    moecutlass::cublas::Api api;
    std::string error;
    if (!moecutlass::cublas::try_load(moecutlass::cublas::default_candidates(), api, error)) {
      GTEST_SKIP() << error;
    }
    mc_context_desc desc = mctest::cpu_desc();
    desc.backend = MC_BACKEND_CUDA;
    ASSERT_EQ(mc_context_create(&desc, &gpu_), MC_STATUS_OK) << mctest::last_error();
  }
  void TearDown() override {
    if (gpu_ != nullptr) {
      EXPECT_EQ(mc_context_destroy(gpu_), MC_STATUS_OK);
    }
  }

  Buffers upload_all(mc_context context, const mctest::GemmOperands& o, const std::vector<int32_t>& offsets,
                     size_t d_elements) {
    Buffers b;
    b.a = mctest::upload(context, o.a);
    b.a_scales = mctest::upload(context, o.a_scales);
    b.b = mctest::upload(context, o.b);
    b.b_scales = mctest::upload(context, o.b_scales);
    b.offsets = mctest::upload(context, offsets);
    b.d = mctest::upload(context, std::vector<uint16_t>(d_elements, kCanary));
    return b;
  }

  static mc_grouped_gemm_args args_of(const Buffers& b, int32_t rows) {
    mc_grouped_gemm_args args{};
    args.struct_size = sizeof args;
    args.rows = rows;
    args.a = b.a;
    args.a_scales = static_cast<const float*>(b.a_scales);
    args.b = b.b;
    args.b_scales = static_cast<const float*>(b.b_scales);
    args.expert_offsets = static_cast<const int32_t*>(b.offsets);
    args.d = b.d;
    return args;
  }

  std::vector<uint16_t> download(mc_context context, const void* d, size_t elements) {
    std::vector<uint16_t> host(elements);
    EXPECT_EQ(mc_memcpy_async(context, host.data(), d, static_cast<int64_t>(elements * 2), MC_COPY_DEVICE_TO_HOST,
                              nullptr),
              MC_STATUS_OK)
        << mctest::last_error();
    EXPECT_EQ(mc_context_synchronize(context), MC_STATUS_OK) << mctest::last_error();
    return host;
  }

  static double value(uint16_t bits, int32_t dtype) {
    return dtype == MC_DTYPE_FP16 ? moecutlass::fp16_to_float(bits) : moecutlass::bf16_to_float(bits);
  }
  // The spacing of the output dtype at |x| (its ulp), normal range.
  static double ulp(double x, int32_t dtype) {
    const int mantissa_bits = dtype == MC_DTYPE_FP16 ? 10 : 7;
    const double magnitude = std::max(std::fabs(x), dtype == MC_DTYPE_FP16 ? std::ldexp(1.0, -14) : 1e-38);
    return std::ldexp(1.0, std::ilogb(magnitude) - mantissa_bits);
  }

  void expect_within_bound(int32_t n, int32_t k, int32_t output_dtype, const std::vector<int32_t>& rows_per_expert,
                           int32_t flags = 0) {
    SCOPED_TRACE("N " + std::to_string(n) + " K " + std::to_string(k) + " dtype " + std::to_string(output_dtype) +
                 " flags " + std::to_string(flags));
    std::mt19937_64 engine(0xCB1A5 + n * 7 + k);
    const mctest::GemmOperands o = mctest::make_gemm_operands(n, k, rows_per_expert, output_dtype, engine);
    const int32_t guard = 2;
    mctest::Context cpu(0);
    const auto run = [&](mc_context context, int32_t strategy) {
      mc_grouped_gemm_desc desc =
          mctest::gemm_desc(static_cast<int32_t>(rows_per_expert.size()), n, k, o.rows, output_dtype);
      desc.strategy = strategy;
      desc.flags = flags;
      return mctest::run_grouped_gemm(context, desc, o, o.offsets, guard, kCanary);
    };
    const std::vector<uint16_t> expected = run(cpu, MC_STRATEGY_SINGLE);
    const std::vector<uint16_t> got = run(gpu_, MC_STRATEGY_CUBLAS);
    const int32_t k_blocks = mctest::scale_blocks(k), n_blocks = mctest::scale_blocks(n);
    int64_t checked = 0, exact = 0;
    for (size_t e = 0; e + 1 < o.offsets.size(); ++e) {
      for (int32_t r = o.offsets[e]; r < o.offsets[e + 1]; ++r) {
        for (int32_t c = 0; c < n; ++c) {
          double magnitude_sum = 0.0;
          const uint8_t* b_row = o.b.data() + (e * n + c) * static_cast<size_t>(k);
          for (int32_t i = 0; i < k; ++i) {
            const double a = moecutlass::e4m3_to_float(o.a[static_cast<size_t>(r) * k + i]) *
                             static_cast<double>(o.a_scales[static_cast<size_t>(r) * k_blocks + i / 128]);
            const double w = moecutlass::e4m3_to_float(b_row[i]) *
                             static_cast<double>(o.b_scales[(e * n_blocks + c / 128) * k_blocks + i / 128]);
            magnitude_sum += std::fabs(a * w);
          }
          const size_t index = static_cast<size_t>(r) * n + c;
          const double want = value(expected[index], output_dtype);
          const double have = value(got[index], output_dtype);
          const double bound = std::ldexp(magnitude_sum, -7) + ulp(want, output_dtype);
          ASSERT_LE(std::fabs(have - want), bound) << "expert " << e << " row " << r << " col " << c << ": cuBLAS "
                                                   << have << ", reference " << want;
          ++checked;
          if (got[index] == expected[index]) ++exact;
        }
      }
    }
    for (size_t i = static_cast<size_t>(o.rows) * n; i < got.size(); ++i) {
      ASSERT_EQ(got[i], kCanary) << "guard element " << i << " past offsets[E] was written";
    }
    std::cout << "cublas N " << n << " K " << k << " dtype " << output_dtype << " flags " << flags << ": " << checked
              << " elements within the bound, " << exact << " bit-identical to the reference\n";
  }

  mc_context gpu_ = nullptr;
};

TEST_F(CudaCublas, RaggedExpertsWithinTheBf16Bound) {
  expect_within_bound(256, 512, MC_DTYPE_BF16, {0, 5, 130, 1, 0});
  expect_within_bound(256, 512, MC_DTYPE_FP16, {3, 0, 64});
}

TEST_F(CudaCublas, StaticWeightsWithinTheBf16Bound) {
  expect_within_bound(256, 512, MC_DTYPE_BF16, {0, 5, 130, 1, 0}, MC_PLAN_STATIC_WEIGHTS);
  expect_within_bound(136, 144, MC_DTYPE_FP16, {17, 40, 0, 9}, MC_PLAN_STATIC_WEIGHTS);
}

// MOECUTLASS_CUBLAS_CALL, read when a plan is created: the scope sets it for the plans created inside it.
class CublasCallOverride {
 public:
  explicit CublasCallOverride(const char* value) {
    if (const char* old = std::getenv("MOECUTLASS_CUBLAS_CALL"); old != nullptr) {
      previous_ = old;
      had_ = true;
    }
    setenv("MOECUTLASS_CUBLAS_CALL", value, 1);
  }
  ~CublasCallOverride() {
    if (had_) {
      setenv("MOECUTLASS_CUBLAS_CALL", previous_.c_str(), 1);
    } else {
      unsetenv("MOECUTLASS_CUBLAS_CALL");
    }
  }

 private:
  std::string previous_;
  bool had_ = false;
};

// Both call shapes (one grouped call; a cublasGemmEx per expert) whatever the plan's rule would choose for these
// shapes: ragged experts, empty ones, fp16 through bf16, static weights.
TEST_F(CudaCublas, EachCallShapeWithinTheBf16Bound) {
  for (const char* call : {"grouped", "loop"}) {
    SCOPED_TRACE(call);
    CublasCallOverride scope(call);
    expect_within_bound(256, 512, MC_DTYPE_BF16, {0, 5, 130, 1, 0});
    expect_within_bound(136, 144, MC_DTYPE_FP16, {17, 40, 0, 9});
    expect_within_bound(256, 512, MC_DTYPE_BF16, {3, 0, 64}, MC_PLAN_STATIC_WEIGHTS);
  }
}

TEST_F(CudaCublas, NAndKNotMultiplesOf128WithinTheBound) {
  expect_within_bound(136, 144, MC_DTYPE_BF16, {17, 40, 0, 9});
  expect_within_bound(136, 144, MC_DTYPE_FP16, {17, 40, 0, 9});
}

TEST_F(CudaCublas, LargerShapeWithinTheBound) { expect_within_bound(512, 1024, MC_DTYPE_BF16, {300, 0, 77}); }

TEST_F(CudaCublas, UnderCaptureTheRunIsRefusedAndTheCaptureSurvives) {
  std::mt19937_64 engine(0xCA97);
  const mctest::GemmOperands o = mctest::make_gemm_operands(128, 128, {4, 4}, MC_DTYPE_BF16, engine);
  const size_t elements = static_cast<size_t>(o.rows) * 128;
  const Buffers b = upload_all(gpu_, o, o.offsets, elements);
  MC_ASSERT_OK(mc_context_synchronize(gpu_));
  mc_grouped_gemm_desc desc = mctest::gemm_desc(2, 128, 128, o.rows);
  desc.strategy = MC_STRATEGY_CUBLAS;
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(gpu_, &desc, &plan));
  mc_stream stream = nullptr;
  MC_ASSERT_OK(mc_stream_create(gpu_, &stream));
  MC_ASSERT_OK(mc_stream_begin_capture(stream));
  const mc_grouped_gemm_args args = args_of(b, o.rows);
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, stream), MC_STATUS_UNSUPPORTED, "MC_STRATEGY_CUBLAS",
                   "cannot be captured");
  mc_graph graph = nullptr;
  MC_ASSERT_OK(mc_stream_end_capture(stream, &graph));  // the capture survived the refusal
  MC_ASSERT_OK(mc_graph_destroy(graph));
  const std::vector<uint16_t> d = download(gpu_, b.d, elements);
  for (size_t i = 0; i < d.size(); ++i) ASSERT_EQ(d[i], kCanary) << "element " << i << " written by a refused run";
  MC_ASSERT_OK(mc_grouped_gemm_run(plan, &args, stream));  // outside the capture it runs
  MC_ASSERT_OK(mc_stream_synchronize(stream));
  MC_ASSERT_OK(mc_stream_destroy(stream));
  MC_ASSERT_OK(mc_grouped_gemm_plan_destroy(plan));
}

TEST_F(CudaCublas, BadOffsetsAreRefusedBeforeAnythingIsWritten) {
  std::mt19937_64 engine(0xBAD0);
  const mctest::GemmOperands o = mctest::make_gemm_operands(128, 128, {4, 4, 4}, MC_DTYPE_BF16, engine);
  const size_t elements = static_cast<size_t>(o.rows) * 128;
  const std::vector<int32_t> bad = {0, 8, 4, 12};  // decreasing at index 2
  const Buffers b = upload_all(gpu_, o, bad, elements);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(3, 128, 128, o.rows);
  desc.strategy = MC_STRATEGY_CUBLAS;
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(gpu_, &desc, &plan));
  const mc_grouped_gemm_args args = args_of(b, o.rows);
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_INVALID_OFFSETS, "args->expert_offsets[2]",
                   "non-decreasing");
  const std::vector<uint16_t> d = download(gpu_, b.d, elements);
  for (size_t i = 0; i < d.size(); ++i) ASSERT_EQ(d[i], kCanary) << "element " << i << " written by a refused run";
  MC_ASSERT_OK(mc_grouped_gemm_plan_destroy(plan));
}

// MC_PLAN_STATIC_WEIGHTS: the plan dequantizes B once per (b, b_scales) pointer pair. Same pointers: the same bits
// (and an in-place rewrite goes unseen, which is the contract the flag's caller accepts, and shows the second run
// reused the first's weights); other pointers: dequantized again, bit-identical to a plan without the flag.
TEST_F(CudaCublas, StaticWeightsAreDequantizedOncePerPointerPair) {
  std::mt19937_64 engine(0x57A7);
  const std::vector<int32_t> rows = {6, 0, 19};
  const mctest::GemmOperands first = mctest::make_gemm_operands(256, 256, rows, MC_DTYPE_BF16, engine);
  const mctest::GemmOperands second = mctest::make_gemm_operands(256, 256, rows, MC_DTYPE_BF16, engine);
  const size_t elements = static_cast<size_t>(first.rows) * 256;
  const Buffers b = upload_all(gpu_, first, first.offsets, elements);
  void* other_b = mctest::upload(gpu_, second.b);
  void* other_scales = mctest::upload(gpu_, second.b_scales);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(3, 256, 256, first.rows);
  desc.strategy = MC_STRATEGY_CUBLAS;
  mc_grouped_gemm_plan every_run = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(gpu_, &desc, &every_run));
  desc.flags = MC_PLAN_STATIC_WEIGHTS;
  mc_grouped_gemm_plan once = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(gpu_, &desc, &once));
  const auto run = [&](mc_grouped_gemm_plan plan, const void* weights, const void* scales) {
    mc_grouped_gemm_args args = args_of(b, first.rows);
    args.b = weights;
    args.b_scales = static_cast<const float*>(scales);
    EXPECT_EQ(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_OK) << mctest::last_error();
    return download(gpu_, b.d, elements);
  };
  const std::vector<uint16_t> reference_first = run(every_run, b.b, b.b_scales);
  const std::vector<uint16_t> reference_second = run(every_run, other_b, other_scales);
  ASSERT_NE(reference_first, reference_second);
  EXPECT_EQ(run(once, b.b, b.b_scales), reference_first);
  EXPECT_EQ(run(once, b.b, b.b_scales), reference_first);
  EXPECT_EQ(run(once, other_b, other_scales), reference_second) << "new pointers must be dequantized again";
  // A new scale pointer alone is a new pair too: second's codes with first's scales.
  const std::vector<uint16_t> mixed = run(once, other_b, b.b_scales);
  ASSERT_NE(mixed, reference_second) << "a run with another b_scales pointer reused the cached weights";
  ASSERT_NE(mixed, reference_first);
  // Rewrite the codes in place with first's: the static plan keeps its dequantized copy of the pair (the contract
  // its caller accepted, and the proof that it did not dequantize again), the plan without the flag sees the change.
  MC_ASSERT_OK(mc_memcpy_async(gpu_, other_b, first.b.data(), static_cast<int64_t>(first.b.size()),
                               MC_COPY_HOST_TO_DEVICE, nullptr));
  MC_ASSERT_OK(mc_context_synchronize(gpu_));
  EXPECT_EQ(run(once, other_b, b.b_scales), mixed);
  EXPECT_EQ(run(every_run, other_b, b.b_scales), reference_first);
  MC_ASSERT_OK(mc_grouped_gemm_plan_destroy(once));
  MC_ASSERT_OK(mc_grouped_gemm_plan_destroy(every_run));
}

}  // namespace
