#include "cpu/moe_combine.hpp"

#include <vector>

#include "core/error.hpp"
#include "cpu/element_codecs.hpp"

namespace moecutlass {

namespace {

bool is_float_dtype(int32_t dtype) {
  return dtype == MC_DTYPE_BF16 || dtype == MC_DTYPE_FP16 || dtype == MC_DTYPE_FP32;
}

}  // namespace

void weighted_combine(const void* gemm2_out, int32_t gemm2_dtype, int64_t rows, int64_t hidden_size,
                      const float* weights, const int32_t* slot_to_row, int64_t tokens, int32_t top_k, void* output,
                      int32_t output_dtype) {
  if (!is_float_dtype(gemm2_dtype)) {
    fail(MC_STATUS_INVALID_DTYPE, "gemm2_dtype is ", gemm2_dtype, "; the combine reads bf16, fp16 or fp32");
  }
  if (!is_float_dtype(output_dtype)) {
    fail(MC_STATUS_INVALID_DTYPE, "output_dtype is ", output_dtype, "; the combine writes bf16, fp16 or fp32");
  }
  if (rows < 0 || tokens < 0 || hidden_size < 1 || top_k < 1) {
    fail(MC_STATUS_OUT_OF_RANGE, "rows (", rows, ") and tokens (", tokens, ") must be >= 0, hidden_size (",
         hidden_size, ") and top_k (", top_k, ") >= 1");
  }
  if (tokens == 0) return;
  if (!weights || !slot_to_row || !output || (rows > 0 && !gemm2_out)) {
    fail(MC_STATUS_NULL_POINTER, "gemm2_out, weights, slot_to_row and output must not be null");
  }
  for (int64_t s = 0; s < tokens * top_k; ++s) {
    if (slot_to_row[s] < -1 || slot_to_row[s] >= rows) {
      fail(MC_STATUS_INVALID_ARGUMENT, "slot_to_row[", s, "] is ", slot_to_row[s], "; it must be -1 or in 0 .. ",
           rows - 1);
    }
  }
  std::vector<float> acc(static_cast<std::size_t>(hidden_size));
  std::vector<float> y(static_cast<std::size_t>(hidden_size));
  dispatch_dtype(output_dtype, [&](auto tag) {
    using Out = ElementCodec<decltype(tag)::value>;
    auto* out = static_cast<typename Out::Storage*>(output);
    for (int64_t t = 0; t < tokens; ++t) {
      for (auto& a : acc) a = 0.0f;
      for (int32_t j = 0; j < top_k; ++j) {
        const int32_t row = slot_to_row[t * top_k + j];
        if (row < 0) continue;
        const float w = weights[t * top_k + j];
        load_as_float(gemm2_out, gemm2_dtype, row * hidden_size, hidden_size, y.data());
        for (int64_t c = 0; c < hidden_size; ++c) {
          const float product = w * y[c];
          acc[c] = acc[c] + product;
        }
      }
      for (int64_t c = 0; c < hidden_size; ++c) out[t * hidden_size + c] = Out::encode(acc[c]);
    }
  });
}

}  // namespace moecutlass
