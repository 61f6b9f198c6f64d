// The selection step of a grouped-GEMM plan: pure host logic, no CUDA, unit-tested on any machine and shared by
// every backend (the CPU backend resolves `auto` with it and reports what a GPU would launch).
//
//   select_plan     (strategy, GPU class, N, K, caller's override) -> the configurations a plan instantiates
//                   and the ranges it chooses from (the per-GPU-class MC_KERNEL_RANGE table, or the caller's list);
//   select_launches (that, rows of one call) -> the configurations one run launches and the rows each takes.
//
// The host never knows rows per expert, only rows / E (the average), so a run's choice depends on that:
//   single: one configuration for every expert, the SINGLE range that holds the average;
//   persistent: one launch of the persistent MoE kernel with the PERSISTENT range that holds the average (a class
//     without PERSISTENT rows uses its SINGLE ones); a caller's list of several configurations runs expert
//     specialization inside it instead: one persistent launch per configuration, each walking only its experts;
//   expert_specialized and auto: every SPECIALIZED range while the average is below the first row of the last
//     (widest) range minus one; from there on, the single configuration. At or above that average at least as many
//     experts are expected in the widest bucket as in the narrow ones, and each extra configuration costs a
//     persistent launch and its own tail (H100 suite: ds-tp8-down-e256-t2048, 40-89 rows per expert, ran at 0.973x
//     of single with all three configurations). auto exists so that callers need not know that crossover; it runs
//     the persistent kernel instead where the class's MC_AUTO_PERSISTENT rows hold the average (and K), and does
//     not specialize below the class's MC_AUTO_SPECIALIZE depth (there it runs the single configuration);
//   cublas: no registry configuration at all (cuBLAS picks its own kernels after the operands are dequantized to
//     bf16), the same for every call. auto never runs it on a device with SM90a, and always runs it on a device
//     without: there the registry's kernels cannot run, so single, expert_specialized and persistent are refused.
#pragma once

#include <cstdint>
#include <string>

#include "core/kernel_registry.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

inline constexpr int32_t kMaxPlanConfigs = MC_MAX_PLAN_CONFIGS;
inline constexpr int32_t kUnboundedRows = MC_MAX_ROWS;

enum class GpuClass : int32_t { H100 = 0, H200 = 1, Other = 2 };

struct GpuClassInfo {
  GpuClass id;
  const char* name;
  double peak_fp8_dense_tflops;     // datasheet ceilings of the class; 0 for GpuClass::Other (none known)
  double datasheet_bandwidth_gbps;
};

// The class of a device, matched by multiprocessor count and peak memory bandwidth (from bus width and clock).
GpuClassInfo gpu_class_of(int32_t multiprocessors, double peak_bandwidth_gbps);
const char* gpu_class_name(GpuClass gpu_class);

// Whether a device runs this library's SM90a grouped-GEMM kernels (mc_device_info.has_sm90a). They use wgmma and TMA
// multicast, so they are built as sm_90a code, and sm_90a code runs on compute capability 9.0 alone: not on 8.x, nor
// on 10.x or 12.x (no forward compatibility for the "a" targets). `built`: the library holds them as sm_90a code.
bool runs_sm90a_kernels(int32_t compute_major, int32_t compute_minor, bool built);

// What the selection step knows of the device a plan runs on, from the device query. The CPU reference stands for an
// SM90a GPU of no measured class (GpuClass::Other), so it reports what such a GPU would launch.
struct SelectionDevice {
  GpuClass gpu_class = GpuClass::Other;
  bool sm90a = true;  // runs_sm90a_kernels: without it only MC_STRATEGY_CUBLAS can run, and auto resolves to it
  int32_t compute_major = 9;
  int32_t compute_minor = 0;
  std::string name = "an SM90a device";  // for messages, e.g. "device 0 (NVIDIA A100-SXM4-80GB)"
};

