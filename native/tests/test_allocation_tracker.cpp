// Allocation tracking: pointers into context memory are checked against the bytes a tensor needs; memory of another
// context is rejected, and so is any other non-context pointer on the CPU backend; mc_free accepts only live allocation starts of the same context; sizes are int64.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/allocation_tracker.hpp"
#include "core/error.hpp"
#include "test_support.hpp"

using mctest::Context;

TEST(AllocationTracker, ChecksRemainingBytesFromInteriorPointers) {
  moecutlass::AllocationTracker tracker;
  std::vector<char> a(1000), b(500);
  tracker.add(a.data(), 1000);
  tracker.add(b.data(), 500);
  EXPECT_NO_THROW(tracker.check(a.data(), 1000, "x"));
  EXPECT_NO_THROW(tracker.check(a.data() + 999, 1, "x"));
  EXPECT_NO_THROW(tracker.check(b.data() + 100, 400, "x"));
  try {
    tracker.check(a.data() + 10, 991, "args->d");
    FAIL() << "expected BUFFER_TOO_SMALL";
  } catch (const moecutlass::Error& error) {
    EXPECT_EQ(error.status(), MC_STATUS_BUFFER_TOO_SMALL);
    const std::string message = error.what();
    EXPECT_NE(message.find("args->d"), std::string::npos) << message;
    EXPECT_NE(message.find("needs 991 bytes"), std::string::npos) << message;
    EXPECT_NE(message.find("only 990 bytes remain"), std::string::npos) << message;
  }
  char foreign[16];
  EXPECT_NO_THROW(tracker.check(foreign, int64_t{1} << 40, "x"));  // unknown memory: unchecked
  EXPECT_EQ(tracker.live_bytes(), 1500);
  EXPECT_EQ(tracker.live_count(), 2);
  EXPECT_THROW(tracker.remove(a.data() + 1, "pointer"), moecutlass::Error);
  EXPECT_EQ(tracker.remove(a.data(), "pointer"), 1000);
  EXPECT_THROW(tracker.remove(a.data(), "pointer"), moecutlass::Error);
  EXPECT_NO_THROW(tracker.check(a.data(), int64_t{1} << 40, "x"));  // no longer tracked
  EXPECT_EQ(tracker.live_bytes(), 500);
}

TEST(AllocationTracker, ContextInfoCountsLiveAllocations) {
  Context context(1);
  void* p = context.alloc(1000);
  void* q = context.alloc(24);
  mc_context_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_context_get_info(context, &info));
  EXPECT_EQ(info.allocated_bytes, 1024);
  EXPECT_EQ(info.allocation_count, 2);
  EXPECT_EQ(info.backend, MC_BACKEND_CPU);
  EXPECT_EQ(info.usable, 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(q) % 256, 0u);
  MC_ASSERT_OK(mc_free(context, p));
  MC_ASSERT_OK(mc_context_get_info(context, &info));
  EXPECT_EQ(info.allocated_bytes, 24);
  EXPECT_EQ(info.allocation_count, 1);
}

TEST(AllocationTracker, CopiesIntoContextMemoryAreRangeChecked) {
  Context context(1);
  auto* buffer = static_cast<char*>(context.alloc(1000));
  std::vector<char> host(2000, 1);
  MC_EXPECT_STATUS(mc_memcpy_async(context, buffer, host.data(), 1001, MC_COPY_HOST_TO_DEVICE, nullptr),
                   MC_STATUS_BUFFER_TOO_SMALL, "dst = 0x", "needs 1001 bytes", "only 1000 bytes remain");
  MC_EXPECT_STATUS(mc_memcpy_async(context, host.data(), buffer + 500, 501, MC_COPY_DEVICE_TO_HOST, nullptr),
                   MC_STATUS_BUFFER_TOO_SMALL, "src = 0x", "needs 501 bytes", "only 500 bytes remain");
  MC_ASSERT_OK(mc_memcpy_async(context, host.data(), buffer + 500, 500, MC_COPY_DEVICE_TO_HOST, nullptr));
  // The host end of a copy is any host memory; a device-to-device copy needs context memory on both ends.
  auto* other = static_cast<char*>(context.alloc(2000));
  MC_ASSERT_OK(mc_memcpy_async(context, other, host.data(), 2000, MC_COPY_HOST_TO_DEVICE, nullptr));
  EXPECT_EQ(other[1999], 1);
}

