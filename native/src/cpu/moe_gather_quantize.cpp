#include "cpu/moe_gather_quantize.hpp"

#include <vector>

#include "core/error.hpp"
#include "core/shapes.hpp"
#include "cpu/convert.hpp"
#include "cpu/element_codecs.hpp"

namespace moecutlass {

void gather_quantize_rows(const void* hidden, int32_t hidden_dtype, int64_t tokens, int64_t hidden_size,
                          const int32_t* sorted_slots, int64_t rows, int32_t top_k, uint8_t* out, float* scales) {
  if (hidden_dtype != MC_DTYPE_BF16 && hidden_dtype != MC_DTYPE_FP16 && hidden_dtype != MC_DTYPE_FP32) {
    fail(MC_STATUS_INVALID_DTYPE, "hidden_dtype is ", hidden_dtype, "; the gather takes bf16, fp16 or fp32");
  }
  if (tokens < 0 || hidden_size < 1 || rows < 0 || top_k < 1) {
    fail(MC_STATUS_OUT_OF_RANGE, "tokens (", tokens, ") and rows (", rows, ") must be >= 0, hidden_size (",
         hidden_size, ") and top_k (", top_k, ") >= 1");
  }
  if (rows > tokens * top_k) fail(MC_STATUS_OUT_OF_RANGE, "rows is ", rows, "; at most tokens * top_k = ", tokens * top_k);
  if (rows == 0) return;
  if (!hidden || !sorted_slots || !out || !scales) {
    fail(MC_STATUS_NULL_POINTER, "hidden, sorted_slots, out and scales must not be null");
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (sorted_slots[r] < 0 || sorted_slots[r] >= tokens * top_k) {
      fail(MC_STATUS_INVALID_ARGUMENT, "sorted_slots[", r, "] is ", sorted_slots[r], "; slots are in 0 .. ",
           tokens * top_k - 1);
    }
  }
  const int64_t blocks = scale_blocks(hidden_size);
  std::vector<float> row(static_cast<std::size_t>(hidden_size));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t token = sorted_slots[r] / top_k;
    load_as_float(hidden, hidden_dtype, token * hidden_size, hidden_size, row.data());
    quantize_activation_row(row.data(), hidden_size, out + r * hidden_size, scales + r * blocks);
  }
}

}  // namespace moecutlass
