// Device enumeration through the CUDA runtime.
#include <cstdio>
#include <string>

#include <cuda_runtime_api.h>

#include "backend.hpp"
#include "core/error.hpp"
#include "core/gemm_selection.hpp"
#include "cuda/cuda_check.hpp"

// Set by CMake when the grouped-GEMM units are built as sm_90a code (MOECUTLASS_SM90_ARCHITECTURE 90a): the half of
// mc_device_info.has_sm90a that the build decides.
#ifndef MOECUTLASS_SM90A_KERNELS
#define MOECUTLASS_SM90A_KERNELS 0
#endif

namespace moecutlass {

int32_t cuda_device_count() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error == cudaSuccess) return count;
  switch (error) {
    // "No usable CUDA here" is an answer (zero devices), not a failure: the library works on the CPU backend.
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorInitializationError:
      (void)cudaGetLastError();
      return 0;
    default:
      cuda_check(error, "cudaGetDeviceCount(&count)", nullptr);
      return 0;
  }
}

namespace {

int attribute(cudaDeviceAttr which, int device, const char* name) {
  int value = 0;
  const std::string call = std::string("cudaDeviceGetAttribute(&value, ") + name + ", device)";
  cuda_check(cudaDeviceGetAttribute(&value, which, device), call.c_str(), nullptr);
  return value;
}

#define MC_DEVICE_ATTRIBUTE(which, device) attribute(which, device, #which)

}  // namespace

void cuda_device_info(int32_t device, mc_device_info& info) {
  // Attributes rather than cudaDeviceProp fields wherever possible: CUDA 13 removed several fields (e.g.
  // memoryClockRate), and the attribute API is stable across toolkits.
  cudaDeviceProp properties{};
  MC_CUDA_CHECK(cudaGetDeviceProperties(&properties, device), nullptr);
  info.compute_major = MC_DEVICE_ATTRIBUTE(cudaDevAttrComputeCapabilityMajor, device);
  info.compute_minor = MC_DEVICE_ATTRIBUTE(cudaDevAttrComputeCapabilityMinor, device);
  info.multiprocessors = MC_DEVICE_ATTRIBUTE(cudaDevAttrMultiProcessorCount, device);
  info.l2_cache_bytes = MC_DEVICE_ATTRIBUTE(cudaDevAttrL2CacheSize, device);
  info.total_memory_bytes = static_cast<int64_t>(properties.totalGlobalMem);
  info.shared_memory_per_block_optin = MC_DEVICE_ATTRIBUTE(cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  info.memory_bus_width_bits = MC_DEVICE_ATTRIBUTE(cudaDevAttrGlobalMemoryBusWidth, device);
  info.memory_clock_khz = MC_DEVICE_ATTRIBUTE(cudaDevAttrMemoryClockRate, device);
  // Double data rate: two transfers per memory clock over the whole bus (H100 SXM: 2 x 2.619 GHz x 5120 bit / 8
  // = 3352 GB/s).
  info.peak_memory_bandwidth_gbps =
      2.0 * static_cast<double>(info.memory_clock_khz) * 1e3 * (info.memory_bus_width_bits / 8.0) / 1e9;
  static_assert(sizeof(info.name) >= sizeof(properties.name), "device name must fit");
  for (std::size_t i = 0; i < sizeof(properties.name); ++i) info.name[i] = properties.name[i];
  info.name[sizeof(info.name) - 1] = '\0';
  const GpuClassInfo gpu_class = gpu_class_of(info.multiprocessors, info.peak_memory_bandwidth_gbps);
  std::snprintf(info.gpu_class, sizeof(info.gpu_class), "%s", gpu_class.name);
  info.peak_fp8_dense_tflops = gpu_class.peak_fp8_dense_tflops;
  info.datasheet_bandwidth_gbps = gpu_class.datasheet_bandwidth_gbps;
  info.has_sm90a = runs_sm90a_kernels(info.compute_major, info.compute_minor, MOECUTLASS_SM90A_KERNELS != 0) ? 1 : 0;
}

}  // namespace moecutlass
