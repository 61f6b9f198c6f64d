#include "cuda/grouped_gemm/cuda_grouped_gemm_plan.hpp"

#include <cstdlib>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/error.hpp"
#include "core/gemm_selection.hpp"
#include "core/kernel_registry.hpp"
#include "core/tuning_settings.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/grouped_gemm/expert_offsets.hpp"
#include "cuda/grouped_gemm/grouped_kernel.hpp"
#include "cuda/grouped_gemm/grouped_launcher.hpp"

namespace moecutlass::cuda {

namespace {

constexpr size_t kArrayAlignment = 256;

size_t aligned(size_t bytes) { return (bytes + kArrayAlignment - 1) / kArrayAlignment * kArrayAlignment; }

// One configuration of the plan: its kernel and the per-expert arrays that the precompute writes for it.
struct ConfigSlot {
  int32_t config = -1;
  GroupedGemmDeviceArrays arrays;
  std::unique_ptr<GroupedGemmKernel> kernel;
};

// Device memory the plan owns; freed on the plan's device. cudaFree waits for the device, so a run still in flight
// finishes reading the arrays first.
class PlanMemory {
 public:
  PlanMemory(int32_t device, Backend* backend) : device_(device), backend_(backend) {}
  PlanMemory(const PlanMemory&) = delete;
  PlanMemory& operator=(const PlanMemory&) = delete;
  ~PlanMemory() {
    if (pointer_ == nullptr) return;
    try {
      DeviceScope scope(device_, backend_);
      cuda_check_noexcept(cudaFree(pointer_), backend_);
    } catch (...) {
    }
  }
  uint8_t* allocate(size_t bytes) {
    bytes_ = bytes;
    MC_CUDA_CHECK(cudaMalloc(&pointer_, bytes), backend_);
    // Zeroed so that a kernel never sees garbage even if a run were to fail half way.
    MC_CUDA_CHECK(cudaMemset(pointer_, 0, bytes), backend_);
    return static_cast<uint8_t*>(pointer_);
  }
  size_t bytes() const { return bytes_; }

 private:
  int32_t device_;
  Backend* backend_;
  void* pointer_ = nullptr;
  size_t bytes_ = 0;
};

class CudaGroupedGemmPlan final : public GroupedGemmPlanImpl {
 public:
  CudaGroupedGemmPlan(const GroupedGemmShape& shape, const CudaPlanEnvironment& environment)
      : shape_(shape), environment_(environment), memory_(environment.device, environment.backend) {
    DeviceScope scope(environment.device, environment.backend);
    const TuningSettings settings =
        read_tuning_settings([](const char* name) -> const char* { return std::getenv(name); });
    const PlanSelection& selection = shape.selection;

    // One block of device memory: per configuration, problem sizes and five pointer arrays.
    const size_t experts = static_cast<size_t>(shape.experts);
    const size_t sizes_bytes = aligned(experts * 3 * sizeof(int32_t));
    const size_t pointers_bytes = aligned(experts * sizeof(void*));
    const size_t config_bytes = sizes_bytes + 5 * pointers_bytes;
    uint8_t* memory = memory_.allocate(config_bytes * static_cast<size_t>(selection.config_count));

    slots_.resize(static_cast<size_t>(selection.config_count));
    for (int32_t c = 0; c < selection.config_count; ++c) {
      ConfigSlot& slot = slots_[static_cast<size_t>(c)];
      uint8_t* base = memory + static_cast<size_t>(c) * config_bytes;
      slot.config = selection.configs[c];
      slot.arrays.experts = shape.experts;
      slot.arrays.problem_sizes = reinterpret_cast<int32_t*>(base);
      base += sizes_bytes;
      slot.arrays.ptr_a = reinterpret_cast<const void**>(base);
      slot.arrays.ptr_b = reinterpret_cast<const void**>(base + pointers_bytes);
      slot.arrays.ptr_sfa = reinterpret_cast<const float**>(base + 2 * pointers_bytes);
      slot.arrays.ptr_sfb = reinterpret_cast<const float**>(base + 3 * pointers_bytes);
      slot.arrays.ptr_d = reinterpret_cast<void**>(base + 4 * pointers_bytes);

      GroupedGemmKernelSetup setup;
      setup.arrays = slot.arrays;
      setup.n = shape.n;
      setup.k = shape.k;
      setup.device = environment.device;
      setup.sm_count = environment.multiprocessors;
      setup.backend = environment.backend;
      setup.raster_order = settings.raster_order;
      setup.max_swizzle = settings.max_swizzle;
      slot.kernel = grouped_kernel_factory(slot.config, shape.output_dtype)(setup);
    }

    const bool programmatic = grouped_kernels_support_programmatic_launch() && settings.programmatic;
    const int32_t most_launched = shape.strategy == MC_STRATEGY_SINGLE ? 1 : selection.table.specialized_count;
    if (most_launched > 1 && settings.forked) {
      path_ = std::make_unique<ForkedLaunchPath>(environment.device, most_launched, programmatic, environment.backend);
    } else {
      path_ = std::make_unique<ChainedLaunchPath>(programmatic);
    }
  }

