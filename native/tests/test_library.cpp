// Library-level entry points: ABI version, build info and the struct_size rule, status names, the last-error
// contract (thread-local, cleared on success, not cleared by reading), struct layouts, device queries without CUDA.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <map>
#include <string>
#include <thread>

#include "core/struct_layout.hpp"
#include "test_support.hpp"

TEST(Library, AbiVersionMatchesHeader) {
  int32_t version = -1;
  MC_ASSERT_OK(mc_get_abi_version(&version));
  EXPECT_EQ(version, MC_ABI_VERSION);
  MC_EXPECT_STATUS(mc_get_abi_version(nullptr), MC_STATUS_NULL_POINTER, "abi_version is NULL");
}

TEST(Library, BuildInfoIsConsistent) {
  mc_build_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_get_build_info(&info));
  EXPECT_EQ(info.struct_size, sizeof info);
  EXPECT_EQ(info.abi_version, MC_ABI_VERSION);
  const std::string prefix = std::to_string(info.version_major) + "." + std::to_string(info.version_minor) + "." +
                             std::to_string(info.version_patch);
  const std::string version = info.version;
  EXPECT_EQ(version.rfind(prefix, 0), 0u) << version;
  if (info.git_commit[0] != '\0') {
    EXPECT_EQ(version, prefix + "+" + info.git_commit);
  } else {
    EXPECT_EQ(version, prefix);
  }
  EXPECT_GT(std::strlen(info.compiler), 0u);
#if defined(MOECUTLASS_WITH_CUDA)
  EXPECT_EQ(info.has_cuda, 1);
  // The grouped GEMMs' sm_90a among the build's architectures (by default 80;89;90a, and 100 with nvcc 12.8+).
  const std::string architectures = std::string(";") + info.cuda_architectures + ";";
  EXPECT_NE(architectures.find(";90a;"), std::string::npos) << info.cuda_architectures;
#else
  EXPECT_EQ(info.has_cuda, 0);
  EXPECT_STREQ(info.cuda_architectures, "");
#endif
}

TEST(Library, EveryStructRejectsAnotherStructSizeAndWritesNothing) {
  for (uint32_t size : {0u, static_cast<uint32_t>(sizeof(mc_build_info) - 4),
                        static_cast<uint32_t>(sizeof(mc_build_info) + 8), 0xFFFFFFFFu}) {
    mc_build_info info;
    std::memset(&info, 0xCD, sizeof info);
    info.struct_size = size;
    // Named strings: temporaries inside the macro's range-for initializer would not outlive the loop.
    const std::string value = "info->struct_size = " + std::to_string(size);
    const std::string expected = "expected sizeof(mc_build_info) = " + std::to_string(sizeof(mc_build_info));
    MC_EXPECT_STATUS(mc_get_build_info(&info), MC_STATUS_INVALID_STRUCT_SIZE, value.c_str(), expected.c_str());
    EXPECT_EQ(info.abi_version, static_cast<int32_t>(0xCDCDCDCD)) << "a rejected call wrote its out-parameter";
  }
  mc_device_info device{};
  device.struct_size = 12;
  MC_EXPECT_STATUS(mc_get_device_info(0, &device), MC_STATUS_INVALID_STRUCT_SIZE, "mc_device_info");
  mc_context_desc desc = mctest::cpu_desc();
  desc.struct_size = 4;
  mc_context context = nullptr;
  MC_EXPECT_STATUS(mc_context_create(&desc, &context), MC_STATUS_INVALID_STRUCT_SIZE, "desc->struct_size = 4",
                   "mc_context_desc");
  EXPECT_EQ(context, nullptr);
  mctest::Context ctx(1);
  mc_context_info info{};
  info.struct_size = sizeof info + 1;
  MC_EXPECT_STATUS(mc_context_get_info(ctx, &info), MC_STATUS_INVALID_STRUCT_SIZE, "mc_context_info");
  mc_grouped_gemm_desc gemm = mctest::gemm_desc(1, 8, 16, 1);
  gemm.struct_size = 8;
  mc_grouped_gemm_plan plan = nullptr;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(ctx, &gemm, &plan), MC_STATUS_INVALID_STRUCT_SIZE,
                   "mc_grouped_gemm_desc");
  gemm.struct_size = sizeof gemm;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(ctx, &gemm, &plan));
  mc_grouped_gemm_plan_info plan_info{};
  plan_info.struct_size = 0;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_get_info(plan, &plan_info), MC_STATUS_INVALID_STRUCT_SIZE,
                   "mc_grouped_gemm_plan_info");
  mc_grouped_gemm_args args{};
  args.struct_size = sizeof args - 8;
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_INVALID_STRUCT_SIZE,
                   "mc_grouped_gemm_args");
}

