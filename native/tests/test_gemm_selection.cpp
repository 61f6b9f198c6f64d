// The kernel-configuration registry and the selection step (core/kernel_registry.hpp, core/gemm_selection.hpp):
// the per-GPU-class tables are well formed, each call launches what the rules say, and the caller's configuration
// list (mc_grouped_gemm_desc.configs) is checked field by field through the C ABI.
#include <gtest/gtest.h>

#include <cstddef>
#include <set>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "core/gemm_selection.hpp"
#include "core/kernel_registry.hpp"
#include "test_support.hpp"

using namespace moecutlass;

namespace {

constexpr GpuClass kClasses[] = {GpuClass::H100, GpuClass::H200, GpuClass::Other};
// Depths of the suite's shapes (DeepSeek tp8 down, Qwen3 down, Mixtral gate_up, DeepSeek gate_up) and the edges of
// the min_k rows.
constexpr int32_t kDepths[] = {128, 256, 1023, 1024, 1536, 4096, 7168, 14336};
constexpr int32_t kLongK = 7168;
// Wide enough for every MC_AUTO_PERSISTENT row (min_n): the N the suite's DeepSeek-V3 gate_up has.
constexpr int32_t kWideN = 4096;

int32_t index_of(const char* name) {
  const int32_t index = find_kernel_config(name);
  EXPECT_GE(index, 0) << name;
  return index;
}

// A caller's list of two configurations: `narrow` for experts up to `narrow_max_rows` rows, `wide` for the rest.
ConfigOverride two_configs(const char* narrow, int32_t narrow_max_rows, const char* wide) {
  ConfigOverride request;
  request.count = 2;
  request.configs[0] = index_of(narrow);
  request.max_rows[0] = narrow_max_rows;
  request.configs[1] = index_of(wide);
  request.max_rows[1] = kUnboundedRows;
  return request;
}

// A device as the CUDA backend describes it to the selection step (cuda_device_info): SM90a only at 9.0.
SelectionDevice device_with(int32_t major, int32_t minor, GpuClass gpu_class = GpuClass::Other) {
  SelectionDevice device;
  device.gpu_class = gpu_class;
  device.sm90a = runs_sm90a_kernels(major, minor, true);
  device.compute_major = major;
  device.compute_minor = minor;
  device.name = "device 0 (test GPU " + std::to_string(major) + "." + std::to_string(minor) + ")";
  return device;
}

// Compute capabilities without SM90a: A100, RTX 30xx/A40, L40S/RTX 40xx, B200, RTX 50xx.
constexpr std::pair<int32_t, int32_t> kWithoutSm90a[] = {{8, 0}, {8, 6}, {8, 9}, {10, 0}, {12, 0}};

// The widest configuration that takes the average under the SINGLE table.
int32_t single_config(GpuClass gpu_class, int32_t experts, int32_t rows, int32_t k = kLongK) {
  const PlanSelection plan = select_plan(MC_STRATEGY_SINGLE, gpu_class, kWideN, k, {});
  const LaunchSet set = select_launches(plan, experts, rows);
  EXPECT_EQ(set.count, 1);
  return set.launch[0].config;
}

}  // namespace

TEST(KernelRegistry, NamesAreUniqueAndShapesAreBuildable) {
  std::set<std::string> names;
  for (int32_t i = 0; i < kKernelConfigCount; ++i) {
    const KernelConfig& config = kKernelConfigs[i];
    EXPECT_TRUE(names.insert(config.name).second) << config.name;
    EXPECT_EQ(find_kernel_config(config.name), i);
    EXPECT_EQ(config.tile_k, 128) << config.name << ": the blockwise mainloop promotes per 128-deep block";
    EXPECT_TRUE(config.tile_m == 64 || config.tile_m == 128 || config.tile_m == 256) << config.name;
    EXPECT_EQ(config.tile_n % 16, 0) << config.name;
    // Per-token scales run along the tile's M side unless swapped; a 128x128 weight-scale block must cover whole
    // tiles along the other side.
    if (config.swap_ab) {
      EXPECT_EQ(config.tile_m, 128) << config.name << ": swapped tile M 256 is CUTLASS #3596";
    } else {
      EXPECT_EQ(config.tile_n % 128, 0) << config.name;
    }
    EXPECT_GE(config.cluster_m * config.cluster_n, 1);
    EXPECT_LE(config.cluster_m * config.cluster_n, 2) << config.name << ": portable cluster sizes only";
  }
  EXPECT_EQ(find_kernel_config("no_such_config"), -1);
}

TEST(GemmSelection, EveryClassTablePartitionsTheRowsAtEveryDepth) {
  for (GpuClass gpu_class : kClasses)
  for (int32_t k : kDepths) {
    const SelectionTable table = selection_table(gpu_class, kWideN, k);
    const std::string name = std::string(gpu_class_name(gpu_class)) + ", K " + std::to_string(k);
    ASSERT_GE(table.specialized_count, 1) << name;
    ASSERT_GE(table.single_count, 1) << name;
    // int64_t: the last range ends at kUnboundedRows (INT32_MAX), and one past it overflows int32_t (UBSan).
    int64_t next = 1;
    for (int32_t i = 0; i < table.specialized_count; ++i) {
      EXPECT_EQ(table.specialized[i].first_rows, next) << name << " specialized range " << i;
      EXPECT_GE(table.specialized[i].last_rows, table.specialized[i].first_rows) << name;
      next = int64_t{table.specialized[i].last_rows} + 1;
    }
    EXPECT_EQ(table.specialized[table.specialized_count - 1].last_rows, kUnboundedRows) << name;
    next = 0;
    for (int32_t i = 0; i < table.single_count; ++i) {
      EXPECT_EQ(table.single[i].first_rows, next) << name << " single range " << i;
      next = int64_t{table.single[i].last_rows} + 1;
      EXPECT_FALSE(kKernelConfigs[table.single[i].config].swap_ab) << name << ": the single path takes every expert";
    }
    EXPECT_EQ(table.single[table.single_count - 1].last_rows, kUnboundedRows) << name;
    ASSERT_GE(table.persistent_count, 1) << name;
    next = 0;
    for (int32_t i = 0; i < table.persistent_count; ++i) {
      EXPECT_EQ(table.persistent[i].first_rows, next) << name << " persistent range " << i;
      next = int64_t{table.persistent[i].last_rows} + 1;
    }
    EXPECT_EQ(table.persistent[table.persistent_count - 1].last_rows, kUnboundedRows) << name;
    for (int32_t i = 0; i < table.auto_persistent_count; ++i) {
      EXPECT_LE(table.auto_persistent[i].first_rows, table.auto_persistent[i].last_rows) << name;
    }
  }
}

