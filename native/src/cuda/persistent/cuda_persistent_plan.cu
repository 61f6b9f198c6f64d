#include "cuda/persistent/cuda_persistent_plan.hpp"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <utility>

#include "core/error.hpp"
#include "core/gemm_selection.hpp"
#include "core/kernel_registry.hpp"
#include "core/tuning_settings.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/persistent/moe_persistent.hpp"

namespace moecutlass::cuda {

namespace {

// Strategy persistent: nothing is prepared on the device (no per-expert arrays, no workspace). A run encodes the
// two tensor maps for its pointers and rows on the host and launches one persistent kernel on the caller's
// stream; the walk over the offsets happens on the device.
class CudaPersistentPlan final : public GroupedGemmPlanImpl {
 public:
  CudaPersistentPlan(const GroupedGemmShape& shape, const CudaPlanEnvironment& environment)
      : shape_(shape), environment_(environment) {
    const TuningSettings settings =
        read_tuning_settings([](const char* name) -> const char* { return std::getenv(name); });
    programmatic_ = settings.programmatic;
    // B is addressed as one [E * N, K] tensor map with an int32 row coordinate.
    if (static_cast<int64_t>(shape.experts) * shape.n > INT32_MAX) {
      fail(MC_STATUS_UNSUPPORTED, "desc->experts x desc->n = ", static_cast<int64_t>(shape.experts) * shape.n,
           " exceeds 2147483647, the weight rows MC_STRATEGY_PERSISTENT addresses in one tensor map");
    }
    // Every configuration a run may launch gets its kernel attributes on the plan's device now, not per run.
    DeviceScope scope(environment.device, environment.backend);
    for (int32_t i = 0; i < shape.selection.config_count; ++i) {
      const int32_t config = shape.selection.configs[i];
      cuda_check(persistent::prepare_moe_persistent(config, shape.output_dtype),
                 "persistent grouped GEMM kernel attributes", environment.backend);
      cuda_check(persistent::moe_persistent_max_clusters(config, shape.output_dtype, &max_clusters_[config]),
                 "persistent grouped GEMM cluster occupancy", environment.backend);
    }
  }

  GroupedGemmPlanDetails details() const override { return {0}; }

  void run(const GroupedGemmOperands& operands, BackendStream& stream) override {
    const LaunchSet set = select_launches(shape_.selection, shape_.experts, operands.rows_for_selection());
    run_launches(set, operands, stream);
  }

  // The persistent launches of a selection, in order on the caller's stream: one for the persistent path, one per
  // configuration for expert specialization inside the kernel (each walks only the experts of its range; the
  // launches write disjoint rows of D).
  void run_launches(const LaunchSet& set, const GroupedGemmOperands& operands, BackendStream& stream) {
    persistent::MoePersistentJob job;
    job.a = operands.a;
    job.a_scales = operands.a_scales;
    job.b = operands.b;
    job.b_scales = operands.b_scales;
    job.d = operands.d;
    job.offsets = operands.expert_offsets;
    job.error_flag = environment_.error_flag;
    job.experts = shape_.experts;
    job.n = shape_.n;
    job.k = shape_.k;
    job.rows = operands.rows;
    job.output_dtype = shape_.output_dtype;
    job.multiprocessors = environment_.multiprocessors;
    job.programmatic = programmatic_;
    DeviceScope scope(environment_.device, environment_.backend);
    for (int32_t i = 0; i < set.count; ++i) {
      job.config = set.launch[i].config;
      job.min_rows = set.launch[i].first_rows;
      job.max_rows = set.launch[i].last_rows;
      job.max_clusters = max_clusters_[job.config];
      cuda_check(persistent::launch_moe_persistent(job, static_cast<cudaStream_t>(stream.native_handle())),
                 "persistent grouped GEMM launch", environment_.backend);
    }
  }

 private:
  GroupedGemmShape shape_;
  CudaPlanEnvironment environment_;
  bool programmatic_ = true;
  // Per registry index: the clusters the device holds at once (the persistent grid never exceeds it).
  std::array<int32_t, kKernelConfigCount> max_clusters_{};
};

// Strategy auto on a GPU class whose table lets it run the persistent kernel (MC_AUTO_PERSISTENT): both paths are
// prepared at creation, and each run takes the one its selection names.
class CudaAutoPlan final : public GroupedGemmPlanImpl {
 public:
  CudaAutoPlan(const GroupedGemmShape& shape, const CudaPlanEnvironment& environment,
               std::unique_ptr<GroupedGemmPlanImpl> pointer_array)
      : shape_(shape), pointer_array_(std::move(pointer_array)), persistent_(shape, environment) {}

  GroupedGemmPlanDetails details() const override { return pointer_array_->details(); }

  void run(const GroupedGemmOperands& operands, BackendStream& stream) override {
    const LaunchSet set = select_launches(shape_.selection, shape_.experts, operands.rows_for_selection());
    if (set.strategy == MC_STRATEGY_PERSISTENT) {
      persistent_.run_launches(set, operands, stream);
    } else {
      pointer_array_->run(operands, stream);
    }
  }

 private:
  GroupedGemmShape shape_;
  std::unique_ptr<GroupedGemmPlanImpl> pointer_array_;
  CudaPersistentPlan persistent_;
};

}  // namespace

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_auto_plan(const GroupedGemmShape& shape,
                                                         const CudaPlanEnvironment& environment,
                                                         std::unique_ptr<GroupedGemmPlanImpl> pointer_array) {
  return std::make_unique<CudaAutoPlan>(shape, environment, std::move(pointer_array));
}

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_persistent_plan(const GroupedGemmShape& shape,
                                                                const CudaPlanEnvironment& environment) {
  return std::make_unique<CudaPersistentPlan>(shape, environment);
}

}  // namespace moecutlass::cuda
