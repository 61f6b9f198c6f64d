#include "cuda/persistent/moe_persistent.hpp"

#include <array>
#include <utility>

#include "core/kernel_registry.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass::cuda::persistent {

namespace {

// One row per registry configuration and output dtype: the entry points of its generated unit.
struct EntryRow {
  cudaError_t (*prepare)();
  cudaError_t (*max_clusters)(int32_t*);
  cudaError_t (*launch)(const MoePersistentJob&, cudaStream_t);
};

template <int OutputDtype, int... Indices>
constexpr std::array<EntryRow, sizeof...(Indices)> entry_table(std::integer_sequence<int, Indices...>) {
  return {EntryRow{&PersistentEntry<Indices, OutputDtype>::prepare, &PersistentEntry<Indices, OutputDtype>::max_clusters,
                   &PersistentEntry<Indices, OutputDtype>::launch}...};
}

constexpr auto kBf16 = entry_table<MC_DTYPE_BF16>(std::make_integer_sequence<int, kKernelConfigCount>{});
constexpr auto kFp16 = entry_table<MC_DTYPE_FP16>(std::make_integer_sequence<int, kKernelConfigCount>{});

const EntryRow& entry(int32_t config, int32_t output_dtype) {
  return output_dtype == MC_DTYPE_BF16 ? kBf16[config] : kFp16[config];
}

}  // namespace

bool moe_persistent_supports(int32_t config, int32_t output_dtype) {
  return config >= 0 && config < kKernelConfigCount &&
         (output_dtype == MC_DTYPE_BF16 || output_dtype == MC_DTYPE_FP16);
}

cudaError_t prepare_moe_persistent(int32_t config, int32_t output_dtype) {
  if (!moe_persistent_supports(config, output_dtype)) return cudaErrorNotSupported;
  return entry(config, output_dtype).prepare();
}

cudaError_t moe_persistent_max_clusters(int32_t config, int32_t output_dtype, int32_t* clusters) {
  if (!moe_persistent_supports(config, output_dtype)) return cudaErrorNotSupported;
  return entry(config, output_dtype).max_clusters(clusters);
}

cudaError_t launch_moe_persistent(const MoePersistentJob& job, cudaStream_t stream) {
  if (!moe_persistent_supports(job.config, job.output_dtype)) return cudaErrorNotSupported;
  return entry(job.config, job.output_dtype).launch(job, stream);
}

}  // namespace moecutlass::cuda::persistent
