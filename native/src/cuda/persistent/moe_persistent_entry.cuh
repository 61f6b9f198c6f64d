// The host entry points of one persistent kernel (registry configuration Index, output dtype OutputDtype), declared
// in moe_persistent.hpp. Included only by the generated units (moe_persistent_instance.cu.in), one configuration
// and dtype each, so that nvcc builds them in parallel like the pointer-array kernels.
#pragma once

#include "cuda/persistent/moe_persistent.hpp"
#include "cuda/persistent/moe_persistent_kernel.cuh"

namespace moecutlass::cuda::persistent {

template <int OutputDtype>
using OutputElement = cute::conditional_t<OutputDtype == MC_DTYPE_BF16, cutlass::bfloat16_t, cutlass::half_t>;

template <int Index, int OutputDtype>
using EntryKernel = MoePersistentKernel<sm90::RegistryConfig<Index, OutputElement<OutputDtype>>>;

template <int Index, int OutputDtype>
cudaError_t PersistentEntry<Index, OutputDtype>::prepare() {
  return prepare_kernel<EntryKernel<Index, OutputDtype>>();
}

template <int Index, int OutputDtype>
cudaError_t PersistentEntry<Index, OutputDtype>::max_clusters(int32_t* clusters) {
  return max_active_clusters<EntryKernel<Index, OutputDtype>>(clusters);
}

template <int Index, int OutputDtype>
cudaError_t PersistentEntry<Index, OutputDtype>::launch(const MoePersistentJob& job, cudaStream_t stream) {
  return launch_kernel<EntryKernel<Index, OutputDtype>>(job, stream);
}

}  // namespace moecutlass::cuda::persistent
