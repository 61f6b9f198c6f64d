// The factory table of the registry's configurations: entry [index][dtype] is the explicit instantiation in the
// generated translation unit of that configuration and dtype. A registry row without its generated unit fails the
// link, so the table and the build cannot drift apart.
#include <utility>

#include "core/error.hpp"
#include "core/kernel_registry.hpp"
#include "cuda/grouped_gemm/grouped_kernel.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass::cuda {

namespace {

struct FactoryPair {
  GroupedKernelFactory bf16;
  GroupedKernelFactory fp16;
};

template <int... Index>
constexpr auto make_table(std::integer_sequence<int, Index...>) {
  struct Table {
    FactoryPair rows[sizeof...(Index)];
  };
  return Table{{FactoryPair{&make_grouped_kernel<Index, MC_DTYPE_BF16>, &make_grouped_kernel<Index, MC_DTYPE_FP16>}...}};
}

const auto kFactories = make_table(std::make_integer_sequence<int, kKernelConfigCount>{});

}  // namespace

GroupedKernelFactory grouped_kernel_factory(int32_t config, int32_t output_dtype) {
  if (config < 0 || config >= kKernelConfigCount) fail(MC_STATUS_INTERNAL, "no kernel configuration ", config);
  return output_dtype == MC_DTYPE_FP16 ? kFactories.rows[config].fp16 : kFactories.rows[config].bf16;
}

bool grouped_kernels_support_programmatic_launch() {
#if defined(CUTLASS_ENABLE_GDC_FOR_SM90) && CUTLASS_ENABLE_GDC_FOR_SM90
  return true;
#else
  return false;
#endif
}

}  // namespace moecutlass::cuda
