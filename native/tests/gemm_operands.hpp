// Host operands of one grouped-GEMM problem for the CUDA tests: random finite e4m3 A and B, and power-of-two
// scales that differ between 128-row bands and 128-column blocks, so a wrong scale index shows in the result; and
// one run of a plan over them through the C ABI, on any context.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "test_support.hpp"

namespace mctest {

struct GemmOperands {
  std::vector<uint8_t> a, b;
  std::vector<float> a_scales, b_scales;
  std::vector<int32_t> offsets;
  int32_t rows = 0;
};

inline int32_t scale_blocks(int32_t extent) { return (extent + MC_SCALE_BLOCK - 1) / MC_SCALE_BLOCK; }

inline GemmOperands make_gemm_operands(int32_t n, int32_t k, const std::vector<int32_t>& rows_per_expert,
                                       int32_t output_dtype, std::mt19937_64& engine) {
  GemmOperands o;
  const auto experts = static_cast<int32_t>(rows_per_expert.size());
  o.offsets.assign(1, 0);
  for (int32_t r : rows_per_expert) o.offsets.push_back(o.offsets.back() + r);
  o.rows = o.offsets.back();
  o.a.resize(static_cast<size_t>(o.rows) * k);
  o.b.resize(static_cast<size_t>(experts) * n * k);
  for (auto& v : o.a) v = random_e4m3(engine);
  for (auto& v : o.b) v = random_e4m3(engine);
  // fp16 tops out at 65504: full-range e4m3 products summed over K need smaller scales to stay finite.
  const int bias = output_dtype == MC_DTYPE_FP16 ? -10 : 0;
  std::uniform_int_distribution<int> exponent(bias - 4, bias + 4);
  o.a_scales.resize(static_cast<size_t>(o.rows) * scale_blocks(k));
  for (auto& s : o.a_scales) s = std::ldexp(random_float(engine, 0.5f, 1.0f), exponent(engine));
  o.b_scales.resize(static_cast<size_t>(experts) * scale_blocks(n) * scale_blocks(k));
  for (auto& s : o.b_scales) s = std::ldexp(random_float(engine, 0.5f, 1.0f), exponent(engine));
  return o;
}

// Context memory holding `host` plus `extra_bytes` (at least 16 bytes), copied in on the default stream.
template <class T>
void* upload(mc_context context, const std::vector<T>& host, int64_t extra_bytes = 0) {
  const int64_t bytes = static_cast<int64_t>(host.size() * sizeof(T)) + extra_bytes;
  void* pointer = nullptr;
  EXPECT_EQ(mc_malloc(context, bytes > 0 ? bytes : 16, &pointer), MC_STATUS_OK) << last_error();
  if (!host.empty()) {
    EXPECT_EQ(mc_memcpy_async(context, pointer, host.data(), static_cast<int64_t>(host.size() * sizeof(T)),
                              MC_COPY_HOST_TO_DEVICE, nullptr),
              MC_STATUS_OK)
        << last_error();
  }
  return pointer;
}

// One plan of `desc` run once on `context` over `o` with `offsets` (o.offsets, or a corrupted copy): args.rows is
// o.rows, and D has `guard_rows` rows past it, pre-filled with `canary`. Returns D; frees what it allocated.
inline std::vector<uint16_t> run_grouped_gemm(mc_context context, const mc_grouped_gemm_desc& desc,
                                              const GemmOperands& o, const std::vector<int32_t>& offsets,
                                              int32_t guard_rows, uint16_t canary) {
  std::vector<uint16_t> d(static_cast<size_t>(o.rows + guard_rows) * desc.n, canary);
  void* a = upload(context, o.a, 16);
  void* a_scales = upload(context, o.a_scales, 16);
  void* b = upload(context, o.b);
  void* b_scales = upload(context, o.b_scales);
  void* offsets_device = upload(context, offsets);
  void* dd = upload(context, d);
  mc_grouped_gemm_plan plan = nullptr;
  EXPECT_EQ(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_OK) << last_error();
  mc_grouped_gemm_args args{};
  args.struct_size = sizeof args;
  args.rows = o.rows;
  args.a = a;
  args.a_scales = static_cast<const float*>(a_scales);
  args.b = b;
  args.b_scales = static_cast<const float*>(b_scales);
  args.expert_offsets = static_cast<const int32_t*>(offsets_device);
  args.d = dd;
  EXPECT_EQ(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_OK) << last_error();
  EXPECT_EQ(mc_memcpy_async(context, d.data(), dd, static_cast<int64_t>(d.size() * 2), MC_COPY_DEVICE_TO_HOST,
                            nullptr),
            MC_STATUS_OK)
      << last_error();
  EXPECT_EQ(mc_context_synchronize(context), MC_STATUS_OK) << last_error();
  EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
  for (void* pointer : {a, a_scales, b, b_scales, offsets_device, dd}) {
    EXPECT_EQ(mc_free(context, pointer), MC_STATUS_OK);
  }
  return d;
}

}  // namespace mctest
