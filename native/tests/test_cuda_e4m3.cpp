// The quantization kernels' e4m3 encoder on the device (cuda/cuda_codecs.cuh, e4m3_code_quad): from sm_89 on it is
// cvt.rn.satfinite.e4m3x2.f32 per pair plus a NaN fix-up per word of codes, which must give the CPU quantizer's
// code for every fp32 input, or the device quantizers stop being bit-identical to cpu/quantize.cpp. Skipped without
// a CUDA device.
#include <gtest/gtest.h>

#include "e4m3_device_sweep.hpp"
#include "moecutlass/moecutlass.h"

namespace {

TEST(CudaE4m3, PairEncoderMatchesTheHostRuleOnEveryFloat) {
  int32_t count = 0;
  ASSERT_EQ(mc_get_device_count(&count), MC_STATUS_OK);
  if (count == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
  const moecutlass::testing::E4m3SweepResult result = moecutlass::testing::sweep_e4m3_pair_encoder();
  ASSERT_EQ(result.error, nullptr) << result.error;
  EXPECT_EQ(result.inputs, uint64_t{1} << 32);
  EXPECT_EQ(result.mismatches, 0u) << std::hex << "first at pair " << result.first_index << ": low 0x"
                                   << result.first_low << ", high 0x" << result.first_high << " -> codes 0x"
                                   << result.first_codes << ", expected 0x" << result.expected_codes;
}

}  // namespace
