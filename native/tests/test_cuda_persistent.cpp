// The persistent MoE kernel (cuda/persistent) against the pointer-array path forced to the same configuration, on
// the same device operands: both run CUTLASS's blockwise mainloop over the same tiles, so D must agree bit for bit.
// Around every expert's D block and beyond `rows` the output holds a canary that no tile may overwrite. Skipped
// without a CUDA device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/kernel_registry.hpp"
#include "cuda/persistent/moe_persistent.hpp"
#include "gemm_operands.hpp"
#include "test_support.hpp"

using moecutlass::cuda::persistent::launch_moe_persistent;
using moecutlass::cuda::persistent::moe_persistent_supports;
using moecutlass::cuda::persistent::prepare_moe_persistent;
using moecutlass::cuda::persistent::MoePersistentJob;

namespace {

constexpr uint16_t kCanary = 0x7E01;  // a NaN payload neither kernel produces
constexpr int32_t kGuardRows = 5;

using Operands = mctest::GemmOperands;

Operands make_operands(int32_t n, int32_t k, const std::vector<int32_t>& rows_per_expert, uint64_t seed,
                       int32_t output_dtype = MC_DTYPE_BF16) {
  std::mt19937_64 engine(seed);
  return mctest::make_gemm_operands(n, k, rows_per_expert, output_dtype, engine);
}

class CudaPersistent : public ::testing::Test {
 protected:
  void SetUp() override {
    int32_t count = 0;
    ASSERT_EQ(mc_get_device_count(&count), MC_STATUS_OK);
    if (count == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
    mc_context_desc desc = mctest::cpu_desc();
    desc.backend = MC_BACKEND_CUDA;
    ASSERT_EQ(mc_context_create(&desc, &gpu_), MC_STATUS_OK) << mctest::last_error();
    mc_device_info info{};
    info.struct_size = sizeof info;
    ASSERT_EQ(mc_get_device_info(0, &info), MC_STATUS_OK);
    multiprocessors_ = info.multiprocessors;
  }
  void TearDown() override {
    for (void* pointer : allocations_) EXPECT_EQ(mc_free(gpu_, pointer), MC_STATUS_OK);
    if (gpu_ != nullptr) {
      EXPECT_EQ(mc_context_destroy(gpu_), MC_STATUS_OK);
    }
  }

  template <class T>
  T* upload(const std::vector<T>& host) {
    const int64_t bytes = static_cast<int64_t>(host.size() * sizeof(T));
    void* pointer = nullptr;
    EXPECT_EQ(mc_malloc(gpu_, bytes > 0 ? bytes : 16, &pointer), MC_STATUS_OK) << mctest::last_error();
    allocations_.push_back(pointer);
    if (bytes > 0) {
      EXPECT_EQ(mc_memcpy_async(gpu_, pointer, host.data(), bytes, MC_COPY_HOST_TO_DEVICE, nullptr), MC_STATUS_OK);
    }
    return static_cast<T*>(pointer);
  }

  template <class T>
  std::vector<T> download(const T* device, size_t count) {
    std::vector<T> host(count);
    EXPECT_EQ(mc_memcpy_async(gpu_, host.data(), device, static_cast<int64_t>(count * sizeof(T)),
                              MC_COPY_DEVICE_TO_HOST, nullptr),
              MC_STATUS_OK);
    EXPECT_EQ(mc_context_synchronize(gpu_), MC_STATUS_OK) << mctest::last_error();
    return host;
  }

  struct Device {
    const uint8_t* a;
    const float* a_scales;
    const uint8_t* b;
    const float* b_scales;
    const int32_t* offsets;
  };

  Device upload(const Operands& o, const std::vector<int32_t>* offsets) {
    return {upload(o.a), upload(o.a_scales), upload(o.b), upload(o.b_scales),
            upload(offsets != nullptr ? *offsets : o.offsets)};
  }

  // The pointer-array path, single strategy forced to `config`.
  std::vector<uint16_t> run_pointer_array(const Device& in, int32_t experts, int32_t n, int32_t k, int32_t rows,
                                          int32_t config, int32_t output_dtype) {
    std::vector<uint16_t> d(static_cast<size_t>(rows + kGuardRows) * n, kCanary);
    uint16_t* dd = upload(d);
    mc_grouped_gemm_desc desc = mctest::gemm_desc(experts, n, k, rows, output_dtype);
    desc.strategy = MC_STRATEGY_SINGLE;
    desc.config_count = 1;
    desc.configs[0] = config;
    desc.config_max_rows[0] = MC_MAX_ROWS;
    mc_grouped_gemm_plan plan = nullptr;
    EXPECT_EQ(mc_grouped_gemm_plan_create(gpu_, &desc, &plan), MC_STATUS_OK) << mctest::last_error();
    mc_grouped_gemm_args args{};
    args.struct_size = sizeof args;
    args.rows = rows;
    args.a = in.a;
    args.a_scales = in.a_scales;
    args.b = in.b;
    args.b_scales = in.b_scales;
    args.expert_offsets = in.offsets;
    args.d = dd;
    EXPECT_EQ(mc_grouped_gemm_run(plan, &args, nullptr), MC_STATUS_OK) << mctest::last_error();
    std::vector<uint16_t> out = download(dd, d.size());
    EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
    int32_t flags = 0;
    EXPECT_EQ(mc_context_query_device_errors(gpu_, 1, &flags), MC_STATUS_OK);
    return out;
  }

  struct Persistent {
    std::vector<uint16_t> d;
    int32_t flags = 0;
  };

  Persistent run_persistent(const Device& in, int32_t experts, int32_t n, int32_t k, int32_t rows, int32_t config,
                            int32_t min_rows = 1, int32_t max_rows = MC_MAX_ROWS,
                            int32_t output_dtype = MC_DTYPE_BF16) {
    std::vector<uint16_t> d(static_cast<size_t>(rows + kGuardRows) * n, kCanary);
    uint16_t* dd = upload(d);
    int32_t* flag = upload(std::vector<int32_t>{0});
    EXPECT_EQ(mc_context_synchronize(gpu_), MC_STATUS_OK);
    MoePersistentJob job;
    job.a = in.a;
    job.a_scales = in.a_scales;
    job.b = in.b;
    job.b_scales = in.b_scales;
    job.d = dd;
    job.offsets = in.offsets;
    job.error_flag = flag;
    job.experts = experts;
    job.n = n;
    job.k = k;
    job.rows = rows;
    job.output_dtype = output_dtype;
    job.config = config;
    job.min_rows = min_rows;
    job.max_rows = max_rows;
    job.multiprocessors = multiprocessors_;
    EXPECT_EQ(prepare_moe_persistent(config, output_dtype), cudaSuccess);
    // The grid the plan launches: no more clusters than the device holds at once.
    int32_t clusters = 0;
    EXPECT_EQ(moecutlass::cuda::persistent::moe_persistent_max_clusters(config, output_dtype, &clusters), cudaSuccess);
    const int32_t cluster_size =
        moecutlass::kKernelConfigs[config].cluster_m * moecutlass::kKernelConfigs[config].cluster_n;
    EXPECT_GT(clusters, 0);
    EXPECT_LE(clusters, multiprocessors_ / cluster_size);
    job.max_clusters = clusters;
    EXPECT_EQ(launch_moe_persistent(job, nullptr), cudaSuccess);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    Persistent out;
    out.d = download(dd, d.size());
    out.flags = download(flag, 1)[0];
    return out;
  }

  void expect_same_as_pointer_array(int32_t n, int32_t k, const std::vector<int32_t>& rows_per_expert,
                                    const std::string& what) {
    const auto experts = static_cast<int32_t>(rows_per_expert.size());
    for (int32_t dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16}) {
    const Operands o = make_operands(n, k, rows_per_expert, 0xFACADE + n + 7 * k + experts, dtype);
    const Device in = upload(o, nullptr);
    for (int32_t config = 0; config < moecutlass::kKernelConfigCount; ++config) {
      if (!moe_persistent_supports(config, dtype)) continue;
      const std::string label = what + ", " + moecutlass::kKernelConfigs[config].name +
                                (dtype == MC_DTYPE_BF16 ? ", bf16" : ", fp16");
      const std::vector<uint16_t> expected = run_pointer_array(in, experts, n, k, o.rows, config, dtype);
      const Persistent got = run_persistent(in, experts, n, k, o.rows, config, 1, MC_MAX_ROWS, dtype);
      EXPECT_EQ(got.flags, 0) << label;
      ASSERT_EQ(got.d.size(), expected.size());
      int64_t mismatches = 0;
      int64_t first = -1;
      for (size_t i = 0; i < got.d.size(); ++i) {
        if (got.d[i] != expected[i]) {
          if (first < 0) first = static_cast<int64_t>(i);
          ++mismatches;
        }
      }
      EXPECT_EQ(mismatches, 0) << label << ": first at row " << (first < 0 ? -1 : first / n) << " column "
                               << (first < 0 ? -1 : first % n);
      for (int64_t i = static_cast<int64_t>(o.rows) * n; i < static_cast<int64_t>(got.d.size()); ++i) {
        ASSERT_EQ(got.d[i], kCanary) << label << ": guard element " << i << " beyond rows was written";
      }
    }
    }
  }

