// FP8 -> bf16 dequantization of grouped-GEMM operands on the device (the cuBLAS strategy's first step, issue 15),
// bit for bit the CPU reference's (cpu/dequantize.hpp, element rule core/dequantize.hpp). Same layouts; needs
// k % 16 == 0 and 16-byte aligned pointers (what the ABI validates). Enqueue only: no synchronisation, no
// allocation, so both can be captured into a CUDA graph.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace moecutlass {

// A [rows, k] with rows = *row_count read on the device (the grouped GEMM's offsets[experts]), at most
// capacity_rows; rows from *row_count to capacity_rows - 1 are not written.
cudaError_t launch_dequantize_activations_bf16(const uint8_t* codes, const float* scales, const int32_t* row_count,
                                               int32_t capacity_rows, int32_t k, uint16_t* out, cudaStream_t stream);

// B [experts, n, k], every row.
cudaError_t launch_dequantize_weights_bf16(const uint8_t* codes, const float* scales, int32_t experts, int32_t n,
                                           int32_t k, uint16_t* out, cudaStream_t stream);

// B [.., n, k], only the experts experts[0 .. listed-1] (device memory, ids within B); the others are not written.
// listed <= 65535 (a grid dimension; MC_MAX_EXPERTS is 4096).
cudaError_t launch_dequantize_listed_weights_bf16(const uint8_t* codes, const float* scales, const int32_t* experts,
                                                  int32_t listed, int32_t n, int32_t k, uint16_t* out,
                                                  cudaStream_t stream);

}  // namespace moecutlass
