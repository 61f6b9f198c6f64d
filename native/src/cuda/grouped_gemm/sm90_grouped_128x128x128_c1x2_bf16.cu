// Strategy `single`, bf16 output: 128x128x128 tiles, 1x2 clusters, cooperative warp-specialized FP8 blockwise
// grouped kernel (CUTLASS example 68's configuration), 1x128 activation and 128x128 weight scales.
#include "cuda/grouped_gemm/sm90_grouped_kernel.cuh"

namespace moecutlass::cuda {

using Sm90Grouped128x128Bf16 = sm90::GroupedConfig<
    cutlass::bfloat16_t, cute::Shape<cute::_128, cute::_128, cute::_128>, cute::Shape<cute::_1, cute::_2, cute::_1>,
    cutlass::gemm::KernelPtrArrayTmaWarpSpecializedCooperativeFP8Blockwise,
    cutlass::epilogue::PtrArrayTmaWarpSpecializedCooperative, false>;

std::unique_ptr<GroupedGemmKernel> make_sm90_grouped_128x128x128_c1x2_bf16(const GroupedGemmKernelSetup& setup) {
  return std::make_unique<sm90::CutlassGroupedGemm<Sm90Grouped128x128Bf16>>(
      setup, "sm90_fp8_blockwise_grouped_128x128x128_c1x2_cooperative_bf16");
}

}  // namespace moecutlass::cuda
