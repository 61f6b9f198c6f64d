#include "cuda/cublas/cublas_grouped_gemm_plan.hpp"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/error.hpp"
#include "core/tuning_settings.hpp"
#include "core/validate.hpp"
#include "cublas/cublas_call_choice.hpp"
#include "cublas/cublas_loader.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/cuda_dequantize.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass::cuda {

namespace {

constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;  // cuBLAS's recommendation for Hopper

// The per-run staging of the groups: three pointer arrays and the expert ids, a group per expert at most.
size_t staging_bytes(int32_t experts) {
  return (3 * sizeof(void*) + sizeof(int32_t)) * static_cast<size_t>(experts);
}

// Device memory from the context's allocator, released in reverse order.
class DeviceBuffers {
 public:
  explicit DeviceBuffers(Backend* backend) : backend_(backend) {}
  ~DeviceBuffers() {
    for (auto it = pointers_.rbegin(); it != pointers_.rend(); ++it) backend_->release(*it);
  }
  DeviceBuffers(const DeviceBuffers&) = delete;
  DeviceBuffers& operator=(const DeviceBuffers&) = delete;

  void* allocate(size_t bytes) {
    void* pointer = backend_->allocate(static_cast<int64_t>(bytes > 0 ? bytes : 16));
    pointers_.push_back(pointer);
    bytes_ += bytes;
    return pointer;
  }
  size_t bytes() const { return bytes_; }

 private:
  Backend* backend_;
  std::vector<void*> pointers_;
  size_t bytes_ = 0;
};

class PinnedBuffer {
 public:
  PinnedBuffer(size_t bytes, Backend* backend) : backend_(backend) {
    MC_CUDA_CHECK(cudaMallocHost(&pointer_, bytes > 0 ? bytes : 16), backend);
  }
  ~PinnedBuffer() { cuda_check_noexcept(cudaFreeHost(pointer_), backend_); }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(pointer_);
  }

 private:
  Backend* backend_;
  void* pointer_ = nullptr;
};

void cublas_check(const cublas::Api& api, cublas::Status status, const char* call) {
  if (status != cublas::kSuccess) {
    const char* text = api.status_string != nullptr ? api.status_string(status) : nullptr;
    fail(MC_STATUS_CUDA_ERROR, call, " failed: ", text != nullptr ? text : "unknown cuBLAS status", " (", status,
         ") from ", api.path);
  }
}

class CublasHandle {
 public:
  explicit CublasHandle(const cublas::Api& api) : api_(api) {
    cublas_check(api_, api_.create(&handle_), "cublasCreate");
  }
  ~CublasHandle() {
    if (handle_ != nullptr) api_.destroy(handle_);  // nothing to do about a failure while tearing down
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublas::Handle get() const { return handle_; }

 private:
  const cublas::Api& api_;
  cublas::Handle handle_ = nullptr;
};

class CublasGroupedGemmPlan final : public GroupedGemmPlanImpl {
 public:
  CublasGroupedGemmPlan(const GroupedGemmShape& shape, const CudaPlanEnvironment& environment)
      : shape_(shape),
        environment_(environment),
        settings_(read_tuning_settings([](const char* name) -> const char* { return std::getenv(name); })),
        api_(cublas::api()),
        memory_(environment.backend) {
    // Everything bound to a device (the handle, pinned and device memory) is made with the plan's device current,
    // and the caller's device is current again afterwards.
    DeviceScope scope(environment.device, environment.backend);
    offsets_host_ = std::make_unique<PinnedBuffer>(sizeof(int32_t) * (static_cast<size_t>(shape.experts) + 1),
                                                   environment.backend);
    // [A pointers | B pointers | C pointers | expert ids], a group per expert at most, copied to the device in one.
    pointers_host_ = std::make_unique<PinnedBuffer>(staging_bytes(shape.experts), environment.backend);
    const size_t experts = static_cast<size_t>(shape.experts);
    const size_t n = static_cast<size_t>(shape.n);
    const size_t k = static_cast<size_t>(shape.k);
    const size_t max_rows = static_cast<size_t>(shape.max_rows);
    b_bf16_ = static_cast<uint16_t*>(memory_.allocate(experts * n * k * 2));
    a_bf16_ = static_cast<uint16_t*>(memory_.allocate(max_rows * k * 2));
    if (shape.output_dtype == MC_DTYPE_FP16) c_bf16_ = static_cast<uint16_t*>(memory_.allocate(max_rows * n * 2));
    pointers_device_ = static_cast<void**>(memory_.allocate(staging_bytes(shape.experts)));
    void* workspace = memory_.allocate(kCublasWorkspaceBytes);
    handle_ = std::make_unique<CublasHandle>(api_);
    cublas_check(api_, api_.set_workspace(handle_->get(), workspace, kCublasWorkspaceBytes), "cublasSetWorkspace");
    // Per-group host arrays, sized once (a group per expert at most).
    transa_.assign(experts, cublas::kOpT);
    transb_.assign(experts, cublas::kOpN);
    m_.assign(experts, shape.n);
    n_.reserve(experts);
    k_.assign(experts, shape.k);
    lda_.assign(experts, shape.k);
    ldb_.assign(experts, shape.k);
    ldc_.assign(experts, shape.n);
    alpha_.assign(experts, 1.0f);
    beta_.assign(experts, 0.0f);
    group_size_.assign(experts, 1);
  }

