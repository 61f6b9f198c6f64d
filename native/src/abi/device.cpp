// CUDA device enumeration. A build without CUDA, or a machine without driver or device, reports zero devices.
#include "abi/guard.hpp"
#include "backend.hpp"
#include "core/validate.hpp"

using namespace moecutlass;

extern "C" {

MC_API mc_status mc_get_device_count(int32_t* count) {
  return guard("mc_get_device_count", [&] {
    require_not_null(count, "count");
    *count = cuda_device_count();
  });
}

MC_API mc_status mc_get_device_info(int32_t device, mc_device_info* info) {
  return guard("mc_get_device_info", [&] {
    require_not_null(info, "info");
    require_struct_size(info->struct_size, sizeof(mc_device_info), "mc_device_info", "info->struct_size");
    require_range(device, 0, INT32_MAX, "device", "0 .. device count - 1");
    // Build limitation (UNSUPPORTED) is reported before machine limitation (NO_DEVICE), as in mc_context_create.
    if (!kCudaCompiledIn) fail(MC_STATUS_UNSUPPORTED, kBuiltWithoutCuda);
    const int32_t count = cuda_device_count();
    if (device >= count) {
      fail(MC_STATUS_NO_DEVICE, "device = ", device, " does not exist (mc_get_device_count reports ", count, ")");
    }
    mc_device_info out{};
    cuda_device_info(device, out);
    out.struct_size = sizeof(mc_device_info);
    out.device = device;
    *info = out;
  });
}

}  // extern "C"
