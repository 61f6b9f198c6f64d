// CudaMoeStages: argument plumbing from the stage jobs to the launchers (moe_stage_kernels.hpp). Every call makes
// the backend's device current, enqueues on the given stream without synchronising or allocating (graph
// capturable) and throws through MC_CUDA_CHECK when a launch fails. Nothing is launched for an empty capacity,
// except that permute with no tokens still zeroes the offsets.
#include "cuda/moe_layer/cuda_moe_stages.hpp"

#include <cuda_runtime_api.h>

#include "core/error.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/moe_layer/moe_stage_kernels.hpp"

namespace moecutlass {

namespace {

// Blocks per SM for the activation stage, whose job has no capacity, and the most the gather launches: enough
// resident warps to stream the rows (each gather lane keeps four 16-byte loads in flight), no more. The
// activation is issue-bound, not latency-bound: on the H200 (job 24) 4 or 8 blocks per SM, and one, two or four
// blocks of 1x128 per warp, all timed within 5 % of each other (mixtral-layer-e8-t4096: 578-606 µs).
constexpr int32_t kActivationBlocksPerSm = 4;
constexpr int32_t kGatherBlocksPerSm = 8;

class CudaMoeStages final : public MoeLayerStages {
 public:
  CudaMoeStages(int32_t device, int32_t* error_flag, Backend* backend)
      : device_(device), error_flag_(error_flag), backend_(backend) {
    DeviceScope scope(device_, backend_);
    int multiprocessors = 0;
    MC_CUDA_CHECK(cudaDeviceGetAttribute(&multiprocessors, cudaDevAttrMultiProcessorCount, device_), backend_);
    activation_blocks_ = (multiprocessors > 0 ? multiprocessors : 1) * kActivationBlocksPerSm;
    gather_blocks_ = (multiprocessors > 0 ? multiprocessors : 1) * kGatherBlocksPerSm;
  }

  void route(const MoeRouteJob& job, BackendStream& stream) override {
    if (job.tokens <= 0) return;
    DeviceScope scope(device_, backend_);
    MC_CUDA_CHECK(cuda::launch_moe_route(job, stream_of(stream)), backend_);
  }

  void permute(const MoePermuteJob& job, BackendStream& stream) override {
    DeviceScope scope(device_, backend_);
    MC_CUDA_CHECK(cuda::launch_moe_permute(job, error_flag_, stream_of(stream)), backend_);
  }

  void gather_quantize(const MoeGatherJob& job, BackendStream& stream) override {
    const int64_t capacity = int64_t{job.tokens} * job.top_k;
    if (capacity <= 0) return;
    DeviceScope scope(device_, backend_);
    MC_CUDA_CHECK(cuda::launch_moe_gather_quantize(job, static_cast<int32_t>(capacity), gather_blocks_,
                                                   stream_of(stream)),
                  backend_);
  }

  void activate_quantize(const MoeActivationJob& job, BackendStream& stream) override {
    if (job.inter <= 0) return;
    DeviceScope scope(device_, backend_);
    MC_CUDA_CHECK(cuda::launch_moe_activate_quantize(job, activation_blocks_, stream_of(stream)), backend_);
  }

  void combine(const MoeCombineJob& job, BackendStream& stream) override {
    if (job.tokens <= 0) return;
    DeviceScope scope(device_, backend_);
    MC_CUDA_CHECK(cuda::launch_moe_combine(job, stream_of(stream)), backend_);
  }

 private:
  static cudaStream_t stream_of(BackendStream& stream) { return static_cast<cudaStream_t>(stream.native_handle()); }

  int32_t device_;
  int32_t* error_flag_;
  Backend* backend_;
  int32_t activation_blocks_ = 0;
  int32_t gather_blocks_ = 0;
};

}  // namespace

std::unique_ptr<MoeLayerStages> make_cuda_moe_stages(int32_t device, int32_t* error_flag, Backend* backend) {
  return std::make_unique<CudaMoeStages>(device, error_flag, backend);
}

}  // namespace moecutlass
