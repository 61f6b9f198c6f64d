#include "cuda/grouped_gemm/grouped_launcher.hpp"

#include "core/error.hpp"
#include "cuda/cuda_check.hpp"

namespace moecutlass::cuda {

ForkedLaunchPath::ForkedLaunchPath(int32_t device, int side_streams, bool programmatic, Backend* backend)
    : device_(device), side_streams_(side_streams), programmatic_(programmatic), backend_(backend) {
  try {
    MC_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), backend);
    for (int c = 0; c < side_streams_; ++c) {
      MC_CUDA_CHECK(cudaStreamCreateWithFlags(&side_[c], cudaStreamNonBlocking), backend);
      MC_CUDA_CHECK(cudaEventCreateWithFlags(&join_[c], cudaEventDisableTiming), backend);
    }
  } catch (...) {
    release();
    throw;
  }
}

ForkedLaunchPath::~ForkedLaunchPath() { release(); }

void ForkedLaunchPath::release() noexcept {
  try {
    DeviceScope scope(device_, backend_);
    for (int c = 0; c < kMaxKernelConfigs; ++c) {
      if (side_[c] != nullptr) cuda_check_noexcept(cudaStreamDestroy(side_[c]), backend_);
      if (join_[c] != nullptr) cuda_check_noexcept(cudaEventDestroy(join_[c]), backend_);
      side_[c] = nullptr;
      join_[c] = nullptr;
    }
    if (fork_ != nullptr) cuda_check_noexcept(cudaEventDestroy(fork_), backend_);
    fork_ = nullptr;
  } catch (...) {
  }
}

void ForkedLaunchPath::launch(const LaunchList& list, cudaStream_t stream) {
  if (list.count == 1) {
    list.kernels[0]->launch(stream, programmatic_);
    return;
  }
  if (list.count > side_streams_) fail(MC_STATUS_INTERNAL, "forked launch of ", list.count, " kernels with ", side_streams_, " side streams");
  MC_CUDA_CHECK(cudaEventRecord(fork_, stream), backend_);
  for (int c = 0; c < list.count; ++c) {
    if (c == list.lead) continue;
    MC_CUDA_CHECK(cudaStreamWaitEvent(side_[c], fork_, 0), backend_);
    list.kernels[c]->launch(side_[c], false);
    MC_CUDA_CHECK(cudaEventRecord(join_[c], side_[c]), backend_);
  }
  list.kernels[list.lead]->launch(stream, programmatic_);
  for (int c = 0; c < list.count; ++c) {
    if (c != list.lead) MC_CUDA_CHECK(cudaStreamWaitEvent(stream, join_[c], 0), backend_);
  }
}

void ChainedLaunchPath::launch(const LaunchList& list, cudaStream_t stream) {
  list.kernels[list.lead]->launch(stream, programmatic_);
  for (int distance = 1; distance < list.count; ++distance) {
    if (list.lead + distance < list.count) list.kernels[list.lead + distance]->launch(stream, programmatic_);
    if (list.lead - distance >= 0) list.kernels[list.lead - distance]->launch(stream, programmatic_);
  }
}

}  // namespace moecutlass::cuda