TEST(GemmSelection, GpuClassesAreMatchedBySmCountAndBandwidth) {
  EXPECT_EQ(gpu_class_of(132, 3352.0).id, GpuClass::H100);
  EXPECT_EQ(gpu_class_of(132, 4814.0).id, GpuClass::H200);
  EXPECT_EQ(gpu_class_of(114, 2039.0).id, GpuClass::Other);  // H100 PCIe
  EXPECT_EQ(gpu_class_of(108, 2039.0).id, GpuClass::Other);  // A100
  EXPECT_NE(std::string(gpu_class_of(132, 4814.0).name).find("H200"), std::string::npos);
}

TEST(GemmSelection, SingleLaunchesOneConfigurationChosenByTheAverage) {
  const int32_t narrow = index_of("tile_64x128x128_c1x2_pingpong");
  const int32_t wide = index_of("tile_128x128x128_c1x2_cooperative");
  const int32_t tall = index_of("tile_256x128x128_c2x1_cooperative");
  EXPECT_EQ(single_config(GpuClass::H200, 32, 32 * 64), narrow);
  EXPECT_EQ(single_config(GpuClass::H200, 32, 32 * 96), narrow);
  EXPECT_EQ(single_config(GpuClass::H200, 32, 32 * 97), wide);
  EXPECT_EQ(single_config(GpuClass::H200, 8, 2048), wide);  // Mixtral, 256 rows per expert
  EXPECT_EQ(single_config(GpuClass::H200, 32, 32 * 1024), tall);
  EXPECT_EQ(single_config(GpuClass::H200, 4, 0), narrow);  // an empty run still launches (and finds no tile)
  for (int32_t rows : {0, 64, 4096, 1 << 20}) {
    EXPECT_EQ(single_config(GpuClass::H100, 32, rows), wide);
    EXPECT_EQ(single_config(GpuClass::Other, 32, rows), wide);
  }
  const PlanSelection plan = select_plan(MC_STRATEGY_SINGLE, GpuClass::H200, kWideN, kLongK, {});
  const LaunchSet set = select_launches(plan, 32, 32 * 1024);
  EXPECT_EQ(set.strategy, MC_STRATEGY_SINGLE);
  EXPECT_EQ(set.launch[0].first_rows, 1);
  EXPECT_EQ(set.launch[0].last_rows, kUnboundedRows);
  // A single plan instantiates only its SINGLE configurations.
  EXPECT_EQ(plan.config_count, selection_table(GpuClass::H200, kWideN, kLongK).single_count);
}

TEST(GemmSelection, ShortKKeepsTheNarrowTileForFewerRowsOnly) {
  // H200: the 64-row tile serves up to 96 rows per expert from K 1024 on, up to 40 below (kernel_configs.def).
  const int32_t narrow = index_of("tile_64x128x128_c1x2_pingpong");
  const int32_t wide = index_of("tile_128x128x128_c1x2_cooperative");
  EXPECT_EQ(single_config(GpuClass::H200, 256, 256 * 64, 2048), narrow);
  EXPECT_EQ(single_config(GpuClass::H200, 256, 256 * 64, 1024), narrow);
  EXPECT_EQ(single_config(GpuClass::H200, 256, 256 * 64, 1023), wide);
  EXPECT_EQ(single_config(GpuClass::H200, 256, 256 * 64, 256), wide);  // ds-tp8-down-e256-t2048
  EXPECT_EQ(single_config(GpuClass::H200, 256, 256 * 16, 256), narrow);  // ds-tp8-down-e256-t512
  EXPECT_EQ(single_config(GpuClass::H200, 256, 256 * 40, 256), narrow);
  EXPECT_EQ(single_config(GpuClass::H200, 256, 256 * 41, 256), wide);
  const SelectionTable short_k = selection_table(GpuClass::H200, kWideN, 256);
  ASSERT_EQ(short_k.single_count, 3);
  EXPECT_EQ(short_k.single[0].last_rows, 40);
  EXPECT_EQ(short_k.single[1].first_rows, 41);
  const SelectionTable long_k = selection_table(GpuClass::H200, kWideN, 1024);
  ASSERT_EQ(long_k.single_count, 3);  // the short-K row is shadowed, not repeated
  EXPECT_EQ(long_k.single[0].last_rows, 96);
  EXPECT_EQ(long_k.single[1].first_rows, 97);
}

