#include "cuda/persistent/cuda_persistent_plan.hpp"

#include <array>
#include <cstdint>
#include <cstdlib>

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
    job.config = set.launch[0].config;
    job.min_rows = set.launch[0].first_rows;
    job.max_rows = set.launch[0].last_rows;
    job.multiprocessors = environment_.multiprocessors;
    job.max_clusters = max_clusters_[job.config];
    job.programmatic = programmatic_;
    DeviceScope scope(environment_.device, environment_.backend);
    cuda_check(persistent::launch_moe_persistent(job, static_cast<cudaStream_t>(stream.native_handle())),
               "persistent grouped GEMM launch", environment_.backend);
  }

 private:
  GroupedGemmShape shape_;
  CudaPlanEnvironment environment_;
  bool programmatic_ = true;
  // Per registry index: the clusters the device holds at once (the persistent grid never exceeds it).
  std::array<int32_t, kKernelConfigCount> max_clusters_{};
};

}  // namespace

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_persistent_plan(const GroupedGemmShape& shape,
                                                                const CudaPlanEnvironment& environment) {
  return std::make_unique<CudaPersistentPlan>(shape, environment);
}

}  // namespace moecutlass::cuda
