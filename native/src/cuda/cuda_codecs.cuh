// Device-side element codecs and vector packs for the conversion and quantization kernels.
//
// DeviceCodec<MC_DTYPE_*> is the device twin of cpu/element_codecs.hpp: the same decode-to-fp32 / encode-from-fp32
// functions (the host+device codecs of core/e4m3.hpp and core/float16.hpp), over raw bit patterns so that a vector
// load can be split into elements with plain integer operations. Included by .cu files only.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "core/e4m3.hpp"
#include "core/exact_division.hpp"
#include "core/float16.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {
namespace cuda {

template <int32_t Dtype>
struct DeviceCodec;

template <>
struct DeviceCodec<MC_DTYPE_FP32> {
  using Bits = uint32_t;
  static __device__ __forceinline__ float decode(uint32_t v) { return float_from_bits(v); }
  static __device__ __forceinline__ uint32_t encode(float v) { return float_bits(v); }
};

template <>
struct DeviceCodec<MC_DTYPE_BF16> {
  using Bits = uint16_t;
  static __device__ __forceinline__ float decode(uint16_t v) { return bf16_to_float(v); }
  static __device__ __forceinline__ uint16_t encode(float v) { return bf16_from_float(v); }
};

template <>
struct DeviceCodec<MC_DTYPE_FP16> {
  using Bits = uint16_t;
  static __device__ __forceinline__ float decode(uint16_t v) { return fp16_to_float(v); }
  static __device__ __forceinline__ uint16_t encode(float v) { return fp16_from_float(v); }
};

template <>
struct DeviceCodec<MC_DTYPE_E4M3> {
  using Bits = uint8_t;
  static __device__ __forceinline__ float decode(uint8_t v) { return e4m3_to_float(v); }
  static __device__ __forceinline__ uint8_t encode(float v) { return e4m3_from_float(v); }
};

// The machine word of a 4-, 8- or 16-byte vector access.
template <int Bytes>
struct VectorWord;
template <>
struct VectorWord<4> {
  using type = uint32_t;
};
template <>
struct VectorWord<8> {
  using type = uint2;
};
template <>
struct VectorWord<16> {
  using type = uint4;
};

// V elements of `Bits` loaded or stored with one vector access (the pointer must be aligned to the pack size).
template <class Bits, int V>
union ElementPack {
  using Word = typename VectorWord<static_cast<int>(sizeof(Bits)) * V>::type;
  Word word;
  Bits element[V];
};

// x / scale rounded to nearest even (IEEE fp32 division, never a reciprocal multiplication) -- the exact rule of
// the CPU quantizer.
__device__ __forceinline__ float ieee_divide(float x, float y) { return __fdiv_rn(x, y); }

__device__ __forceinline__ bool is_nan_bits(float x) { return (float_bits(x) & 0x7FFFFFFFu) > 0x7F800000u; }

// The quantizers' block scale (cpu/convert.hpp, quantization_scale): amax / 448 as an IEEE fp32 division; 0 (an
// all-zero block, or an amax so small that the division underflows) becomes 1.
__device__ __forceinline__ float quantization_scale_device(float amax) {
  const float scale = ieee_divide(amax, 448.0f);
  return scale == 0.0f ? 1.0f : scale;
}

// The division of one quantized block by its scale: from the scale's correctly rounded reciprocal, computed once
// per block (core/exact_division.hpp), where that is exact; IEEE division for the rest (a scale below 2^-80, or
// not finite). Both give every element the e4m3 code of the CPU quantizer's IEEE quotient.
struct BlockDivisor {
  float scale;
  float reciprocal;
  bool by_reciprocal;

  __device__ __forceinline__ explicit BlockDivisor(float block_scale)
      : scale(block_scale), reciprocal(ieee_divide(1.0f, block_scale)), by_reciprocal(reciprocal_division_exact(block_scale)) {}

  __device__ __forceinline__ float divide(float x) const {
    return by_reciprocal ? divide_by_reciprocal(x, scale, reciprocal) : ieee_divide(x, scale);
  }
};

// One element of a quantized block (cpu/quantize.cpp, quantize_values): a NaN quotient (NaN input, or inf / inf)
// becomes the positive e4m3 NaN 0x7F, whatever NaN sign the division produced. The encoder is the branch-free
// twin of the CPU's (e4m3_from_float_select), so the lanes of a warp do not split over an element's range.
__device__ __forceinline__ uint8_t quantize_element(float x, const BlockDivisor& divisor) {
  const float quotient = divisor.divide(x);
  return is_nan_bits(quotient) ? static_cast<uint8_t>(0x7Fu) : e4m3_from_float_select(quotient);
}

}  // namespace cuda
}  // namespace moecutlass
