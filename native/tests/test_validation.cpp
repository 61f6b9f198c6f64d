// Argument validation: every rule yields its status and a message naming the argument, its value and the rule;
// rejected calls write nothing; a faulted context refuses work but can still be inspected and destroyed.
#include <gtest/gtest.h>

#include <string>

#include <cstring>

#include "core/registry.hpp"
#include "test_support.hpp"

using mctest::Context;

namespace {

struct GemmFixture {
  Context context{1};
  mc_grouped_gemm_plan plan = nullptr;
  mc_grouped_gemm_args args{};
  uint16_t* d = nullptr;

  GemmFixture() {
    const mc_grouped_gemm_desc desc = mctest::gemm_desc(2, 64, 128, 32);
    EXPECT_EQ(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_OK);
    args.struct_size = sizeof args;
    args.rows = 32;
    auto* a = context.alloc_array<uint8_t>(32 * 128);
    auto* b = context.alloc_array<uint8_t>(2 * 64 * 128);
    std::memset(a, 0x38, 32 * 128);
    std::memset(b, 0x38, 2 * 64 * 128);
    auto* a_scales = context.alloc_array<float>(32);
    auto* b_scales = context.alloc_array<float>(2);
    for (int i = 0; i < 32; ++i) a_scales[i] = 1.0f;
    b_scales[0] = b_scales[1] = 1.0f;
    auto* offsets = context.alloc_array<int32_t>(4);  // one spare slot for the misalignment test
    offsets[0] = 0;
    offsets[1] = 16;
    offsets[2] = 32;
    d = context.alloc_array<uint16_t>(32 * 64);
    args.a = a;
    args.a_scales = a_scales;
    args.b = b;
    args.b_scales = b_scales;
    args.expert_offsets = offsets;
    args.d = d;
  }
};

}  // namespace

