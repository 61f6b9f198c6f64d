// Host reference of the MoE layer's activation stage (issue 13): SiLU-and-mul on the GEMM1 output, fused with the
// 1x128 FP8 requantization that makes GEMM2's A operand.
//
// Layout (ours, the "concatenated" gated layout of vLLM's silu_and_mul and the DeepSeek/Mixtral checkpoints):
// a GEMM1 row has 2I columns, gate = columns 0 .. I-1, up = columns I .. 2I-1, so expert weights are stacked as
// W1 = [W_gate; W_up] of shape [2I, H]. Note ONNX Runtime's com.microsoft.MoE "swiglu" is a different function
// (the GPT-OSS variant: x_glu * sigmoid(alpha * x_glu) * (x_linear + 1), clamped, with gate/linear interleaved by
// default); it is not this stage.
//
// Numerics: g and u are decoded to fp32; h = (g / (1 + exp(-g))) * u in fp32 (expf, an IEEE division, then a
// multiplication; no FMA contraction); h is not rounded to bf16 before quantization; then each 128-column block of
// the I values of h is quantized by quantize_activation_block (amax / 448, x / scale, RNE, saturating).
#pragma once

#include <cstdint>

namespace moecutlass {

// gemm1_out: [rows, 2 * inter] of dtype MC_DTYPE_BF16, _FP16 or _FP32; out: e4m3 [rows, inter];
// scales: fp32 [rows, ceil(inter / 128)]. rows >= 0, inter >= 1. Throws Error before writing.
void silu_and_mul_quantize(const void* gemm1_out, int32_t dtype, int64_t rows, int64_t inter, uint8_t* out,
                           float* scales);

// The activation of one (gate, up) pair, exactly as the stage computes it.
float silu_and_mul(float gate, float up);

}  // namespace moecutlass
