#include "core/gemm_selection.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace moecutlass {

namespace {

enum class Path { Specialized, Single, Persistent, AutoPersistent, AutoSpecialize };

struct RangeRow {
  GpuClass gpu_class;
  Path path;
  int32_t config;
  int32_t first_rows;
  int32_t last_rows;
  int32_t min_k;
  int32_t min_n;  // MC_AUTO_PERSISTENT only (0 elsewhere)
};

constexpr GpuClass kClass_H100 = GpuClass::H100;
constexpr GpuClass kClass_H200 = GpuClass::H200;
constexpr GpuClass kClass_OTHER = GpuClass::Other;
constexpr Path kPath_SPECIALIZED = Path::Specialized;
constexpr Path kPath_SINGLE = Path::Single;
constexpr Path kPath_PERSISTENT = Path::Persistent;

constexpr RangeRow kRangeRows[] = {
#define MC_KERNEL_CONFIG(name, tm, tn, tk, cm, cn, schedule, swap)
#define MC_KERNEL_RANGE(gpu_class, path, name, first, last, min_k) \
  {kClass_##gpu_class, kPath_##path, registry_detail::kIndex_##name, first, last, min_k, 0},
#define MC_AUTO_PERSISTENT(gpu_class, first, last, min_k, min_n) \
  {kClass_##gpu_class, Path::AutoPersistent, -1, first, last, min_k, min_n},
#define MC_AUTO_SPECIALIZE(gpu_class, min_k) {kClass_##gpu_class, Path::AutoSpecialize, -1, 0, 0, min_k, 0},
#include "core/kernel_configs.def"
#undef MC_KERNEL_CONFIG
#undef MC_KERNEL_RANGE
#undef MC_AUTO_PERSISTENT
#undef MC_AUTO_SPECIALIZE
};

struct ClassRow {
  GpuClass id;
  const char* name;
  int32_t multiprocessors;
  double min_bandwidth_gbps;
  double max_bandwidth_gbps;
  double peak_fp8_dense_tflops;
  double datasheet_bandwidth_gbps;
};

// Matched by SM count and the peak bandwidth computed from bus width and memory clock (an H100 SXM reports
// 3352 GB/s, an H200 4814 GB/s). The ceilings are NVIDIA's datasheet figures for the class (dense FP8 tensor
// throughput without sparsity; HBM bandwidth), the roofline a benchmark on that GPU is measured against.
constexpr ClassRow kClasses[] = {
    {GpuClass::H100, "H100 SXM (132 SMs, HBM3)", 132, 2800.0, 3700.0, 1979.0, 3350.0},
    {GpuClass::H200, "H200 (132 SMs, HBM3e)", 132, 4000.0, 5300.0, 1979.0, 4800.0},
};
// No ceilings for an unknown GPU: a roofline against a guessed peak would be a made-up percentage.
constexpr const char* kOtherName = "other GPU (tile-width thresholds)";

// Appends a row to a path's ranges: it takes the rows from where the previous range ended up to its own last
// (see kernel_configs.def); a row whose last is already covered is shadowed and dropped.
void append_range(RowRange* ranges, int32_t& count, const RangeRow& row) {
  if (count > 0 && ranges[count - 1].last_rows == kUnboundedRows) return;  // before the + 1 below could overflow
  int32_t first = row.first_rows;
  if (count > 0) first = std::max(first, ranges[count - 1].last_rows + 1);
  if (first > row.last_rows) return;
  ranges[count++] = {row.config, first, row.last_rows};
}

SelectionTable build_table(GpuClass gpu_class, int32_t n, int32_t k) {
  SelectionTable table;
  for (const RangeRow& row : kRangeRows) {
    if (row.gpu_class != gpu_class) continue;
    if (row.path == Path::AutoSpecialize) {
      table.auto_specializes = k >= row.min_k;  // the depth from which auto may specialize
      continue;
    }
    if (row.min_k > k) continue;
    switch (row.path) {
      case Path::Specialized:
        append_range(table.specialized, table.specialized_count, row);
        break;
      case Path::Single:
        append_range(table.single, table.single_count, row);
        break;
      case Path::Persistent:
        append_range(table.persistent, table.persistent_count, row);
        break;
      case Path::AutoSpecialize:
        break;  // handled above
      case Path::AutoPersistent:
        // Not a partition: auto's persistent ranges may leave gaps (there auto runs as before).
        if (n >= row.min_n && table.auto_persistent_count < kMaxPlanConfigs) {
          table.auto_persistent[table.auto_persistent_count++] = {-1, row.first_rows, row.last_rows};
        }
        break;
    }
  }
  // A class without PERSISTENT rows runs the persistent kernel with its SINGLE choice.
  if (table.persistent_count == 0) {
    std::copy(table.single, table.single + table.single_count, table.persistent);
    table.persistent_count = table.single_count;
  }
  return table;
}

// The range holding rows, or null.
const RowRange* find_containing(const RowRange* ranges, int32_t count, int32_t rows) {
  for (int32_t i = 0; i < count; ++i) {
    if (rows >= ranges[i].first_rows && rows <= ranges[i].last_rows) return &ranges[i];
  }
  return nullptr;
}

// The range holding rows, else the last one (a partition's ranges hold every count; this is the guard).
const RowRange* find_range(const RowRange* ranges, int32_t count, int32_t rows) {
  const RowRange* found = find_containing(ranges, count, rows);
  return found != nullptr ? found : (count > 0 ? &ranges[count - 1] : nullptr);
}

// Every specialized range as one launch each, the range holding the average first in line (lead).
LaunchSet specialized_launches(const SelectionTable& table, int32_t average, int32_t strategy) {
  LaunchSet set;
  set.strategy = strategy;
  set.count = table.specialized_count;
  for (int32_t i = 0; i < set.count; ++i) {
    set.launch[i] = table.specialized[i];
    if (average >= set.launch[i].first_rows && average <= set.launch[i].last_rows) set.lead = i;
  }
  return set;
}

// Whether a strategy may use the SPECIALIZED ranges: not single, and auto only from its class's specializing depth.
bool specializes(int32_t strategy, const SelectionTable& table) {
  return strategy != MC_STRATEGY_SINGLE && (strategy != MC_STRATEGY_AUTO || table.auto_specializes);
}

const char* strategy_constant(int32_t strategy) {
  switch (strategy) {
    case MC_STRATEGY_AUTO: return "MC_STRATEGY_AUTO (0)";
    case MC_STRATEGY_SINGLE: return "MC_STRATEGY_SINGLE (1)";
    case MC_STRATEGY_EXPERT_SPECIALIZED: return "MC_STRATEGY_EXPERT_SPECIALIZED (2)";
    case MC_STRATEGY_PERSISTENT: return "MC_STRATEGY_PERSISTENT (3)";
    case MC_STRATEGY_CUBLAS: return "MC_STRATEGY_CUBLAS (4)";
    default: return "an unknown strategy";
  }
}

void add_config(PlanSelection& plan, int32_t config) {
  for (int32_t i = 0; i < plan.config_count; ++i) {
    if (plan.configs[i] == config) return;
  }
  plan.configs[plan.config_count++] = config;
  std::sort(plan.configs, plan.configs + plan.config_count);
}

}  // namespace

GpuClassInfo gpu_class_of(int32_t multiprocessors, double peak_bandwidth_gbps) {
  for (const ClassRow& row : kClasses) {
    if (row.multiprocessors == multiprocessors && peak_bandwidth_gbps >= row.min_bandwidth_gbps &&
        peak_bandwidth_gbps <= row.max_bandwidth_gbps) {
      return {row.id, row.name, row.peak_fp8_dense_tflops, row.datasheet_bandwidth_gbps};
    }
  }
  return {GpuClass::Other, kOtherName, 0.0, 0.0};
}

const char* gpu_class_name(GpuClass gpu_class) {
  for (const ClassRow& row : kClasses) {
    if (row.id == gpu_class) return row.name;
  }
  return kOtherName;
}

SelectionTable selection_table(GpuClass gpu_class, int32_t n, int32_t k) { return build_table(gpu_class, n, k); }

bool runs_sm90a_kernels(int32_t compute_major, int32_t compute_minor, bool built) {
  return built && compute_major == 9 && compute_minor == 0;
}

void validate_config_override(const ConfigOverride& request, int32_t strategy) {
  if (request.count < 0 || request.count > kMaxPlanConfigs) {
    fail(MC_STATUS_INVALID_ARGUMENT, "desc->config_count = ", request.count, " is outside 0 .. ", kMaxPlanConfigs,
         " (MC_MAX_PLAN_CONFIGS)");
  }
  if (request.count == 0) return;
  if (strategy == MC_STRATEGY_CUBLAS) {
    fail(MC_STATUS_INVALID_ARGUMENT, "desc->config_count = ", request.count,
         ": MC_STRATEGY_CUBLAS runs no kernel configuration of the registry (cuBLAS picks its own), so it takes 0");
  }
  if (strategy == MC_STRATEGY_SINGLE && request.count != 1) {
    fail(MC_STATUS_INVALID_ARGUMENT, "desc->config_count = ", request.count,
         ": MC_STRATEGY_SINGLE runs one configuration, so it takes exactly 1");
  }
  for (int32_t i = 0; i < request.count; ++i) {
    const int32_t config = request.configs[i];
    if (config < 0 || config >= kKernelConfigCount) {
      fail(MC_STATUS_INVALID_ARGUMENT, "desc->configs[", i, "] = ", config, " is not a configuration index 0 .. ",
           kKernelConfigCount - 1, " (mc_get_kernel_config_count)");
    }
    for (int32_t j = 0; j < i; ++j) {
      if (request.configs[j] == config) {
        fail(MC_STATUS_INVALID_ARGUMENT, "desc->configs[", i, "] = ", config, " (", kKernelConfigs[config].name,
             ") repeats desc->configs[", j, "]; each configuration may appear once");
      }
    }
    const int32_t max_rows = request.max_rows[i];
    if (max_rows <= 0) {
      fail(MC_STATUS_INVALID_ARGUMENT, "desc->config_max_rows[", i, "] = ", max_rows,
           " must be positive (the largest rows per expert that configuration takes)");
    }
    if (i > 0 && max_rows <= request.max_rows[i - 1]) {
      fail(MC_STATUS_INVALID_ARGUMENT, "desc->config_max_rows[", i, "] = ", max_rows,
           " must be above desc->config_max_rows[", i - 1, "] = ", request.max_rows[i - 1],
           " (configurations are listed narrowest first)");
    }
  }
  if (request.max_rows[request.count - 1] != kUnboundedRows) {
    fail(MC_STATUS_INVALID_ARGUMENT, "desc->config_max_rows[", request.count - 1, "] = ",
         request.max_rows[request.count - 1],
         " must be MC_MAX_ROWS (2147483647): the last configuration takes every larger expert");
  }
}

PlanSelection select_plan(int32_t strategy, GpuClass gpu_class, int32_t n, int32_t k, const ConfigOverride& request) {
  SelectionDevice device;
  device.gpu_class = gpu_class;
  return select_plan(strategy, device, n, k, request);
}

PlanSelection select_plan(int32_t strategy, const SelectionDevice& device, int32_t n, int32_t k,
                          const ConfigOverride& request) {
  PlanSelection plan;
  plan.strategy = strategy;
  if (strategy == MC_STRATEGY_CUBLAS) {
    // No table: cuBLAS chooses its kernels per call from the sizes, which it is given on the host.
    plan.source = "cuBLAS";
    plan.cublas = true;
    return plan;
  }
  if (!device.sm90a) {
    // Every registry configuration is an SM90a kernel: without SM90a the only grouped GEMM is cuBLAS's.
    if (strategy != MC_STRATEGY_AUTO) {
      fail(MC_STATUS_UNSUPPORTED, "desc->strategy = ", strategy_constant(strategy),
           " runs this library's SM90a kernels, which need compute capability 9.0 (H100/H200); ", device.name,
           " has compute capability ", device.compute_major, ".", device.compute_minor,
           ". MC_STRATEGY_CUBLAS is the grouped GEMM for it (MC_STRATEGY_AUTO chooses it); conversion, quantization, "
           "routing and the other layer stages run on it");
    }
    if (request.count > 0) {
      fail(MC_STATUS_UNSUPPORTED, "desc->config_count = ", request.count,
           ": the registry's kernel configurations are SM90a kernels, which need compute capability 9.0; ",
           device.name, " has compute capability ", device.compute_major, ".", device.compute_minor,
           ". Leave the list empty, and MC_STRATEGY_AUTO chooses MC_STRATEGY_CUBLAS");
    }
    plan.source = "cuBLAS (auto: the device has no SM90a)";
    plan.cublas = true;
    return plan;
  }
  const GpuClass gpu_class = device.gpu_class;
  if (request.count > 0) {
    plan.source = "mc_grouped_gemm_desc.configs";
    plan.forced = true;
    SelectionTable& table = plan.table;
    int32_t first = 1;
    for (int32_t i = 0; i < request.count; ++i) {
      table.specialized[i] = {request.configs[i], first, request.max_rows[i]};
      if (request.max_rows[i] < kUnboundedRows) first = request.max_rows[i] + 1;
    }
    table.specialized_count = request.count;
    // The widest listed configuration serves the single and persistent paths.
    table.single[0] = {request.configs[request.count - 1], 0, kUnboundedRows};
    table.single_count = 1;
    table.persistent[0] = table.single[0];
    table.persistent_count = 1;
    table.auto_specializes = true;  // a caller's list is meant to be used
  } else {
    plan.source = gpu_class_name(gpu_class);
    plan.table = selection_table(gpu_class, n, k);
  }
  const SelectionTable& table = plan.table;
  const bool persistent_only = strategy == MC_STRATEGY_PERSISTENT && request.count <= 1;
  if (strategy != MC_STRATEGY_PERSISTENT) {
    for (int32_t i = 0; i < table.single_count; ++i) add_config(plan, table.single[i].config);
  }
  if (specializes(strategy, table) && !persistent_only) {
    for (int32_t i = 0; i < table.specialized_count; ++i) add_config(plan, table.specialized[i].config);
  }
  if (strategy == MC_STRATEGY_PERSISTENT || (strategy == MC_STRATEGY_AUTO && table.auto_persistent_count > 0)) {
    for (int32_t i = 0; i < table.persistent_count; ++i) add_config(plan, table.persistent[i].config);
  }
  return plan;
}

LaunchSet select_launches(const PlanSelection& plan, int32_t experts, int32_t rows) {
  const SelectionTable& table = plan.table;
  const int32_t average = experts > 0 ? rows / experts : 0;
  LaunchSet set;
  if (plan.cublas) {
    set.strategy = MC_STRATEGY_CUBLAS;
    return set;
  }
  if (plan.strategy == MC_STRATEGY_PERSISTENT && plan.forced && table.specialized_count > 1) {
    // A caller's list of several configurations: expert specialization inside the persistent kernel, one launch
    // per configuration, each walking only the experts in its range.
    return specialized_launches(table, average, MC_STRATEGY_PERSISTENT);
  }
  const bool auto_persistent =
      plan.strategy == MC_STRATEGY_AUTO &&
      find_containing(table.auto_persistent, table.auto_persistent_count, average) != nullptr;
  if (plan.strategy == MC_STRATEGY_PERSISTENT || auto_persistent) {
    const RowRange* persistent = find_range(table.persistent, table.persistent_count, average);
    set.strategy = MC_STRATEGY_PERSISTENT;
    set.count = 1;
    set.launch[0] = {persistent->config, 1, kUnboundedRows};
    return set;
  }
  const bool may_specialize = specializes(plan.strategy, table) && table.specialized_count > 1;
  const int32_t widest_first = may_specialize ? table.specialized[table.specialized_count - 1].first_rows : 0;
  if (may_specialize && average < widest_first - 1) {
    return specialized_launches(table, average, MC_STRATEGY_EXPERT_SPECIALIZED);
  }
  const RowRange* single = find_range(table.single, table.single_count, average);
  set.strategy = MC_STRATEGY_SINGLE;
  set.count = 1;
  set.launch[0] = {single->config, 1, kUnboundedRows};
  set.lead = 0;
  return set;
}

}  // namespace moecutlass