TEST(Validation, PlanDescriptorRules) {
  Context context(1);
  struct Case {
    void (*mutate)(mc_grouped_gemm_desc&);
    mc_status status;
    const char* fragment;
  };
  const Case cases[] = {
      {[](mc_grouped_gemm_desc& d) { d.k = 100; }, MC_STATUS_MISALIGNED,
       "mc_grouped_gemm_plan_create: desc->k = 100 must be a multiple of 16 (MC_K_ALIGNMENT)"},
      {[](mc_grouped_gemm_desc& d) { d.n = 12; }, MC_STATUS_MISALIGNED,
       "desc->n = 12 must be a multiple of 8 (MC_N_ALIGNMENT)"},
      {[](mc_grouped_gemm_desc& d) { d.experts = 0; }, MC_STATUS_OUT_OF_RANGE,
       "desc->experts = 0 is outside 1 .. 4096 (MC_MAX_EXPERTS)"},
      {[](mc_grouped_gemm_desc& d) { d.experts = 4097; }, MC_STATUS_OUT_OF_RANGE, "desc->experts = 4097"},
      {[](mc_grouped_gemm_desc& d) { d.n = 0; }, MC_STATUS_OUT_OF_RANGE, "desc->n = 0 is outside 1 .. 1048576"},
      {[](mc_grouped_gemm_desc& d) { d.k = -16; }, MC_STATUS_OUT_OF_RANGE, "desc->k = -16"},
      {[](mc_grouped_gemm_desc& d) { d.k = MC_MAX_DIM + 16; }, MC_STATUS_OUT_OF_RANGE, "(MC_MAX_DIM)"},
      {[](mc_grouped_gemm_desc& d) { d.output_dtype = MC_DTYPE_FP32; }, MC_STATUS_INVALID_DTYPE,
       "desc->output_dtype = 1 is not MC_DTYPE_BF16 (2) or MC_DTYPE_FP16 (3)"},
      {[](mc_grouped_gemm_desc& d) { d.output_dtype = 99; }, MC_STATUS_INVALID_DTYPE, "desc->output_dtype = 99"},
      {[](mc_grouped_gemm_desc& d) { d.strategy = 5; }, MC_STATUS_INVALID_STRATEGY,
       "desc->strategy = 5 is not MC_STRATEGY_AUTO (0), MC_STRATEGY_SINGLE (1), MC_STRATEGY_EXPERT_SPECIALIZED (2), "
       "MC_STRATEGY_PERSISTENT (3) or MC_STRATEGY_CUBLAS (4)"},
      {[](mc_grouped_gemm_desc& d) { d.strategy = -1; }, MC_STATUS_INVALID_STRATEGY, "desc->strategy = -1"},
      {[](mc_grouped_gemm_desc& d) { d.max_rows = -1; }, MC_STATUS_OUT_OF_RANGE, "desc->max_rows = -1"},
  };
  for (const Case& c : cases) {
    mc_grouped_gemm_desc desc = mctest::gemm_desc(8, 4096, 7168, 256);
    c.mutate(desc);
    auto sentinel = reinterpret_cast<mc_grouped_gemm_plan>(uintptr_t{0x5A5A0});
    mc_grouped_gemm_plan plan = sentinel;
    MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), c.status, c.fragment);
    EXPECT_EQ(plan, sentinel) << "rejected plan_create wrote its out-parameter";
  }
  for (int32_t strategy : {MC_STRATEGY_AUTO, MC_STRATEGY_SINGLE, MC_STRATEGY_EXPERT_SPECIALIZED, MC_STRATEGY_PERSISTENT,
                           MC_STRATEGY_CUBLAS}) {
    mc_grouped_gemm_desc desc = mctest::gemm_desc(8, 4096, 7168, 0, MC_DTYPE_FP16);
    desc.strategy = strategy;
    mc_grouped_gemm_plan plan = nullptr;
    MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
    mc_grouped_gemm_plan_info info{};
    info.struct_size = sizeof info;
    MC_ASSERT_OK(mc_grouped_gemm_plan_get_info(plan, &info));
    EXPECT_EQ(info.strategy, strategy);
    EXPECT_EQ(info.backend, MC_BACKEND_CPU);
    EXPECT_EQ(info.workspace_bytes, 0);
    if (strategy == MC_STRATEGY_CUBLAS) {
      // cuBLAS picks its own kernels: no registry configuration to report.
      EXPECT_EQ(info.kernel_count, 0);
      EXPECT_EQ(info.config_count, 0);
      EXPECT_STREQ(info.kernels, "");
      EXPECT_STREQ(info.selection, "cuBLAS");
      MC_ASSERT_OK(mc_grouped_gemm_plan_destroy(plan));
      continue;
    }
    // The CPU reports what a GPU without a measured table would launch (the same selection step), and owns no
    // workspace: single and persistent take one configuration, the others the swapped ones too.
    EXPECT_EQ(info.kernel_count, strategy == MC_STRATEGY_SINGLE || strategy == MC_STRATEGY_PERSISTENT ? 1 : 3);
    EXPECT_EQ(info.config_count, info.kernel_count);
    EXPECT_NE(std::string(info.kernels).find("tile_128x128x128_c1x2_cooperative"), std::string::npos) << info.kernels;
    MC_ASSERT_OK(mc_grouped_gemm_plan_destroy(plan));
  }
  const mc_grouped_gemm_desc desc = mctest::gemm_desc(1, 8, 16, 1);
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, nullptr, nullptr), MC_STATUS_NULL_POINTER, "desc is NULL");
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, nullptr), MC_STATUS_NULL_POINTER, "plan is NULL");
}

