// Stand-ins for the CUDA backend in builds without a CUDA compiler, so the ABI (and the C# side) is identical with
// and without CUDA: zero devices, and MC_STATUS_UNSUPPORTED for anything that needs one.
#include "backend.hpp"
#include "core/error.hpp"

namespace moecutlass {

std::unique_ptr<Backend> make_cuda_backend(int32_t) { fail(MC_STATUS_UNSUPPORTED, kBuiltWithoutCuda); }

int32_t cuda_device_count() { return 0; }

void cuda_device_info(int32_t, mc_device_info&) { fail(MC_STATUS_UNSUPPORTED, kBuiltWithoutCuda); }

}  // namespace moecutlass
