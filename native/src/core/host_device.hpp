// MC_HOST_DEVICE and bit casts for code shared by the CPU reference and the CUDA kernels.
//
// The scalar codecs (core/e4m3.hpp, core/float16.hpp, core/minifloat.hpp) are compiled for both sides, so the
// kernels encode, decode and round with exactly the code the CPU reference uses. Under nvcc MC_HOST_DEVICE is
// `__host__ __device__`; every other compiler sees an empty macro and the plain C++ below. Device-only variants of a
// helper are selected with __CUDA_ARCH__ (defined only in nvcc's device compilation pass).
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MC_HOST_DEVICE __host__ __device__
#else
#define MC_HOST_DEVICE
#endif

namespace moecutlass {

MC_HOST_DEVICE inline uint32_t float_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

MC_HOST_DEVICE inline float float_from_bits(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
#endif
}

MC_HOST_DEVICE inline uint64_t double_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return bits;
#endif
}

}  // namespace moecutlass