TEST(AllocationTracker, FreeAcceptsOnlyLiveAllocationStartsOfTheSameContext) {
  Context a(1), b(1);
  auto* p = static_cast<char*>(a.alloc(256));
  int host = 0;
  MC_EXPECT_STATUS(mc_free(a, &host), MC_STATUS_INVALID_ARGUMENT, "pointer = 0x", "was not allocated by mc_malloc");
  MC_EXPECT_STATUS(mc_free(a, p + 16), MC_STATUS_INVALID_ARGUMENT, "is not its start");
  MC_EXPECT_STATUS(mc_free(b, p), MC_STATUS_INVALID_ARGUMENT, "not allocated by mc_malloc on this context");
  MC_ASSERT_OK(mc_free(a, nullptr));
  MC_ASSERT_OK(mc_free(a, p));
  MC_EXPECT_STATUS(mc_free(a, p), MC_STATUS_INVALID_ARGUMENT, "already freed");
}

TEST(AllocationTracker, MallocValidatesSizeAndReportsOutOfMemory) {
  Context context(1);
  void* pointer = reinterpret_cast<void*>(uintptr_t{0x1234});
  MC_EXPECT_STATUS(mc_malloc(context, 0, &pointer), MC_STATUS_OUT_OF_RANGE, "bytes = 0");
  MC_EXPECT_STATUS(mc_malloc(context, -8, &pointer), MC_STATUS_OUT_OF_RANGE, "bytes = -8");
  MC_EXPECT_STATUS(mc_malloc(context, int64_t{1} << 62, &pointer), MC_STATUS_OUT_OF_MEMORY, "4611686018427387904");
  EXPECT_EQ(pointer, reinterpret_cast<void*>(uintptr_t{0x1234}));  // rejected calls write nothing
  MC_EXPECT_STATUS(mc_malloc(context, 16, nullptr), MC_STATUS_NULL_POINTER, "pointer is NULL");
}

TEST(AllocationTracker, TensorSizesUseInt64) {
  // E * N * K = 2^52 bytes: far beyond int32, and a tracked pointer cannot hold it.
  Context context(1);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(4096, 1048576, 1048576, 16);
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  auto* memory = static_cast<uint8_t*>(context.alloc(1 << 20));
  mc_grouped_gemm_args args{};
  args.struct_size = sizeof args;
  args.rows = 0;
  args.a = memory;
  args.a_scales = reinterpret_cast<const float*>(memory);
  args.b = memory;
  args.b_scales = reinterpret_cast<const float*>(memory);
  args.expert_offsets = reinterpret_cast<const int32_t*>(memory);
  args.d = memory;
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_BUFFER_TOO_SMALL, "args->b = 0x",
                   "needs 4503599627370496 bytes");
}

TEST(AllocationTracker, GemmOutputTooSmallIsNamed) {
  Context context(1);
  const mc_grouped_gemm_desc desc = mctest::gemm_desc(2, 64, 128, 32);
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  mc_grouped_gemm_args args{};
  args.struct_size = sizeof args;
  args.rows = 32;
  args.a = context.alloc(32 * 128);
  args.a_scales = context.alloc_array<float>(32);
  args.b = context.alloc(2 * 64 * 128);
  args.b_scales = context.alloc_array<float>(2);
  auto* offsets = context.alloc_array<int32_t>(3);
  offsets[0] = 0;
  offsets[1] = 10;
  offsets[2] = 32;
  args.expert_offsets = offsets;
  auto* d = context.alloc_array<uint16_t>(32 * 64 - 1);
  d[0] = 0x1111;
  args.d = d;
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_BUFFER_TOO_SMALL, "args->d", "needs 4096 bytes",
                   "only 4094 bytes remain");
  EXPECT_EQ(d[0], 0x1111);
  args.d = context.alloc_array<uint16_t>(32 * 64);
  args.a_scales = reinterpret_cast<const float*>(static_cast<const uint8_t*>(args.a) + 32 * 128 - 16);
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_BUFFER_TOO_SMALL, "args->a_scales",
                   "needs 128 bytes", "only 16 bytes remain");
}

