#include "core/kernel_registry.hpp"

#include "backend.hpp"

namespace moecutlass {

// A CUDA build compiles every registry row (CMake generates one translation unit per row and output dtype), so a
// configuration is either in the library with all others or, without CUDA, none is.
bool kernel_config_compiled(int32_t index) { return kCudaCompiledIn && index >= 0 && index < kKernelConfigCount; }

}  // namespace moecutlass
