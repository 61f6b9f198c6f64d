// CUDA graphs: capture a stream's work once (cudaStreamBeginCapture / cudaStreamEndCapture, thread-local mode),
// instantiate it (cudaGraphInstantiate) and replay it with one cudaGraphLaunch.
#include "cuda/cuda_graph.hpp"

#include <mutex>
#include <string>

#include "core/error.hpp"
#include "cuda/cuda_check.hpp"

namespace moecutlass {

namespace {

class CudaGraph final : public BackendGraph {
 public:
  CudaGraph(int device, Backend* backend, cudaGraph_t graph, cudaGraphExec_t exec)
      : device_(device), backend_(backend), graph_(graph), exec_(exec) {}

  ~CudaGraph() override {
    try {
      DeviceScope scope(device_, backend_);
      // An executable graph that is still running is freed when its work completes, not interrupted.
      cuda_check_noexcept(cudaGraphExecDestroy(exec_), backend_);
      cuda_check_noexcept(cudaGraphDestroy(graph_), backend_);
    } catch (...) {
      // cudaGetDevice/cudaSetDevice failed (the runtime is shutting down): nothing more can be released.
    }
  }

  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  void launch(BackendStream& stream) override {
    cudaStream_t queue = static_cast<cudaStream_t>(stream.native_handle());
    DeviceScope scope(device_, backend_);
    // An executable graph must not be used by two threads at once; launches of it are ordered by CUDA anyway.
    std::lock_guard<std::mutex> lock(mutex_);
    MC_CUDA_CHECK(cudaGraphLaunch(exec_, queue), backend_);
  }

 private:
  int device_;
  Backend* backend_;
  cudaGraph_t graph_;      // the captured graph, kept with its executable instance
  cudaGraphExec_t exec_;
  std::mutex mutex_;
};

cudaStreamCaptureStatus capture_status(cudaStream_t stream, Backend* backend) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  MC_CUDA_CHECK(cudaStreamIsCapturing(stream, &status), backend);
  return status;
}

// What became of the capture after cudaStreamEndCapture failed with `error`; appended to the CUDA error message.
std::string end_capture_note(cudaError_t error, cudaStream_t stream) {
  if (error == cudaErrorStreamCaptureWrongThread) {
    return "; the capture was begun on another thread (thread-local capture mode): call mc_stream_end_capture on the "
           "thread that called mc_stream_begin_capture. The stream is still capturing";
  }
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const bool still_capturing =
      cudaStreamIsCapturing(stream, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone;
  (void)cudaGetLastError();
  std::string note;
  if (error == cudaErrorStreamCaptureInvalidated) {
    note = "; the capture was invalidated by an operation that is not permitted while a stream is capturing (for "
           "example a synchronization of the capturing stream or of its context, or an allocation on the capturing "
           "thread)";
  }
  return note + (still_capturing ? "; the stream is still capturing"
                                 : "; the broken capture was ended and discarded, the stream is usable again "
                                   "(capture again to get a graph)");
}

}  // namespace

bool cuda_stream_is_capturing(int device, cudaStream_t stream, Backend* backend) {
  DeviceScope scope(device, backend);
  return capture_status(stream, backend) != cudaStreamCaptureStatusNone;
}

void cuda_begin_capture(int device, cudaStream_t stream, Backend* backend) {
  DeviceScope scope(device, backend);
  MC_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), backend);
}

std::unique_ptr<BackendGraph> cuda_end_capture(int device, cudaStream_t stream, Backend* backend) {
  DeviceScope scope(device, backend);
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (ended != cudaSuccess) {
    // An invalidated capture ends here with an error and (normally) no graph; discard anything that came back.
    if (graph != nullptr) cuda_check_noexcept(cudaGraphDestroy(graph), backend);
    const std::string note = end_capture_note(ended, stream);
    try {
      cuda_check(ended, "cudaStreamEndCapture(stream, &graph)", backend);
    } catch (const Error& error) {
      fail(error.status(), error.what(), note);
    }
  }
  if (graph == nullptr) {
    fail(MC_STATUS_INTERNAL, "cudaStreamEndCapture(stream, &graph) succeeded without returning a graph");
  }

  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  if (instantiated != cudaSuccess) {
    cuda_check_noexcept(cudaGraphDestroy(graph), backend);
    try {
      cuda_check(instantiated, "cudaGraphInstantiate(&exec, graph, 0)", backend);
    } catch (const Error& error) {
      fail(error.status(), error.what(), "; the capture was ended and its graph discarded, the stream is usable again");
    }
  }
  try {
    return std::make_unique<CudaGraph>(device, backend, graph, exec);
  } catch (...) {
    cuda_check_noexcept(cudaGraphExecDestroy(exec), backend);
    cuda_check_noexcept(cudaGraphDestroy(graph), backend);
    throw;
  }
}

void cuda_require_not_capturing(cudaStream_t stream, const char* operation, Backend* backend) {
  if (capture_status(stream, backend) == cudaStreamCaptureStatusNone) return;
  fail(MC_STATUS_INVALID_ARGUMENT, operation, ": a stream is capturing a CUDA graph (cudaStream_t ",
       pointer_text(stream), ", mc_stream_begin_capture), and waiting for it would invalidate the capture; end the ",
       "capture first (mc_stream_end_capture)");
}

void cuda_discard_capture(cudaStream_t stream, Backend* backend) noexcept {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) != cudaSuccess) {
    (void)cudaGetLastError();
    return;
  }
  if (status == cudaStreamCaptureStatusNone) return;
  cudaGraph_t graph = nullptr;
  cuda_check_noexcept(cudaStreamEndCapture(stream, &graph), backend);
  if (graph != nullptr) cuda_check_noexcept(cudaGraphDestroy(graph), backend);
}

}  // namespace moecutlass