// Issue 14 item 5 (fuzzing): a buffer of another context was not size-checked, so this copy returned OK and wrote
// 4096 bytes into a 16-byte allocation. Every entry point that takes context memory must reject it.
TEST(AllocationTracker, MemoryOfAnotherContextIsRejected) {
  Context a(1), b(1);
  auto* p = static_cast<uint8_t*>(b.alloc(16));
  std::memset(p, 0, 16);  // CPU context memory is host memory
  std::vector<uint8_t> host(4096, 7);
  MC_EXPECT_STATUS(mc_memcpy_async(a, p, host.data(), 4096, MC_COPY_HOST_TO_DEVICE, nullptr),
                   MC_STATUS_INVALID_ARGUMENT, "dst = 0x", "allocation of another context");
  MC_EXPECT_STATUS(mc_memcpy_async(a, host.data(), p, 4096, MC_COPY_DEVICE_TO_HOST, nullptr),
                   MC_STATUS_INVALID_ARGUMENT, "src = 0x", "allocation of another context");
  auto* mine = static_cast<uint8_t*>(a.alloc(4096));
  MC_EXPECT_STATUS(mc_memcpy_async(a, mine, p, 4096, MC_COPY_DEVICE_TO_DEVICE, nullptr), MC_STATUS_INVALID_ARGUMENT,
                   "src = 0x", "another context");
  // The host end of a copy must not be another context's allocation either.
  MC_EXPECT_STATUS(mc_memcpy_async(a, mine, p, 4096, MC_COPY_HOST_TO_DEVICE, nullptr), MC_STATUS_INVALID_ARGUMENT,
                   "src = 0x", "another context");
  const uint32_t pattern = 0xdeadbeef;
  MC_EXPECT_STATUS(mc_fill_async(a, p, &pattern, 4, 1024, nullptr), MC_STATUS_INVALID_ARGUMENT, "dst = 0x",
                   "another context");
  MC_EXPECT_STATUS(mc_convert_async(a, mine, MC_DTYPE_FP32, p, MC_DTYPE_FP32, 1024, nullptr),
                   MC_STATUS_INVALID_ARGUMENT, "dst = 0x", "another context");
  MC_EXPECT_STATUS(mc_quantize_activations_async(a, mine, MC_DTYPE_FP32, 4, 128, p, reinterpret_cast<float*>(mine),
                                                 nullptr),
                   MC_STATUS_INVALID_ARGUMENT, "output = 0x", "another context");
  MC_EXPECT_STATUS(mc_quantize_weights_async(a, mine, MC_DTYPE_BF16, 1, 16, 16, mine + 1024,
                                             reinterpret_cast<float*>(p), nullptr),
                   MC_STATUS_INVALID_ARGUMENT, "scales = 0x", "another context");
  for (int i = 0; i < 16; ++i) EXPECT_EQ(p[i], 0) << "byte " << i << " of b's buffer was written";

  const mc_grouped_gemm_desc desc = mctest::gemm_desc(1, 16, 16, 8);
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(a, &desc, &plan));
  auto* offsets = a.alloc_array<int32_t>(2);
  offsets[0] = 0;
  offsets[1] = 8;
  mc_grouped_gemm_args args{};
  args.struct_size = sizeof args;
  args.rows = 8;
  args.a = mine;
  args.a_scales = reinterpret_cast<const float*>(mine + 256);
  args.b = mine + 512;
  args.b_scales = reinterpret_cast<const float*>(mine + 1024);
  args.expert_offsets = offsets;
  args.d = p;  // needs 8 * 16 * 2 = 256 bytes
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_INVALID_ARGUMENT, "args->d = 0x",
                   "another context");
  for (int i = 0; i < 16; ++i) EXPECT_EQ(p[i], 0) << "byte " << i << " of b's buffer was written";
}

// On the CPU backend, a pointer that no context allocated (plain host memory) cannot be size-checked, so it is not
// accepted where context memory is required.
TEST(AllocationTracker, CpuBackendRequiresContextMemoryForDeviceOperands) {
  Context context(1);
  std::vector<uint8_t> host(64, 1), other(64, 2);
  MC_EXPECT_STATUS(mc_memcpy_async(context, other.data(), host.data(), 4096, MC_COPY_HOST_TO_DEVICE, nullptr),
                   MC_STATUS_INVALID_ARGUMENT, "dst = 0x", "is not inside an mc_malloc allocation of context",
                   "must be context memory");
  MC_EXPECT_STATUS(mc_memcpy_async(context, other.data(), host.data(), 64, MC_COPY_DEVICE_TO_DEVICE, nullptr),
                   MC_STATUS_INVALID_ARGUMENT, "dst = 0x", "must be context memory");
  const uint8_t zero = 0;
  MC_EXPECT_STATUS(mc_fill_async(context, other.data(), &zero, 1, 4096, nullptr), MC_STATUS_INVALID_ARGUMENT,
                   "dst = 0x", "must be context memory");
  EXPECT_EQ(other[0], 2);
}