TEST(GemmSelection, SpecializationBelowTheWidestThresholdOnly) {
  for (int32_t strategy : {MC_STRATEGY_AUTO, MC_STRATEGY_EXPERT_SPECIALIZED}) {
    const PlanSelection plan = select_plan(strategy, GpuClass::H100, kWideN, kLongK, {});
    // H100 table: 1..36 swapped 128x32, 37..64 swapped 128x64, 65.. 128x128; specialize while the average < 64.
    LaunchSet set = select_launches(plan, 256, 256 * 4);
    EXPECT_EQ(set.strategy, MC_STRATEGY_EXPERT_SPECIALIZED);
    ASSERT_EQ(set.count, 3);
    EXPECT_EQ(set.lead, 0);
    EXPECT_EQ(set.launch[0].config, index_of("swap_128x32x128_c2x1_pingpong"));
    EXPECT_EQ(set.launch[1].first_rows, 37);
    EXPECT_EQ(set.launch[1].last_rows, 64);
    EXPECT_EQ(set.launch[2].last_rows, kUnboundedRows);
    set = select_launches(plan, 256, 256 * 40);
    EXPECT_EQ(set.lead, 1);
    set = select_launches(plan, 256, 256 * 63);
    EXPECT_EQ(set.strategy, MC_STRATEGY_EXPERT_SPECIALIZED);
    set = select_launches(plan, 256, 256 * 64);
    EXPECT_EQ(set.strategy, MC_STRATEGY_SINGLE);
    EXPECT_EQ(set.count, 1);
    EXPECT_EQ(set.launch[0].config, index_of("tile_128x128x128_c1x2_cooperative"));
    // Fewer rows than experts: average 0, the narrowest goes first.
    set = select_launches(plan, 256, 100);
    EXPECT_EQ(set.strategy, MC_STRATEGY_EXPERT_SPECIALIZED);
    EXPECT_EQ(set.lead, 0);
  }
  // On the H200, a large average runs the single path's tall tile.
  const PlanSelection plan = select_plan(MC_STRATEGY_AUTO, GpuClass::H200, kWideN, kLongK, {});
  const LaunchSet set = select_launches(plan, 32, 32 * 1024);
  EXPECT_EQ(set.strategy, MC_STRATEGY_SINGLE);
  EXPECT_EQ(set.launch[0].config, index_of("tile_256x128x128_c2x1_cooperative"));
  // auto instantiates both tables' configurations, each once.
  std::set<int32_t> expected;
  const SelectionTable table = selection_table(GpuClass::H200, kWideN, kLongK);
  for (int32_t i = 0; i < table.specialized_count; ++i) expected.insert(table.specialized[i].config);
  for (int32_t i = 0; i < table.single_count; ++i) expected.insert(table.single[i].config);
  EXPECT_EQ(plan.config_count, static_cast<int32_t>(expected.size()));
}

TEST(GemmSelection, ACallersListReplacesTheTable) {
  const ConfigOverride request = two_configs("swap_128x64x128_c2x1_pingpong", 50, "tile_64x128x128_c1x2_pingpong");
  const PlanSelection plan = select_plan(MC_STRATEGY_EXPERT_SPECIALIZED, GpuClass::H200, kWideN, kLongK, request);
  EXPECT_STREQ(plan.source, "mc_grouped_gemm_desc.configs");
  EXPECT_EQ(plan.config_count, 2);
  LaunchSet set = select_launches(plan, 16, 16 * 10);
  ASSERT_EQ(set.count, 2);
  EXPECT_EQ(set.launch[0].last_rows, 50);
  EXPECT_EQ(set.launch[1].first_rows, 51);
  set = select_launches(plan, 16, 16 * 50);  // average 50 = widest first row - 1: the single path
  EXPECT_EQ(set.strategy, MC_STRATEGY_SINGLE);
  EXPECT_EQ(set.launch[0].config, request.configs[1]);

  // One configuration forces it for every call, whatever the strategy.
  ConfigOverride forced;
  forced.count = 1;
  forced.configs[0] = index_of("swap_128x32x128_c2x1_pingpong");
  forced.max_rows[0] = kUnboundedRows;
  for (int32_t strategy : {MC_STRATEGY_SINGLE, MC_STRATEGY_EXPERT_SPECIALIZED, MC_STRATEGY_AUTO}) {
    const PlanSelection one = select_plan(strategy, GpuClass::H100, kWideN, kLongK, forced);
    for (int32_t rows : {0, 16, 4096, 1 << 20}) {
      set = select_launches(one, 16, rows);
      ASSERT_EQ(set.count, 1);
      EXPECT_EQ(set.launch[0].config, forced.configs[0]);
      EXPECT_EQ(set.launch[0].first_rows, 1);
    }
  }
}

TEST(GemmSelection, OverridesAreValidatedFieldByField) {
  auto message = [](const ConfigOverride& request, int32_t strategy) -> std::string {
    try {
      validate_config_override(request, strategy);
    } catch (const Error& error) {
      EXPECT_EQ(error.status(), MC_STATUS_INVALID_ARGUMENT);
      return error.what();
    }
    return "";
  };
  ConfigOverride request;
  EXPECT_EQ(message(request, MC_STRATEGY_AUTO), "");
  request.count = 9;
  EXPECT_NE(message(request, MC_STRATEGY_AUTO).find("desc->config_count = 9 is outside 0 .. 8"), std::string::npos);
  request.count = 2;
  request.configs[0] = 0;
  request.configs[1] = 1;
  request.max_rows[0] = 32;
  request.max_rows[1] = kUnboundedRows;
  EXPECT_EQ(message(request, MC_STRATEGY_AUTO), "");
  EXPECT_NE(message(request, MC_STRATEGY_SINGLE).find("takes exactly 1"), std::string::npos);
  request.configs[1] = kKernelConfigCount;
  EXPECT_NE(message(request, MC_STRATEGY_AUTO).find("desc->configs[1] = "), std::string::npos);
  request.configs[1] = 0;
  EXPECT_NE(message(request, MC_STRATEGY_AUTO).find("repeats desc->configs[0]"), std::string::npos);
  request.configs[1] = 1;
  request.max_rows[0] = 0;
  EXPECT_NE(message(request, MC_STRATEGY_AUTO).find("desc->config_max_rows[0] = 0 must be positive"), std::string::npos);
  request.max_rows[0] = kUnboundedRows;
  EXPECT_NE(message(request, MC_STRATEGY_AUTO).find("must be above desc->config_max_rows[0]"), std::string::npos);
  request.max_rows[0] = 32;
  request.max_rows[1] = 64;
  EXPECT_NE(message(request, MC_STRATEGY_AUTO).find("must be MC_MAX_ROWS"), std::string::npos);
  // cuBLAS picks its own kernels: any list is refused, even a well-formed one of one configuration.
  request.count = 1;
  request.max_rows[0] = kUnboundedRows;
  EXPECT_EQ(message(request, MC_STRATEGY_SINGLE), "");
  EXPECT_NE(message(request, MC_STRATEGY_CUBLAS)
                .find("desc->config_count = 1: MC_STRATEGY_CUBLAS runs no kernel configuration of the registry"),
            std::string::npos);
  request.count = 0;
  EXPECT_EQ(message(request, MC_STRATEGY_CUBLAS), "");
}