TEST(Library, StatusNames) {
  const std::map<mc_status, std::string> expected = {
      {MC_STATUS_OK, "MC_STATUS_OK"},
      {MC_STATUS_NULL_POINTER, "MC_STATUS_NULL_POINTER"},
      {MC_STATUS_OUT_OF_RANGE, "MC_STATUS_OUT_OF_RANGE"},
      {MC_STATUS_MISALIGNED, "MC_STATUS_MISALIGNED"},
      {MC_STATUS_INVALID_DTYPE, "MC_STATUS_INVALID_DTYPE"},
      {MC_STATUS_INVALID_STRATEGY, "MC_STATUS_INVALID_STRATEGY"},
      {MC_STATUS_INVALID_BACKEND, "MC_STATUS_INVALID_BACKEND"},
      {MC_STATUS_INVALID_HANDLE, "MC_STATUS_INVALID_HANDLE"},
      {MC_STATUS_CONTEXT_MISMATCH, "MC_STATUS_CONTEXT_MISMATCH"},
      {MC_STATUS_INVALID_OFFSETS, "MC_STATUS_INVALID_OFFSETS"},
      {MC_STATUS_BUFFER_TOO_SMALL, "MC_STATUS_BUFFER_TOO_SMALL"},
      {MC_STATUS_INVALID_STRUCT_SIZE, "MC_STATUS_INVALID_STRUCT_SIZE"},
      {MC_STATUS_INVALID_ARGUMENT, "MC_STATUS_INVALID_ARGUMENT"},
      {MC_STATUS_NOT_READY, "MC_STATUS_NOT_READY"},
      {MC_STATUS_BUSY, "MC_STATUS_BUSY"},
      {MC_STATUS_UNSUPPORTED, "MC_STATUS_UNSUPPORTED"},
      {MC_STATUS_NO_DEVICE, "MC_STATUS_NO_DEVICE"},
      {MC_STATUS_OUT_OF_MEMORY, "MC_STATUS_OUT_OF_MEMORY"},
      {MC_STATUS_DEVICE_FAULT, "MC_STATUS_DEVICE_FAULT"},
      {MC_STATUS_CUDA_ERROR, "MC_STATUS_CUDA_ERROR"},
      {MC_STATUS_INTERNAL, "MC_STATUS_INTERNAL"},
  };
  for (const auto& [status, name] : expected) {
    const char* text = nullptr;
    MC_ASSERT_OK(mc_status_name(status, &text));
    EXPECT_EQ(text, name);
  }
  const char* text = "unchanged";
  MC_EXPECT_STATUS(mc_status_name(15, &text), MC_STATUS_INVALID_ARGUMENT, "status = 15");
  EXPECT_STREQ(text, "unchanged");
}

TEST(Library, LastErrorIsClearedOnSuccessNotByReadingAndIsPerThread) {
  int32_t version = 0;
  EXPECT_EQ(mc_get_abi_version(nullptr), MC_STATUS_NULL_POINTER);
  const char* first = nullptr;
  const char* second = nullptr;
  MC_ASSERT_OK(mc_get_last_error(&first));
  EXPECT_STREQ(first, "mc_get_abi_version: abi_version is NULL");
  MC_ASSERT_OK(mc_get_last_error(&second));
  EXPECT_STREQ(second, "mc_get_abi_version: abi_version is NULL");  // reading does not clear
  std::string other_thread = "not run";
  std::thread([&] {
    const char* message = nullptr;
    mc_get_last_error(&message);
    other_thread = message;
  }).join();
  EXPECT_EQ(other_thread, "");
  MC_ASSERT_OK(mc_get_abi_version(&version));
  MC_ASSERT_OK(mc_get_last_error(&first));
  EXPECT_STREQ(first, "");
  EXPECT_EQ(mc_get_last_error(nullptr), MC_STATUS_NULL_POINTER);
}

