// The persistent kernels of this build: every registry configuration the kernel supports (non-swapped,
// cooperative), looked up by registry index at run time. Bring-up: bf16 output only.
#include <utility>

#include "cuda/persistent/moe_persistent_kernel.cuh"
#include "moecutlass/moecutlass.h"

namespace moecutlass::cuda::persistent {

namespace {

template <int Index>
constexpr bool kSupported = !kKernelConfigs[Index].swap_ab &&
                            kKernelConfigs[Index].schedule == ::moecutlass::KernelSchedule::Cooperative;

template <int Index>
cudaError_t launch_index(const MoePersistentJob& job, cudaStream_t stream) {
  if constexpr (kSupported<Index>) {
    return launch_kernel<MoePersistentKernel<sm90::RegistryConfig<Index, cutlass::bfloat16_t>>>(job, stream);
  } else {
    return cudaErrorNotSupported;
  }
}

template <int... Indices>
cudaError_t dispatch(const MoePersistentJob& job, cudaStream_t stream, std::integer_sequence<int, Indices...>) {
  cudaError_t result = cudaErrorNotSupported;
  ((job.config == Indices ? (result = launch_index<Indices>(job, stream), true) : false) || ...);
  return result;
}

template <int... Indices>
constexpr bool supported(int32_t config, std::integer_sequence<int, Indices...>) {
  return ((config == Indices && kSupported<Indices>) || ...);
}

}  // namespace

bool moe_persistent_supports(int32_t config, int32_t output_dtype) {
  return output_dtype == MC_DTYPE_BF16 && supported(config, std::make_integer_sequence<int, kKernelConfigCount>{});
}

cudaError_t launch_moe_persistent(const MoePersistentJob& job, cudaStream_t stream) {
  if (!moe_persistent_supports(job.config, job.output_dtype)) return cudaErrorNotSupported;
  return dispatch(job, stream, std::make_integer_sequence<int, kKernelConfigCount>{});
}

}  // namespace moecutlass::cuda::persistent
