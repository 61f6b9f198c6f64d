// CPU reference grouped GEMM: bit-exact against an independent blockwise oracle, within one output ulp of a naive
// double triple loop, over several expert counts, ragged (and empty) experts, partial N/K blocks, both output
// dtypes and thread counts; exact offsets validation that writes nothing; micro-kernel variants agreeing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/e4m3.hpp"
#include "core/float16.hpp"
#include "cpu/gemm_microkernel.hpp"
#include "test_support.hpp"

using namespace moecutlass;
using mctest::Context;

namespace {

constexpr uint16_t kCanary = 0xABCD;

struct Problem {
  int32_t experts, n, k, rows;
  std::vector<int32_t> offsets;
  std::vector<uint8_t> a, b;
  std::vector<float> a_scales, b_scales;

  int64_t k_blocks() const { return (k + 127) / 128; }
  int64_t n_blocks() const { return (n + 127) / 128; }
};

Problem make_problem(int32_t experts, int32_t n, int32_t k, int32_t rows, const std::vector<int32_t>& offsets) {
  auto& engine = mctest::rng();
  Problem p{experts, n, k, rows, offsets, {}, {}, {}, {}};
  p.a.resize(static_cast<std::size_t>(rows) * k);
  p.b.resize(static_cast<std::size_t>(experts) * n * k);
  p.a_scales.resize(static_cast<std::size_t>(rows * p.k_blocks()));
  p.b_scales.resize(static_cast<std::size_t>(experts * p.n_blocks() * p.k_blocks()));
  for (auto& v : p.a) v = mctest::random_e4m3(engine);
  for (auto& v : p.b) v = mctest::random_e4m3(engine);
  // Scales spanning several binades, like real per-block scales.
  auto scale = [&](int lowest_exponent) {
    return std::ldexp(mctest::random_float(engine, 0.5f, 1.0f), lowest_exponent + static_cast<int>(engine() % 9));
  };
  for (auto& s : p.a_scales) s = scale(-12);
  for (auto& s : p.b_scales) s = scale(-10);
  return p;
}

double sa(const Problem& p, int64_t r, int64_t kk) { return p.a_scales[r * p.k_blocks() + kk / 128]; }
double sb(const Problem& p, int64_t e, int64_t nn, int64_t kk) {
  return p.b_scales[(e * p.n_blocks() + nn / 128) * p.k_blocks() + kk / 128];
}
double av(const Problem& p, int64_t r, int64_t kk) { return kE4m3ToDouble[p.a[r * p.k + kk]]; }
double bv(const Problem& p, int64_t e, int64_t nn, int64_t kk) { return kE4m3ToDouble[p.b[(e * p.n + nn) * p.k + kk]]; }

// The documented numerics, written independently of the library's blocking: per 128-wide K block an exact sum of
// raw products, times (sa * sb), accumulated in ascending block order, rounded once.
uint16_t oracle(const Problem& p, int64_t e, int64_t r, int64_t nn, int32_t dtype) {
  double acc = 0.0;
  for (int64_t k0 = 0; k0 < p.k; k0 += 128) {
    double partial = 0.0;
    for (int64_t kk = k0; kk < std::min<int64_t>(p.k, k0 + 128); ++kk) partial += av(p, r, kk) * bv(p, e, nn, kk);
    acc += partial * (sa(p, r, k0) * sb(p, e, nn, k0));
  }
  return dtype == MC_DTYPE_BF16 ? bf16_from_double(acc) : fp16_from_double(acc);
}

// The definition: dequantize, multiply, sum in double -- no blocking at all.
double naive(const Problem& p, int64_t e, int64_t r, int64_t nn) {
  double acc = 0.0;
  for (int64_t kk = 0; kk < p.k; ++kk) acc += av(p, r, kk) * sa(p, r, kk) * bv(p, e, nn, kk) * sb(p, e, nn, kk);
  return acc;
}

double decode(uint16_t bits, int32_t dtype) {
  return dtype == MC_DTYPE_BF16 ? bf16_to_float(bits) : fp16_to_float(bits);
}

// Spacing of the output format around |x|.
double output_ulp(double x, int32_t dtype) {
  const int mantissa_bits = dtype == MC_DTYPE_BF16 ? 7 : 10;
  const int min_exponent = dtype == MC_DTYPE_BF16 ? -126 : -14;
  int exponent = x == 0.0 ? min_exponent : std::ilogb(x);
  if (exponent < min_exponent) exponent = min_exponent;
  return std::ldexp(1.0, exponent - mantissa_bits);
}

struct Buffers {
  uint8_t* a;
  float* a_scales;
  uint8_t* b;
  float* b_scales;
  int32_t* offsets;
  uint16_t* d;
};

Buffers upload(Context& context, const Problem& p) {
  Buffers buf{};
  buf.a = context.alloc_array<uint8_t>(std::max<int64_t>(1, static_cast<int64_t>(p.a.size())));
  buf.a_scales = context.alloc_array<float>(std::max<int64_t>(1, static_cast<int64_t>(p.a_scales.size())));
  buf.b = context.alloc_array<uint8_t>(static_cast<int64_t>(p.b.size()));
  buf.b_scales = context.alloc_array<float>(static_cast<int64_t>(p.b_scales.size()));
  buf.offsets = context.alloc_array<int32_t>(p.experts + 1);
  buf.d = context.alloc_array<uint16_t>(std::max<int64_t>(1, int64_t{p.rows} * p.n));
  auto copy = [](void* dst, const auto& src) {
    if (!src.empty()) std::memcpy(dst, src.data(), src.size() * sizeof(src[0]));  // empty vectors have no data()
  };
  copy(buf.a, p.a);
  copy(buf.a_scales, p.a_scales);
  copy(buf.b, p.b);
  copy(buf.b_scales, p.b_scales);
  copy(buf.offsets, p.offsets);
  for (int64_t i = 0; i < int64_t{p.rows} * p.n; ++i) buf.d[i] = kCanary;
  return buf;
}

mc_grouped_gemm_args make_args(const Problem& p, const Buffers& buf) {
  mc_grouped_gemm_args args{};
  args.struct_size = sizeof args;
  args.rows = p.rows;
  args.a = buf.a;
  args.a_scales = buf.a_scales;
  args.b = buf.b;
  args.b_scales = buf.b_scales;
  args.expert_offsets = buf.offsets;
  args.d = buf.d;
  return args;
}

std::vector<uint16_t> run_gemm(const Problem& p, int32_t dtype, int32_t threads,
                               int32_t strategy = MC_STRATEGY_AUTO) {
  Context context(threads);
  const Buffers buf = upload(context, p);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(p.experts, p.n, p.k, p.rows, dtype);
  desc.strategy = strategy;
  mc_grouped_gemm_plan plan = nullptr;
  EXPECT_EQ(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_OK) << mctest::last_error();
  const mc_grouped_gemm_args args = make_args(p, buf);
  EXPECT_EQ(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_OK) << mctest::last_error();
  EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
  return std::vector<uint16_t>(buf.d, buf.d + int64_t{p.rows} * p.n);
}

void check_against_references(const Problem& p, int32_t dtype, const std::vector<uint16_t>& d) {
  std::vector<int32_t> owner(static_cast<std::size_t>(p.rows), -1);
  for (int32_t e = 0; e < p.experts; ++e) {
    for (int32_t r = p.offsets[e]; r < p.offsets[e + 1]; ++r) owner[r] = e;
  }
  for (int32_t r = 0; r < p.rows; ++r) {
    for (int32_t nn = 0; nn < p.n; ++nn) {
      const uint16_t got = d[static_cast<std::size_t>(r) * p.n + nn];
      if (owner[r] < 0) {
        ASSERT_EQ(got, kCanary) << "row " << r << " belongs to no expert and must stay untouched";
        continue;
      }
      ASSERT_EQ(got, oracle(p, owner[r], r, nn, dtype)) << "row " << r << " col " << nn;
      const double exact = naive(p, owner[r], r, nn);
      ASSERT_LE(std::fabs(decode(got, dtype) - exact), output_ulp(exact, dtype)) << "row " << r << " col " << nn;
    }
  }
}

}  // namespace

