// Element-wise conversion between all dtype pairs, fills of 1/2/4-byte patterns and copies on the CPU backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/e4m3.hpp"
#include "core/float16.hpp"
#include "test_support.hpp"

using namespace moecutlass;
using mctest::Context;

namespace {

const int32_t kDtypes[] = {MC_DTYPE_FP32, MC_DTYPE_BF16, MC_DTYPE_FP16, MC_DTYPE_E4M3};

int64_t size_of(int32_t dtype) { return dtype == MC_DTYPE_FP32 ? 4 : dtype == MC_DTYPE_E4M3 ? 1 : 2; }

float decode(const void* data, int32_t dtype, int64_t i) {
  switch (dtype) {
    case MC_DTYPE_FP32: return static_cast<const float*>(data)[i];
    case MC_DTYPE_BF16: return bf16_to_float(static_cast<const uint16_t*>(data)[i]);
    case MC_DTYPE_FP16: return fp16_to_float(static_cast<const uint16_t*>(data)[i]);
    default: return e4m3_to_float(static_cast<const uint8_t*>(data)[i]);
  }
}

void encode(void* data, int32_t dtype, int64_t i, float v) {
  switch (dtype) {
    case MC_DTYPE_FP32: static_cast<float*>(data)[i] = v; break;
    case MC_DTYPE_BF16: static_cast<uint16_t*>(data)[i] = bf16_from_float(v); break;
    case MC_DTYPE_FP16: static_cast<uint16_t*>(data)[i] = fp16_from_float(v); break;
    default: static_cast<uint8_t*>(data)[i] = e4m3_from_float(v); break;
  }
}

}  // namespace

TEST(Convert, AllDtypePairsRoundOnceFromTheExactSourceValue) {
  Context context(2);
  std::vector<float> values = {0.0f, -0.0f, 1.0f, -1.5f, 3.14159f, 447.0f, 1000.0f, -70000.0f, 1e-3f, 6e-8f,
                               std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY};
  auto& engine = mctest::rng();
  for (int i = 0; i < 200000; ++i) values.push_back(mctest::random_float(engine, -500.0f, 500.0f));
  const auto count = static_cast<int64_t>(values.size());
  for (int32_t from : kDtypes) {
    void* src = context.alloc(count * size_of(from));
    for (int64_t i = 0; i < count; ++i) encode(src, from, i, values[static_cast<std::size_t>(i)]);
    for (int32_t to : kDtypes) {
      void* dst = context.alloc(count * size_of(to));
      MC_ASSERT_OK(mc_convert_async(context, src, from, dst, to, count, nullptr));
      for (int64_t i = 0; i < count; ++i) {
        const float source = decode(src, from, i);
        std::vector<uint8_t> expected(4);
        encode(expected.data(), to, 0, source);
        if (std::isnan(source)) {
          ASSERT_TRUE(std::isnan(decode(dst, to, i))) << from << "->" << to << " NaN must stay NaN";
        } else {
          ASSERT_EQ(std::memcmp(static_cast<const uint8_t*>(dst) + i * size_of(to), expected.data(),
                                static_cast<std::size_t>(size_of(to))),
                    0)
              << from << "->" << to << " element " << i << " value " << source;
        }
      }
    }
  }
}

TEST(Convert, SaturatesToE4m3MaxAndKeepsBitsForSameDtype) {
  Context context(1);
  auto* src = context.alloc_array<float>(4);
  auto* dst = context.alloc_array<uint8_t>(4);
  src[0] = 1000.0f;
  src[1] = -INFINITY;
  src[2] = 448.0f;
  src[3] = -0.0f;
  MC_ASSERT_OK(mc_convert_async(context, src, MC_DTYPE_FP32, dst, MC_DTYPE_E4M3, 4, nullptr));
  EXPECT_EQ(dst[0], 0x7E);
  EXPECT_EQ(dst[1], 0xFE);
  EXPECT_EQ(dst[2], 0x7E);
  EXPECT_EQ(dst[3], 0x80);
  auto* half = context.alloc_array<uint16_t>(2);
  auto* copy = context.alloc_array<uint16_t>(2);
  half[0] = 0x7C01;  // signalling NaN payload: a same-dtype conversion is a bit copy
  half[1] = 0x1234;
  MC_ASSERT_OK(mc_convert_async(context, half, MC_DTYPE_FP16, copy, MC_DTYPE_FP16, 2, nullptr));
  EXPECT_EQ(copy[0], 0x7C01);
  EXPECT_EQ(copy[1], 0x1234);
  MC_ASSERT_OK(mc_convert_async(context, half, MC_DTYPE_FP16, copy, MC_DTYPE_FP16, 0, nullptr));
}

TEST(Fill, WritesOneTwoAndFourBytePatterns) {
  Context context(1);
  auto* buffer = static_cast<uint8_t*>(context.alloc(64));
  std::memset(buffer, 0, 64);
  const uint8_t byte = 0xA5;
  MC_ASSERT_OK(mc_fill_async(context, buffer, &byte, 1, 3, nullptr));
  EXPECT_EQ(buffer[0], 0xA5);
  EXPECT_EQ(buffer[2], 0xA5);
  EXPECT_EQ(buffer[3], 0x00);
  const uint16_t half = 0xBEEF;
  MC_ASSERT_OK(mc_fill_async(context, buffer + 16, &half, 2, 5, nullptr));
  const auto* halves = reinterpret_cast<const uint16_t*>(buffer + 16);
  EXPECT_EQ(halves[0], 0xBEEF);
  EXPECT_EQ(halves[4], 0xBEEF);
  EXPECT_EQ(halves[5], 0x0000);
  const float one = 1.0f;
  MC_ASSERT_OK(mc_fill_async(context, buffer + 32, &one, 4, 8, nullptr));
  const auto* floats = reinterpret_cast<const float*>(buffer + 32);
  EXPECT_EQ(floats[0], 1.0f);
  EXPECT_EQ(floats[7], 1.0f);
  MC_ASSERT_OK(mc_fill_async(context, buffer, &one, 4, 0, nullptr));  // count 0: nothing to do
}

TEST(Copy, EveryKindCopiesBytesOnTheCpu) {
  Context context(1);
  auto* device = static_cast<uint8_t*>(context.alloc(128));
  auto* device2 = static_cast<uint8_t*>(context.alloc(128));
  std::vector<uint8_t> host(128), back(128, 0);
  for (int i = 0; i < 128; ++i) host[i] = static_cast<uint8_t>(i * 3);
  MC_ASSERT_OK(mc_memcpy_async(context, device, host.data(), 128, MC_COPY_HOST_TO_DEVICE, nullptr));
  MC_ASSERT_OK(mc_memcpy_async(context, device2, device, 128, MC_COPY_DEVICE_TO_DEVICE, nullptr));
  MC_ASSERT_OK(mc_memcpy_async(context, back.data(), device2, 128, MC_COPY_DEVICE_TO_HOST, nullptr));
  EXPECT_EQ(back, host);
  MC_ASSERT_OK(mc_memcpy_async(context, back.data(), device2, 0, MC_COPY_DEVICE_TO_HOST, nullptr));
}
