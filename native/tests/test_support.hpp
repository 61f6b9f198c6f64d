// Shared helpers for the native tests: RAII CPU contexts and buffers over the public C ABI, last-error access and
// deterministic random data.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "moecutlass/moecutlass.h"

namespace mctest {

inline std::string last_error() {
  const char* message = nullptr;
  EXPECT_EQ(mc_get_last_error(&message), MC_STATUS_OK);
  return message ? message : "<null>";
}

// Asserts a status and (optionally) that the last error contains each given fragment.
#define MC_EXPECT_STATUS(call, expected, ...)                                                     \
  do {                                                                                            \
    const mc_status mc_status_ = (call);                                                          \
    EXPECT_EQ(mc_status_, (expected)) << #call << "\n  last error: " << ::mctest::last_error();   \
    for (const char* fragment_ : std::vector<const char*>{__VA_ARGS__}) {                         \
      EXPECT_NE(::mctest::last_error().find(fragment_), std::string::npos)                        \
          << "last error of " << #call << " lacks \"" << fragment_ << "\": " << ::mctest::last_error(); \
    }                                                                                             \
  } while (0)

#define MC_ASSERT_OK(call) ASSERT_EQ((call), MC_STATUS_OK) << #call << ": " << ::mctest::last_error()

inline mc_context_desc cpu_desc(int32_t threads = 0) {
  mc_context_desc desc{};
  desc.struct_size = sizeof desc;
  desc.backend = MC_BACKEND_CPU;
  desc.device = 0;
  desc.cpu_threads = threads;
  return desc;
}

class Context {
 public:
  explicit Context(int32_t threads = 0) {
    const mc_context_desc desc = cpu_desc(threads);
    EXPECT_EQ(mc_context_create(&desc, &handle_), MC_STATUS_OK) << last_error();
  }
  ~Context() { mc_context_destroy(handle_); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  mc_context get() const { return handle_; }
  operator mc_context() const { return handle_; }

  // Context memory (freed with the context).
  void* alloc(int64_t bytes) {
    void* pointer = nullptr;
    EXPECT_EQ(mc_malloc(handle_, bytes, &pointer), MC_STATUS_OK) << last_error();
    return pointer;
  }
  template <class T>
  T* alloc_array(int64_t count) {
    return static_cast<T*>(alloc(count * static_cast<int64_t>(sizeof(T))));
  }

 private:
  mc_context handle_ = nullptr;
};

inline mc_grouped_gemm_desc gemm_desc(int32_t experts, int32_t n, int32_t k, int32_t max_rows,
                                      int32_t output_dtype = MC_DTYPE_BF16) {
  mc_grouped_gemm_desc desc{};
  desc.struct_size = sizeof desc;
  desc.experts = experts;
  desc.n = n;
  desc.k = k;
  desc.output_dtype = output_dtype;
  desc.strategy = MC_STRATEGY_AUTO;
  desc.max_rows = max_rows;
  return desc;
}

inline std::mt19937_64& rng() {
  static std::mt19937_64 engine(0x5eed);
  return engine;
}

// A random finite e4m3 code (never NaN: 0x7F / 0xFF).
inline uint8_t random_e4m3(std::mt19937_64& engine) {
  for (;;) {
    const auto code = static_cast<uint8_t>(engine());
    if ((code & 0x7F) != 0x7F) return code;
  }
}

inline float random_float(std::mt19937_64& engine, float lo, float hi) {
  return std::uniform_real_distribution<float>(lo, hi)(engine);
}

// Memory of any context (CPU or CUDA) filled from and read back to the host, freed when the object goes.
class ContextBuffers {
 public:
  explicit ContextBuffers(mc_context context) : context_(context) {}
  ~ContextBuffers() {
    for (void* pointer : owned_) mc_free(context_, pointer);
  }
  ContextBuffers(const ContextBuffers&) = delete;
  ContextBuffers& operator=(const ContextBuffers&) = delete;
  template <class T>
  T* upload(const std::vector<T>& host) {
    const int64_t bytes = std::max<int64_t>(16, static_cast<int64_t>(host.size() * sizeof(T)));
    void* pointer = nullptr;
    EXPECT_EQ(mc_malloc(context_, bytes, &pointer), MC_STATUS_OK) << last_error();
    owned_.push_back(pointer);
    if (!host.empty()) {
      EXPECT_EQ(mc_memcpy_async(context_, pointer, host.data(), static_cast<int64_t>(host.size() * sizeof(T)),
                                MC_COPY_HOST_TO_DEVICE, nullptr),
                MC_STATUS_OK)
          << last_error();
    }
    EXPECT_EQ(mc_context_synchronize(context_), MC_STATUS_OK) << last_error();
    return static_cast<T*>(pointer);
  }
  // Waits for the context's work first (the values may come from any of its streams).
  template <class T>
  std::vector<T> download(const T* pointer, int64_t count) {
    std::vector<T> host(static_cast<std::size_t>(count));
    EXPECT_EQ(mc_context_synchronize(context_), MC_STATUS_OK) << last_error();
    if (count > 0) {
      EXPECT_EQ(mc_memcpy_async(context_, host.data(), pointer, count * static_cast<int64_t>(sizeof(T)),
                                MC_COPY_DEVICE_TO_HOST, nullptr),
                MC_STATUS_OK)
          << last_error();
    }
    EXPECT_EQ(mc_context_synchronize(context_), MC_STATUS_OK) << last_error();
    return host;
  }

 private:
  mc_context context_;
  std::vector<void*> owned_;
};

}  // namespace mctest