struct GemmCase {
  int32_t experts, n, k, rows;
  std::vector<int32_t> offsets;
  int32_t dtype;
};

class GroupedGemmReference : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GroupedGemmReference, MatchesOracleBitExactlyAndNaiveWithinOneUlp) {
  const GemmCase& c = GetParam();
  const Problem p = make_problem(c.experts, c.n, c.k, c.rows, c.offsets);
  const std::vector<uint16_t> d = run_gemm(p, c.dtype, 3);
  check_against_references(p, c.dtype, d);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GroupedGemmReference,
    ::testing::Values(
        GemmCase{1, 64, 128, 7, {0, 7}, MC_DTYPE_BF16},
        GemmCase{1, 8, 16, 1, {0, 1}, MC_DTYPE_FP16},                       // smallest legal shape
        GemmCase{3, 200, 272, 70, {0, 0, 69, 70}, MC_DTYPE_BF16},            // empty expert, > 64 rows, partial blocks
        GemmCase{4, 136, 144, 40, {3, 10, 10, 25, 37}, MC_DTYPE_FP16},       // uncovered leading and trailing rows
        GemmCase{8, 72, 400, 90, {0, 5, 5, 5, 30, 31, 60, 89, 89}, MC_DTYPE_BF16},
        GemmCase{2, 264, 256, 130, {0, 130, 130}, MC_DTYPE_FP16}),           // all rows in one expert, last empty
    [](const ::testing::TestParamInfo<GemmCase>& info) {
      const GemmCase& c = info.param;
      return "E" + std::to_string(c.experts) + "_N" + std::to_string(c.n) + "_K" + std::to_string(c.k) + "_rows" +
             std::to_string(c.rows) + (c.dtype == MC_DTYPE_BF16 ? "_bf16" : "_fp16");
    });

