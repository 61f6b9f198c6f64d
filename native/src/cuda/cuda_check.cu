#include "cuda/cuda_check.hpp"

#include "core/error.hpp"

namespace moecutlass {

bool cuda_error_is_sticky(cudaError_t error) {
  switch (error) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
      return true;
    default:
      return false;
  }
}

mc_status cuda_error_status(cudaError_t error) {
  if (error == cudaSuccess) return MC_STATUS_OK;
  if (cuda_error_is_sticky(error)) return MC_STATUS_DEVICE_FAULT;
  switch (error) {
    case cudaErrorMemoryAllocation:
      return MC_STATUS_OUT_OF_MEMORY;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorSystemDriverMismatch:
      return MC_STATUS_NO_DEVICE;
    case cudaErrorNotReady:
      return MC_STATUS_NOT_READY;
    default:
      return MC_STATUS_CUDA_ERROR;
  }
}

void cuda_check(cudaError_t error, const char* call, Backend* backend) {
  if (error == cudaSuccess) return;
  const mc_status status = cuda_error_status(error);
  if (status == MC_STATUS_DEVICE_FAULT) {
    if (backend != nullptr) backend->mark_faulted();
  } else {
    // Non-sticky: reset the runtime's per-thread error so the next launch check does not report it again.
    (void)cudaGetLastError();
  }
  fail(status, call, " failed: ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ")",
       status == MC_STATUS_DEVICE_FAULT ? "; the context is now unusable, destroy it and create a new one" : "");
}

void cuda_check_noexcept(cudaError_t error, Backend* backend) noexcept {
  if (error == cudaSuccess) return;
  if (cuda_error_is_sticky(error)) {
    if (backend != nullptr) backend->mark_faulted();
  } else {
    (void)cudaGetLastError();
  }
}

DeviceScope::DeviceScope(int device, Backend* backend) {
  MC_CUDA_CHECK(cudaGetDevice(&previous_), backend);
  if (previous_ != device) {
    MC_CUDA_CHECK(cudaSetDevice(device), backend);
    switched_ = true;
  }
}

DeviceScope::~DeviceScope() {
  if (switched_) (void)cudaSetDevice(previous_);
}

}  // namespace moecutlass
