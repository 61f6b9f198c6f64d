#include "cuda/persistent/moe_persistent.hpp"

#include "core/kernel_registry.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass::cuda::persistent {

cudaError_t launch_moe_persistent_bf16(const MoePersistentJob& job, cudaStream_t stream);
cudaError_t launch_moe_persistent_fp16(const MoePersistentJob& job, cudaStream_t stream);
cudaError_t prepare_moe_persistent_bf16(int32_t config);
cudaError_t prepare_moe_persistent_fp16(int32_t config);
cudaError_t moe_persistent_max_clusters_bf16(int32_t config, int32_t* clusters);
cudaError_t moe_persistent_max_clusters_fp16(int32_t config, int32_t* clusters);

bool moe_persistent_supports(int32_t config, int32_t output_dtype) {
  return kernel_config_persistent(config) && (output_dtype == MC_DTYPE_BF16 || output_dtype == MC_DTYPE_FP16);
}

cudaError_t prepare_moe_persistent(int32_t config, int32_t output_dtype) {
  if (!moe_persistent_supports(config, output_dtype)) return cudaErrorNotSupported;
  return output_dtype == MC_DTYPE_BF16 ? prepare_moe_persistent_bf16(config) : prepare_moe_persistent_fp16(config);
}

cudaError_t moe_persistent_max_clusters(int32_t config, int32_t output_dtype, int32_t* clusters) {
  if (!moe_persistent_supports(config, output_dtype)) return cudaErrorNotSupported;
  return output_dtype == MC_DTYPE_BF16 ? moe_persistent_max_clusters_bf16(config, clusters)
                                       : moe_persistent_max_clusters_fp16(config, clusters);
}

cudaError_t launch_moe_persistent(const MoePersistentJob& job, cudaStream_t stream) {
  if (!moe_persistent_supports(job.config, job.output_dtype)) return cudaErrorNotSupported;
  return job.output_dtype == MC_DTYPE_BF16 ? launch_moe_persistent_bf16(job, stream)
                                           : launch_moe_persistent_fp16(job, stream);
}

}  // namespace moecutlass::cuda::persistent
