// The element rule of the FP8 -> bf16 dequantization that feeds the cuBLAS strategy (issue 15,
// docs/design/cublas-baseline.md): one e4m3 code times its block's fp32 scale, one IEEE fp32 multiplication
// (nearest even), then rounded to bf16 (nearest even); a NaN code gives 0x7FC0. Shared by the CPU reference
// (cpu/dequantize.cpp) and the CUDA kernels (cuda/cuda_dequantize.cu), which therefore agree bit for bit.
//
// Why fp32 and then bf16, not the exact product rounded once: a code has 4 significant bits and a scale 24, so the
// product is exact in double but not always in fp32; rounding twice costs at most 2^-24 relative on top of bf16's
// 2^-9, well inside the 2^-8 per-operand bound the cuBLAS path's test tolerance is derived from, and it is the
// rule every kernel (and a user's own dequantization) computes naturally.
#pragma once

#include <cstdint>

#include "core/e4m3.hpp"
#include "core/float16.hpp"
#include "core/host_device.hpp"

namespace moecutlass {

// A NaN code (S.1111.111) gives the canonical quiet NaN 0x7FC0 whatever its sign and the scale: a NaN's payload
// after a multiplication is not the same on the host (the operand's) and the device (0x7FFFFFFF), and the job 30 GPU
// test caught that difference.
inline constexpr uint16_t kDequantizedNaN = 0x7FC0;

MC_HOST_DEVICE inline uint16_t dequantize_e4m3_to_bf16(uint8_t code, float scale) {
  if ((code & 0x7Fu) == 0x7Fu) return kDequantizedNaN;
#ifdef __CUDA_ARCH__
  return bf16_from_float(__fmul_rn(e4m3_to_float(code), scale));
#else
  return bf16_from_float(e4m3_to_float(code) * scale);
#endif
}

}  // namespace moecutlass
