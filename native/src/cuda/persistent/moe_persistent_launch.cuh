// The persistent kernels by registry index, included once per output dtype (moe_persistent_bf16.cu, _fp16.cu):
// every configuration kernel_config_persistent names, with MC_PERSISTENT_ELEMENT output.
#pragma once

#include <utility>

#include "cuda/persistent/moe_persistent_kernel.cuh"

namespace moecutlass::cuda::persistent {

namespace {

template <int Index>
cudaError_t launch_index(const MoePersistentJob& job, cudaStream_t stream) {
  if constexpr (kernel_config_persistent(Index)) {
    return launch_kernel<MoePersistentKernel<sm90::RegistryConfig<Index, MC_PERSISTENT_ELEMENT>>>(job, stream);
  } else {
    return cudaErrorNotSupported;
  }
}

template <int... Indices>
cudaError_t dispatch(const MoePersistentJob& job, cudaStream_t stream, std::integer_sequence<int, Indices...>) {
  cudaError_t result = cudaErrorNotSupported;
  (void)((job.config == Indices ? (result = launch_index<Indices>(job, stream), true) : false) || ...);
  return result;
}

}  // namespace

cudaError_t MC_PERSISTENT_LAUNCH(const MoePersistentJob& job, cudaStream_t stream) {
  return dispatch(job, stream, std::make_integer_sequence<int, kKernelConfigCount>{});
}

}  // namespace moecutlass::cuda::persistent
