// CUDA runtime errors -> MoeCutlass statuses.
//
//   cudaErrorMemoryAllocation                        -> MC_STATUS_OUT_OF_MEMORY
//   no device / no or too old driver / bad ordinal   -> MC_STATUS_NO_DEVICE
//   sticky errors (illegal address, launch failure,
//   illegal instruction, misaligned address, ...)    -> MC_STATUS_DEVICE_FAULT, and the backend is marked faulted:
//                                                       the CUDA context is corrupt, so every later call on the
//                                                       MoeCutlass context fails fast instead of hanging or lying
//   cudaErrorNotReady                                -> MC_STATUS_NOT_READY
//   anything else                                    -> MC_STATUS_CUDA_ERROR
// Messages name the failing call and the CUDA error name, e.g.
//   cudaMalloc(&pointer, bytes) failed: cudaErrorMemoryAllocation (out of memory)
#pragma once

#include <cuda_runtime_api.h>

#include "backend.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

mc_status cuda_error_status(cudaError_t error);
bool cuda_error_is_sticky(cudaError_t error);

// Throws Error for anything but cudaSuccess. `backend` (may be null) is marked faulted on sticky errors.
void cuda_check(cudaError_t error, const char* call, Backend* backend);

// For destructors and release paths, which must not throw: records a sticky error on the backend and otherwise
// ignores the failure.
void cuda_check_noexcept(cudaError_t error, Backend* backend) noexcept;

// Makes `device` current on the calling thread for the scope and restores the caller's device afterwards, so the
// library never leaves another device current in an application (or another CUDA library) that uses several.
class DeviceScope {
 public:
  DeviceScope(int device, Backend* backend);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = -1;
  bool switched_ = false;
};

}  // namespace moecutlass

#define MC_CUDA_CHECK(call, backend) ::moecutlass::cuda_check((call), #call, (backend))
