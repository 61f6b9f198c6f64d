// Expert specialization, bf16 output: swapped (D^T = B * A^T) 128x32x128 tiles, 2x1 clusters, pingpong warp-specialized
// FP8 blockwise grouped kernel for experts with few rows: the rows become a narrow 32-wide N tile instead of
// filling a 128-row M tile mostly with padding. TileM is 128, not 256: with 256-row tiles and per-token scales the
// SM90 blockwise collective reuses one wave's scale registers for the other (CUTLASS issue #3596).
#include "cuda/grouped_gemm/sm90_grouped_kernel.cuh"

namespace moecutlass::cuda {

using Sm90GroupedSwap128x32Bf16 = sm90::GroupedConfig<
    cutlass::bfloat16_t, cute::Shape<cute::_128, cute::_32, cute::_128>, cute::Shape<cute::_2, cute::_1, cute::_1>,
    cutlass::gemm::KernelPtrArrayTmaWarpSpecializedPingpongFP8Blockwise,
    cutlass::epilogue::PtrArrayTmaWarpSpecializedPingpong, true>;

std::unique_ptr<GroupedGemmKernel> make_sm90_grouped_swap_128x32x128_c2x1_bf16(const GroupedGemmKernelSetup& setup) {
  return std::make_unique<sm90::CutlassGroupedGemm<Sm90GroupedSwap128x32Bf16>>(
      setup, "sm90_fp8_blockwise_grouped_swap_128x32x128_c2x1_pingpong_bf16");
}

}  // namespace moecutlass::cuda
