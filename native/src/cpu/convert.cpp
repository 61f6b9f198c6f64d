#include "cpu/convert.hpp"

#include <algorithm>
#include <cstring>

#include "core/dtype.hpp"
#include "cpu/element_codecs.hpp"

namespace moecutlass {

namespace {

constexpr int64_t kConvertChunk = 1 << 16;  // elements per task: large enough to amortize scheduling

}  // namespace

void cpu_convert(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype, int64_t count, ThreadPool& pool) {
  if (count == 0) return;
  if (src_dtype == dst_dtype) {
    // Bit copy: identical dtypes must not canonicalize NaN payloads.
    std::memmove(dst, src, static_cast<std::size_t>(count * dtype_size(src_dtype)));
    return;
  }
  dispatch_dtype(src_dtype, [&](auto src_tag) {
    dispatch_dtype(dst_dtype, [&](auto dst_tag) {
      using In = ElementCodec<decltype(src_tag)::value>;
      using Out = ElementCodec<decltype(dst_tag)::value>;
      const auto* in = static_cast<const typename In::Storage*>(src);
      auto* out = static_cast<typename Out::Storage*>(dst);
      const int64_t chunks = (count + kConvertChunk - 1) / kConvertChunk;
      pool.parallel_for(chunks, [&](int64_t chunk) {
        const int64_t begin = chunk * kConvertChunk;
        const int64_t end = std::min(count, begin + kConvertChunk);
        for (int64_t i = begin; i < end; ++i) out[i] = Out::encode(In::decode(in[i]));
      });
    });
  });
}

}  // namespace moecutlass
