// The MoE layer's naive double-precision reference and its rigorous error bound, shared by the host chain test
// (test_moe_layer_chain.cpp, whose header comment derives the bound) and the layer's C ABI tests: random problems
// (bf16 tokens, fp32 router logits, FP8 expert weights with 128x128 block scales) and the exact layer on them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "core/e4m3.hpp"
#include "core/float16.hpp"
#include "core/moe_permutation.hpp"
#include "core/shapes.hpp"

namespace moecutlass::test {

// FP8 expert weights [experts, n, k] with 128x128 block scales [experts, ceil(n/128), ceil(k/128)].
struct Fp8Weights {
  int64_t experts, n, k;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  double at(int64_t e, int64_t row, int64_t col) const {
    const int64_t scale = (e * scale_blocks(n) + row / 128) * scale_blocks(k) + col / 128;
    return static_cast<double>(e4m3_to_float(codes[(e * n + row) * k + col])) * scales[scale];
  }
};

inline Fp8Weights random_weights(std::mt19937_64& engine, int64_t experts, int64_t n, int64_t k) {
  Fp8Weights w{experts, n, k, {}, {}};
  std::normal_distribution<float> normal(0.0f, 64.0f);
  std::uniform_real_distribution<float> spread(0.5f, 1.5f);
  w.codes.resize(static_cast<std::size_t>(experts * n * k));
  for (auto& c : w.codes) c = e4m3_from_float(normal(engine));
  // Dequantized entries ~ N(0, 1/k) so that every GEMM output is O(1).
  w.scales.resize(static_cast<std::size_t>(experts * scale_blocks(n) * scale_blocks(k)));
  for (auto& s : w.scales) s = spread(engine) / 64.0f / std::sqrt(static_cast<float>(k));
  return w;
}

struct Problem {
  int64_t tokens, hidden, inter;
  int32_t k;
  bool renormalize;
  std::vector<float> logits;     // [T, E_total]
  std::vector<uint16_t> x;       // bf16 [T, H]
  Fp8Weights w1, w2;             // [E_total, 2I, H], [E_total, H, I]
};

inline Problem make_problem(uint64_t seed, int64_t tokens, int32_t experts, int32_t k, int64_t hidden, int64_t inter) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Problem p{tokens, hidden, inter, k, true, {}, {}, random_weights(engine, experts, 2 * inter, hidden),
            random_weights(engine, experts, hidden, inter)};
  for (int64_t i = 0; i < tokens * experts; ++i) p.logits.push_back(2.0f * normal(engine));
  for (int64_t i = 0; i < tokens * hidden; ++i) p.x.push_back(bf16_from_float(normal(engine)));
  return p;
}

struct Reference {
  std::vector<int32_t> ids;
  std::vector<double> out, bound;  // [T, H]
};

inline double silu(double g) { return g / (1.0 + std::exp(-g)); }

// The naive double MoE layer with the error bound of the header comment. swap_gate_up builds the wrong layer.
inline Reference reference_layer(const Problem& p, ExpertSlice slice, bool swap_gate_up = false) {
  const int64_t T = p.tokens, H = p.hidden, I = p.inter;
  const int32_t E = slice.total_experts, k = p.k;
  const double q = std::ldexp(1.0, -4), sub = std::ldexp(1.0, -10), bf = std::ldexp(1.0, -8);
  Reference ref;
  ref.out.assign(static_cast<std::size_t>(T * H), 0.0);
  ref.bound.assign(static_cast<std::size_t>(T * H), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    const float* logit = p.logits.data() + t * E;
    std::vector<int32_t> order(static_cast<std::size_t>(E));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logit[a] > logit[b]; });
    double chosen = 0;
    for (int32_t j = 0; j < k; ++j) chosen += std::exp(static_cast<double>(logit[order[j]]));

    std::vector<double> x(static_cast<std::size_t>(H)), e_x(static_cast<std::size_t>(H));
    for (int64_t h = 0; h < H; ++h) x[h] = bf16_to_float(p.x[t * H + h]);
    for (int64_t b = 0; b * 128 < H; ++b) {
      double amax = 0;
      for (int64_t h = b * 128; h < std::min(H, b * 128 + 128); ++h) amax = std::max(amax, std::fabs(x[h]));
      for (int64_t h = b * 128; h < std::min(H, b * 128 + 128); ++h) e_x[h] = q * std::fabs(x[h]) + sub * amax / 448;
    }
    std::vector<double> acc_magnitude(static_cast<std::size_t>(H), 0.0);
    for (int32_t j = 0; j < k; ++j) {
      const int32_t e = order[j];
      ref.ids.push_back(e);
      if (e < slice.first || e >= slice.first + slice.local_experts) continue;
      const double weight = std::exp(static_cast<double>(logit[e])) / chosen;
      std::vector<double> z(static_cast<std::size_t>(2 * I)), e_z(static_cast<std::size_t>(2 * I));
      for (int64_t n = 0; n < 2 * I; ++n) {
        double acc = 0, err = 0;
        for (int64_t h = 0; h < H; ++h) {
          acc += p.w1.at(e, n, h) * x[h];
          err += std::fabs(p.w1.at(e, n, h)) * e_x[h];
        }
        z[n] = acc;
        e_z[n] = err + bf * (std::fabs(acc) + err);
      }
      std::vector<double> hv(static_cast<std::size_t>(I)), e_h(static_cast<std::size_t>(I));
      for (int64_t i = 0; i < I; ++i) {
        const int64_t gi = swap_gate_up ? I + i : i, ui = swap_gate_up ? i : I + i;
        const double g = z[gi], u = z[ui];
        hv[i] = silu(g) * u;
        e_h[i] = 1.1 * e_z[gi] * (std::fabs(u) + e_z[ui]) + std::fabs(silu(g)) * e_z[ui];
        e_h[i] += std::ldexp(std::fabs(hv[i]) + e_h[i], -20);
      }
      for (int64_t b = 0; b * 128 < I; ++b) {
        double amax = 0;
        for (int64_t i = b * 128; i < std::min(I, b * 128 + 128); ++i) amax = std::max(amax, std::fabs(hv[i]) + e_h[i]);
        for (int64_t i = b * 128; i < std::min(I, b * 128 + 128); ++i) {
          e_h[i] += q * (std::fabs(hv[i]) + e_h[i]) + sub * amax / 448;
        }
      }
      for (int64_t c = 0; c < H; ++c) {
        double y = 0, err = 0;
        for (int64_t i = 0; i < I; ++i) {
          y += p.w2.at(e, c, i) * hv[i];
          err += std::fabs(p.w2.at(e, c, i)) * e_h[i];
        }
        err += bf * (std::fabs(y) + err);
        ref.out[t * H + c] += weight * y;
        ref.bound[t * H + c] += weight * err + std::ldexp(weight * std::fabs(y), -23);
        acc_magnitude[c] += weight * (std::fabs(y) + err);
      }
    }
    for (int64_t c = 0; c < H; ++c) {
      double& bound = ref.bound[t * H + c];
      bound += 2 * k * std::ldexp(acc_magnitude[c], -24);
      bound += bf * (std::fabs(ref.out[t * H + c]) + bound);
    }
  }
  return ref;
}

}  // namespace moecutlass::test