TEST(GemmSelection, CublasPlansNoConfigurationAndEveryRunExecutesIt) {
  for (GpuClass gpu_class : kClasses) {
    for (int32_t k : kDepths) {
      const PlanSelection plan = select_plan(MC_STRATEGY_CUBLAS, gpu_class, kWideN, k, {});
      EXPECT_TRUE(plan.cublas);
      EXPECT_EQ(plan.config_count, 0);
      EXPECT_STREQ(plan.source, "cuBLAS");
      for (int32_t rows : {0, 1, 16 * 8, 16 * 4096, kUnboundedRows}) {
        const LaunchSet set = select_launches(plan, 16, rows);
        EXPECT_EQ(set.strategy, MC_STRATEGY_CUBLAS) << rows;
        EXPECT_EQ(set.count, 0) << rows;
      }
    }
  }
}

// Through the C ABI: the registry queries, the descriptor's list, the plan's report and resolve.
TEST(GemmSelectionAbi, RegistryIsReportedByIndexAndName) {
  int32_t count = 0;
  MC_ASSERT_OK(mc_get_kernel_config_count(&count));
  EXPECT_EQ(count, kKernelConfigCount);
  for (int32_t i = 0; i < count; ++i) {
    mc_kernel_config_info info{};
    info.struct_size = sizeof info;
    MC_ASSERT_OK(mc_get_kernel_config_info(i, &info));
    EXPECT_EQ(info.index, i);
    EXPECT_STREQ(info.name, kKernelConfigs[i].name);
    EXPECT_EQ(info.tile_m, kKernelConfigs[i].tile_m);
    EXPECT_EQ(info.swap_ab, kKernelConfigs[i].swap_ab ? 1 : 0);
    EXPECT_TRUE(info.schedule == MC_SCHEDULE_COOPERATIVE || info.schedule == MC_SCHEDULE_PINGPONG);
    int32_t found = -1;
    MC_ASSERT_OK(mc_find_kernel_config(info.name, &found));
    EXPECT_EQ(found, i);
  }
  mc_kernel_config_info info{};
  info.struct_size = sizeof info;
  MC_EXPECT_STATUS(mc_get_kernel_config_info(count, &info), MC_STATUS_OUT_OF_RANGE, "index = ");
  int32_t found = 7;
  MC_EXPECT_STATUS(mc_find_kernel_config("tile_1x1", &found), MC_STATUS_INVALID_ARGUMENT,
                   "\"tile_1x1\" is not a kernel configuration", kKernelConfigs[0].name);
  EXPECT_EQ(found, 7);
}

TEST(GemmSelectionAbi, DescriptorsWithoutTheListGetTheLibrarySelection) {
  mctest::Context context(1);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(4, 256, 256, 64);
  desc.config_count = 3;  // beyond the old struct_size: must be ignored
  desc.struct_size = static_cast<uint32_t>(offsetof(mc_grouped_gemm_desc, config_count));
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  mc_grouped_gemm_plan_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_grouped_gemm_plan_get_info(plan, &info));
  EXPECT_STREQ(info.selection, gpu_class_name(GpuClass::Other));
  EXPECT_GE(info.config_count, 1);
  EXPECT_EQ(info.kernel_count, info.config_count);
  EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
  desc.struct_size += 4;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_STRUCT_SIZE,
                   "desc->struct_size");
}

TEST(GemmSelectionAbi, PlanFlagsAreCheckedAndOptional) {
  mctest::Context context(1);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(4, 256, 256, 64);
  desc.flags = MC_PLAN_STATIC_WEIGHTS | 2;
  mc_grouped_gemm_plan plan = nullptr;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_ARGUMENT, "desc->flags = 3",
                   "MC_PLAN_STATIC_WEIGHTS");
  EXPECT_EQ(plan, nullptr);
  desc.flags = MC_PLAN_STATIC_WEIGHTS;
  for (const int32_t strategy : {MC_STRATEGY_AUTO, MC_STRATEGY_SINGLE, MC_STRATEGY_CUBLAS}) {
    desc.strategy = strategy;
    MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
    EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
  }
  // A descriptor that ends before flags (built against the previous header) has none, whatever follows it.
  desc.flags = -1;
  desc.struct_size = static_cast<uint32_t>(offsetof(mc_grouped_gemm_desc, flags));
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
  desc.struct_size = static_cast<uint32_t>(offsetof(mc_grouped_gemm_desc, flags)) + 2;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_STRUCT_SIZE,
                   "desc->struct_size");
}

