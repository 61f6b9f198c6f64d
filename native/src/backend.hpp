// The interface between the ABI layer and a compute backend (CPU reference, CUDA).
//
// The ABI layer (abi/*.cpp) validates every argument once -- handles, contexts, sizes, alignment, dtypes, buffer
// capacity -- and only then calls into a backend, so the backends implement plain operations on arguments that
// are known to be well formed. A backend reports runtime failures (out of memory, CUDA errors) by throwing
// moecutlass::Error.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/gemm_selection.hpp"
#include "core/moe_layer_stages.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

// An ordered queue of work. On the CPU backend every operation has completed when its call returns.
class BackendStream {
 public:
  virtual ~BackendStream() = default;
  virtual void* native_handle() = 0;  // cudaStream_t, or nullptr on the CPU
  virtual void synchronize() = 0;
};

class BackendEvent {
 public:
  virtual ~BackendEvent() = default;
  virtual void record(BackendStream& stream) = 0;
  virtual bool query() = 0;  // true when complete
  virtual void synchronize() = 0;
  // Milliseconds from `start` to this event; both recorded (the ABI layer checks that).
  virtual float elapsed_ms_since(BackendEvent& start) = 0;
};

// An executable graph captured from a stream (Backend::end_capture); only the CUDA backend makes them.
class BackendGraph {
 public:
  virtual ~BackendGraph() = default;  // a replay already enqueued still completes
  virtual void launch(BackendStream& stream) = 0;
};

// Validated grouped-GEMM problem (from mc_grouped_gemm_desc) and the selection step's answer for it.
struct GroupedGemmShape {
  int32_t experts = 0;
  int32_t n = 0;
  int32_t k = 0;
  int32_t output_dtype = 0;
  int32_t strategy = 0;
  int32_t max_rows = 0;
  // MC_PLAN_STATIC_WEIGHTS: B and its scales keep their values while the plan lives (the cuBLAS strategy then
  // dequantizes them once per pointer pair instead of every run).
  bool static_weights = false;
  // The configurations a run may launch and the ranges each call chooses from (core/gemm_selection.hpp), from the
  // backend's GPU class or the caller's list; select_launches(selection, experts, rows) is what a run executes.
  PlanSelection selection;
};

// Validated grouped-GEMM operands (from mc_grouped_gemm_args). Offsets are only checked here when the backend's
// memory is host-accessible; a device backend must clamp them on the device.
struct GroupedGemmOperands {
  int32_t rows = 0;
  // The row count the configuration selection assumes, when the caller knows better than `rows` (which bounds A and
  // D): the MoE layer passes the capacity tokens * top_k as rows, but an expert-parallel slice expects only its share
  // of it. -1: select by rows.
  int32_t selection_rows = -1;
  int32_t rows_for_selection() const { return selection_rows >= 0 ? selection_rows : rows; }
  const uint8_t* a = nullptr;
  const float* a_scales = nullptr;
  const uint8_t* b = nullptr;
  const float* b_scales = nullptr;
  const int32_t* expert_offsets = nullptr;
  void* d = nullptr;
};

struct GroupedGemmPlanDetails {
  int64_t workspace_bytes = 0;
};

class GroupedGemmPlanImpl {
 public:
  virtual ~GroupedGemmPlanImpl() = default;
  virtual GroupedGemmPlanDetails details() const = 0;
  // Runs what select_launches(shape.selection, E, operands.rows) names (the CPU reference computes the same
  // result whatever was chosen).
  virtual void run(const GroupedGemmOperands& operands, BackendStream& stream) = 0;
};

struct ActivationQuantization {
  const void* input = nullptr;
  int32_t input_dtype = 0;
  int32_t rows = 0;
  int32_t cols = 0;
  uint8_t* output = nullptr;
  float* scales = nullptr;
};

struct WeightQuantization {
  const void* input = nullptr;
  int32_t input_dtype = 0;
  int32_t experts = 0;
  int32_t n = 0;
  int32_t k = 0;
  uint8_t* output = nullptr;
  float* scales = nullptr;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual int32_t kind() const = 0;            // MC_BACKEND_*
  virtual int32_t device() const = 0;          // CUDA device index; 0 on the CPU
  virtual int32_t worker_threads() const = 0;  // CPU worker threads; 0 on CUDA
  // true when context memory is ordinary host memory (the CPU backend): the ABI layer may then read expert
  // offsets on the host and reject bad ones exactly before any work starts.
  virtual bool host_accessible_memory() const = 0;