TEST(Validation, RunArgumentRules) {
  GemmFixture f;
  MC_ASSERT_OK(mc_grouped_gemm_run(f.plan, &f.args, nullptr));
  EXPECT_EQ(f.d[0], 0x4300);  // 128 products of 1.0: bf16(128)
  for (int i = 0; i < 32 * 64; ++i) f.d[i] = 0x7777;

  struct Case {
    void (*mutate)(mc_grouped_gemm_args&);
    mc_status status;
    const char* fragment;
  };
  const Case cases[] = {
      {[](mc_grouped_gemm_args& a) { a.rows = 33; }, MC_STATUS_OUT_OF_RANGE,
       "args->rows = 33 is outside 0 .. 32 (the plan's max_rows)"},
      {[](mc_grouped_gemm_args& a) { a.rows = -1; }, MC_STATUS_OUT_OF_RANGE, "args->rows = -1"},
      {[](mc_grouped_gemm_args& a) { a.a = nullptr; }, MC_STATUS_NULL_POINTER, "args->a is NULL"},
      {[](mc_grouped_gemm_args& a) { a.a_scales = nullptr; }, MC_STATUS_NULL_POINTER, "args->a_scales is NULL"},
      {[](mc_grouped_gemm_args& a) { a.b = nullptr; }, MC_STATUS_NULL_POINTER, "args->b is NULL"},
      {[](mc_grouped_gemm_args& a) { a.b_scales = nullptr; }, MC_STATUS_NULL_POINTER, "args->b_scales is NULL"},
      {[](mc_grouped_gemm_args& a) { a.expert_offsets = nullptr; }, MC_STATUS_NULL_POINTER,
       "args->expert_offsets is NULL"},
      {[](mc_grouped_gemm_args& a) { a.d = nullptr; }, MC_STATUS_NULL_POINTER, "args->d is NULL"},
      {[](mc_grouped_gemm_args& a) { a.a = static_cast<const uint8_t*>(a.a) + 8; }, MC_STATUS_MISALIGNED,
       "must be 16-byte aligned (MC_POINTER_ALIGNMENT)"},
      {[](mc_grouped_gemm_args& a) { a.b = static_cast<const uint8_t*>(a.b) + 1; }, MC_STATUS_MISALIGNED,
       "args->b = 0x"},
      {[](mc_grouped_gemm_args& a) { a.a_scales = a.a_scales + 1; }, MC_STATUS_MISALIGNED, "args->a_scales = 0x"},
      {[](mc_grouped_gemm_args& a) { a.b_scales = a.b_scales + 2; }, MC_STATUS_MISALIGNED, "args->b_scales = 0x"},
      {[](mc_grouped_gemm_args& a) { a.d = static_cast<uint16_t*>(a.d) + 1; }, MC_STATUS_MISALIGNED, "args->d = 0x"},
      {[](mc_grouped_gemm_args& a) {
         a.expert_offsets = reinterpret_cast<const int32_t*>(reinterpret_cast<const char*>(a.expert_offsets) + 2);
       },
       MC_STATUS_MISALIGNED, "args->expert_offsets = 0x"},
  };
  for (const Case& c : cases) {
    mc_grouped_gemm_args args = f.args;
    c.mutate(args);
    MC_EXPECT_STATUS(mc_grouped_gemm_run(f.plan, &args, nullptr), c.status, c.fragment, "mc_grouped_gemm_run: ");
  }
  for (int i = 0; i < 32 * 64; ++i) ASSERT_EQ(f.d[i], 0x7777) << "a rejected run wrote D";
  MC_EXPECT_STATUS(mc_grouped_gemm_run(f.plan, nullptr, nullptr), MC_STATUS_NULL_POINTER, "args is NULL");

  // Offsets need only int32 alignment: shift them by 4 bytes (one element) and they are still accepted.
  auto* shifted = const_cast<int32_t*>(f.args.expert_offsets) + 1;
  shifted[0] = 0;
  shifted[1] = 16;
  shifted[2] = 32;
  mc_grouped_gemm_args args = f.args;
  args.expert_offsets = shifted;
  MC_ASSERT_OK(mc_grouped_gemm_run(f.plan, &args, nullptr));
}

TEST(Validation, ContextCreationRules) {
  mc_context context = nullptr;
  mc_context_desc desc = mctest::cpu_desc();
  desc.backend = 5;
  MC_EXPECT_STATUS(mc_context_create(&desc, &context), MC_STATUS_INVALID_BACKEND, "desc->backend = 5");
  desc = mctest::cpu_desc();
  desc.device = 1;
  MC_EXPECT_STATUS(mc_context_create(&desc, &context), MC_STATUS_OUT_OF_RANGE, "desc->device = 1");
  desc = mctest::cpu_desc();
  desc.cpu_threads = -1;
  MC_EXPECT_STATUS(mc_context_create(&desc, &context), MC_STATUS_OUT_OF_RANGE, "desc->cpu_threads = -1");
  desc = mctest::cpu_desc();
  MC_EXPECT_STATUS(mc_context_create(nullptr, &context), MC_STATUS_NULL_POINTER, "desc is NULL");
  MC_EXPECT_STATUS(mc_context_create(&desc, nullptr), MC_STATUS_NULL_POINTER, "context is NULL");
  EXPECT_EQ(context, nullptr);

  desc.cpu_threads = 3;
  MC_ASSERT_OK(mc_context_create(&desc, &context));
  mc_context_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_context_get_info(context, &info));
  EXPECT_EQ(info.cpu_threads, 3);
  EXPECT_EQ(info.device, 0);
  MC_ASSERT_OK(mc_context_destroy(context));
}