TEST(GemmSelectionAbi, AForcedConfigurationIsWhatEveryRunResolvesTo) {
  mctest::Context context(1);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(4, 256, 256, 64);
  desc.strategy = MC_STRATEGY_SINGLE;
  desc.config_count = 1;
  desc.configs[0] = index_of("tile_256x128x128_c2x1_cooperative");
  desc.config_max_rows[0] = MC_MAX_ROWS;
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  mc_grouped_gemm_plan_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_grouped_gemm_plan_get_info(plan, &info));
  EXPECT_STREQ(info.kernels, "tile_256x128x128_c2x1_cooperative");
  EXPECT_STREQ(info.selection, "mc_grouped_gemm_desc.configs");
  for (int32_t rows : {0, 1, 64}) {
    mc_grouped_gemm_launch launch{};
    launch.struct_size = sizeof launch;
    MC_ASSERT_OK(mc_grouped_gemm_plan_resolve(plan, rows, &launch));
    EXPECT_EQ(launch.strategy, MC_STRATEGY_SINGLE);
    ASSERT_EQ(launch.config_count, 1);
    EXPECT_EQ(launch.configs[0], desc.configs[0]);
    EXPECT_EQ(launch.min_rows[0], 1);
    EXPECT_EQ(launch.max_rows[0], MC_MAX_ROWS);
  }
  mc_grouped_gemm_launch launch{};
  launch.struct_size = sizeof launch;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_resolve(plan, 65, &launch), MC_STATUS_OUT_OF_RANGE, "rows = 65");
  EXPECT_EQ(launch.config_count, 0);
  EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
}

TEST(GemmSelectionAbi, ABadListCreatesNoPlan) {
  mctest::Context context(1);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(4, 256, 256, 64);
  desc.config_count = 2;
  desc.configs[0] = 0;
  desc.configs[1] = 1;
  desc.config_max_rows[0] = 40;
  desc.config_max_rows[1] = 30;
  mc_grouped_gemm_plan plan = nullptr;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_ARGUMENT,
                   "desc->config_max_rows[1] = 30 must be above desc->config_max_rows[0] = 40");
  EXPECT_EQ(plan, nullptr);
  desc.config_count = -1;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_ARGUMENT,
                   "desc->config_count = -1");
  EXPECT_EQ(plan, nullptr);
  desc.strategy = MC_STRATEGY_CUBLAS;
  desc.config_count = 1;
  desc.config_max_rows[0] = MC_MAX_ROWS;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_create(context, &desc, &plan), MC_STATUS_INVALID_ARGUMENT,
                   "desc->config_count = 1: MC_STRATEGY_CUBLAS runs no kernel configuration");
  EXPECT_EQ(plan, nullptr);
}

TEST(GemmSelectionAbi, ACublasPlanReportsNoConfigurationAndResolvesToCublas) {
  mctest::Context context(1);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(4, 256, 256, 64);
  desc.strategy = MC_STRATEGY_CUBLAS;
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  for (int32_t rows : {0, 1, 64}) {
    int32_t strategy = -1;
    MC_ASSERT_OK(mc_grouped_gemm_plan_resolve_strategy(plan, rows, &strategy));
    EXPECT_EQ(strategy, MC_STRATEGY_CUBLAS);
    mc_grouped_gemm_launch launch{};
    launch.struct_size = sizeof launch;
    launch.config_count = 5;
    MC_ASSERT_OK(mc_grouped_gemm_plan_resolve(plan, rows, &launch));
    EXPECT_EQ(launch.strategy, MC_STRATEGY_CUBLAS);
    EXPECT_EQ(launch.config_count, 0);
  }
  EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
}

TEST(GemmSelection, PersistentRunsItsOwnTableInOneLaunch) {
  // H200 (kernel_configs.def, PERSISTENT rows): swapped tiles up to mid averages, then 128x128; K decides where.
  struct Expected {
    int32_t k;
    int32_t average;
    const char* name;
  };
  const Expected expected[] = {{7168, 1, "swap_128x32x128_c2x1_pingpong"},
                               {7168, 16, "swap_128x32x128_c2x1_pingpong"},
                               {7168, 17, "swap_128x64x128_c2x1_pingpong"},
                               {7168, 191, "swap_128x64x128_c2x1_pingpong"},
                               {7168, 192, "tile_128x128x128_c1x2_cooperative"},
                               {7168, 4096, "tile_128x128x128_c1x2_cooperative"},
                               {2048, 8, "swap_128x32x128_c2x1_pingpong"},
                               {2048, 9, "swap_128x64x128_c2x1_pingpong"},
                               {256, 1, "swap_128x64x128_c2x1_pingpong"},
                               {256, 64, "swap_128x64x128_c2x1_pingpong"},
                               {256, 65, "tile_128x128x128_c1x2_cooperative"}};
  for (const Expected& e : expected) {
    const PlanSelection plan = select_plan(MC_STRATEGY_PERSISTENT, GpuClass::H200, kWideN, e.k, {});
    const LaunchSet set = select_launches(plan, 32, 32 * e.average);
    EXPECT_EQ(set.strategy, MC_STRATEGY_PERSISTENT) << e.k << " " << e.average;
    ASSERT_EQ(set.count, 1);
    EXPECT_EQ(set.launch[0].config, index_of(e.name)) << "K " << e.k << ", " << e.average << " rows per expert";
    EXPECT_EQ(set.launch[0].first_rows, 1);
    EXPECT_EQ(set.launch[0].last_rows, kUnboundedRows);
    bool prepared = false;
    for (int32_t i = 0; i < plan.config_count; ++i) prepared |= plan.configs[i] == set.launch[0].config;
    EXPECT_TRUE(prepared);
  }
  // A class without PERSISTENT rows runs its SINGLE choice in the persistent kernel.
  const PlanSelection h100 = select_plan(MC_STRATEGY_PERSISTENT, GpuClass::H100, kWideN, kLongK, {});
  const PlanSelection h100_single = select_plan(MC_STRATEGY_SINGLE, GpuClass::H100, kWideN, kLongK, {});
  for (int32_t average : {0, 8, 64, 4096}) {
    const LaunchSet set = select_launches(h100, 8, 8 * average);
    EXPECT_EQ(set.strategy, MC_STRATEGY_PERSISTENT);
    EXPECT_EQ(set.launch[0].config, select_launches(h100_single, 8, 8 * average).launch[0].config);
  }
}