  // Context memory, aligned to 256 bytes; throws Error(MC_STATUS_OUT_OF_MEMORY).
  virtual void* allocate(int64_t bytes) = 0;
  // Never throws: it runs during context destruction, also after a device fault.
  virtual void release(void* pointer) noexcept = 0;

  virtual BackendStream& default_stream() = 0;
  virtual std::unique_ptr<BackendStream> create_stream() = 0;
  virtual std::unique_ptr<BackendEvent> create_event() = 0;

  virtual void copy(void* dst, const void* src, int64_t bytes, int32_t kind, BackendStream& stream) = 0;
  virtual void fill(void* dst, const void* value, int32_t element_size, int64_t count, BackendStream& stream) = 0;
  virtual void convert(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype, int64_t count,
                       BackendStream& stream) = 0;
  virtual void quantize_activations(const ActivationQuantization& job, BackendStream& stream) = 0;
  virtual void quantize_weights(const WeightQuantization& job, BackendStream& stream) = 0;
  // The device the selection step plans for: its class, whose tables the plans use, and whether it runs the SM90a
  // kernels (the CPU: an SM90a GPU of GpuClass::Other, so it reports what a GPU without a measured table would launch).
  virtual SelectionDevice selection_device() = 0;
  virtual std::unique_ptr<GroupedGemmPlanImpl> create_grouped_gemm_plan(const GroupedGemmShape& shape) = 0;
  // The MoE layer's non-GEMM stages (core/moe_layer_stages.hpp), owned by the backend, stateless between calls.
  virtual MoeLayerStages& moe_stages() = 0;

  // Graph capture (thread-local mode) on a stream the context created. begin_capture throws
  // Error(MC_STATUS_UNSUPPORTED) where graphs do not exist (the CPU). end_capture instantiates the captured work;
  // when the capture was invalidated it ends and discards the capture (the stream is usable again) and throws.
  // The ABI layer checks is_capturing before either (not capturing / already capturing are argument errors).
  virtual void begin_capture(BackendStream& stream) = 0;
  virtual std::unique_ptr<BackendGraph> end_capture(BackendStream& stream) = 0;
  // true while the stream is between begin and end of a capture (also an invalidated one). Cheap, never waits.
  virtual bool is_capturing(BackendStream& stream) = 0;

  // Runs `body` with the backend's device current (the CUDA backend restores the caller's device afterwards): NCCL's
  // communicator creation binds to the current device. The CPU backend just runs it.
  virtual void run_on_device(const std::function<void()>& body) { body(); }

  // Waits for all work of the context (every stream it created, and its default stream).
  virtual void synchronize() = 0;
  // Waits, then reads (and with reset clears) the device-side error flag: MC_DEVICE_ERROR_* bits.
  virtual int32_t query_device_errors(bool reset) = 0;

  // A sticky device error (illegal address, launch failure...) makes the whole context unusable.
  bool faulted() const noexcept { return faulted_.load(std::memory_order_acquire); }
  void mark_faulted() noexcept { faulted_.store(true, std::memory_order_release); }

 private:
  std::atomic<bool> faulted_{false};
};

#if defined(MOECUTLASS_WITH_CUDA) && MOECUTLASS_WITH_CUDA
inline constexpr bool kCudaCompiledIn = true;
#else
inline constexpr bool kCudaCompiledIn = false;
#endif

#if defined(MOECUTLASS_WITH_NCCL) && MOECUTLASS_WITH_NCCL
inline constexpr bool kNcclCompiledIn = true;
#else
inline constexpr bool kNcclCompiledIn = false;
#endif

inline constexpr const char* kBuiltWithoutNccl =
    "MoeCutlass was built without NCCL (MOECUTLASS_NCCL=OFF, or AUTO without CUDA or without nccl.h), so it has no "
    "communicators and no parallel MoE layer";

inline constexpr const char* kBuiltWithoutCuda =
    "MoeCutlass was built without CUDA (MOECUTLASS_CUDA=OFF or no CUDA compiler); use MC_BACKEND_CPU";

// Factories. make_cuda_backend and the cuda_* queries are implemented by the CUDA backend, or by
// cuda/cuda_unavailable.cpp in builds without CUDA (which report MC_STATUS_UNSUPPORTED / zero devices).
std::unique_ptr<Backend> make_cpu_backend(int32_t threads);
std::unique_ptr<Backend> make_cuda_backend(int32_t device);
int32_t cuda_device_count();
void cuda_device_info(int32_t device, mc_device_info& info);  // device already range-checked

}  // namespace moecutlass