  ~CublasGroupedGemmPlan() override {
    try {
      DeviceScope scope(environment_.device, environment_.backend);
      handle_.reset();  // before the workspace it was given is released with memory_
    } catch (...) {
      handle_.reset();  // the device could not be made current (a faulted context): destroy it anyway
    }
  }

  GroupedGemmPlanDetails details() const override { return {static_cast<int64_t>(memory_.bytes())}; }

  void run(const GroupedGemmOperands& operands, BackendStream& stream) override {
    auto cuda_stream = static_cast<cudaStream_t>(stream.native_handle());
    DeviceScope scope(environment_.device, environment_.backend);
    Backend* backend = environment_.backend;
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    MC_CUDA_CHECK(cudaStreamIsCapturing(cuda_stream, &capture), backend);
    if (capture != cudaStreamCaptureStatusNone) {
      fail(MC_STATUS_UNSUPPORTED,
           "MC_STRATEGY_CUBLAS reads the expert offsets on the host (cuBLAS's grouped GEMM takes host-side sizes), "
           "so its runs cannot be captured into a CUDA graph; run it outside the capture, or plan another strategy");
    }
    const int32_t experts = shape_.experts;
    int32_t* offsets = offsets_host_->as<int32_t>();
    MC_CUDA_CHECK(cudaMemcpyAsync(offsets, operands.expert_offsets, sizeof(int32_t) * (experts + 1),
                                  cudaMemcpyDeviceToHost, cuda_stream),
                  backend);
    MC_CUDA_CHECK(cudaStreamSynchronize(cuda_stream), backend);
    require_valid_offsets(offsets, experts, operands.rows, "args->expert_offsets");

    // Row-major D_e [M_e, N] = A_e [M_e, K] x B_e^T is, column-major, D_e^T = op(B_e) x A_e^T with op = T.
    const bool fp16 = shape_.output_dtype == MC_DTYPE_FP16;
    const size_t n = static_cast<size_t>(shape_.n);
    const size_t k = static_cast<size_t>(shape_.k);
    const void** a_pointers = pointers_host_->as<const void*>();
    const void** b_pointers = a_pointers + experts;
    void** c_pointers = const_cast<void**>(b_pointers + experts);
    int32_t* listed_experts = reinterpret_cast<int32_t*>(c_pointers + experts);
    n_.clear();
    int32_t groups = 0;
    for (int32_t e = 0; e < experts; ++e) {
      const int32_t rows = offsets[e + 1] - offsets[e];
      if (rows == 0) continue;
      const size_t first = static_cast<size_t>(offsets[e]);
      a_pointers[groups] = b_bf16_ + static_cast<size_t>(e) * n * k;  // cuBLAS's A: the expert's weights
      b_pointers[groups] = a_bf16_ + first * k;                       // cuBLAS's B: the expert's rows
      c_pointers[groups] = fp16 ? static_cast<void*>(c_bf16_ + first * n)
                                : static_cast<void*>(static_cast<uint16_t*>(operands.d) + first * n);
      listed_experts[groups] = e;
      n_.push_back(rows);
      ++groups;
    }
    if (groups == 0) return;  // no rows: nothing to compute and nothing to write
    const cublas::Call call = cublas::choose_call(settings_.cublas_call, groups, offsets[experts] - offsets[0],
                                                  shape_.n, shape_.k);
    // The device copy holds the groups' [A pointers | B pointers | C pointers | expert ids], each `experts` long.
    void** device_a = pointers_device_;
    void** device_b = pointers_device_ + experts;
    void** device_c = pointers_device_ + 2 * experts;
    const int32_t* device_experts = reinterpret_cast<const int32_t*>(pointers_device_ + 3 * experts);
    MC_CUDA_CHECK(cudaMemcpyAsync(pointers_device_, pointers_host_->as<void>(), staging_bytes(experts),
                                  cudaMemcpyHostToDevice, cuda_stream),
                  backend);

    cuda_check(launch_dequantize_activations_bf16(operands.a, operands.a_scales, operands.expert_offsets + experts,
                                                  operands.rows, shape_.k, a_bf16_, cuda_stream),
               "A dequantization launch", backend);
    if (!shape_.static_weights) {
      // Only the experts with rows: this run reads no other expert's bf16 weights.
      cuda_check(launch_dequantize_listed_weights_bf16(operands.b, operands.b_scales, device_experts, groups,
                                                       shape_.n, shape_.k, b_bf16_, cuda_stream),
                 "B dequantization launch", backend);
    } else if (operands.b != dequantized_b_ || operands.b_scales != dequantized_b_scales_) {
      // MC_PLAN_STATIC_WEIGHTS: every expert, once per weight pointer pair (later runs may route rows to any).
      dequantized_b_ = nullptr;
      dequantized_b_scales_ = nullptr;
      cuda_check(launch_dequantize_weights_bf16(operands.b, operands.b_scales, experts, shape_.n, shape_.k, b_bf16_,
                                                cuda_stream),
                 "B dequantization launch", backend);
      dequantized_b_ = operands.b;
      dequantized_b_scales_ = operands.b_scales;
    }

    cublas_check(api_, api_.set_stream(handle_->get(), cuda_stream), "cublasSetStream");
    if (call == cublas::Call::kLoop) {
      // The same groups, one cublasGemmEx each, from the host copies of the pointers.
      for (int32_t g = 0; g < groups; ++g) {
        cublas_check(api_,
                     api_.gemm_ex(handle_->get(), cublas::kOpT, cublas::kOpN, shape_.n, n_[g], shape_.k, &alpha_[0],
                                  a_pointers[g], cublas::kR16BF, shape_.k, b_pointers[g], cublas::kR16BF, shape_.k,
                                  &beta_[0], c_pointers[g], cublas::kR16BF, shape_.n, cublas::kCompute32F,
                                  cublas::kGemmDefault),
                     "cublasGemmEx");
      }
    } else {
      cublas_check(api_,
                   api_.gemm_grouped_batched_ex(handle_->get(), transa_.data(), transb_.data(), m_.data(), n_.data(),
                                                k_.data(), alpha_.data(), const_cast<const void* const*>(device_a),
                                                cublas::kR16BF, lda_.data(), const_cast<const void* const*>(device_b),
                                                cublas::kR16BF, ldb_.data(), beta_.data(), device_c, cublas::kR16BF,
                                                ldc_.data(), groups, group_size_.data(), cublas::kCompute32F),
                   "cublasGemmGroupedBatchedEx");
    }
    MC_CUDA_CHECK(cudaGetLastError(), backend);
    if (fp16) {
      const int64_t first = offsets[0];
      const int64_t count = (static_cast<int64_t>(offsets[experts]) - first) * shape_.n;
      backend->convert(c_bf16_ + first * shape_.n, MC_DTYPE_BF16,
                       static_cast<uint16_t*>(operands.d) + first * shape_.n, MC_DTYPE_FP16, count, stream);
    }
  }