TEST(Validation, MemoryOperationRules) {
  Context context(1);
  auto* buffer = static_cast<uint8_t*>(context.alloc(256));
  const uint32_t value = 0;
  MC_EXPECT_STATUS(mc_memcpy_async(context, buffer, buffer, 16, 0, nullptr), MC_STATUS_INVALID_ARGUMENT, "kind = 0");
  MC_EXPECT_STATUS(mc_memcpy_async(context, buffer, buffer, 16, 4, nullptr), MC_STATUS_INVALID_ARGUMENT, "kind = 4");
  MC_EXPECT_STATUS(mc_memcpy_async(context, buffer, buffer, -1, MC_COPY_DEVICE_TO_DEVICE, nullptr),
                   MC_STATUS_OUT_OF_RANGE, "bytes = -1");
  MC_EXPECT_STATUS(mc_memcpy_async(context, nullptr, buffer, 1, MC_COPY_DEVICE_TO_DEVICE, nullptr),
                   MC_STATUS_NULL_POINTER, "dst is NULL");
  MC_EXPECT_STATUS(mc_fill_async(context, buffer, &value, 3, 4, nullptr), MC_STATUS_INVALID_ARGUMENT,
                   "element_size = 3 is not 1, 2 or 4");
  MC_EXPECT_STATUS(mc_fill_async(context, buffer, &value, 4, -2, nullptr), MC_STATUS_OUT_OF_RANGE, "count = -2");
  MC_EXPECT_STATUS(mc_fill_async(context, buffer + 2, &value, 4, 4, nullptr), MC_STATUS_MISALIGNED,
                   "must be 4-byte aligned");
  MC_EXPECT_STATUS(mc_fill_async(context, buffer, nullptr, 4, 4, nullptr), MC_STATUS_NULL_POINTER, "value is NULL");
  MC_EXPECT_STATUS(mc_fill_async(context, buffer, &value, 4, 65, nullptr), MC_STATUS_BUFFER_TOO_SMALL,
                   "needs 260 bytes");
  MC_EXPECT_STATUS(mc_convert_async(context, buffer, 0, buffer, MC_DTYPE_FP32, 1, nullptr), MC_STATUS_INVALID_DTYPE,
                   "src_dtype = 0");
  MC_EXPECT_STATUS(mc_convert_async(context, buffer, MC_DTYPE_FP32, buffer, 5, 1, nullptr), MC_STATUS_INVALID_DTYPE,
                   "dst_dtype = 5");
  MC_EXPECT_STATUS(mc_convert_async(context, buffer, MC_DTYPE_FP32, buffer, MC_DTYPE_E4M3, -1, nullptr),
                   MC_STATUS_OUT_OF_RANGE, "count = -1");
  MC_EXPECT_STATUS(mc_convert_async(context, buffer + 1, MC_DTYPE_BF16, buffer, MC_DTYPE_E4M3, 1, nullptr),
                   MC_STATUS_MISALIGNED, "src = 0x");
}

TEST(Validation, FaultedContextRefusesWorkButCanBeInspectedAndDestroyed) {
  const mc_context_desc desc = mctest::cpu_desc(1);
  mc_context context = nullptr;
  MC_ASSERT_OK(mc_context_create(&desc, &context));
  void* memory = nullptr;
  MC_ASSERT_OK(mc_malloc(context, 64, &memory));
  mc_stream stream = nullptr;
  MC_ASSERT_OK(mc_stream_create(context, &stream));
  // Simulate what the CUDA backend does on a sticky error (illegal address, launch failure).
  moecutlass::resolve<moecutlass::Context>(context, "context")->backend().mark_faulted();

  const uint8_t value = 1;
  MC_EXPECT_STATUS(mc_fill_async(context, memory, &value, 1, 64, nullptr), MC_STATUS_DEVICE_FAULT, "unusable");
  MC_EXPECT_STATUS(mc_context_synchronize(context), MC_STATUS_DEVICE_FAULT);
  MC_EXPECT_STATUS(mc_stream_synchronize(stream), MC_STATUS_DEVICE_FAULT);
  void* more = nullptr;
  MC_EXPECT_STATUS(mc_malloc(context, 64, &more), MC_STATUS_DEVICE_FAULT);
  EXPECT_EQ(more, nullptr);
  mc_event event = nullptr;
  MC_EXPECT_STATUS(mc_event_create(context, &event), MC_STATUS_DEVICE_FAULT);
  int32_t flags = -1;
  MC_EXPECT_STATUS(mc_context_query_device_errors(context, 0, &flags), MC_STATUS_DEVICE_FAULT);

  mc_context_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_context_get_info(context, &info));
  EXPECT_EQ(info.usable, 0);
  MC_ASSERT_OK(mc_free(context, memory));  // releasing still works
  MC_ASSERT_OK(mc_stream_destroy(stream));
  MC_ASSERT_OK(mc_context_destroy(context));
}
