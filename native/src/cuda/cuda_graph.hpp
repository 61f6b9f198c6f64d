// CUDA graphs for the CUDA backend: stream capture in thread-local mode, instantiation, replay, and the checks
// that keep library calls from breaking a capture. Plain CUDA runtime API; CudaBackend's begin_capture,
// end_capture and is_capturing forward here, so the graph code lives in one translation unit.
#pragma once

#include <memory>

#include <cuda_runtime_api.h>

#include "backend.hpp"

namespace moecutlass {

// true while `stream` is between cudaStreamBeginCapture and cudaStreamEndCapture (an invalidated capture too).
// Never waits: cudaStreamIsCapturing is legal during a capture.
bool cuda_stream_is_capturing(int device, cudaStream_t stream, Backend* backend);

// cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal). The ABI layer has checked that the stream is
// not capturing yet.
void cuda_begin_capture(int device, cudaStream_t stream, Backend* backend);

// Ends the capture and instantiates the graph. An invalidated capture (or any other failure) is ended and its
// graph discarded, so the stream is usable again, and the failure is thrown with a message that says what
// happened to the capture (MC_STATUS_CUDA_ERROR for cudaErrorStreamCaptureInvalidated).
std::unique_ptr<BackendGraph> cuda_end_capture(int device, cudaStream_t stream, Backend* backend);

// Throws MC_STATUS_INVALID_ARGUMENT when `stream` is capturing: for calls that would wait for it (waiting for a
// capturing stream invalidates the capture). The caller has made the device current.
void cuda_require_not_capturing(cudaStream_t stream, const char* operation, Backend* backend);

// For stream destruction: ends and discards a capture still open on `stream` (e.g. the stream is destroyed
// between begin and end), so the capture does not outlive the stream and poison the capturing thread's
// thread-local capture state. Never throws; the caller has made the device current.
void cuda_discard_capture(cudaStream_t stream, Backend* backend) noexcept;

}  // namespace moecutlass
