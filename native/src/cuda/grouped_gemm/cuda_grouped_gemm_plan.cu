#include "cuda/grouped_gemm/cuda_grouped_gemm_plan.hpp"

#include <cstdlib>
#include <string>

#include <cuda_runtime_api.h>

#include "core/error.hpp"
#include "cuda/cuda_check.hpp"
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

size_t aligned(size_t bytes) { return (bytes + kArrayAlignment - 1) / kArrayAlignment * kArrayAlignment; }

class CudaGroupedGemmPlan final : public GroupedGemmPlanImpl {
 public:
  CudaGroupedGemmPlan(const GroupedGemmShape& shape, const CudaPlanEnvironment& environment)
      : shape_(shape), environment_(environment) {
    DeviceScope scope(environment.device, environment.backend);
    const size_t experts = static_cast<size_t>(shape.experts);
    const size_t sizes_bytes = aligned(experts * 3 * sizeof(int32_t));
    const size_t pointers_bytes = aligned(experts * sizeof(void*));
    arrays_bytes_ = sizes_bytes + 5 * pointers_bytes;
    MC_CUDA_CHECK(cudaMalloc(&arrays_memory_, arrays_bytes_), environment.backend);
    try {
      // Zeroed so that a kernel never sees garbage even if a run were to fail half way.
      MC_CUDA_CHECK(cudaMemset(arrays_memory_, 0, arrays_bytes_), environment.backend);
      auto* base = static_cast<uint8_t*>(arrays_memory_);
      arrays_.experts = shape.experts;
      arrays_.problem_sizes = reinterpret_cast<int32_t*>(base);
      base += sizes_bytes;
      arrays_.ptr_a = reinterpret_cast<const void**>(base);
      arrays_.ptr_b = reinterpret_cast<const void**>(base + pointers_bytes);
      arrays_.ptr_sfa = reinterpret_cast<const float**>(base + 2 * pointers_bytes);
      arrays_.ptr_sfb = reinterpret_cast<const float**>(base + 3 * pointers_bytes);
      arrays_.ptr_d = reinterpret_cast<void**>(base + 4 * pointers_bytes);

      int sm_count = 0;
      MC_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, environment.device),
                    environment.backend);
      GroupedGemmKernelSetup setup;
      setup.arrays = arrays_;
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
      // Every strategy runs the single 128x128 configuration until expert specialization lands.
      kernel_ = shape.output_dtype == MC_DTYPE_FP16 ? make_sm90_grouped_128x128x128_c1x2_fp16(setup)
                                                    : make_sm90_grouped_128x128x128_c1x2_bf16(setup);
    } catch (...) {
      cuda_check_noexcept(cudaFree(arrays_memory_), environment.backend);
      throw;
    }
    // MOECUTLASS_PDL=0 launches the GEMM in plain stream order, to measure what programmatic launch buys.
    const char* pdl = std::getenv("MOECUTLASS_PDL");
    programmatic_ = grouped_kernels_support_programmatic_launch() && !(pdl != nullptr && pdl[0] == '0');
  }

  ~CudaGroupedGemmPlan() override {
    kernel_.reset();
    try {
      DeviceScope scope(environment_.device, environment_.backend);
      // cudaFree waits for the device, so a run still in flight finishes reading the arrays first.
      cuda_check_noexcept(cudaFree(arrays_memory_), environment_.backend);
    } catch (...) {
    }
  }

  GroupedGemmPlanDetails details() const override {
    return {kernel_->name(), 1, static_cast<int64_t>(arrays_bytes_) + kernel_->workspace_bytes()};
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
    cuda_check(launch_expert_offsets(job, arrays_, cuda_stream), "expert offsets precompute launch",
               environment_.backend);
    kernel_->launch(cuda_stream, programmatic_);
  }

 private:
  GroupedGemmShape shape_;
  CudaPlanEnvironment environment_;
  void* arrays_memory_ = nullptr;
  size_t arrays_bytes_ = 0;
  GroupedGemmDeviceArrays arrays_;
  std::unique_ptr<GroupedGemmKernel> kernel_;
  bool programmatic_ = false;
};

}  // namespace

std::unique_ptr<GroupedGemmPlanImpl> make_cuda_grouped_gemm_plan(const GroupedGemmShape& shape,
                                                                  const CudaPlanEnvironment& environment) {
  return std::make_unique<CudaGroupedGemmPlan>(shape, environment);
}

}  // namespace moecutlass::cuda
