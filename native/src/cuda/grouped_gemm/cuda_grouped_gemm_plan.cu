#include "cuda/grouped_gemm/cuda_grouped_gemm_plan.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/error.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/grouped_gemm/bucket_thresholds.hpp"
#include "cuda/grouped_gemm/expert_offsets.hpp"
#include "cuda/grouped_gemm/grouped_kernel.hpp"

namespace moecutlass::cuda {

bool grouped_kernels_support_programmatic_launch() {
#if defined(CUTLASS_ENABLE_GDC_FOR_SM90) && CUTLASS_ENABLE_GDC_FOR_SM90
  return true;
#else
  return false;
#endif
}

namespace {

constexpr size_t kArrayAlignment = 256;
constexpr int32_t kNoLimit = 2147483647;

size_t aligned(size_t bytes) { return (bytes + kArrayAlignment - 1) / kArrayAlignment * kArrayAlignment; }

using KernelFactory = std::unique_ptr<GroupedGemmKernel> (*)(const GroupedGemmKernelSetup&);

// One configuration of a plan: its kernel factory and the expert rows it takes.
struct ConfigChoice {
  KernelFactory factory;
  bool swapped;
  int32_t min_rows;
  int32_t max_rows;
};

std::vector<ConfigChoice> choose_configs(const GroupedGemmShape& shape, const ExpertBucketThresholds& thresholds) {
  const bool fp16 = shape.output_dtype == MC_DTYPE_FP16;
  const ConfigChoice wide{fp16 ? make_sm90_grouped_128x128x128_c1x2_fp16 : make_sm90_grouped_128x128x128_c1x2_bf16,
                          false, 1, kNoLimit};
  if (shape.strategy == MC_STRATEGY_SINGLE) return {wide};
  // Expert specialization (and, for now, auto): swapped narrow tiles for experts with few rows.
  std::vector<ConfigChoice> configs;
  int32_t next = 1;
  if (thresholds.swap32_max_rows >= next) {
    configs.push_back({fp16 ? make_sm90_grouped_swap_128x32x128_c2x1_fp16 : make_sm90_grouped_swap_128x32x128_c2x1_bf16,
                       true, next, thresholds.swap32_max_rows});
    next = thresholds.swap32_max_rows + 1;
  }
  if (thresholds.swap64_max_rows >= next) {
    configs.push_back({fp16 ? make_sm90_grouped_swap_128x64x128_c2x1_fp16 : make_sm90_grouped_swap_128x64x128_c2x1_bf16,
                       true, next, thresholds.swap64_max_rows});
    next = thresholds.swap64_max_rows + 1;
  }
  if (next <= kNoLimit && next > 0) configs.push_back({wide.factory, false, next, kNoLimit});
  return configs;
}

// MOECUTLASS_BUCKETS=a,b overrides the table's thresholds (swapped 128x32 up to a rows, 128x64 up to b), so the
// crossovers can be measured: 0,0 sends every expert to the 128x128 tiles, 100000,100000 to the 128x32 ones.
void apply_threshold_override(ExpertBucketThresholds& thresholds) {
  const char* text = std::getenv("MOECUTLASS_BUCKETS");
  int a = 0, b = 0;
  if (text != nullptr && std::sscanf(text, "%d,%d", &a, &b) == 2 && a >= 0 && b >= 0) {
    thresholds.swap32_max_rows = a;
    thresholds.swap64_max_rows = b;
    thresholds.gpu_class = "MOECUTLASS_BUCKETS";
  }
}

class CudaGroupedGemmPlan final : public GroupedGemmPlanImpl {
 public:
  CudaGroupedGemmPlan(const GroupedGemmShape& shape, const CudaPlanEnvironment& environment)
      : shape_(shape), environment_(environment) {
    DeviceScope scope(environment.device, environment.backend);
    int sm_count = 0, bus_width_bits = 0, memory_clock_khz = 0;
    MC_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, environment.device),
                  environment.backend);
    MC_CUDA_CHECK(cudaDeviceGetAttribute(&bus_width_bits, cudaDevAttrGlobalMemoryBusWidth, environment.device),
                  environment.backend);
    MC_CUDA_CHECK(cudaDeviceGetAttribute(&memory_clock_khz, cudaDevAttrMemoryClockRate, environment.device),
                  environment.backend);
    const double bandwidth_gbps = 2.0 * memory_clock_khz * 1e3 * (bus_width_bits / 8.0) / 1e9;
    ExpertBucketThresholds thresholds = expert_bucket_thresholds(sm_count, bandwidth_gbps);
    if (shape.bucket_max_rows[0] != 0) {  // the ABI layer checked that both are given and ordered
      const int32_t narrow = shape.bucket_max_rows[0], wide = shape.bucket_max_rows[1];
      thresholds.swap32_max_rows = narrow > 0 ? narrow : 0;
      thresholds.swap64_max_rows = wide > 0 ? wide : thresholds.swap32_max_rows;  // < 0: no expert
      thresholds.gpu_class = "mc_grouped_gemm_desc.bucket_max_rows";
    }
    apply_threshold_override(thresholds);
    const std::vector<ConfigChoice> configs = choose_configs(shape, thresholds);