// The reference is the math every strategy computes, so the CPU backend runs each of them (cuBLAS's included: its
// GPU path only changes how the device gets there) to the same oracle bits.
TEST(GroupedGemm, EveryStrategyComputesTheReference) {
  const Problem p = make_problem(4, 136, 272, 50, {2, 9, 9, 40, 47});
  for (int32_t strategy : {MC_STRATEGY_AUTO, MC_STRATEGY_SINGLE, MC_STRATEGY_EXPERT_SPECIALIZED,
                           MC_STRATEGY_PERSISTENT, MC_STRATEGY_CUBLAS}) {
    for (int32_t dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16}) {
      SCOPED_TRACE("strategy " + std::to_string(strategy) + (dtype == MC_DTYPE_BF16 ? ", bf16" : ", fp16"));
      check_against_references(p, dtype, run_gemm(p, dtype, 2, strategy));
    }
  }
}

TEST(GroupedGemm, ResultDoesNotDependOnThreadCount) {
  const Problem p = make_problem(5, 192, 384, 100, {0, 17, 17, 60, 61, 100});
  const std::vector<uint16_t> one = run_gemm(p, MC_DTYPE_BF16, 1);
  const std::vector<uint16_t> four = run_gemm(p, MC_DTYPE_BF16, 4);
  EXPECT_EQ(one, four);
}

TEST(GroupedGemm, ZeroRowsIsValidAndWritesNothing) {
  Problem p = make_problem(2, 16, 32, 0, {0, 0, 0});
  Context context(2);
  const Buffers buf = upload(context, p);
  buf.d[0] = kCanary;
  const mc_grouped_gemm_desc desc = mctest::gemm_desc(2, 16, 32, 0);
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  const mc_grouped_gemm_args args = make_args(p, buf);
  MC_ASSERT_OK(mc_grouped_gemm_run(plan, &args, nullptr));
  EXPECT_EQ(buf.d[0], kCanary);
}

