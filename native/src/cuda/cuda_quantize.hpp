// mc_quantize_activations_async / mc_quantize_weights_async on the device: the DeepSeek-V3 FP8 recipe with the CPU
// reference's numerics bit for bit (cpu/quantize.cpp: fmax-amax that ignores NaN, scale = amax / 448 as an IEEE
// fp32 division with 0 -> 1, q = e4m3(x / scale) by IEEE division, a NaN quotient -> 0x7F), using the shared
// host+device codecs of core/e4m3.hpp and core/float16.hpp.
#pragma once

#include <cuda_runtime_api.h>

#include "backend.hpp"

namespace moecutlass {

// Activations [rows, cols] (fp32|bf16|fp16) -> e4m3 [rows, cols] and fp32 scales [rows, ceil(cols/128)]: a
// half-warp per 1x128 scale block. Needs what the ABI layer validates: 16-byte aligned pointers, cols % 16 == 0.
// Enqueues on `stream` and returns the launch status; rows == 0 enqueues nothing.
cudaError_t launch_quantize_activations(const ActivationQuantization& job, cudaStream_t stream);

// Weights [experts, n, k] -> e4m3 [experts, n, k] and fp32 scales [experts, ceil(n/128), ceil(k/128)]: a thread
// block per 128x128 scale block, read once into registers. Needs 16-byte aligned pointers and k % 16 == 0.
cudaError_t launch_quantize_weights(const WeightQuantization& job, cudaStream_t stream);

}  // namespace moecutlass