  mc_context gpu_ = nullptr;
  int32_t multiprocessors_ = 0;
  std::vector<void*> allocations_;
};

}  // namespace

TEST_F(CudaPersistent, EveryConfigurationIsSupported) {
  // Cooperative and pingpong, swapped and not: the tests below compare each against the pointer-array kernel.
  for (int32_t config = 0; config < moecutlass::kKernelConfigCount; ++config) {
    EXPECT_TRUE(moe_persistent_supports(config, MC_DTYPE_BF16)) << moecutlass::kKernelConfigs[config].name;
    EXPECT_TRUE(moe_persistent_supports(config, MC_DTYPE_FP16)) << moecutlass::kKernelConfigs[config].name;
  }
  EXPECT_FALSE(moe_persistent_supports(moecutlass::kKernelConfigCount, MC_DTYPE_BF16));
  EXPECT_FALSE(moe_persistent_supports(0, MC_DTYPE_E4M3));
}

TEST_F(CudaPersistent, RaggedExpertsMatchThePointerArrayPathBitForBit) {
  // Tiles straddle every expert end; rows not multiples of 8; empty experts between full ones.
  expect_same_as_pointer_array(512, 512, {0, 1, 129, 40, 0, 255, 256, 257, 7}, "ragged");
}

TEST_F(CudaPersistent, NAndKNotMultiplesOfTheTile) {
  expect_same_as_pointer_array(392, 1040, {130, 1, 0, 64, 300}, "N 392 K 1040");
}