 private:
  GroupedGemmShape shape_;
  CudaPlanEnvironment environment_;
  TuningSettings settings_;  // read once per plan: MOECUTLASS_CUBLAS_CALL
  const cublas::Api& api_;
  DeviceBuffers memory_;  // declared before the handle: released after it
  std::unique_ptr<CublasHandle> handle_;
  std::unique_ptr<PinnedBuffer> offsets_host_;
  std::unique_ptr<PinnedBuffer> pointers_host_;
  uint16_t* b_bf16_ = nullptr;
  uint16_t* a_bf16_ = nullptr;
  uint16_t* c_bf16_ = nullptr;  // fp16 output: cuBLAS's bf16 result, converted
  void** pointers_device_ = nullptr;
  // MC_PLAN_STATIC_WEIGHTS: the B and scale pointers whose bf16 weights b_bf16_ holds (null: none yet).
  const uint8_t* dequantized_b_ = nullptr;
  const float* dequantized_b_scales_ = nullptr;
  std::vector<cublas::Operation> transa_, transb_;
  std::vector<int> m_, n_, k_, lda_, ldb_, ldc_, group_size_;
  std::vector<float> alpha_, beta_;
};

}  // namespace

std::unique_ptr<GroupedGemmPlanImpl> make_cublas_grouped_gemm_plan(const GroupedGemmShape& shape,
                                                                    const CudaPlanEnvironment& environment) {
  return std::make_unique<CublasGroupedGemmPlan>(shape, environment);
}

}  // namespace moecutlass::cuda