TEST(GroupedGemm, InvalidOffsetsAreRejectedBeforeAnyWrite) {
  const Problem p = make_problem(3, 16, 32, 12, {0, 4, 8, 12});
  Context context(2);
  const Buffers buf = upload(context, p);
  const mc_grouped_gemm_desc desc = mctest::gemm_desc(3, 16, 32, 12);
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  const mc_grouped_gemm_args args = make_args(p, buf);

  struct BadCase {
    std::vector<int32_t> offsets;
    std::vector<const char*> fragments;
  };
  const std::vector<BadCase> cases = {
      {{-1, 4, 8, 12}, {"args->expert_offsets[0] = -1", "negative"}},
      {{0, 5, 4, 12}, {"args->expert_offsets[2] = 4", "args->expert_offsets[1] = 5", "non-decreasing"}},
      {{0, 4, 8, 13}, {"args->expert_offsets[3] = 13", "args->rows = 12"}},
      {{2, 1, 1, 1}, {"args->expert_offsets[1] = 1", "non-decreasing"}},
      {{-5, -3, 0, 0}, {"args->expert_offsets[0] = -5"}},
  };
  for (const BadCase& bad : cases) {
    std::memcpy(buf.offsets, bad.offsets.data(), bad.offsets.size() * sizeof(int32_t));
    EXPECT_EQ(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_INVALID_OFFSETS);
    const std::string message = mctest::last_error();
    EXPECT_NE(message.find("mc_grouped_gemm_run: "), std::string::npos) << message;
    for (const char* fragment : bad.fragments) EXPECT_NE(message.find(fragment), std::string::npos) << message;
    for (int i = 0; i < 12 * 16; ++i) ASSERT_EQ(buf.d[i], kCanary) << "D was written by a rejected call";
  }
  // The same plan still runs once the offsets are fixed.
  const int32_t good[] = {0, 4, 8, 12};
  std::memcpy(buf.offsets, good, sizeof good);
  MC_ASSERT_OK(mc_grouped_gemm_run(plan, &args, nullptr));
  EXPECT_NE(buf.d[0], kCanary);
}

TEST(GemmMicroKernel, VariantsAgreeExactlyOnE4m3Data) {
  auto& engine = mctest::rng();
  const int depth = 128;
  std::vector<double> a(depth * kMicroRows), b(depth * kMicroCols);
  for (auto& v : a) v = kE4m3ToDouble[mctest::random_e4m3(engine)];
  for (auto& v : b) v = kE4m3ToDouble[mctest::random_e4m3(engine)];
  double portable[kMicroRows * kMicroCols];
  microkernel_portable(depth, a.data(), b.data(), portable);
  for (int i = 0; i < kMicroRows; ++i) {
    for (int j = 0; j < kMicroCols; ++j) {
      double expected = 0.0;
      for (int k = 0; k < depth; ++k) expected += a[k * kMicroRows + i] * b[k * kMicroCols + j];
      ASSERT_EQ(portable[i * kMicroCols + j], expected);  // exact sums: order does not matter
    }
  }
  MicroKernel avx2 = microkernel_avx2();
  if (avx2 == nullptr) GTEST_SKIP() << "no AVX2+FMA kernel on this CPU/build";
  double vectorized[kMicroRows * kMicroCols];
  avx2(depth, a.data(), b.data(), vectorized);
  for (int i = 0; i < kMicroRows * kMicroCols; ++i) EXPECT_EQ(vectorized[i], portable[i]) << i;
}