  GroupedGemmPlanDetails details() const override {
    int64_t workspace = static_cast<int64_t>(memory_.bytes());
    for (const ConfigSlot& slot : slots_) workspace += slot.kernel->workspace_bytes();
    return {workspace};
  }

  void run(const GroupedGemmOperands& operands, BackendStream& stream) override {
    auto cuda_stream = static_cast<cudaStream_t>(stream.native_handle());
    DeviceScope scope(environment_.device, environment_.backend);
    const LaunchSet set = select_launches(shape_.selection, shape_.experts, operands.rows_for_selection());

    ConfigBuckets buckets;
    LaunchList list;
    buckets.count = set.count;
    list.count = set.count;
    list.lead = set.lead;
    for (int32_t i = 0; i < set.count; ++i) {
      ConfigSlot& slot = slot_of(set.launch[i].config);
      ConfigBucket& bucket = buckets.bucket[i];
      bucket.arrays = slot.arrays;
      bucket.swapped = kKernelConfigs[slot.config].swap_ab ? 1 : 0;
      bucket.min_rows = set.launch[i].first_rows;
      bucket.max_rows = set.launch[i].last_rows;
      list.kernels[i] = slot.kernel.get();
    }

    ExpertOffsetsJob job;
    job.offsets = operands.expert_offsets;
    job.rows = operands.rows;
    job.n = shape_.n;
    job.k = shape_.k;
    job.d_element_bytes = 2;  // bf16 and fp16
    job.a = operands.a;
    job.a_scales = operands.a_scales;
    job.b = operands.b;
    job.b_scales = operands.b_scales;
    job.d = static_cast<uint8_t*>(operands.d);
    job.error_flag = environment_.error_flag;
    cuda_check(launch_expert_offsets(job, buckets, cuda_stream), "expert offsets precompute launch",
               environment_.backend);
    path_->launch(list, cuda_stream);
  }

 private:
  ConfigSlot& slot_of(int32_t config) {
    for (ConfigSlot& slot : slots_) {
      if (slot.config == config) return slot;
    }
    fail(MC_STATUS_INTERNAL, "the selection launches configuration ", config, " that the plan did not prepare");
  }

  GroupedGemmShape shape_;
  CudaPlanEnvironment environment_;
  PlanMemory memory_;                  // declared before the kernels: they are destroyed first
  std::vector<ConfigSlot> slots_;      // one per selection.configs entry, same order
  std::unique_ptr<LaunchPath> path_;
};

}  // namespace

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_grouped_gemm_plan(const GroupedGemmShape& shape,
                                                                  const CudaPlanEnvironment& environment) {
  return std::make_unique<CudaGroupedGemmPlan>(shape, environment);
}

}  // namespace moecutlass::cuda