TEST(GemmSelection, PersistentRunsACallersListAsSpecializationInsideTheKernel) {
  ConfigOverride request;
  request.count = 1;
  request.configs[0] = index_of("swap_128x32x128_c2x1_pingpong");
  request.max_rows[0] = kUnboundedRows;
  EXPECT_NO_THROW(validate_config_override(request, MC_STRATEGY_PERSISTENT));
  PlanSelection plan = select_plan(MC_STRATEGY_PERSISTENT, GpuClass::H100, kWideN, kLongK, request);
  LaunchSet set = select_launches(plan, 8, 8 * 300);
  EXPECT_EQ(set.strategy, MC_STRATEGY_PERSISTENT);
  ASSERT_EQ(set.count, 1);
  EXPECT_EQ(set.launch[0].config, request.configs[0]);

  request.count = 2;
  request.configs[1] = index_of("tile_128x128x128_c1x2_cooperative");
  request.max_rows[0] = 64;
  request.max_rows[1] = kUnboundedRows;
  EXPECT_NO_THROW(validate_config_override(request, MC_STRATEGY_PERSISTENT));
  plan = select_plan(MC_STRATEGY_PERSISTENT, GpuClass::H200, kWideN, kLongK, request);
  EXPECT_EQ(plan.config_count, 2);
  for (int32_t average : {1, 16, 200}) {
    set = select_launches(plan, 8, 8 * average);
    EXPECT_EQ(set.strategy, MC_STRATEGY_PERSISTENT);
    ASSERT_EQ(set.count, 2);
    EXPECT_EQ(set.launch[0].config, request.configs[0]);
    EXPECT_EQ(set.launch[0].first_rows, 1);
    EXPECT_EQ(set.launch[0].last_rows, 64);
    EXPECT_EQ(set.launch[1].config, request.configs[1]);
    EXPECT_EQ(set.launch[1].first_rows, 65);
    EXPECT_EQ(set.launch[1].last_rows, kUnboundedRows);
    EXPECT_EQ(set.lead, average <= 64 ? 0 : 1);
  }
}

TEST(GemmSelection, AutoRunsThePersistentKernelWhereTheH200Measured) {
  // kernel_configs.def MC_AUTO_PERSISTENT: up to 64 rows per expert with K >= 2048, on the H200 only.
  const auto strategy = [](GpuClass gpu_class, int32_t k, int32_t experts, int64_t rows) {
    return select_launches(select_plan(MC_STRATEGY_AUTO, gpu_class, kWideN, k, {}), experts, rows).strategy;
  };
  EXPECT_EQ(strategy(GpuClass::H200, 7168, 32, 32 * 8), MC_STRATEGY_PERSISTENT);
  EXPECT_EQ(strategy(GpuClass::H200, 2048, 256, 256 * 16), MC_STRATEGY_PERSISTENT);
  EXPECT_EQ(strategy(GpuClass::H200, 2048, 32, 32 * 64), MC_STRATEGY_PERSISTENT);
  EXPECT_NE(strategy(GpuClass::H200, 2048, 32, 32 * 65), MC_STRATEGY_PERSISTENT);
  EXPECT_NE(strategy(GpuClass::H200, 1536, 32, 32 * 8), MC_STRATEGY_PERSISTENT);
  EXPECT_NE(strategy(GpuClass::H200, 256, 256, 256 * 4), MC_STRATEGY_PERSISTENT);
  EXPECT_NE(strategy(GpuClass::H200, 14336, 8, 8 * 256), MC_STRATEGY_PERSISTENT);
  EXPECT_NE(strategy(GpuClass::H100, 7168, 32, 32 * 8), MC_STRATEGY_PERSISTENT);
}

TEST(GemmSelection, AutoKeepsThePointerArrayKernelsForNarrowN) {
  // MC_AUTO_PERSISTENT(H200, 0, 64, 2048, 1024): ds-tp8-gate_up-e256-t512 (N 512, K 7168, 16 rows per expert) lost
  // in the persistent kernel in every measured run; from N 1024 the row applies.
  const auto strategy = [](int32_t n, int32_t k, int32_t experts, int64_t rows) {
    return select_launches(select_plan(MC_STRATEGY_AUTO, GpuClass::H200, n, k, {}), experts, rows).strategy;
  };
  EXPECT_NE(strategy(512, 7168, 256, 4096), MC_STRATEGY_PERSISTENT);
  EXPECT_NE(strategy(1023, 7168, 256, 4096), MC_STRATEGY_PERSISTENT);
  EXPECT_EQ(strategy(1024, 7168, 256, 4096), MC_STRATEGY_PERSISTENT);
  EXPECT_EQ(strategy(3072, 4096, 128, 2048), MC_STRATEGY_PERSISTENT) << "qwen3-gate_up-e128-t256";
  // Narrow N: auto runs what it runs without persistent rows, and prepares no persistent-only configuration.
  const PlanSelection narrow = select_plan(MC_STRATEGY_AUTO, GpuClass::H200, 512, 7168, {});
  EXPECT_EQ(narrow.table.auto_persistent_count, 0);
  const PlanSelection specialized = select_plan(MC_STRATEGY_EXPERT_SPECIALIZED, GpuClass::H200, 512, 7168, {});
  EXPECT_EQ(narrow.config_count, specialized.config_count);
  const LaunchSet got = select_launches(narrow, 256, 4096);
  const LaunchSet want = select_launches(specialized, 256, 4096);
  EXPECT_EQ(got.strategy, want.strategy);
  ASSERT_EQ(got.count, want.count);
  for (int32_t i = 0; i < got.count; ++i) EXPECT_EQ(got.launch[i].config, want.launch[i].config);
}