TEST_F(CudaPersistent, OneExpertHoldsEveryRow) {
  std::vector<int32_t> rows(32, 0);
  rows[19] = 1500;
  expect_same_as_pointer_array(1024, 2048, rows, "one hot");
}

TEST_F(CudaPersistent, OneExpertAndManyExperts) {
  expect_same_as_pointer_array(256, 768, {333}, "E 1");
  std::vector<int32_t> rows(512);
  for (size_t e = 0; e < rows.size(); ++e) rows[e] = static_cast<int32_t>((e * 37) % 23);
  expect_same_as_pointer_array(256, 256, rows, "E 512");
}

TEST_F(CudaPersistent, DeepSeekDownShape) {
  expect_same_as_pointer_array(7168, 2048, {64, 0, 1, 127, 128, 129, 200, 1024}, "ds down");
}

TEST_F(CudaPersistent, ALaunchWritesOnlyTheExpertsInItsRowRange) {
  const std::vector<int32_t> rows_per_expert = {10, 100, 0, 30, 200, 64};
  const Operands o = make_operands(256, 256, rows_per_expert, 99);
  const Device in = upload(o, nullptr);
  for (int32_t config = 0; config < moecutlass::kKernelConfigCount; ++config) {
    if (!moe_persistent_supports(config, MC_DTYPE_BF16)) continue;
    const std::vector<uint16_t> all = run_persistent(in, 6, 256, 256, o.rows, config).d;
    const Persistent part = run_persistent(in, 6, 256, 256, o.rows, config, 33, 100);
    for (size_t e = 0; e < rows_per_expert.size(); ++e) {
      const bool taken = rows_per_expert[e] >= 33 && rows_per_expert[e] <= 100;
      for (int64_t i = static_cast<int64_t>(o.offsets[e]) * 256; i < static_cast<int64_t>(o.offsets[e + 1]) * 256;
           ++i) {
        ASSERT_EQ(part.d[i], taken ? all[i] : kCanary) << "expert " << e << " element " << i;
      }
    }
  }
}

TEST_F(CudaPersistent, CorruptedOffsetsAreClampedAndFlaggedWithoutStrayWrites) {
  const Operands o = make_operands(256, 256, {40, 40, 40, 40}, 7);
  struct Case {
    std::vector<int32_t> offsets;
    int32_t flags;
  };
  const std::vector<Case> cases = {
      {{0, 50, 30, 120, 160}, MC_DEVICE_ERROR_OFFSETS_NOT_MONOTONIC},
      {{0, 40, 80, 120, 100000}, MC_DEVICE_ERROR_OFFSETS_BEYOND_ROWS},
      {{-5, 40, 80, 120, 160}, MC_DEVICE_ERROR_OFFSETS_NEGATIVE},
  };
  for (const Case& c : cases) {
    const Device in = upload(o, &c.offsets);
    for (int32_t config = 0; config < moecutlass::kKernelConfigCount; ++config) {
      if (!moe_persistent_supports(config, MC_DTYPE_BF16)) continue;
      const Persistent got = run_persistent(in, 4, 256, 256, o.rows, config);
      EXPECT_EQ(got.flags, c.flags);
      for (int64_t i = static_cast<int64_t>(o.rows) * 256; i < static_cast<int64_t>(got.d.size()); ++i) {
        ASSERT_EQ(got.d[i], kCanary) << "guard element " << i;
      }
    }
  }
}

TEST_F(CudaPersistent, NoRowsLaunchesNothing) {
  const Operands o = make_operands(256, 256, {0, 0, 0}, 3);
  const Device in = upload(o, nullptr);
  int32_t config = 0;
  while (config < moecutlass::kKernelConfigCount && !moe_persistent_supports(config, MC_DTYPE_BF16)) ++config;
  ASSERT_LT(config, moecutlass::kKernelConfigCount);
  const Persistent got = run_persistent(in, 3, 256, 256, 0, config);
  EXPECT_EQ(got.flags, 0);
  for (uint16_t v : got.d) ASSERT_EQ(v, kCanary);
}