TEST(StructLayout, TableMatchesTheCompilersLayout) {
  auto query = [](const char* s, const char* f) {
    int64_t value = -1;
    EXPECT_EQ(mc_get_struct_layout(s, f, &value), MC_STATUS_OK) << s << "." << (f ? f : "") << mctest::last_error();
    return value;
  };
  EXPECT_EQ(query("mc_build_info", nullptr), static_cast<int64_t>(sizeof(mc_build_info)));
  EXPECT_EQ(query("mc_build_info", ""), static_cast<int64_t>(sizeof(mc_build_info)));
  EXPECT_EQ(query("mc_build_info", "compiler"), static_cast<int64_t>(offsetof(mc_build_info, compiler)));
  EXPECT_EQ(query("mc_device_info", "peak_memory_bandwidth_gbps"),
            static_cast<int64_t>(offsetof(mc_device_info, peak_memory_bandwidth_gbps)));
  EXPECT_EQ(query("mc_context_info", "allocated_bytes"),
            static_cast<int64_t>(offsetof(mc_context_info, allocated_bytes)));
  EXPECT_EQ(query("mc_grouped_gemm_args", "d"), static_cast<int64_t>(offsetof(mc_grouped_gemm_args, d)));
  EXPECT_EQ(query("mc_grouped_gemm_plan_info", "kernels"),
            static_cast<int64_t>(offsetof(mc_grouped_gemm_plan_info, kernels)));
  EXPECT_EQ(query("mc_context_desc", nullptr), static_cast<int64_t>(sizeof(mc_context_desc)));
  EXPECT_EQ(query("mc_grouped_gemm_desc", "max_rows"), static_cast<int64_t>(offsetof(mc_grouped_gemm_desc, max_rows)));

  // Every public struct is listed, starts with struct_size at 0, and has increasing offsets inside its size.
  std::map<std::string, int64_t> sizes;
  std::map<std::string, int64_t> last_offset;
  for (const auto& entry : moecutlass::struct_layout_table()) {
    if (entry.field_name == nullptr) {
      sizes[entry.struct_name] = entry.value;
      continue;
    }
    ASSERT_TRUE(sizes.count(entry.struct_name)) << entry.struct_name << " fields before the struct";
    if (std::string(entry.field_name) == "struct_size") {
      EXPECT_EQ(entry.value, 0) << entry.struct_name;
    } else {
      EXPECT_GT(entry.value, last_offset[entry.struct_name]) << entry.struct_name << "." << entry.field_name;
    }
    EXPECT_LT(entry.value, sizes[entry.struct_name]) << entry.struct_name << "." << entry.field_name;
    last_offset[entry.struct_name] = entry.value;
  }
  EXPECT_EQ(sizes.size(), 16u);  // every public struct of moecutlass.h

  int64_t value = 42;
  MC_EXPECT_STATUS(mc_get_struct_layout("mc_nope", nullptr, &value), MC_STATUS_INVALID_ARGUMENT,
                   "struct_name = \"mc_nope\"");
  MC_EXPECT_STATUS(mc_get_struct_layout("mc_build_info", "nope", &value), MC_STATUS_INVALID_ARGUMENT,
                   "field_name = \"nope\"", "mc_build_info");
  MC_EXPECT_STATUS(mc_get_struct_layout(nullptr, nullptr, &value), MC_STATUS_NULL_POINTER, "struct_name is NULL");
  EXPECT_EQ(value, 42);
}

TEST(Devices, WithoutCudaThereAreNoDevicesAndCudaContextsAreUnsupported) {
  int32_t count = -1;
  MC_ASSERT_OK(mc_get_device_count(&count));
  EXPECT_GE(count, 0);
#if !defined(MOECUTLASS_WITH_CUDA)
  EXPECT_EQ(count, 0);
  mc_device_info info{};
  info.struct_size = sizeof info;
  MC_EXPECT_STATUS(mc_get_device_info(0, &info), MC_STATUS_UNSUPPORTED, "built without CUDA");
  mc_context_desc desc = mctest::cpu_desc();
  desc.backend = MC_BACKEND_CUDA;
  mc_context context = nullptr;
  MC_EXPECT_STATUS(mc_context_create(&desc, &context), MC_STATUS_UNSUPPORTED,
                   "MoeCutlass was built without CUDA (MOECUTLASS_CUDA=OFF or no CUDA compiler); use MC_BACKEND_CPU");
  EXPECT_EQ(context, nullptr);
#endif
  mc_device_info any{};
  any.struct_size = sizeof any;
  MC_EXPECT_STATUS(mc_get_device_info(-1, &any), MC_STATUS_OUT_OF_RANGE, "device = -1");
}
