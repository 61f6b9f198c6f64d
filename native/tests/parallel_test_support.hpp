// Shared by the parallel layer's tests (test_moe_parallel.cpp on the CPU, test_cuda_parallel.cpp on a GPU): the rank
// slices of a problem's FP8 weights, as mc_moe_layer_parallel_desc documents them.
#pragma once

#include <cstdint>
#include <vector>

#include "core/shapes.hpp"
#include "moe_layer_reference.hpp"

namespace moecutlass::test {

struct WeightSlice {
  std::vector<uint8_t> w13, w2;
  std::vector<float> w13_scales, w2_scales;
};

// Tensor parallel, rank r of W: every expert; rows [r I/W, (r+1) I/W) of the gate and of the up projection of w13
// (gate slice first: [E, 2 I/W, H]) and the same columns of w2 ([E, H, I/W]). I/W must be a multiple of 128.
inline WeightSlice tensor_slice(const Problem& p, int32_t world_size, int32_t rank) {
  const int64_t e_count = p.w1.experts, h = p.hidden, i = p.inter, is = i / world_size;
  const int64_t hb = scale_blocks(h), ib = scale_blocks(i), isb = is / 128;
  WeightSlice s;
  for (int64_t e = 0; e < e_count; ++e) {
    for (int64_t half = 0; half < 2; ++half) {  // gate, then up
      const int64_t first_row = half * i + rank * is;
      for (int64_t row = first_row; row < first_row + is; ++row) {
        const auto* codes = &p.w1.codes[static_cast<std::size_t>((e * 2 * i + row) * h)];
        s.w13.insert(s.w13.end(), codes, codes + h);
      }
      for (int64_t block = first_row / 128; block < first_row / 128 + isb; ++block) {
        const auto* scales = &p.w1.scales[static_cast<std::size_t>((e * scale_blocks(2 * i) + block) * hb)];
        s.w13_scales.insert(s.w13_scales.end(), scales, scales + hb);
      }
    }
    for (int64_t row = 0; row < h; ++row) {
      const auto* codes = &p.w2.codes[static_cast<std::size_t>((e * h + row) * i + rank * is)];
      s.w2.insert(s.w2.end(), codes, codes + is);
    }
    for (int64_t block = 0; block < hb; ++block) {
      const auto* scales = &p.w2.scales[static_cast<std::size_t>((e * hb + block) * ib + rank * isb)];
      s.w2_scales.insert(s.w2_scales.end(), scales, scales + isb);
    }
  }
  return s;
}

// Experts first .. first + count - 1 of the whole weights (expert parallelism, or the whole layer).
inline WeightSlice expert_slice(const Problem& p, int64_t first, int64_t count) {
  WeightSlice s;
  auto take = [&](const Fp8Weights& w, std::vector<uint8_t>& codes, std::vector<float>& scales) {
    const int64_t per = w.n * w.k, per_scales = scale_blocks(w.n) * scale_blocks(w.k);
    codes.assign(w.codes.begin() + first * per, w.codes.begin() + (first + count) * per);
    scales.assign(w.scales.begin() + first * per_scales, w.scales.begin() + (first + count) * per_scales);
  };
  take(p.w1, s.w13, s.w13_scales);
  take(p.w2, s.w2, s.w2_scales);
  return s;
}

}  // namespace moecutlass::test
