#include "cpu/gemm_microkernel.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MOECUTLASS_X86_DISPATCH 1
#include <immintrin.h>
#endif

namespace moecutlass {

void microkernel_portable(int depth, const double* a_packed, const double* b_packed, double* c) {
  double acc[kMicroRows][kMicroCols] = {};
  for (int k = 0; k < depth; ++k) {
    const double* a = a_packed + k * kMicroRows;
    const double* b = b_packed + k * kMicroCols;
    for (int i = 0; i < kMicroRows; ++i) {
      for (int j = 0; j < kMicroCols; ++j) acc[i][j] += a[i] * b[j];
    }
  }
  for (int i = 0; i < kMicroRows; ++i) {
    for (int j = 0; j < kMicroCols; ++j) c[i * kMicroCols + j] = acc[i][j];
  }
}

#if defined(MOECUTLASS_X86_DISPATCH)

namespace {

// Compiled for AVX2+FMA regardless of the baseline flags (the shipped library targets plain x86-64) and only
// called after a runtime CPU check. Eight 4-wide accumulators cover the tile and hide the FMA latency.
__attribute__((target("avx2,fma"))) void microkernel_avx2_fma(int depth, const double* a_packed,
                                                              const double* b_packed, double* c) {
  __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
  __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
  __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
  __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
  for (int k = 0; k < depth; ++k) {
    const __m256d b0 = _mm256_loadu_pd(b_packed + k * kMicroCols);
    const __m256d b1 = _mm256_loadu_pd(b_packed + k * kMicroCols + 4);
    const double* a = a_packed + k * kMicroRows;
    __m256d ai = _mm256_broadcast_sd(a + 0);
    c00 = _mm256_fmadd_pd(ai, b0, c00);
    c01 = _mm256_fmadd_pd(ai, b1, c01);
    ai = _mm256_broadcast_sd(a + 1);
    c10 = _mm256_fmadd_pd(ai, b0, c10);
    c11 = _mm256_fmadd_pd(ai, b1, c11);
    ai = _mm256_broadcast_sd(a + 2);
    c20 = _mm256_fmadd_pd(ai, b0, c20);
    c21 = _mm256_fmadd_pd(ai, b1, c21);
    ai = _mm256_broadcast_sd(a + 3);
    c30 = _mm256_fmadd_pd(ai, b0, c30);
    c31 = _mm256_fmadd_pd(ai, b1, c31);
  }
  _mm256_storeu_pd(c + 0, c00);
  _mm256_storeu_pd(c + 4, c01);
  _mm256_storeu_pd(c + 8, c10);
  _mm256_storeu_pd(c + 12, c11);
  _mm256_storeu_pd(c + 16, c20);
  _mm256_storeu_pd(c + 20, c21);
  _mm256_storeu_pd(c + 24, c30);
  _mm256_storeu_pd(c + 28, c31);
}

}  // namespace

MicroKernel microkernel_avx2() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &microkernel_avx2_fma;
  return nullptr;
}

#else

MicroKernel microkernel_avx2() { return nullptr; }

#endif

MicroKernel best_microkernel() {
  static const MicroKernel kernel = [] {
    MicroKernel avx2 = microkernel_avx2();
    return avx2 != nullptr ? avx2 : &microkernel_portable;
  }();
  return kernel;
}

}  // namespace moecutlass
