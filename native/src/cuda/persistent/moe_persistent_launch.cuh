// The persistent kernels by registry index, included once per output dtype (moe_persistent_bf16.cu, _fp16.cu):
// every configuration kernel_config_persistent names, with MC_PERSISTENT_ELEMENT output.
#pragma once

#include <utility>

#include "cuda/persistent/moe_persistent_kernel.cuh"

namespace moecutlass::cuda::persistent {

namespace {

template <int Index>
using Kernel = MoePersistentKernel<sm90::RegistryConfig<Index, MC_PERSISTENT_ELEMENT>>;

// Calls action(std::integral_constant<int, config>) for the configuration of a run; not-supported for a
// configuration without a persistent kernel.
template <class Action, int... Indices>
cudaError_t with_config(int32_t config, Action&& action, std::integer_sequence<int, Indices...>) {
  cudaError_t result = cudaErrorNotSupported;
  (void)((config == Indices ? (result = action(std::integral_constant<int, Indices>{}), true) : false) || ...);
  return result;
}

template <class Action>
cudaError_t with_config(int32_t config, Action&& action) {
  return with_config(config, action, std::make_integer_sequence<int, kKernelConfigCount>{});
}

}  // namespace

cudaError_t MC_PERSISTENT_PREPARE(int32_t config) {
  return with_config(config, [](auto index) -> cudaError_t {
    if constexpr (kernel_config_persistent(decltype(index)::value)) {
      return prepare_kernel<Kernel<decltype(index)::value>>();
    } else {
      return cudaErrorNotSupported;
    }
  });
}

cudaError_t MC_PERSISTENT_MAX_CLUSTERS(int32_t config, int32_t* clusters) {
  return with_config(config, [&](auto index) -> cudaError_t {
    if constexpr (kernel_config_persistent(decltype(index)::value)) {
      return max_active_clusters<Kernel<decltype(index)::value>>(clusters);
    } else {
      return cudaErrorNotSupported;
    }
  });
}

cudaError_t MC_PERSISTENT_LAUNCH(const MoePersistentJob& job, cudaStream_t stream) {
  return with_config(job.config, [&](auto index) -> cudaError_t {
    if constexpr (kernel_config_persistent(decltype(index)::value)) {
      return launch_kernel<Kernel<decltype(index)::value>>(job, stream);
    } else {
      return cudaErrorNotSupported;
    }
  });
}

}  // namespace moecutlass::cuda::persistent
