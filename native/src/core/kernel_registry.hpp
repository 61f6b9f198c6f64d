// The kernel-configuration registry (core/kernel_configs.def) as a table. Pure data with no CUDA types: the C ABI
// reports it, the selection step chooses from it, and the CUDA backend looks its kernel factories up by index.
#pragma once

#include <cstdint>
#include <string_view>

namespace moecutlass {

enum class KernelSchedule : int32_t { Cooperative = 1, Pingpong = 2 };  // MC_SCHEDULE_* in the C header

struct KernelConfig {
  const char* name;
  int32_t tile_m;
  int32_t tile_n;
  int32_t tile_k;
  int32_t cluster_m;
  int32_t cluster_n;
  KernelSchedule schedule;
  bool swap_ab;
};

namespace registry_detail {
// The schedule words of the .def lines.
inline constexpr KernelSchedule kSchedule_COOPERATIVE = KernelSchedule::Cooperative;
inline constexpr KernelSchedule kSchedule_PINGPONG = KernelSchedule::Pingpong;

enum Index : int32_t {
#define MC_KERNEL_CONFIG(name, tm, tn, tk, cm, cn, schedule, swap) kIndex_##name,
#define MC_KERNEL_RANGE(...)
#define MC_AUTO_PERSISTENT(...)
#define MC_AUTO_SPECIALIZE(...)
#include "core/kernel_configs.def"
#undef MC_KERNEL_CONFIG
#undef MC_KERNEL_RANGE
#undef MC_AUTO_PERSISTENT
#undef MC_AUTO_SPECIALIZE
  kCount
};
}  // namespace registry_detail

inline constexpr int32_t kKernelConfigCount = registry_detail::kCount;

inline constexpr KernelConfig kKernelConfigs[kKernelConfigCount] = {
#define MC_KERNEL_CONFIG(name, tm, tn, tk, cm, cn, schedule, swap) \
  {#name, tm, tn, tk, cm, cn, registry_detail::kSchedule_##schedule, (swap) != 0},
#define MC_KERNEL_RANGE(...)
#define MC_AUTO_PERSISTENT(...)
#define MC_AUTO_SPECIALIZE(...)
#include "core/kernel_configs.def"
#undef MC_KERNEL_CONFIG
#undef MC_KERNEL_RANGE
#undef MC_AUTO_PERSISTENT
#undef MC_AUTO_SPECIALIZE
};

// The configuration's index, or -1 for an unknown name.
constexpr int32_t find_kernel_config(std::string_view name) {
  for (int32_t i = 0; i < kKernelConfigCount; ++i) {
    if (name == kKernelConfigs[i].name) return i;
  }
  return -1;
}

// Whether this library holds the configuration's kernels: every configuration in a CUDA build, none without CUDA
// (the CPU backend still accepts any configuration and computes the reference result).
bool kernel_config_compiled(int32_t index);

}  // namespace moecutlass