// Issue 14 item 9 (fuzzing): overlapping runs of one plan were not detected (on CUDA they share the plan's per-run
// device arrays, fork event and side streams). A run called while another thread's run of the same plan has not
// returned must fail with MC_STATUS_BUSY and do nothing; runs that do not overlap keep working.
TEST(GroupedGemm, OverlappingRunsOfOnePlanAreRefusedAsBusy) {
  Context context(1);
  const int32_t n = 256, k = 512, rows = 256;
  const mc_grouped_gemm_desc desc = mctest::gemm_desc(1, n, k, rows);
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  auto zeroed = [&](int64_t bytes) {
    void* p = context.alloc(bytes);
    std::memset(p, 0, static_cast<std::size_t>(bytes));
    return p;
  };
  auto* offsets = context.alloc_array<int32_t>(2);
  offsets[0] = 0;
  offsets[1] = rows;
  mc_grouped_gemm_args args{};
  args.struct_size = sizeof args;
  args.rows = rows;
  args.a = zeroed(int64_t{rows} * k);
  args.a_scales = static_cast<const float*>(zeroed(int64_t{rows} * (k / 128) * 4));
  args.b = zeroed(int64_t{n} * k);
  args.b_scales = static_cast<const float*>(zeroed(int64_t{n / 128} * (k / 128) * 4));
  args.expert_offsets = offsets;
  args.d = zeroed(int64_t{rows} * n * 2);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  std::atomic<bool> stop{false};
  std::atomic<int> busy{0}, ok{0}, other{0};
  std::string busy_message;
  auto runner = [&](bool record_message) {
    while (!stop.load() && std::chrono::steady_clock::now() < deadline) {
      const mc_status status = mc_grouped_gemm_run(plan, &args, nullptr);
      if (status == MC_STATUS_OK) {
        ++ok;
      } else if (status == MC_STATUS_BUSY) {
        if (record_message && busy_message.empty()) busy_message = mctest::last_error();
        if (++busy >= 3) stop.store(true);
      } else {
        ++other;
        stop.store(true);
      }
    }
  };
  std::thread second(runner, false);
  runner(true);
  second.join();
  EXPECT_GE(busy.load(), 3) << "no overlapping run was refused (" << ok.load() << " runs succeeded)";
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0) << mctest::last_error();
  if (!busy_message.empty()) {
    EXPECT_NE(busy_message.find("is already running"), std::string::npos) << busy_message;
  }
  // Sequential runs after the overlap still succeed.
  MC_ASSERT_OK(mc_grouped_gemm_run(plan, &args, nullptr));
  MC_ASSERT_OK(mc_grouped_gemm_plan_destroy(plan));
}

// Issue 14 item 10: fp16 D does not saturate; results beyond the fp16 range are stored as +-inf (documented in the
// header and on DType.Float16). bf16 D holds the same results as finite values.
TEST(GroupedGemm, Fp16OutputOverflowsToInfinityAsDocumented) {
  Context context(1);
  const int32_t n = 16, k = 16, rows = 2;
  auto* a = static_cast<uint8_t*>(context.alloc(rows * k));
  std::memset(a, 0x7E, k);           // +448
  std::memset(a + k, 0xFE, k);       // -448
  auto* b = static_cast<uint8_t*>(context.alloc(n * k));
  std::memset(b, 0x7E, n * k);       // +448: every dot product is +-16 * 448 * 448 = +-3211264 > 65504
  auto* a_scales = context.alloc_array<float>(rows);
  a_scales[0] = a_scales[1] = 1.0f;
  auto* b_scales = context.alloc_array<float>(1);
  b_scales[0] = 1.0f;
  auto* offsets = context.alloc_array<int32_t>(2);
  offsets[0] = 0;
  offsets[1] = rows;
  auto* d = context.alloc_array<uint16_t>(rows * n);
  for (int32_t dtype : {MC_DTYPE_FP16, MC_DTYPE_BF16}) {
    const mc_grouped_gemm_desc desc = mctest::gemm_desc(1, n, k, rows, dtype);
    mc_grouped_gemm_plan plan = nullptr;
    MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
    mc_grouped_gemm_args args{};
    args.struct_size = sizeof args;
    args.rows = rows;
    args.a = a;
    args.a_scales = a_scales;
    args.b = b;
    args.b_scales = b_scales;
    args.expert_offsets = offsets;
    args.d = d;
    MC_ASSERT_OK(mc_grouped_gemm_run(plan, &args, nullptr));
    for (int32_t i = 0; i < n; ++i) {
      if (dtype == MC_DTYPE_FP16) {
        EXPECT_EQ(d[i], 0x7C00) << "row 0 col " << i << ": expected fp16 +inf";
        EXPECT_EQ(d[n + i], 0xFC00) << "row 1 col " << i << ": expected fp16 -inf";
      } else {
        EXPECT_NE(d[i] & 0x7F80, 0x7F80) << "row 0 col " << i << ": bf16 must stay finite";
        EXPECT_NE(d[n + i] & 0x7F80, 0x7F80) << "row 1 col " << i << ": bf16 must stay finite";
        EXPECT_EQ(d[n + i] & 0x8000, 0x8000);
      }
    }
    MC_ASSERT_OK(mc_grouped_gemm_plan_destroy(plan));
  }
}
