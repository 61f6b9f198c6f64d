// The execution paths of a grouped-GEMM run after the offsets precompute: how the kernels that select_launches
// named are put on the GPU. One class per path; the plan picks one at creation from TuningSettings.
#pragma once

#include <cuda_runtime_api.h>

#include "cuda/grouped_gemm/expert_offsets.hpp"
#include "cuda/grouped_gemm/grouped_kernel.hpp"

namespace moecutlass {
class Backend;
}

namespace moecutlass::cuda {

// The kernels of one run, in launch-set order (narrowest first), and the one holding the average rows per expert.
struct LaunchList {
  int count = 0;
  GroupedGemmKernel* kernels[kMaxKernelConfigs] = {};
  int lead = 0;
};

class LaunchPath {
 public:
  virtual ~LaunchPath() = default;
  // Enqueues the kernels on `stream` after the precompute already there; with one kernel every path is the same
  // programmatic (or plain) launch.
  virtual void launch(const LaunchList& list, cudaStream_t stream) = 0;
};

// The lead kernel stays on the caller's stream (programmatically after the precompute); the others start on side
// streams once the precompute is done, run concurrently, and the caller's stream waits for them. Graph capture
// follows the fork and join, so a captured run stays one graph.
class ForkedLaunchPath final : public LaunchPath {
 public:
  // side_streams: the most kernels one run launches (at most kMaxKernelConfigs).
  ForkedLaunchPath(int32_t device, int side_streams, bool programmatic, Backend* backend);
  ~ForkedLaunchPath() override;
  void launch(const LaunchList& list, cudaStream_t stream) override;

 private:
  void release() noexcept;

  int32_t device_;
  int side_streams_;
  bool programmatic_;
  Backend* backend_;
  cudaEvent_t fork_ = nullptr;
  cudaStream_t side_[kMaxKernelConfigs] = {};
  cudaEvent_t join_[kMaxKernelConfigs] = {};
};

// All kernels on the caller's stream, the lead first, then the others in order of distance from it, each waiting
// (griddepcontrol) for the one before: a busy kernel releases its dependents after its CTAs' last tiles, an empty
// one only by exiting, so an empty configuration costs least behind a busy one.
class ChainedLaunchPath final : public LaunchPath {
 public:
  explicit ChainedLaunchPath(bool programmatic) : programmatic_(programmatic) {}
  void launch(const LaunchList& list, cudaStream_t stream) override;

 private:
  bool programmatic_;
};

}  // namespace moecutlass::cuda
