// Host operands of one grouped-GEMM problem for the CUDA tests: random finite e4m3 A and B, and power-of-two
// scales that differ between 128-row bands and 128-column blocks, so a wrong scale index shows in the result.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "test_support.hpp"

namespace mctest {

struct GemmOperands {
  std::vector<uint8_t> a, b;
  std::vector<float> a_scales, b_scales;
  std::vector<int32_t> offsets;
  int32_t rows = 0;
};

inline int32_t scale_blocks(int32_t extent) { return (extent + MC_SCALE_BLOCK - 1) / MC_SCALE_BLOCK; }

inline GemmOperands make_gemm_operands(int32_t n, int32_t k, const std::vector<int32_t>& rows_per_expert,
                                       int32_t output_dtype, std::mt19937_64& engine) {
  GemmOperands o;
  const auto experts = static_cast<int32_t>(rows_per_expert.size());
  o.offsets.assign(1, 0);
  for (int32_t r : rows_per_expert) o.offsets.push_back(o.offsets.back() + r);
  o.rows = o.offsets.back();
  o.a.resize(static_cast<size_t>(o.rows) * k);
  o.b.resize(static_cast<size_t>(experts) * n * k);
  for (auto& v : o.a) v = random_e4m3(engine);
  for (auto& v : o.b) v = random_e4m3(engine);
  // fp16 tops out at 65504: full-range e4m3 products summed over K need smaller scales to stay finite.
  const int bias = output_dtype == MC_DTYPE_FP16 ? -10 : 0;
  std::uniform_int_distribution<int> exponent(bias - 4, bias + 4);
  o.a_scales.resize(static_cast<size_t>(o.rows) * scale_blocks(k));
  for (auto& s : o.a_scales) s = std::ldexp(random_float(engine, 0.5f, 1.0f), exponent(engine));
  o.b_scales.resize(static_cast<size_t>(experts) * scale_blocks(n) * scale_blocks(k));
  for (auto& s : o.b_scales) s = std::ldexp(random_float(engine, 0.5f, 1.0f), exponent(engine));
  return o;
}

}  // namespace mctest