TEST(GemmSelection, AutoKeepsOneConfigurationAtShortDepthOnTheH200) {
  // kernel_configs.def MC_AUTO_SPECIALIZE(H200, 1024): at K 256 auto runs single where expert_specialized still
  // specializes; from K 1024 auto specializes again; the H100 has no such row.
  const auto launches = [](int32_t strategy, GpuClass gpu_class, int32_t k) {
    return select_launches(select_plan(strategy, gpu_class, kWideN, k, {}), 256, 256 * 16);
  };
  EXPECT_EQ(launches(MC_STRATEGY_AUTO, GpuClass::H200, 256).strategy, MC_STRATEGY_SINGLE);
  EXPECT_EQ(launches(MC_STRATEGY_AUTO, GpuClass::H200, 256).count, 1);
  EXPECT_EQ(launches(MC_STRATEGY_EXPERT_SPECIALIZED, GpuClass::H200, 256).strategy, MC_STRATEGY_EXPERT_SPECIALIZED);
  EXPECT_EQ(launches(MC_STRATEGY_AUTO, GpuClass::H200, 1024).strategy, MC_STRATEGY_EXPERT_SPECIALIZED);
  EXPECT_EQ(launches(MC_STRATEGY_AUTO, GpuClass::H100, 256).strategy, MC_STRATEGY_EXPERT_SPECIALIZED);
  // Auto at K 256 prepares only what it can launch: the single path's configurations, no swapped tile.
  const PlanSelection plan = select_plan(MC_STRATEGY_AUTO, GpuClass::H200, kWideN, 256, {});
  EXPECT_FALSE(plan.table.auto_specializes);
  for (int32_t i = 0; i < plan.config_count; ++i) {
    EXPECT_FALSE(kKernelConfigs[plan.configs[i]].swap_ab) << kKernelConfigs[plan.configs[i]].name;
  }
  // A caller's list under auto is used as given.
  const PlanSelection forced = select_plan(MC_STRATEGY_AUTO, GpuClass::H200, kWideN, 256,
      two_configs("swap_128x64x128_c2x1_pingpong", 64, "tile_128x128x128_c1x2_cooperative"));
  EXPECT_EQ(select_launches(forced, 256, 256 * 16).strategy, MC_STRATEGY_EXPERT_SPECIALIZED);
}

TEST(GemmSelection, AutoRunsThePersistentKernelOnlyWhereTheClassSaysSo) {
  for (GpuClass gpu_class : kClasses) {
    for (int32_t k : kDepths) {
      const PlanSelection plan = select_plan(MC_STRATEGY_AUTO, gpu_class, kWideN, k, {});
      const PlanSelection specialized = select_plan(MC_STRATEGY_EXPERT_SPECIALIZED, gpu_class, kWideN, k, {});
      const PlanSelection single = select_plan(MC_STRATEGY_SINGLE, gpu_class, kWideN, k, {});
      for (int32_t average : {0, 1, 8, 16, 24, 36, 48, 64, 96, 128, 256, 511, 512, 1024, 4096}) {
        const LaunchSet set = select_launches(plan, 16, 16 * average);
        const bool listed = [&] {
          for (int32_t i = 0; i < plan.table.auto_persistent_count; ++i) {
            if (average >= plan.table.auto_persistent[i].first_rows &&
                average <= plan.table.auto_persistent[i].last_rows) {
              return true;
            }
          }
          return false;
        }();
        if (listed) {
          EXPECT_EQ(set.strategy, MC_STRATEGY_PERSISTENT) << average;
          ASSERT_EQ(set.count, 1);
          EXPECT_EQ(set.launch[0].config,
                    select_launches(select_plan(MC_STRATEGY_PERSISTENT, gpu_class, kWideN, k, {}), 16, 16 * average)
                        .launch[0]
                        .config);
          bool prepared = false;
          for (int32_t i = 0; i < plan.config_count; ++i) prepared |= plan.configs[i] == set.launch[0].config;
          EXPECT_TRUE(prepared) << "auto must prepare the persistent configuration it launches";
        } else {
          // Exactly what expert_specialized would run (auto's behaviour without persistent rows), or single
          // where the class keeps auto from specializing at this depth (MC_AUTO_SPECIALIZE).
          const LaunchSet other = select_launches(plan.table.auto_specializes ? specialized : single, 16, 16 * average);
          EXPECT_EQ(set.strategy, other.strategy) << average;
          ASSERT_EQ(set.count, other.count);
          for (int32_t i = 0; i < set.count; ++i) EXPECT_EQ(set.launch[i].config, other.launch[i].config);
        }
      }
    }
  }
}

TEST(GemmSelection, OnlyComputeCapability90RunsTheSm90aKernels) {
  EXPECT_TRUE(runs_sm90a_kernels(9, 0, true));
  EXPECT_FALSE(runs_sm90a_kernels(9, 0, false)) << "a build without sm_90a kernels runs none";
  for (const auto& [major, minor] : kWithoutSm90a) {
    EXPECT_FALSE(runs_sm90a_kernels(major, minor, true)) << major << "." << minor;
  }
  EXPECT_FALSE(runs_sm90a_kernels(9, 1, true)) << "sm_90a code is for 9.0 exactly";
  EXPECT_FALSE(runs_sm90a_kernels(7, 5, true));
}

