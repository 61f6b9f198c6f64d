// Weighted combine of the GEMM2 rows back to tokens, bit-identical to weighted_combine (cpu/moe_combine.hpp).
//
// Each thread owns 8 consecutive columns of one token: per choice j in order it loads 8 bf16 of the slot's row
// with one 16-byte load and does acc = acc + (w * y) with __fmul_rn / __fadd_rn (explicit rounding: no FMA
// contraction, the reference's exact sequence), skipping slots whose row is -1; then it rounds once to the output
// dtype through the shared codecs and stores 16 bytes (bf16/fp16) or 32 bytes (fp32). A token with no local slot
// stores +0. No atomics and a fixed order: the same bits every run. hidden_size % 16 == 0 and 16-byte aligned
// pointers keep every access aligned. Grid: 1-D over (token, 1024-column group), 128 threads per block.
#include <cstdint>

#include "cuda/cuda_codecs.cuh"
#include "cuda/moe_layer/moe_stage_kernels.hpp"

namespace moecutlass {
namespace cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kColumnsPerThread = 8;
constexpr int64_t kColumnsPerBlock = int64_t{kThreads} * kColumnsPerThread;

template <int32_t OutDtype>
__global__ void __launch_bounds__(kThreads)
    combine_kernel(const uint16_t* __restrict__ gemm2_out, int64_t hidden, const float* __restrict__ weights,
                   const int32_t* __restrict__ slot_to_row, int32_t top_k, int64_t column_groups,
                   void* __restrict__ output) {
  const int64_t token = static_cast<int64_t>(blockIdx.x) / column_groups;
  const int64_t group = static_cast<int64_t>(blockIdx.x) - token * column_groups;
  const int64_t column = group * kColumnsPerBlock + static_cast<int64_t>(threadIdx.x) * kColumnsPerThread;
  if (column >= hidden) return;

  float acc[kColumnsPerThread];
#pragma unroll
  for (int c = 0; c < kColumnsPerThread; ++c) acc[c] = 0.0f;
  for (int32_t j = 0; j < top_k; ++j) {
    const int32_t row = slot_to_row[token * top_k + j];
    if (row < 0) continue;
    const float w = weights[token * top_k + j];
    ElementPack<uint16_t, kColumnsPerThread> y;
    y.word = *reinterpret_cast<const uint4*>(gemm2_out + static_cast<int64_t>(row) * hidden + column);
#pragma unroll
    for (int c = 0; c < kColumnsPerThread; ++c) {
      acc[c] = __fadd_rn(acc[c], __fmul_rn(w, DeviceCodec<MC_DTYPE_BF16>::decode(y.element[c])));
    }
  }

  using OutBits = typename DeviceCodec<OutDtype>::Bits;
  OutBits* out = static_cast<OutBits*>(output) + token * hidden + column;
  if constexpr (OutDtype == MC_DTYPE_FP32) {
    float4* vectors = reinterpret_cast<float4*>(out);
    vectors[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
    vectors[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
  } else {
    ElementPack<uint16_t, kColumnsPerThread> packed;
#pragma unroll
    for (int c = 0; c < kColumnsPerThread; ++c) packed.element[c] = DeviceCodec<OutDtype>::encode(acc[c]);
    *reinterpret_cast<uint4*>(out) = packed.word;
  }
}

}  // namespace

cudaError_t launch_moe_combine(const MoeCombineJob& job, cudaStream_t stream) {
  if (job.tokens <= 0 || job.hidden_size <= 0) return cudaSuccess;
  const int64_t hidden = job.hidden_size;
  const int64_t column_groups = (hidden + kColumnsPerBlock - 1) / kColumnsPerBlock;
  const int64_t blocks = int64_t{job.tokens} * column_groups;
  if (blocks > 0x7FFFFFFF) return cudaErrorInvalidValue;
  const auto* rows = static_cast<const uint16_t*>(job.gemm2_out);
  const unsigned grid = static_cast<unsigned>(blocks);
  switch (job.output_dtype) {
    case MC_DTYPE_FP32:
      combine_kernel<MC_DTYPE_FP32><<<grid, kThreads, 0, stream>>>(rows, hidden, job.weights, job.slot_to_row,
                                                                  job.top_k, column_groups, job.output);
      break;
    case MC_DTYPE_BF16:
      combine_kernel<MC_DTYPE_BF16><<<grid, kThreads, 0, stream>>>(rows, hidden, job.weights, job.slot_to_row,
                                                                  job.top_k, column_groups, job.output);
      break;
    case MC_DTYPE_FP16:
      combine_kernel<MC_DTYPE_FP16><<<grid, kThreads, 0, stream>>>(rows, hidden, job.weights, job.slot_to_row,
                                                                  job.top_k, column_groups, job.output);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace moecutlass
