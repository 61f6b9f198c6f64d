// The CUDA backend through the C ABI, on a machine with a CUDA device (skipped elsewhere): context, memory,
// copies, fills, streams, events, device info, and the kernels' host validation (the same as on the CPU).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "test_support.hpp"

namespace {

class CudaBackend : public ::testing::Test {
 protected:
  void SetUp() override {
    int32_t count = 0;
    ASSERT_EQ(mc_get_device_count(&count), MC_STATUS_OK);
    if (count == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
    mc_context_desc desc = mctest::cpu_desc();
    desc.backend = MC_BACKEND_CUDA;
    ASSERT_EQ(mc_context_create(&desc, &context_), MC_STATUS_OK) << mctest::last_error();
  }
  void TearDown() override { EXPECT_EQ(mc_context_destroy(context_), MC_STATUS_OK); }

  void* device_alloc(int64_t bytes) {
    void* pointer = nullptr;
    EXPECT_EQ(mc_malloc(context_, bytes, &pointer), MC_STATUS_OK) << mctest::last_error();
    return pointer;
  }

  mc_context context_ = nullptr;
};

}  // namespace

TEST_F(CudaBackend, DeviceInfoDescribesAGpu) {
  mc_device_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_get_device_info(0, &info));
  EXPECT_GT(std::strlen(info.name), 0u);
  EXPECT_GE(info.compute_major, 7);
  EXPECT_GT(info.multiprocessors, 0);
  EXPECT_GT(info.total_memory_bytes, int64_t{1} << 30);
  EXPECT_GT(info.peak_memory_bandwidth_gbps, 100.0);
  // A CUDA build's grouped-GEMM kernels are sm_90a code, which runs on compute capability 9.0 alone.
  EXPECT_EQ(info.has_sm90a, info.compute_major == 9 && info.compute_minor == 0 ? 1 : 0)
      << "compute capability " << info.compute_major << "." << info.compute_minor;
  int32_t count = 0;
  MC_ASSERT_OK(mc_get_device_count(&count));
  MC_EXPECT_STATUS(mc_get_device_info(count, &info), MC_STATUS_NO_DEVICE, "does not exist");
  mc_context_desc desc = mctest::cpu_desc();
  desc.backend = MC_BACKEND_CUDA;
  desc.device = count;
  mc_context other = nullptr;
  MC_EXPECT_STATUS(mc_context_create(&desc, &other), MC_STATUS_NO_DEVICE, "desc->device");
}

TEST_F(CudaBackend, CopiesAndFillsRoundTrip) {
  const int64_t n = 1 << 20;
  auto* a = static_cast<uint8_t*>(device_alloc(n * 4));
  auto* b = static_cast<uint8_t*>(device_alloc(n * 4));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 256, 0u);
  std::vector<uint32_t> host(n), back(n, 0);
  for (int64_t i = 0; i < n; ++i) host[i] = static_cast<uint32_t>(i * 2654435761u);
  MC_ASSERT_OK(mc_memcpy_async(context_, a, host.data(), n * 4, MC_COPY_HOST_TO_DEVICE, nullptr));
  MC_ASSERT_OK(mc_memcpy_async(context_, b, a, n * 4, MC_COPY_DEVICE_TO_DEVICE, nullptr));
  MC_ASSERT_OK(mc_memcpy_async(context_, back.data(), b, n * 4, MC_COPY_DEVICE_TO_HOST, nullptr));
  MC_ASSERT_OK(mc_context_synchronize(context_));
  EXPECT_EQ(back, host);

  const uint32_t word = 0xDEADBEEF;
  const uint16_t half = 0x1234;
  const uint8_t byte = 0x5A;
  MC_ASSERT_OK(mc_fill_async(context_, a, &word, 4, n, nullptr));
  MC_ASSERT_OK(mc_fill_async(context_, a, &half, 2, 3, nullptr));
  MC_ASSERT_OK(mc_fill_async(context_, a + 8, &byte, 1, 2, nullptr));
  MC_ASSERT_OK(mc_memcpy_async(context_, back.data(), a, n * 4, MC_COPY_DEVICE_TO_HOST, nullptr));
  MC_ASSERT_OK(mc_context_synchronize(context_));
  EXPECT_EQ(back[0], 0x12341234u);
  EXPECT_EQ(back[1], 0xDEAD1234u);
  EXPECT_EQ(back[2], 0xDEAD5A5Au);
  EXPECT_EQ(back[n - 1], 0xDEADBEEFu);

  MC_EXPECT_STATUS(mc_memcpy_async(context_, a, b, n * 4 + 1, MC_COPY_DEVICE_TO_DEVICE, nullptr),
                   MC_STATUS_BUFFER_TOO_SMALL, "dst");
  MC_EXPECT_STATUS(mc_memcpy_async(context_, a, b, 16, MC_COPY_HOST_TO_DEVICE, nullptr), MC_STATUS_INVALID_ARGUMENT,
                   "src = 0x", "device memory of this context");
  MC_ASSERT_OK(mc_free(context_, a));
  MC_ASSERT_OK(mc_free(context_, b));
}

