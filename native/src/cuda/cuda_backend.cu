// The CUDA backend: a device, a context-owned non-blocking default stream, device memory, streams, events, fills,
// graphs, the device-side error flag, and dispatch to the kernels (conversion and quantization in cuda_*.cu, the
// grouped GEMM in grouped_gemm/). The ABI layer has validated every call exactly as on the CPU before it gets here.
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include <cuda_runtime_api.h>

#include "backend.hpp"
#include "core/error.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/cuda_convert.hpp"
#include "cuda/cuda_fill.hpp"
#include "cuda/cuda_graph.hpp"
#include "cuda/cuda_quantize.hpp"
#include "cuda/cublas/cublas_grouped_gemm_plan.hpp"
#include "cuda/grouped_gemm/cuda_grouped_gemm_plan.hpp"
#include "cuda/moe_layer/cuda_moe_stages.hpp"
#include "cuda/persistent/cuda_persistent_plan.hpp"

namespace moecutlass {

namespace {

class CudaBackend;

class CudaStream final : public BackendStream {
 public:
  CudaStream(CudaBackend& backend, cudaStream_t stream) : backend_(backend), stream_(stream) {}
  ~CudaStream() override;
  void* native_handle() override { return stream_; }
  void synchronize() override;
  cudaStream_t get() const { return stream_; }

 private:
  CudaBackend& backend_;
  cudaStream_t stream_;
};

class CudaEvent final : public BackendEvent {
 public:
  CudaEvent(CudaBackend& backend, cudaEvent_t event) : backend_(backend), event_(event) {}
  ~CudaEvent() override;
  void record(BackendStream& stream) override;
  bool query() override;
  void synchronize() override;
  float elapsed_ms_since(BackendEvent& start) override;