TEST(GemmSelection, AutoNeverRunsCublasOnAnSm90aDevice) {
  // H100 and H200 (their measured tables) and an SM90a GPU of no measured class, at every suite depth, for row
  // counts from an empty call to the largest a plan takes.
  const int32_t rows_per_expert[] = {0, 1, 2, 7, 8, 16, 31, 32, 33, 63, 64, 65, 96, 97, 128, 511, 512, 1024, 4096};
  for (GpuClass gpu_class : kClasses) {
    const SelectionDevice device = device_with(9, 0, gpu_class);
    ASSERT_TRUE(device.sm90a);
    for (int32_t k : kDepths) {
      const PlanSelection plan = select_plan(MC_STRATEGY_AUTO, device, kWideN, k, {});
      EXPECT_FALSE(plan.cublas) << gpu_class_name(gpu_class) << ", K " << k;
      EXPECT_GE(plan.config_count, 1);
      for (int32_t experts : {1, 8, 32, 256}) {
        for (int32_t average : rows_per_expert) {
          const LaunchSet set = select_launches(plan, experts, experts * average);
          EXPECT_NE(set.strategy, MC_STRATEGY_CUBLAS)
              << gpu_class_name(gpu_class) << ", K " << k << ", " << experts << " x " << average << " rows";
          EXPECT_GE(set.count, 1);
        }
        EXPECT_NE(select_launches(plan, experts, kUnboundedRows).strategy, MC_STRATEGY_CUBLAS);
      }
    }
  }
}

TEST(GemmSelection, AutoRunsCublasOnEveryDeviceWithoutSm90a) {
  for (const auto& [major, minor] : kWithoutSm90a) {
    const SelectionDevice device = device_with(major, minor);
    ASSERT_FALSE(device.sm90a);
    for (int32_t k : kDepths) {
      const PlanSelection plan = select_plan(MC_STRATEGY_AUTO, device, kWideN, k, {});
      EXPECT_TRUE(plan.cublas) << major << "." << minor << ", K " << k;
      EXPECT_EQ(plan.strategy, MC_STRATEGY_AUTO) << "the plan keeps the strategy it was asked for";
      EXPECT_EQ(plan.config_count, 0) << "no registry kernel is prepared where none can run";
      EXPECT_NE(std::string(plan.source).find("no SM90a"), std::string::npos) << plan.source;
      for (int32_t rows : {0, 1, 8 * 16, 8 * 4096, kUnboundedRows}) {
        const LaunchSet set = select_launches(plan, 8, rows);
        EXPECT_EQ(set.strategy, MC_STRATEGY_CUBLAS) << major << "." << minor << ", " << rows << " rows";
        EXPECT_EQ(set.count, 0);
      }
    }
    // Asked for by name it is the same plan.
    EXPECT_TRUE(select_plan(MC_STRATEGY_CUBLAS, device, kWideN, kLongK, {}).cublas);
  }
}

TEST(GemmSelection, Sm90aStrategiesOnADeviceWithoutSm90aAreUnsupportedNamingItsComputeCapability) {
  const auto error_of = [](int32_t strategy, const SelectionDevice& device, const ConfigOverride& request) {
    try {
      select_plan(strategy, device, kWideN, kLongK, request);
    } catch (const Error& error) {
      return std::make_pair(error.status(), std::string(error.what()));
    }
    return std::make_pair(MC_STATUS_OK, std::string());
  };
  const std::pair<int32_t, const char*> strategies[] = {
      {MC_STRATEGY_SINGLE, "desc->strategy = MC_STRATEGY_SINGLE (1)"},
      {MC_STRATEGY_EXPERT_SPECIALIZED, "desc->strategy = MC_STRATEGY_EXPERT_SPECIALIZED (2)"},
      {MC_STRATEGY_PERSISTENT, "desc->strategy = MC_STRATEGY_PERSISTENT (3)"}};
  for (const auto& [major, minor] : kWithoutSm90a) {
    const SelectionDevice device = device_with(major, minor);
    const std::string capability = "has compute capability " + std::to_string(major) + "." + std::to_string(minor);
    for (const auto& [strategy, argument] : strategies) {
      const auto [status, message] = error_of(strategy, device, {});
      EXPECT_EQ(status, MC_STATUS_UNSUPPORTED) << argument << " on " << major << "." << minor;
      EXPECT_NE(message.find(argument), std::string::npos) << message;
      EXPECT_NE(message.find(device.name + " " + capability), std::string::npos) << message;
      EXPECT_NE(message.find("need compute capability 9.0"), std::string::npos) << message;
      EXPECT_NE(message.find("MC_STRATEGY_CUBLAS"), std::string::npos) << message;
      // The same strategy plans normally on an SM90a device.
      EXPECT_EQ(error_of(strategy, device_with(9, 0), {}).first, MC_STATUS_OK);
    }
    // A caller's list names SM90a kernels too, so auto with one is refused rather than silently ignored.
    ConfigOverride forced;
    forced.count = 1;
    forced.configs[0] = index_of("tile_128x128x128_c1x2_cooperative");
    forced.max_rows[0] = kUnboundedRows;
    const auto [status, message] = error_of(MC_STRATEGY_AUTO, device, forced);
    EXPECT_EQ(status, MC_STATUS_UNSUPPORTED);
    EXPECT_NE(message.find("desc->config_count = 1"), std::string::npos) << message;
    EXPECT_NE(message.find(capability), std::string::npos) << message;
  }
}

// The CPU reference plans as an SM90a GPU of no measured class: its auto never resolves to cublas either.
TEST(GemmSelectionAbi, TheCpuBackendPlansAsAnSm90aDevice) {
  mctest::Context context(1);
  mc_grouped_gemm_desc desc = mctest::gemm_desc(8, 256, 7168, 8 * 4096);
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &desc, &plan));
  mc_grouped_gemm_plan_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_grouped_gemm_plan_get_info(plan, &info));
  EXPECT_STREQ(info.selection, gpu_class_name(GpuClass::Other));
  for (int32_t rows : {0, 8, 8 * 16, 8 * 64, 8 * 4096}) {
    int32_t strategy = -1;
    MC_ASSERT_OK(mc_grouped_gemm_plan_resolve_strategy(plan, rows, &strategy));
    EXPECT_NE(strategy, MC_STRATEGY_CUBLAS) << rows;
  }
  EXPECT_EQ(mc_grouped_gemm_plan_destroy(plan), MC_STATUS_OK);
}
