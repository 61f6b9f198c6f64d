// The device FP8 -> bf16 dequantization (cuda/cuda_dequantize.hpp) against the CPU reference (cpu/dequantize.hpp),
// bit for bit, on every e4m3 code (NaN included) with random scales over a wide range; activation rows past the
// device row count and the guard bytes after each output stay untouched. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <cuda_runtime_api.h>

#include "core/shapes.hpp"
#include "cpu/dequantize.hpp"
#include "cuda/cuda_dequantize.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {
namespace {

constexpr uint16_t kCanary = 0xBEEF;

class CudaDequantize : public ::testing::Test {
 protected:
  void SetUp() override {
    int32_t count = 0;
    ASSERT_EQ(mc_get_device_count(&count), MC_STATUS_OK);
    if (count == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
  }
  void TearDown() override {
    for (void* pointer : allocations_) cudaFree(pointer);
  }
  template <class T>
  T* upload(const std::vector<T>& host) {
    void* device = nullptr;
    EXPECT_EQ(cudaMalloc(&device, std::max<size_t>(host.size() * sizeof(T), 16)), cudaSuccess);
    allocations_.push_back(device);
    EXPECT_EQ(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    return static_cast<T*>(device);
  }
  template <class T>
  std::vector<T> download(const T* device, size_t count) {
    std::vector<T> host(count);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return host;
  }

  std::vector<void*> allocations_;
};

std::vector<uint8_t> every_code(std::mt19937_64& engine, size_t count) {
  std::vector<uint8_t> codes(count);
  for (size_t i = 0; i < count; ++i) codes[i] = static_cast<uint8_t>(i & 0xFF);  // every code, NaN included
  std::shuffle(codes.begin(), codes.end(), engine);
  return codes;
}

// Positive scales from 2^-60 to 2^60 with random significands: products span subnormal-free fp32 and both
// bf16 overflow-free and rounding-heavy ranges.
std::vector<float> random_scales(std::mt19937_64& engine, size_t count) {
  std::uniform_real_distribution<float> significand(1.0f, 2.0f);
  std::uniform_int_distribution<int> exponent(-60, 60);
  std::vector<float> scales(count);
  for (auto& s : scales) s = std::ldexp(significand(engine), exponent(engine));
  return scales;
}

TEST_F(CudaDequantize, ActivationsMatchTheReferenceBitForBit) {
  std::mt19937_64 engine(0xDE0A);
  for (const int32_t k : {7168, 2048, 144, 16}) {
    for (const int32_t rows : {0, 1, 37, 300}) {
      SCOPED_TRACE("k " + std::to_string(k) + " rows " + std::to_string(rows));
      const int32_t capacity = rows + 5;
      const std::vector<uint8_t> codes = every_code(engine, static_cast<size_t>(capacity) * k);
      const std::vector<float> scales = random_scales(engine, static_cast<size_t>(capacity * scale_blocks(k)));
      std::vector<uint16_t> expected(static_cast<size_t>(capacity) * k, kCanary);
      dequantize_activations_bf16(codes.data(), scales.data(), rows, k, expected.data());

      const std::vector<int32_t> count = {rows};
      uint16_t* out = upload(std::vector<uint16_t>(expected.size() + 8, kCanary));
      ASSERT_EQ(launch_dequantize_activations_bf16(upload(codes), upload(scales), upload(count), capacity, k, out,
                                                   nullptr),
                cudaSuccess);
      const std::vector<uint16_t> actual = download(out, expected.size() + 8);
      for (size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(actual[i], expected[i]) << "element " << i << " (rows past " << rows << " must stay untouched)";
      }
      for (size_t i = expected.size(); i < actual.size(); ++i) ASSERT_EQ(actual[i], kCanary) << "guard " << i;
    }
  }
}

TEST_F(CudaDequantize, WeightsMatchTheReferenceBitForBit) {
  std::mt19937_64 engine(0xDE0B);
  struct Shape {
    int32_t experts, n, k;
  };
  for (const Shape s : {Shape{3, 136, 144}, Shape{2, 512, 7168}, Shape{1, 8, 16}, Shape{5, 256, 2048}}) {
    SCOPED_TRACE("experts " + std::to_string(s.experts) + " n " + std::to_string(s.n) + " k " + std::to_string(s.k));
    const size_t elements = static_cast<size_t>(s.experts) * s.n * s.k;
    const std::vector<uint8_t> codes = every_code(engine, elements);
    const std::vector<float> scales =
        random_scales(engine, static_cast<size_t>(s.experts * scale_blocks(s.n) * scale_blocks(s.k)));
    std::vector<uint16_t> expected(elements);
    dequantize_weights_bf16(codes.data(), scales.data(), s.experts, s.n, s.k, expected.data());

    uint16_t* out = upload(std::vector<uint16_t>(elements + 8, kCanary));
    ASSERT_EQ(launch_dequantize_weights_bf16(upload(codes), upload(scales), s.experts, s.n, s.k, out, nullptr),
              cudaSuccess);
    const std::vector<uint16_t> actual = download(out, elements + 8);
    for (size_t i = 0; i < elements; ++i) ASSERT_EQ(actual[i], expected[i]) << "element " << i;
    for (size_t i = elements; i < actual.size(); ++i) ASSERT_EQ(actual[i], kCanary) << "guard " << i;
  }
}

TEST_F(CudaDequantize, RejectsShapesTheKernelsCannotTake) {
  EXPECT_EQ(launch_dequantize_activations_bf16(nullptr, nullptr, nullptr, 4, 24, nullptr, nullptr),
            cudaErrorInvalidValue);  // k % 16 != 0
  EXPECT_EQ(launch_dequantize_weights_bf16(nullptr, nullptr, 2, 0, 16, nullptr, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(launch_dequantize_activations_bf16(nullptr, nullptr, nullptr, 0, 16, nullptr, nullptr), cudaSuccess);
}

}  // namespace
}  // namespace moecutlass
