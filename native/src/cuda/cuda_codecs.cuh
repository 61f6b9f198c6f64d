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

// The e4m3 codes of two quotients of a quantized block, `low` in byte 0 and `high` in byte 1, by the CPU
// quantizer's rule (cpu/quantize.cpp, quantize_values): a NaN quotient (NaN input, or inf / inf) becomes the
// positive e4m3 NaN 0x7F whatever its sign, the rest e4m3_from_float (nearest even, subnormals included, +-448 for
// magnitudes >= 448 and infinities). Before sm_89 the branch-free twin of the CPU's encoder
// (e4m3_from_float_select), so the lanes of a warp do not split over an element's range.
// From sm_89 on, one cvt.rn.satfinite.e4m3x2.f32 is that rule for every non-NaN input (round to nearest even,
// saturating to the largest finite value): the select encoder was about 20 integer instructions per element, and
// ncu found the quantizers issue-bound. Only a NaN needs fixing up, since the instruction keeps its sign.
// CudaE4m3.PairEncoderMatchesTheHostRuleOnEveryFloat checks it against the host rule on all 2^32 inputs.
__device__ __forceinline__ uint32_t e4m3_code_pair(float low, float high) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint16_t pair;
  // The destination's upper byte is the first source operand's code.
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(high), "f"(low));
  uint32_t codes = pair;
  if (is_nan_bits(low)) codes = (codes & 0xFF00u) | 0x7Fu;
  if (is_nan_bits(high)) codes = (codes & 0x00FFu) | 0x7F00u;
  return codes;
#else
  const uint32_t a = is_nan_bits(low) ? 0x7Fu : e4m3_from_float_select(low);
  const uint32_t b = is_nan_bits(high) ? 0x7Fu : e4m3_from_float_select(high);
  return a | (b << 8);
#endif
}

// Eight quotients' codes, element j in byte j (little-endian), for one 8-byte store.
__device__ __forceinline__ uint2 e4m3_codes8(const float (&q)[8]) {
  return make_uint2(e4m3_code_pair(q[0], q[1]) | (e4m3_code_pair(q[2], q[3]) << 16),
                    e4m3_code_pair(q[4], q[5]) | (e4m3_code_pair(q[6], q[7]) << 16));
}

}  // namespace cuda
}  // namespace moecutlass