 private:
  CudaBackend& backend_;
  cudaEvent_t event_;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int32_t device) : device_(device) {
    DeviceScope scope(device_, this);
    cudaStream_t stream = nullptr;
    MC_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), this);
    default_stream_ = std::make_unique<CudaStream>(*this, stream);  // owns (and on failure destroys) the stream
    track_stream(stream);
    try {
      void* flag = nullptr;
      MC_CUDA_CHECK(cudaMalloc(&flag, sizeof(int32_t)), this);
      error_flag_ = static_cast<int32_t*>(flag);
      MC_CUDA_CHECK(cudaMemsetAsync(error_flag_, 0, sizeof(int32_t), stream), this);
      MC_CUDA_CHECK(cudaStreamSynchronize(stream), this);
      moe_stages_ = make_cuda_moe_stages(device_, error_flag_, this);
    } catch (...) {
      if (error_flag_ != nullptr) cuda_check_noexcept(cudaFree(error_flag_), this);
      throw;
    }
  }

  ~CudaBackend() override {
    // The Context has already freed its allocations and destroyed its streams, events and plans. Wait for the
    // default stream (work on it may still use the error flag), then release what the backend owns.
    try {
      DeviceScope scope(device_, this);
      cuda_check_noexcept(cudaStreamSynchronize(default_stream_->get()), this);
      if (error_flag_ != nullptr) cuda_check_noexcept(cudaFree(error_flag_), this);
      default_stream_.reset();
    } catch (...) {
      // cudaGetDevice/cudaSetDevice failed (e.g. the runtime is shutting down): nothing more can be released.
    }
  }

  int32_t kind() const override { return MC_BACKEND_CUDA; }
  int32_t device() const override { return device_; }
  int32_t worker_threads() const override { return 0; }
  bool host_accessible_memory() const override { return false; }

  void* allocate(int64_t bytes) override {
    DeviceScope scope(device_, this);
    void* pointer = nullptr;
    const cudaError_t error = cudaMalloc(&pointer, static_cast<size_t>(bytes));
    if (error != cudaSuccess) {
      cuda_check(error, ("cudaMalloc(&pointer, " + std::to_string(bytes) + ")").c_str(), this);
    }
    return pointer;  // cudaMalloc guarantees at least 256-byte alignment
  }

  void release(void* pointer) noexcept override {
    try {
      DeviceScope scope(device_, this);
      cuda_check_noexcept(cudaFree(pointer), this);
    } catch (...) {
    }
  }

  BackendStream& default_stream() override { return *default_stream_; }

  std::unique_ptr<BackendStream> create_stream() override {
    DeviceScope scope(device_, this);
    cudaStream_t stream = nullptr;
    MC_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), this);
    auto created = std::make_unique<CudaStream>(*this, stream);
    track_stream(stream);
    return created;
  }

  std::unique_ptr<BackendEvent> create_event() override {
    DeviceScope scope(device_, this);
    cudaEvent_t event = nullptr;
    MC_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDefault), this);  // timing enabled
    return std::make_unique<CudaEvent>(*this, event);
  }

  void copy(void* dst, const void* src, int64_t bytes, int32_t kind, BackendStream& stream) override {
    cudaMemcpyKind cuda_kind = cudaMemcpyDeviceToDevice;
    if (kind == MC_COPY_HOST_TO_DEVICE) cuda_kind = cudaMemcpyHostToDevice;
    if (kind == MC_COPY_DEVICE_TO_HOST) cuda_kind = cudaMemcpyDeviceToHost;
    DeviceScope scope(device_, this);
    MC_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cuda_kind, stream_of(stream)), this);
  }

  void fill(void* dst, const void* value, int32_t element_size, int64_t count, BackendStream& stream) override {
    uint32_t pattern = 0;
    std::memcpy(&pattern, value, static_cast<size_t>(element_size));  // little-endian: the element's low bytes
    DeviceScope scope(device_, this);
    MC_CUDA_CHECK(launch_fill(dst, pattern, element_size, count, stream_of(stream)), this);
  }

  void convert(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype, int64_t count,
               BackendStream& stream) override {
    if (count <= 0) return;
    DeviceScope scope(device_, this);
    MC_CUDA_CHECK(launch_convert(src, src_dtype, dst, dst_dtype, count, stream_of(stream)), this);
  }
  void quantize_activations(const ActivationQuantization& job, BackendStream& stream) override {
    if (job.rows <= 0) return;
    DeviceScope scope(device_, this);
    MC_CUDA_CHECK(launch_quantize_activations(job, stream_of(stream)), this);
  }
  void quantize_weights(const WeightQuantization& job, BackendStream& stream) override {
    if (job.experts <= 0 || job.n <= 0 || job.k <= 0) return;
    DeviceScope scope(device_, this);
    MC_CUDA_CHECK(launch_quantize_weights(job, stream_of(stream)), this);
  }

  // From the device description (cuda_device_info), the same figures mc_get_device_info reports; read once.
  SelectionDevice selection_device() override {
    std::call_once(device_once_, [this] {
      mc_device_info info{};
      cuda_device_info(device_, info);
      selection_device_.gpu_class = gpu_class_of(info.multiprocessors, info.peak_memory_bandwidth_gbps).id;
      selection_device_.sm90a = info.has_sm90a != 0;
      selection_device_.compute_major = info.compute_major;
      selection_device_.compute_minor = info.compute_minor;
      selection_device_.name = "device " + std::to_string(device_) + " (" + info.name + ")";
      multiprocessors_ = info.multiprocessors;
    });
    return selection_device_;
  }

  std::unique_ptr<GroupedGemmPlanImpl> create_grouped_gemm_plan(const GroupedGemmShape& shape) override {
    const SelectionDevice device = selection_device();
    cuda::CudaPlanEnvironment environment;
    environment.multiprocessors = multiprocessors_;
    environment.device = device_;
    environment.error_flag = error_flag_;
    environment.backend = this;
    // cuBLAS's grouped GEMM on dequantized operands: asked for, or what auto resolves to without SM90a. It throws
    // MC_STATUS_UNSUPPORTED before allocating anything when no cuBLAS 12.5+ can be loaded.
    if (shape.selection.cublas) return cuda::make_cublas_grouped_gemm_plan(shape, environment);
    // The selection step refuses every other strategy on a device without SM90a (select_plan, with the compute
    // capability in the message); this guards the invariant that no registry kernel is launched there.
    if (!device.sm90a) {
      fail(MC_STATUS_INTERNAL, "a plan of SM90a kernels reached the CUDA backend for ", device.name,
           ", which has compute capability ", device.compute_major, ".", device.compute_minor);
    }
    if (shape.strategy == MC_STRATEGY_PERSISTENT) return cuda::make_cuda_persistent_plan(shape, environment);
    auto pointer_array = cuda::make_cuda_grouped_gemm_plan(shape, environment);
    // Auto adds the persistent path where the class's table has ranges for it and the weights fit its one tensor map
    // (beyond that the pointer-array plan runs the configuration the persistent choice names, for every expert).
    if (shape.strategy == MC_STRATEGY_AUTO && shape.selection.table.auto_persistent_count > 0 &&
        static_cast<int64_t>(shape.experts) * shape.n <= INT32_MAX) {
      return cuda::make_cuda_auto_plan(shape, environment, std::move(pointer_array));
    }
    return pointer_array;
  }

  MoeLayerStages& moe_stages() override { return *moe_stages_; }

  // CUDA graphs (cuda_graph.cu).
  void begin_capture(BackendStream& stream) override { cuda_begin_capture(device_, stream_of(stream), this); }
  std::unique_ptr<BackendGraph> end_capture(BackendStream& stream) override {
    return cuda_end_capture(device_, stream_of(stream), this);
  }
  bool is_capturing(BackendStream& stream) override {
    return cuda_stream_is_capturing(device_, stream_of(stream), this);
  }

  void run_on_device(const std::function<void()>& body) override {
    DeviceScope scope(device_, this);
    body();
  }

  void synchronize() override {
    DeviceScope scope(device_, this);
    std::vector<cudaStream_t> streams;
    {
      std::lock_guard<std::mutex> lock(streams_mutex_);
      streams.assign(streams_.begin(), streams_.end());
    }
    // Waiting for a capturing stream would invalidate its capture: refuse before waiting for anything.
    for (cudaStream_t stream : streams) cuda_require_not_capturing(stream, "cannot wait for the context's work", this);
    for (cudaStream_t stream : streams) MC_CUDA_CHECK(cudaStreamSynchronize(stream), this);
  }

  int32_t query_device_errors(bool reset) override {
    synchronize();
    DeviceScope scope(device_, this);
    cudaStream_t stream = default_stream_->get();
    int32_t flags = 0;
    MC_CUDA_CHECK(cudaMemcpyAsync(&flags, error_flag_, sizeof flags, cudaMemcpyDeviceToHost, stream), this);
    if (reset) MC_CUDA_CHECK(cudaMemsetAsync(error_flag_, 0, sizeof(int32_t), stream), this);
    MC_CUDA_CHECK(cudaStreamSynchronize(stream), this);
    return flags;
  }

  void track_stream(cudaStream_t stream) {
    std::lock_guard<std::mutex> lock(streams_mutex_);
    streams_.insert(stream);
  }

  void untrack_stream(cudaStream_t stream) noexcept {
    std::lock_guard<std::mutex> lock(streams_mutex_);
    streams_.erase(stream);
  }

 private:
  static cudaStream_t stream_of(BackendStream& stream) { return static_cast<CudaStream&>(stream).get(); }

  int32_t device_;
  // Declared before default_stream_: a CudaStream unregisters itself on destruction, also when the constructor
  // fails half way and the members are torn down.
  std::mutex streams_mutex_;
  std::unordered_set<cudaStream_t> streams_;  // every live stream of the context, for synchronize()
  std::unique_ptr<CudaStream> default_stream_;
  // The context's MC_DEVICE_ERROR_* word in device memory: kernels that clamp bad expert offsets will raise bits
  // here (the grouped-GEMM kernels, which arrive with the CUDA grouped-GEMM issue).
  int32_t* error_flag_ = nullptr;
  // The MoE layer's device stages (cuda/moe_layer), which raise MC_DEVICE_ERROR_TOPK_ID_* in error_flag_.
  std::unique_ptr<MoeLayerStages> moe_stages_;
  std::once_flag device_once_;
  SelectionDevice selection_device_;
  int32_t multiprocessors_ = 0;
};

