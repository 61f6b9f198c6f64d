// The CPU reference backend: context memory is host memory, streams and events are synchronous stand-ins (every
// call has finished when it returns), and the compute runs on the context's thread pool.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>

#include "backend.hpp"
#include "core/error.hpp"
#include "cpu/convert.hpp"
#include "cpu/cpu_moe_stages.hpp"
#include "cpu/grouped_gemm.hpp"
#include "cpu/thread_pool.hpp"

namespace moecutlass {

namespace {

constexpr std::size_t kAllocationAlignment = 256;  // matches cudaMalloc's guarantee, see mc_malloc

class CpuStream final : public BackendStream {
 public:
  void* native_handle() override { return nullptr; }
  void synchronize() override {}
};

class CpuEvent final : public BackendEvent {
 public:
  void record(BackendStream&) override {
    const auto now = std::chrono::steady_clock::now().time_since_epoch();
    nanoseconds_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count(), std::memory_order_release);
  }
  bool query() override { return true; }
  void synchronize() override {}
  float elapsed_ms_since(BackendEvent& start) override {
    const auto& begin = static_cast<CpuEvent&>(start);
    const int64_t delta =
        nanoseconds_.load(std::memory_order_acquire) - begin.nanoseconds_.load(std::memory_order_acquire);
    return static_cast<float>(static_cast<double>(delta) * 1e-6);
  }

 private:
  std::atomic<int64_t> nanoseconds_{0};  // steady_clock time of the last record
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads) : pool_(threads) {}

  int32_t kind() const override { return MC_BACKEND_CPU; }
  int32_t device() const override { return 0; }
  int32_t worker_threads() const override { return pool_.size(); }
  bool host_accessible_memory() const override { return true; }

  void* allocate(int64_t bytes) override {
    if (bytes > INT64_MAX - static_cast<int64_t>(kAllocationAlignment)) {
      fail(MC_STATUS_OUT_OF_MEMORY, "cannot allocate ", bytes, " bytes of host memory");
    }
    // Rounded up so the size is a multiple of the alignment, as aligned allocation functions expect.
    const auto rounded = static_cast<std::size_t>((bytes + kAllocationAlignment - 1) / kAllocationAlignment *
                                                  kAllocationAlignment);
    void* pointer = ::operator new(rounded, std::align_val_t(kAllocationAlignment), std::nothrow);
    if (pointer == nullptr) fail(MC_STATUS_OUT_OF_MEMORY, "cannot allocate ", bytes, " bytes of host memory");
    return pointer;
  }

  void release(void* pointer) noexcept override { ::operator delete(pointer, std::align_val_t(kAllocationAlignment)); }

  BackendStream& default_stream() override { return default_stream_; }
  std::unique_ptr<BackendStream> create_stream() override { return std::make_unique<CpuStream>(); }
  std::unique_ptr<BackendEvent> create_event() override { return std::make_unique<CpuEvent>(); }

  void copy(void* dst, const void* src, int64_t bytes, int32_t, BackendStream&) override {
    // memmove: an overlapping copy is the caller's bug, but on the host it costs nothing to make it well defined.
    if (bytes > 0) std::memmove(dst, src, static_cast<std::size_t>(bytes));
  }

  void fill(void* dst, const void* value, int32_t element_size, int64_t count, BackendStream&) override {
    switch (element_size) {
      case 1: std::memset(dst, *static_cast<const unsigned char*>(value), static_cast<std::size_t>(count)); break;
      case 2: fill_pattern<uint16_t>(dst, value, count); break;
      case 4: fill_pattern<uint32_t>(dst, value, count); break;
      default: fail(MC_STATUS_INTERNAL, "unvalidated element size ", element_size);
    }
  }

  void convert(const void* src, int32_t src_dtype, void* dst, int32_t dst_dtype, int64_t count,
               BackendStream&) override {
    cpu_convert(src, src_dtype, dst, dst_dtype, count, pool_);
  }

  void quantize_activations(const ActivationQuantization& job, BackendStream&) override {
    cpu_quantize_activations(job, pool_);
  }

  void quantize_weights(const WeightQuantization& job, BackendStream&) override { cpu_quantize_weights(job, pool_); }

  SelectionDevice selection_device() override {
    SelectionDevice device;  // an SM90a GPU of no measured class
    device.name = "the CPU reference backend";
    return device;
  }

  std::unique_ptr<GroupedGemmPlanImpl> create_grouped_gemm_plan(const GroupedGemmShape& shape) override {
    return make_cpu_grouped_gemm_plan(shape, pool_);
  }

  MoeLayerStages& moe_stages() override { return *moe_stages_; }

  void begin_capture(BackendStream&) override {
    fail(MC_STATUS_UNSUPPORTED, "CUDA graphs need the CUDA backend (this context uses the CPU reference backend, ",
         "whose streams run every call to completion and have nothing to capture)");
  }
  std::unique_ptr<BackendGraph> end_capture(BackendStream&) override {
    fail(MC_STATUS_UNSUPPORTED, "CUDA graphs need the CUDA backend");
  }
  bool is_capturing(BackendStream&) override { return false; }  // begin_capture never succeeds here

  void synchronize() override {}
  int32_t query_device_errors(bool) override { return 0; }  // bad offsets are rejected up front instead

 private:
  template <class T>
  static void fill_pattern(void* dst, const void* value, int64_t count) {
    T pattern;
    std::memcpy(&pattern, value, sizeof pattern);
    T* out = static_cast<T*>(dst);
    for (int64_t i = 0; i < count; ++i) out[i] = pattern;
  }

  ThreadPool pool_;
  CpuStream default_stream_;
  std::unique_ptr<MoeLayerStages> moe_stages_ = make_cpu_moe_stages();
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int32_t threads) {
  if (threads <= 0) {
    threads = static_cast<int32_t>(std::thread::hardware_concurrency());
    if (threads <= 0) threads = 1;
  }
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace moecutlass
