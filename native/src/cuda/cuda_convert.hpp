// mc_convert_async on the device: element-wise conversion between MC_DTYPE_FP32, BF16, FP16 and E4M3 with the
// CPU reference's semantics (cpu/convert.cpp) bit for bit: decode to fp32, encode once with the shared codecs of
// core/e4m3.hpp and core/float16.hpp; identical dtypes are a bit copy (NaN payloads kept).
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace moecutlass {

// Enqueues the conversion of `count` elements on `stream` and returns the launch status; count == 0 enqueues
// nothing. src and dst need only element alignment (16-byte vector accesses are used where both allow them);
// dtypes are validated MC_DTYPE_* values (anything else returns cudaErrorInvalidValue).
cudaError_t launch_convert(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype, int64_t count,
                           cudaStream_t stream);

}  // namespace moecutlass
