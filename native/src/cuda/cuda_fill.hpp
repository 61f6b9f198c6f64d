// mc_fill_async on the device: a repeated 1-, 2- or 4-byte pattern.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace moecutlass {

// Enqueues the fill on `stream`; returns the launch status. `pattern` holds the element in its low bytes.
cudaError_t launch_fill(void* dst, uint32_t pattern, int element_size, int64_t count, cudaStream_t stream);

}  // namespace moecutlass