    // One block of device memory: per configuration, problem sizes and five pointer arrays.
    const size_t experts = static_cast<size_t>(shape.experts);
    const size_t sizes_bytes = aligned(experts * 3 * sizeof(int32_t));
    const size_t pointers_bytes = aligned(experts * sizeof(void*));
    const size_t config_bytes = sizes_bytes + 5 * pointers_bytes;
    arrays_bytes_ = config_bytes * configs.size();
    MC_CUDA_CHECK(cudaMalloc(&arrays_memory_, arrays_bytes_), environment.backend);
    try {
      // Zeroed so that a kernel never sees garbage even if a run were to fail half way.
      MC_CUDA_CHECK(cudaMemset(arrays_memory_, 0, arrays_bytes_), environment.backend);
      buckets_.count = static_cast<int32_t>(configs.size());
      for (size_t c = 0; c < configs.size(); ++c) {
        auto* base = static_cast<uint8_t*>(arrays_memory_) + c * config_bytes;
        GroupedGemmDeviceArrays arrays;
        arrays.experts = shape.experts;
        arrays.problem_sizes = reinterpret_cast<int32_t*>(base);
        base += sizes_bytes;
        arrays.ptr_a = reinterpret_cast<const void**>(base);
        arrays.ptr_b = reinterpret_cast<const void**>(base + pointers_bytes);
        arrays.ptr_sfa = reinterpret_cast<const float**>(base + 2 * pointers_bytes);
        arrays.ptr_sfb = reinterpret_cast<const float**>(base + 3 * pointers_bytes);
        arrays.ptr_d = reinterpret_cast<void**>(base + 4 * pointers_bytes);
        buckets_.bucket[c].arrays = arrays;
        buckets_.bucket[c].swapped = configs[c].swapped ? 1 : 0;
        buckets_.bucket[c].min_rows = configs[c].min_rows;
        buckets_.bucket[c].max_rows = configs[c].max_rows;

        GroupedGemmKernelSetup setup;
        setup.arrays = arrays;
        setup.n = shape.n;
        setup.k = shape.k;
        setup.device = environment.device;
        setup.sm_count = sm_count;
        setup.backend = environment.backend;
        if (const char* raster = std::getenv("MOECUTLASS_RASTER"); raster != nullptr && raster[0] != '\0') {
          setup.raster_order = raster[0];
        }
        if (const char* swizzle = std::getenv("MOECUTLASS_SWIZZLE"); swizzle != nullptr) {
          const int value = std::atoi(swizzle);
          if (value == 1 || value == 2 || value == 4 || value == 8) setup.max_swizzle = value;
        }
        kernels_.push_back(configs[c].factory(setup));
        if (!names_.empty()) names_ += ';';
        names_ += kernels_.back()->name();
      }
    } catch (...) {
      kernels_.clear();
      cuda_check_noexcept(cudaFree(arrays_memory_), environment.backend);
      throw;
    }
    wide_only_.count = 1;
    wide_only_.bucket[0] = buckets_.bucket[buckets_.count - 1];
    wide_only_.bucket[0].min_rows = 1;
    // MOECUTLASS_PDL=0 launches the kernels in plain stream order, to measure what programmatic launch buys.
    const char* pdl = std::getenv("MOECUTLASS_PDL");
    programmatic_ = grouped_kernels_support_programmatic_launch() && !(pdl != nullptr && pdl[0] == '0');
    // Several configurations run on forked streams by default: on the H100 that beat the programmatic chain on
    // all 7 cases measured, by 1-14 µs (an empty configuration overlaps the busy one instead of following it).
    // MOECUTLASS_ES_LAUNCH=pdl chains them programmatically on the caller's stream instead, for comparison.
    const char* launch = std::getenv("MOECUTLASS_ES_LAUNCH");
    forked_ = buckets_.count > 1 && !(launch != nullptr && std::string(launch) == "pdl");
    if (forked_) {
      MC_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), environment.backend);
      for (int c = 0; c < buckets_.count; ++c) {
        MC_CUDA_CHECK(cudaStreamCreateWithFlags(&side_[c], cudaStreamNonBlocking), environment.backend);
        MC_CUDA_CHECK(cudaEventCreateWithFlags(&join_[c], cudaEventDisableTiming), environment.backend);
      }
    }
  }

  ~CudaGroupedGemmPlan() override {
    kernels_.clear();
    try {
      DeviceScope scope(environment_.device, environment_.backend);
      for (int c = 0; c < kMaxKernelConfigs; ++c) {
        if (side_[c] != nullptr) cuda_check_noexcept(cudaStreamDestroy(side_[c]), environment_.backend);
        if (join_[c] != nullptr) cuda_check_noexcept(cudaEventDestroy(join_[c]), environment_.backend);
      }
      if (fork_ != nullptr) cuda_check_noexcept(cudaEventDestroy(fork_), environment_.backend);
      // cudaFree waits for the device, so a run still in flight finishes reading the arrays first.
      cuda_check_noexcept(cudaFree(arrays_memory_), environment_.backend);
    } catch (...) {
    }
  }

  // What a run with `rows` does. Expert specialization launches only the wide configuration (every expert in it,
  // exactly `single`) once the average rows per expert reaches the widest swapped threshold: from there on at least
  // as many experts are expected in the wide bucket as in the swapped ones, and every extra configuration costs a
  // persistent launch and its own tail. On the H100 suite (strategies interleaved) the mixed ds-tp8-down-e256-t2048
  // (40-89 rows, average 64) ran at 0.973x of single with all three configurations, and the uniform 64-row cases
  // gained at most 3%. `auto` takes the same per-call choice: it exists so that callers need not know the crossover.
  int32_t resolved_strategy(int32_t rows) const override {
    if (buckets_.count == 1) return MC_STRATEGY_SINGLE;
    const int32_t average = rows / shape_.experts;
    const int32_t swapped_max = buckets_.bucket[buckets_.count - 1].min_rows - 1;
    return average >= swapped_max ? MC_STRATEGY_SINGLE : MC_STRATEGY_EXPERT_SPECIALIZED;
  }

  GroupedGemmPlanDetails details() const override {
    int64_t workspace = static_cast<int64_t>(arrays_bytes_);
    for (const auto& kernel : kernels_) workspace += kernel->workspace_bytes();
    return {names_, static_cast<int32_t>(kernels_.size()), workspace};
  }

  void run(const GroupedGemmOperands& operands, BackendStream& stream) override {
    auto cuda_stream = static_cast<cudaStream_t>(stream.native_handle());
    DeviceScope scope(environment_.device, environment_.backend);
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
    const int32_t average = operands.rows / shape_.experts;
    if (resolved_strategy(operands.rows) == MC_STRATEGY_SINGLE && buckets_.count > 1) {
      cuda_check(launch_expert_offsets(job, wide_only_, cuda_stream), "expert offsets precompute launch",
                 environment_.backend);
      kernels_.back()->launch(cuda_stream, programmatic_);
      return;
    }
    cuda_check(launch_expert_offsets(job, buckets_, cuda_stream), "expert offsets precompute launch",
               environment_.backend);
    // The host knows only the average rows per expert: the configuration holding it goes first (on the caller's
    // stream, programmatically after the precompute). Forked (the default), the others run concurrently on side
    // streams. Chained (MOECUTLASS_ES_LAUNCH=pdl), they follow in order of distance from it, each waiting
    // (griddepcontrol) for the one before: a busy kernel releases its dependents after its CTAs' last tiles, an
    // empty one only by exiting, so an empty configuration costs least behind a busy one.
    int first = 0;
    for (int c = 0; c < buckets_.count; ++c) {
      if (average >= buckets_.bucket[c].min_rows && average <= buckets_.bucket[c].max_rows) first = c;
    }
    if (forked_) {
      launch_forked(cuda_stream, first);
      return;
    }
    kernels_[first]->launch(cuda_stream, programmatic_);
    for (int distance = 1; distance < buckets_.count; ++distance) {
      if (first + distance < buckets_.count) kernels_[first + distance]->launch(cuda_stream, programmatic_);
      if (first - distance >= 0) kernels_[first - distance]->launch(cuda_stream, programmatic_);
    }
  }


 private:
  // The first configuration stays on the caller's stream (programmatically after the precompute); the others
  // start on side streams once the precompute is done, run concurrently, and the caller's stream waits for them.
  // Graph capture follows the fork and join, so a captured run stays one graph.
  void launch_forked(cudaStream_t stream, int first) {
    Backend* backend = environment_.backend;
    MC_CUDA_CHECK(cudaEventRecord(fork_, stream), backend);
    for (int c = 0; c < buckets_.count; ++c) {
      if (c == first) continue;
      MC_CUDA_CHECK(cudaStreamWaitEvent(side_[c], fork_, 0), backend);
      kernels_[c]->launch(side_[c], false);
      MC_CUDA_CHECK(cudaEventRecord(join_[c], side_[c]), backend);
    }
    kernels_[first]->launch(stream, programmatic_);
    for (int c = 0; c < buckets_.count; ++c) {
      if (c != first) MC_CUDA_CHECK(cudaStreamWaitEvent(stream, join_[c], 0), backend);
    }
  }

  GroupedGemmShape shape_;
  CudaPlanEnvironment environment_;
  void* arrays_memory_ = nullptr;
  size_t arrays_bytes_ = 0;
  ConfigBuckets buckets_;
  // The wide configuration alone, taking every expert: runs that resolve to `single` precompute only its arrays.
  ConfigBuckets wide_only_;
  std::vector<std::unique_ptr<GroupedGemmKernel>> kernels_;
  std::string names_;
  bool programmatic_ = false;
  // Forked-stream launching (the default with several configurations): the configurations other than the first
  // run on side streams that wait for the precompute and are joined back before the run ends.
  bool forked_ = false;
  cudaEvent_t fork_ = nullptr;
  cudaStream_t side_[kMaxKernelConfigs] = {};
  cudaEvent_t join_[kMaxKernelConfigs] = {};
};

}  // namespace

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_grouped_gemm_plan(const GroupedGemmShape& shape,
                                                                  const CudaPlanEnvironment& environment) {
  return std::make_unique<CudaGroupedGemmPlan>(shape, environment);
}

}  // namespace moecutlass::cuda