CudaStream::~CudaStream() {
  backend_.untrack_stream(stream_);
  try {
    DeviceScope scope(backend_.device(), &backend_);
    cuda_discard_capture(stream_, &backend_);  // a capture still open on the stream ends with it
    // Returns at once; the stream's pending work still completes and its resources are released afterwards.
    cuda_check_noexcept(cudaStreamDestroy(stream_), &backend_);
  } catch (...) {
  }
}

void CudaStream::synchronize() {
  DeviceScope scope(backend_.device(), &backend_);
  MC_CUDA_CHECK(cudaStreamSynchronize(stream_), &backend_);
}

CudaEvent::~CudaEvent() {
  try {
    DeviceScope scope(backend_.device(), &backend_);
    cuda_check_noexcept(cudaEventDestroy(event_), &backend_);
  } catch (...) {
  }
}

void CudaEvent::record(BackendStream& stream) {
  DeviceScope scope(backend_.device(), &backend_);
  MC_CUDA_CHECK(cudaEventRecord(event_, static_cast<CudaStream&>(stream).get()), &backend_);
}

bool CudaEvent::query() {
  DeviceScope scope(backend_.device(), &backend_);
  const cudaError_t error = cudaEventQuery(event_);
  if (error == cudaErrorNotReady) {
    (void)cudaGetLastError();
    return false;
  }
  cuda_check(error, "cudaEventQuery(event)", &backend_);
  return true;
}

void CudaEvent::synchronize() {
  DeviceScope scope(backend_.device(), &backend_);
  MC_CUDA_CHECK(cudaEventSynchronize(event_), &backend_);
}

float CudaEvent::elapsed_ms_since(BackendEvent& start) {
  DeviceScope scope(backend_.device(), &backend_);
  float milliseconds = 0.0f;
  // cudaErrorNotReady (an event still pending) maps to MC_STATUS_NOT_READY.
  cuda_check(cudaEventElapsedTime(&milliseconds, static_cast<CudaEvent&>(start).event_, event_),
             "cudaEventElapsedTime(&milliseconds, start, end)", &backend_);
  return milliseconds;
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int32_t device) {
  const int32_t count = cuda_device_count();
  if (device >= count) {
    fail(MC_STATUS_NO_DEVICE, "desc->device = ", device, " does not exist (mc_get_device_count reports ", count,
         ")");
  }
  return std::make_unique<CudaBackend>(device);
}

}  // namespace moecutlass