// Rows [first_rows, last_rows] served by a configuration (registry index). SPECIALIZED ranges count an expert's
// own rows; SINGLE ranges count the average rows per expert of a call.
struct RowRange {
  int32_t config = -1;
  int32_t first_rows = 0;
  int32_t last_rows = 0;
};

struct SelectionTable {
  int32_t specialized_count = 0;
  RowRange specialized[kMaxPlanConfigs];
  int32_t single_count = 0;
  RowRange single[kMaxPlanConfigs];
  // The persistent kernel's configuration by average rows (the class's PERSISTENT rows, else its SINGLE ones).
  int32_t persistent_count = 0;
  RowRange persistent[kMaxPlanConfigs];
  // Average rows per expert at which auto runs the persistent kernel (MC_AUTO_PERSISTENT; config unused).
  int32_t auto_persistent_count = 0;
  RowRange auto_persistent[kMaxPlanConfigs];
  // Whether auto may specialize at this depth (MC_AUTO_SPECIALIZE; a class without the row: at any depth).
  bool auto_specializes = true;
};

// The MC_KERNEL_RANGE rows of one GPU class that apply to a problem of depth k, as consecutive ranges (rows with
// min_k above k skipped, later rows clipped where earlier ones already cover: kernel_configs.def), and the
// MC_AUTO_PERSISTENT rows whose min_k and min_n the problem reaches.
SelectionTable selection_table(GpuClass gpu_class, int32_t n, int32_t k);

// A caller's explicit configuration list (mc_grouped_gemm_desc.configs), already validated by
// validate_config_override: count 0 means none.
struct ConfigOverride {
  int32_t count = 0;
  int32_t configs[kMaxPlanConfigs] = {};
  int32_t max_rows[kMaxPlanConfigs] = {};
};

// Checks a caller's list and throws Error(MC_STATUS_INVALID_ARGUMENT) naming the field and the rule: count 0 ..
// MC_MAX_PLAN_CONFIGS; known, distinct configurations; max_rows > 0 and increasing; the last MC_MAX_ROWS (every
// expert has a configuration); strategy single takes exactly one, strategy cublas none.
void validate_config_override(const ConfigOverride& request, int32_t strategy);

struct PlanSelection {
  int32_t strategy = MC_STRATEGY_AUTO;  // as asked
  const char* source = "";              // the GPU class name, "mc_grouped_gemm_desc.configs", or cuBLAS's
  bool forced = false;                  // the table is the caller's list
  // Every run executes MC_STRATEGY_CUBLAS (asked for, or auto on a device without SM90a): no table and no
  // configuration (config_count 0).
  bool cublas = false;
  SelectionTable table;
  // Every configuration a run of this plan may launch, distinct, ascending registry index.
  int32_t config_count = 0;
  int32_t configs[2 * kMaxPlanConfigs] = {};
};

// Throws Error(MC_STATUS_UNSUPPORTED) naming the device's compute capability when the device has no SM90a and the
// strategy (single, expert_specialized, persistent) or the caller's list needs the registry's SM90a kernels.
PlanSelection select_plan(int32_t strategy, const SelectionDevice& device, int32_t n, int32_t k,
                          const ConfigOverride& request);
// The same on an SM90a device of that class (what the class tables were measured on).
PlanSelection select_plan(int32_t strategy, GpuClass gpu_class, int32_t n, int32_t k, const ConfigOverride& request);

struct LaunchSet {
  int32_t strategy = MC_STRATEGY_SINGLE;  // what the run executes: single, expert_specialized, persistent or cublas
  int32_t count = 0;                 // 0 for cublas, which launches no registry configuration
  RowRange launch[kMaxPlanConfigs];  // per-expert row ranges, disjoint, ascending
  int32_t lead = 0;                  // the launch whose range holds the average: it goes first
};

// rows: 0 .. the plan's max_rows; experts >= 1.
LaunchSet select_launches(const PlanSelection& plan, int32_t experts, int32_t rows);

}  // namespace moecutlass
