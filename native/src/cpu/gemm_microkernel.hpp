// Register-blocked inner kernel of the CPU reference GEMM: a 4 x 8 tile of double dot products over one K step
// (at most one 128-wide scale block).
//
// Operands are packed so the kernel streams memory linearly: a_packed[k * 4 + i] holds row i of the 4-row panel,
// b_packed[k * 8 + j] column j of the 8-column panel. The kernel overwrites c[i * 8 + j].
//
// Exactness: every e4m3 x e4m3 product has at most 8 significant bits and is a multiple of 2^-18, and a sum of up to
// 128 of them stays below 2^25, i.e. under 2^43 units of 2^-18 -- inside double's 53 bits. Each partial sum is
// therefore exact, whatever the summation order or FMA use, and every kernel variant returns identical bits.
#pragma once

namespace moecutlass {

inline constexpr int kMicroRows = 4;
inline constexpr int kMicroCols = 8;

using MicroKernel = void (*)(int depth, const double* a_packed, const double* b_packed, double* c);

// Portable C++ (whatever the compiler vectorizes for the baseline ISA).
void microkernel_portable(int depth, const double* a_packed, const double* b_packed, double* c);

// AVX2 + FMA, when compiled for x86-64 and the running CPU supports it; otherwise nullptr.
MicroKernel microkernel_avx2();

// The fastest kernel this CPU supports (resolved once).
MicroKernel best_microkernel();

}  // namespace moecutlass