TEST_F(CudaBackend, StreamsAndEventsTimeDeviceWork) {
  mc_stream stream = nullptr;
  mc_event start = nullptr, end = nullptr;
  MC_ASSERT_OK(mc_stream_create(context_, &stream));
  void* native = nullptr;
  MC_ASSERT_OK(mc_stream_get_native(stream, &native));
  EXPECT_NE(native, nullptr);
  MC_ASSERT_OK(mc_event_create(context_, &start));
  MC_ASSERT_OK(mc_event_create(context_, &end));
  auto* buffer = device_alloc(int64_t{256} << 20);
  const uint32_t word = 7;
  MC_ASSERT_OK(mc_event_record(start, stream));
  for (int i = 0; i < 4; ++i) MC_ASSERT_OK(mc_fill_async(context_, buffer, &word, 4, int64_t{64} << 20, stream));
  MC_ASSERT_OK(mc_event_record(end, stream));
  MC_ASSERT_OK(mc_event_synchronize(end));
  EXPECT_EQ(mc_event_query(end), MC_STATUS_OK);
  float ms = 0.0f;
  MC_ASSERT_OK(mc_event_elapsed_ms(start, end, &ms));
  EXPECT_GT(ms, 0.0f);
  MC_ASSERT_OK(mc_stream_synchronize(stream));
  int32_t flags = -1;
  MC_ASSERT_OK(mc_context_query_device_errors(context_, 1, &flags));
  EXPECT_EQ(flags, 0);
  MC_ASSERT_OK(mc_event_destroy(start));
  MC_ASSERT_OK(mc_event_destroy(end));
  MC_ASSERT_OK(mc_stream_destroy(stream));
}

TEST_F(CudaBackend, KernelsValidateBeforeTheyRun) {
  auto* buffer = static_cast<uint8_t*>(device_alloc(1 << 20));
  auto* scales = reinterpret_cast<float*>(buffer + (1 << 19));
  MC_EXPECT_STATUS(mc_convert_async(context_, buffer, MC_DTYPE_FP32, buffer, 9, 4, nullptr), MC_STATUS_INVALID_DTYPE);
  // Conversion and quantization run on the device (their numerics are compared with the CPU reference by the
  // NUnit Gpu suite, CudaQuantizationTests); here: validated first, then accepted.
  MC_ASSERT_OK(mc_convert_async(context_, buffer, MC_DTYPE_FP32, buffer + 4096, MC_DTYPE_E4M3, 16, nullptr));
  MC_EXPECT_STATUS(mc_quantize_activations_async(context_, buffer, MC_DTYPE_FP32, 4, 100, buffer, scales, nullptr),
                   MC_STATUS_MISALIGNED, "cols = 100");
  MC_ASSERT_OK(mc_quantize_activations_async(context_, buffer, MC_DTYPE_BF16, 4, 128, buffer + 4096, scales, nullptr));
  MC_ASSERT_OK(
      mc_quantize_weights_async(context_, buffer, MC_DTYPE_BF16, 1, 128, 128, buffer + 65536, scales, nullptr));
  MC_ASSERT_OK(mc_context_synchronize(context_));

  mc_grouped_gemm_desc desc = mctest::gemm_desc(2, 64, 100, 16);
  mc_grouped_gemm_plan plan = nullptr;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context_, &desc, &plan), MC_STATUS_MISALIGNED, "desc->k = 100");
  desc.k = 128;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context_, &desc, &plan));
  mc_grouped_gemm_plan_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_grouped_gemm_plan_get_info(plan, &info));
  EXPECT_EQ(info.backend, MC_BACKEND_CUDA);
  mc_grouped_gemm_args args{};
  args.struct_size = sizeof args;
  args.rows = 16;
  args.a = buffer;
  args.a_scales = scales;
  args.b = buffer + 4096;
  args.b_scales = scales + 64;
  args.expert_offsets = reinterpret_cast<const int32_t*>(buffer + 65536);  // device memory: never read on the host
  args.d = buffer + 131072;
  args.rows = 17;
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_OUT_OF_RANGE, "args->rows = 17");
  args.rows = 16;
  const int32_t offsets[3] = {0, 8, 16};
  MC_ASSERT_OK(mc_memcpy_async(context_, buffer + 65536, offsets, sizeof offsets, MC_COPY_HOST_TO_DEVICE, nullptr));
  MC_ASSERT_OK(mc_grouped_gemm_run(plan, &args, nullptr));
  MC_ASSERT_OK(mc_context_synchronize(context_));
  mctest::Context cpu(1);
  mc_stream cpu_stream = nullptr;
  MC_ASSERT_OK(mc_stream_create(cpu, &cpu_stream));
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, cpu_stream), MC_STATUS_CONTEXT_MISMATCH);
  MC_ASSERT_OK(mc_grouped_gemm_plan_destroy(plan));
}
