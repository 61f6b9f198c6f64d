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

  // x[j] / scale for a whole chunk, in place, choosing reciprocal or IEEE division once for the chunk: chosen per
  // element, every division became its own branch and convergence region and the elements ran one after another.
  // The gather with it (job 26): 40.4 -> 36.0 µs on ds-layer-ep8-e32-t4096, 44.3 -> 34.7 on ds-layer-e256-t512.
  template <int N>
  __device__ __forceinline__ void divide_all(float (&x)[N]) const {
    if (by_reciprocal) {
#pragma unroll
      for (int j = 0; j < N; ++j) x[j] = divide_by_reciprocal(x[j], scale, reciprocal);
    } else {
#pragma unroll
      for (int j = 0; j < N; ++j) x[j] = ieee_divide(x[j], scale);
    }
  }
};

// The e4m3 codes of quotients of a quantized block by the CPU quantizer's rule (cpu/quantize.cpp,
// quantize_values): a NaN quotient (NaN input, or inf / inf) becomes the positive e4m3 NaN 0x7F whatever its sign,
// the rest e4m3_from_float (nearest even, subnormals included, +-448 for magnitudes >= 448 and infinities).
// From sm_89 on, one cvt.rn.satfinite.e4m3x2.f32 per pair is that rule for every non-NaN input (round to nearest
// even, saturating to the largest finite value): the select encoder was about 20 integer instructions per element,
// and ncu found the quantizers issue-bound. Only a NaN needs fixing up, since the instruction keeps its sign, and
// that is done for a whole word of codes at once (positive_nan_codes). Before sm_89 the branch-free twin of the
// CPU's encoder (e4m3_from_float_select), so the lanes of a warp do not split over an element's range.
// CudaE4m3.PairEncoderMatchesTheHostRuleOnEveryFloat checks e4m3_code_quad against the host rule on all 2^32 inputs.

// Clears the sign of every NaN code (S.1111.111) in a word of e4m3 codes. With satfinite, a NaN is the only input
// whose code has its low seven bits all ones (448 is 0x7E), and a byte's low seven bits plus one carry into its bit
// 7 exactly then; no carry crosses a byte. Three instructions per four codes instead of a test and select per code.
__device__ __forceinline__ uint32_t positive_nan_codes(uint32_t codes) {
  const uint32_t nan_bytes = ((codes & 0x7F7F7F7Fu) + 0x01010101u) & 0x80808080u;
  return codes & ~nan_bytes;
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
// The two codes as cvt gives them (a NaN's sign kept), `low` in byte 0.
__device__ __forceinline__ uint32_t e4m3_raw_pair(float low, float high) {
  uint16_t pair;
  // The destination's upper byte is the first source operand's code.
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(high), "f"(low));
  return pair;
}
#endif

// Codes of a, b, c, d in bytes 0 .. 3.
__device__ __forceinline__ uint32_t e4m3_code_quad(float a, float b, float c, float d) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  return positive_nan_codes(e4m3_raw_pair(a, b) | (e4m3_raw_pair(c, d) << 16));
#else
  uint32_t codes = 0;
  const float x[4] = {a, b, c, d};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    codes |= (is_nan_bits(x[i]) ? 0x7Fu : static_cast<uint32_t>(e4m3_from_float_select(x[i]))) << (8 * i);
  }
  return codes;
#endif
}

// Eight quotients' codes, element j in byte j (little-endian), for one 8-byte store.
__device__ __forceinline__ uint2 e4m3_codes8(const float (&q)[8]) {
  return make_uint2(e4m3_code_quad(q[0], q[1], q[2], q[3]), e4m3_code_quad(q[4], q[5], q[6], q[7]));
}

}  // namespace cuda
}  // namespace moecutlass
