// The CUDA backend's MoE layer stages (cuda/moe_layer) against the host references they are specified by, on
// seeded random inputs (skipped without a CUDA device):
//  - route: ids identical; weights within one fp32 ulp (the device's double exp and sum order differ from the
//    host's only in the last double bits), identical in at least 99% of the weights; ties and NaN logits included.
//  - permute: offsets, sorted_slots and slot_to_row identical, on the one-block path and both sort paths (one chunk
//    and several), a local slice and all local; out-of-range and duplicate ids raise their MC_DEVICE_ERROR_* bits and are handled like the reference
//    would handle them (out-of-range = not local, duplicates = separate slots); also inside a CUDA graph.
//  - gather: codes and scales bit-identical, rows past the count untouched.
//  - activate: the only difference allowed is CUDA's expf against the host's (moe_activation.cu): CUDA's is within
//    2 ulp, the host's within about half an ulp, so an h may differ by a few fp32 ulps (the error of e passes
//    through 1 + e, the division and the product). Rule: every scale within 8 fp32 ulps of the reference (a block's
//    scale follows its amax element, so many blocks may differ by an ulp: counted and reported, not bounded); every
//    code within one e4m3 step; at most 0.1% of the codes off by that step (a few-ulp change of h crosses an e4m3
//    rounding boundary with probability ~2^-18); rows past the count untouched.
//  - combine: output bit-identical for bf16, fp16 and fp32, including slots outside the slice and tokens with none.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "backend.hpp"
#include "core/float16.hpp"
#include "core/moe_layer_stages.hpp"
#include "core/moe_permutation.hpp"
#include "core/moe_routing.hpp"
#include "core/shapes.hpp"
#include "cpu/moe_combine.hpp"
#include "cpu/moe_gather_quantize.hpp"
#include "cpu/moe_silu_and_mul.hpp"

using namespace moecutlass;

namespace {

constexpr int32_t kGarbage = 0x7EADBEEF;
constexpr uint8_t kCodeCanary = 0xA5;

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Distance in ulps between two floats of the same sign (INT64_MAX otherwise); both NaN counts as 0.
int64_t ulp_distance(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : std::numeric_limits<int64_t>::max();
  if (a == b) return 0;
  if (std::signbit(a) != std::signbit(b)) return std::numeric_limits<int64_t>::max();
  return std::llabs(static_cast<int64_t>(bits_of(a) & 0x7FFFFFFFu) - static_cast<int64_t>(bits_of(b) & 0x7FFFFFFFu));
}

// An e4m3 code as a signed step count (+0 and -0 are both 0), so neighbouring values differ by one.
int32_t e4m3_steps(uint8_t code) { return (code & 0x80) ? -static_cast<int32_t>(code & 0x7F) : (code & 0x7F); }

// The reference permutation without permute_by_expert's validation: for ids the device must accept and flag.
// An id outside 0 .. total-1 is not local; duplicates stay separate slots.
void reference_permute(const std::vector<int32_t>& ids, int32_t first, int32_t local, int32_t total,
                       std::vector<int32_t>& offsets, std::vector<int32_t>& sorted_slots,
                       std::vector<int32_t>& slot_to_row) {
  const int64_t slots = static_cast<int64_t>(ids.size());
  auto local_of = [&](int32_t id) { return id < 0 || id >= total ? -1 : (id - first < local && id >= first ? id - first : -1); };
  offsets.assign(static_cast<size_t>(local) + 1, 0);
  for (int64_t s = 0; s < slots; ++s) {
    if (local_of(ids[s]) >= 0) ++offsets[local_of(ids[s]) + 1];
  }
  for (int32_t e = 0; e < local; ++e) offsets[e + 1] += offsets[e];
  std::vector<int32_t> next(offsets.begin(), offsets.end() - 1);
  sorted_slots.assign(static_cast<size_t>(slots), -1);
  slot_to_row.assign(static_cast<size_t>(slots), -1);
  for (int64_t s = 0; s < slots; ++s) {
    const int32_t e = local_of(ids[s]);
    if (e < 0) continue;
    const int32_t row = next[e]++;
    sorted_slots[row] = static_cast<int32_t>(s);
    slot_to_row[s] = row;
  }
}

std::vector<int32_t> random_ids(std::mt19937_64& engine, int32_t tokens, int32_t top_k, int32_t total) {
  std::vector<int32_t> all(static_cast<size_t>(total));
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(tokens) * top_k);
  for (int32_t t = 0; t < tokens; ++t) {
    for (int32_t e = 0; e < total; ++e) all[e] = e;
    for (int32_t j = 0; j < top_k; ++j) {  // partial Fisher-Yates: k distinct experts
      std::uniform_int_distribution<int32_t> pick(j, total - 1);
      std::swap(all[j], all[pick(engine)]);
      ids.push_back(all[j]);
    }
  }
  return ids;
}

class CudaMoeStages : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
    backend_ = make_cuda_backend(0);
    backend_->query_device_errors(true);
  }
  void TearDown() override {
    if (!backend_) return;
    backend_->synchronize();
    for (void* pointer : allocations_) backend_->release(pointer);
  }

  BackendStream& stream() { return backend_->default_stream(); }
  MoeLayerStages& stages() { return backend_->moe_stages(); }

  void* allocate(int64_t bytes) {
    void* pointer = backend_->allocate(std::max<int64_t>(bytes, 16));
    allocations_.push_back(pointer);
    return pointer;
  }
  template <class T>
  T* upload(const std::vector<T>& host) {
    auto* device = static_cast<T*>(allocate(static_cast<int64_t>(host.size() * sizeof(T))));
    if (!host.empty()) {
      backend_->copy(device, host.data(), static_cast<int64_t>(host.size() * sizeof(T)), MC_COPY_HOST_TO_DEVICE,
                     stream());
    }
    return device;
  }
  template <class T>
  std::vector<T> download(const T* device, size_t count) {
    std::vector<T> host(count);
    if (count > 0) {
      backend_->copy(host.data(), device, static_cast<int64_t>(count * sizeof(T)), MC_COPY_DEVICE_TO_HOST, stream());
    }
    stream().synchronize();
    return host;
  }

  struct DevicePermutation {
    int32_t* ids = nullptr;
    int32_t* offsets = nullptr;
    int32_t* sorted_slots = nullptr;
    int32_t* slot_to_row = nullptr;
  };

  // Runs the device permute on ids, with garbage-filled outputs, and checks it against the given reference.
  DevicePermutation run_permute(const std::vector<int32_t>& ids, int32_t tokens, int32_t top_k, int32_t first,
                                int32_t local, int32_t total) {
    const size_t slots = static_cast<size_t>(tokens) * top_k;
    DevicePermutation d;
    d.ids = upload(ids);
    d.offsets = upload(std::vector<int32_t>(static_cast<size_t>(local) + 1, kGarbage));
    d.sorted_slots = upload(std::vector<int32_t>(slots, kGarbage));
    d.slot_to_row = upload(std::vector<int32_t>(slots, kGarbage));
    MoePermuteJob job;
    job.ids = d.ids;
    job.tokens = tokens;
    job.top_k = top_k;
    job.first_expert = first;
    job.local_experts = local;
    job.total_experts = total;
    job.offsets = d.offsets;
    job.sorted_slots = d.sorted_slots;
    job.slot_to_row = d.slot_to_row;
    const int64_t scratch = moe_permute_scratch_bytes(tokens, top_k, local);
    job.scratch = scratch > 0 ? static_cast<int32_t*>(allocate(scratch)) : nullptr;
    stages().permute(job, stream());
    return d;
  }

  void expect_permutation(const DevicePermutation& d, const std::vector<int32_t>& ids, int32_t tokens,
                          int32_t top_k, int32_t first, int32_t local, int32_t total) {
    std::vector<int32_t> offsets, sorted_slots, slot_to_row;
    reference_permute(ids, first, local, total, offsets, sorted_slots, slot_to_row);
    const size_t slots = static_cast<size_t>(tokens) * top_k;
    EXPECT_EQ(download(d.offsets, offsets.size()), offsets);
    EXPECT_EQ(download(d.sorted_slots, slots), sorted_slots);
    EXPECT_EQ(download(d.slot_to_row, slots), slot_to_row);
  }

  std::unique_ptr<Backend> backend_;
  std::vector<void*> allocations_;
};

// ---------------------------------------------------------------------------------------------------------------
// route

struct RouteCase {
  int32_t experts;
  int32_t top_k;
  int32_t dtype;
  bool renormalize;
};

TEST_F(CudaMoeStages, RouteMatchesReference) {
  std::mt19937_64 engine(0xA11CE);
  const std::vector<RouteCase> cases = {
      {1, 1, MC_DTYPE_FP32, false},   {1, 1, MC_DTYPE_FP32, true},    {8, 1, MC_DTYPE_FP32, false},
      {8, 2, MC_DTYPE_BF16, true},    {8, 8, MC_DTYPE_FP16, false},   {256, 8, MC_DTYPE_FP32, true},
      {256, 8, MC_DTYPE_BF16, false}, {256, 2, MC_DTYPE_FP16, true},  {512, 8, MC_DTYPE_FP32, false},
      {512, 1, MC_DTYPE_BF16, true},  {4096, 32, MC_DTYPE_FP32, true}};
  int64_t total_weights = 0;
  int64_t identical_weights = 0;
  for (const RouteCase& c : cases) {
    SCOPED_TRACE("experts " + std::to_string(c.experts) + " top_k " + std::to_string(c.top_k) + " dtype " +
                 std::to_string(c.dtype) + (c.renormalize ? " renormalized" : ""));
    const int32_t tokens = 97;
    std::normal_distribution<float> normal(0.0f, 2.0f);
    std::vector<float> logits(static_cast<size_t>(tokens) * c.experts);
    for (int32_t t = 0; t < tokens; ++t) {
      float* row = logits.data() + static_cast<size_t>(t) * c.experts;
      for (int32_t e = 0; e < c.experts; ++e) row[e] = normal(engine);
      if (t % 4 == 1) {
        for (int32_t e = 0; e < c.experts; ++e) row[e] = std::round(row[e]);  // many ties
      }
      if (t % 5 == 2) {
        for (int32_t e = 0; e < c.experts; e += 3) row[e] = std::numeric_limits<float>::quiet_NaN();
      }
      if (t == 3) {
        for (int32_t e = 0; e < c.experts; ++e) row[e] = 0.5f;  // all tied
      }
      if (t == 4) {
        for (int32_t e = 0; e < c.experts; ++e) row[e] = std::numeric_limits<float>::quiet_NaN();  // all NaN
      }
    }
    // The device reads the logits in their dtype; the reference reads the very same bits.
    std::vector<uint8_t> raw;
    if (c.dtype == MC_DTYPE_FP32) {
      raw.resize(logits.size() * 4);
      std::memcpy(raw.data(), logits.data(), raw.size());
    } else {
      std::vector<uint16_t> half(logits.size());
      for (size_t i = 0; i < logits.size(); ++i) {
        half[i] = c.dtype == MC_DTYPE_BF16 ? bf16_from_float(logits[i]) : fp16_from_float(logits[i]);
      }
      raw.resize(half.size() * 2);
      std::memcpy(raw.data(), half.data(), raw.size());
    }
    const size_t choices = static_cast<size_t>(tokens) * c.top_k;
    std::vector<int32_t> ids(choices);
    std::vector<float> weights(choices);
    route_topk(raw.data(), c.dtype, tokens, c.experts, c.top_k, c.renormalize, ids.data(), weights.data());

    MoeRouteJob job;
    job.logits = upload(raw);
    job.logits_dtype = c.dtype;
    job.tokens = tokens;
    job.experts = c.experts;
    job.top_k = c.top_k;
    job.renormalize = c.renormalize;
    job.ids = upload(std::vector<int32_t>(choices, kGarbage));
    job.weights = upload(std::vector<float>(choices, -7.0f));
    stages().route(job, stream());
    EXPECT_EQ(download(job.ids, choices), ids);
    const std::vector<float> device_weights = download(job.weights, choices);
    for (size_t i = 0; i < choices; ++i) {
      EXPECT_LE(ulp_distance(device_weights[i], weights[i]), 1)
          << "weight " << i << ": device " << device_weights[i] << ", reference " << weights[i];
      ++total_weights;
      if (ulp_distance(device_weights[i], weights[i]) == 0) ++identical_weights;
    }
  }
  std::cout << "route: " << identical_weights << " of " << total_weights << " weights bit-identical\n";
  EXPECT_GE(identical_weights * 100, total_weights * 99);
}

TEST_F(CudaMoeStages, RouteWithoutTokensWritesNothing) {
  MoeRouteJob job;
  job.logits_dtype = MC_DTYPE_FP32;
  job.experts = 8;
  job.top_k = 2;
  stages().route(job, stream());  // null pointers: nothing may be launched
  stream().synchronize();
}

// ---------------------------------------------------------------------------------------------------------------
// permute

TEST_F(CudaMoeStages, PermuteMatchesReference) {
  std::mt19937_64 engine(0xB0B);
  const int32_t top_k = 8;
  const int32_t total = 256;
  struct Slice {
    int32_t first, local;
  };
  for (const Slice slice : {Slice{32, 32}, Slice{0, 256}}) {
    for (const int32_t tokens : {0, 1, 7, 128, 256, 257, 300, 4096, 65536}) {
      SCOPED_TRACE("tokens " + std::to_string(tokens) + " slice " + std::to_string(slice.first) + "+" +
                   std::to_string(slice.local));
      const std::vector<int32_t> ids = random_ids(engine, tokens, top_k, total);
      // The library's validating reference agrees with the test's copy on valid ids.
      std::vector<int32_t> offsets(static_cast<size_t>(slice.local) + 1);
      std::vector<int32_t> sorted_slots(ids.size()), slot_to_row(ids.size());
      permute_by_expert(ids.data(), tokens, top_k, ExpertSlice{slice.first, slice.local, total}, offsets.data(),
                        sorted_slots.data(), slot_to_row.data());
      std::vector<int32_t> o2, s2, r2;
      reference_permute(ids, slice.first, slice.local, total, o2, s2, r2);
      ASSERT_EQ(offsets, o2);
      ASSERT_EQ(sorted_slots, s2);
      ASSERT_EQ(slot_to_row, r2);

      const DevicePermutation d = run_permute(ids, tokens, top_k, slice.first, slice.local, total);
      expect_permutation(d, ids, tokens, top_k, slice.first, slice.local, total);
      EXPECT_EQ(backend_->query_device_errors(true), 0);
    }
  }
}

TEST_F(CudaMoeStages, PermuteOtherShapes) {
  std::mt19937_64 engine(0xC0FFEE);
  struct Shape {
    int32_t tokens, top_k, first, local, total;
  };
  // The one-block path up to 8192 slots and 511 local experts (its limits on both sides included), the
  // single-chunk and several-chunk sort paths past them.
  for (const Shape s : {Shape{5, 1, 0, 1, 1}, Shape{3000, 1, 3, 5, 8}, Shape{1000, 3, 0, 7, 7},
                        Shape{700, 32, 100, 4096, 4196}, Shape{100, 2, 0, 4096, 4096}, Shape{300, 8, 0, 511, 600},
                        Shape{300, 8, 50, 512, 600}, Shape{256, 32, 0, 64, 64}, Shape{257, 32, 0, 64, 64},
                        Shape{100, 2, 0, 600, 600}}) {
    SCOPED_TRACE("tokens " + std::to_string(s.tokens) + " top_k " + std::to_string(s.top_k) + " local " +
                 std::to_string(s.local));
    const std::vector<int32_t> ids = random_ids(engine, s.tokens, s.top_k, s.total);
    const DevicePermutation d = run_permute(ids, s.tokens, s.top_k, s.first, s.local, s.total);
    expect_permutation(d, ids, s.tokens, s.top_k, s.first, s.local, s.total);
    EXPECT_EQ(backend_->query_device_errors(true), 0);
  }
}

TEST_F(CudaMoeStages, PermuteFlagsBadIds) {
  std::mt19937_64 engine(0xBAD);
  const int32_t top_k = 8;
  const int32_t total = 256;
  for (const int32_t tokens : {7, 1024, 4096}) {  // the one-block path (7, 1024), then several sorted chunks
    SCOPED_TRACE("tokens " + std::to_string(tokens));
    // Out of range: treated as not local, flag 8.
    std::vector<int32_t> ids = random_ids(engine, tokens, top_k, total);
    ids[3] = -1;
    ids[static_cast<size_t>(tokens) * top_k - 1] = total;
    DevicePermutation d = run_permute(ids, tokens, top_k, 32, 32, total);
    expect_permutation(d, ids, tokens, top_k, 32, 32, total);
    EXPECT_EQ(backend_->query_device_errors(true), MC_DEVICE_ERROR_TOPK_ID_OUT_OF_RANGE);
    d = run_permute(ids, tokens, top_k, 0, 256, total);
    expect_permutation(d, ids, tokens, top_k, 0, 256, total);
    EXPECT_EQ(backend_->query_device_errors(true), MC_DEVICE_ERROR_TOPK_ID_OUT_OF_RANGE);

    // Duplicates: both slots kept, flag 16.
    ids = random_ids(engine, tokens, top_k, total);
    ids[top_k * (tokens / 2) + 5] = ids[top_k * (tokens / 2) + 1];
    ids[2] = 40;
    ids[6] = 40;  // a duplicated local expert of the 32..63 slice
    d = run_permute(ids, tokens, top_k, 32, 32, total);
    expect_permutation(d, ids, tokens, top_k, 32, 32, total);
    EXPECT_EQ(backend_->query_device_errors(true), MC_DEVICE_ERROR_TOPK_ID_DUPLICATE);

    // Both.
    ids[9] = 100000;
    d = run_permute(ids, tokens, top_k, 0, 256, total);
    expect_permutation(d, ids, tokens, top_k, 0, 256, total);
    EXPECT_EQ(backend_->query_device_errors(true),
              MC_DEVICE_ERROR_TOPK_ID_OUT_OF_RANGE | MC_DEVICE_ERROR_TOPK_ID_DUPLICATE);
  }
}

TEST_F(CudaMoeStages, PermuteIsCapturedInAGraphAndRepeatable) {
  std::mt19937_64 engine(0x6A);
  const int32_t tokens = 4096, top_k = 8, total = 256, first = 32, local = 32;
  const std::vector<int32_t> ids = random_ids(engine, tokens, top_k, total);
  const size_t slots = static_cast<size_t>(tokens) * top_k;
  auto* d_ids = upload(ids);
  auto* offsets = upload(std::vector<int32_t>(static_cast<size_t>(local) + 1, kGarbage));
  auto* sorted_slots = upload(std::vector<int32_t>(slots, kGarbage));
  auto* slot_to_row = upload(std::vector<int32_t>(slots, kGarbage));
  stream().synchronize();
  MoePermuteJob job;
  job.ids = d_ids;
  job.tokens = tokens;
  job.top_k = top_k;
  job.first_expert = first;
  job.local_experts = local;
  job.total_experts = total;
  job.offsets = offsets;
  job.sorted_slots = sorted_slots;
  job.slot_to_row = slot_to_row;
  job.scratch = static_cast<int32_t*>(allocate(moe_permute_scratch_bytes(tokens, top_k, local)));
  std::unique_ptr<BackendStream> capture = backend_->create_stream();
  backend_->begin_capture(*capture);
  stages().permute(job, *capture);
  std::unique_ptr<BackendGraph> graph = backend_->end_capture(*capture);
  std::vector<int32_t> o, s, r;
  reference_permute(ids, first, local, total, o, s, r);
  for (int replay = 0; replay < 3; ++replay) {
    graph->launch(*capture);
    capture->synchronize();
    EXPECT_EQ(download(offsets, o.size()), o);
    EXPECT_EQ(download(sorted_slots, slots), s);
    EXPECT_EQ(download(slot_to_row, slots), r);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// gather + quantize

std::vector<uint8_t> random_hidden(std::mt19937_64& engine, int32_t dtype, int64_t count) {
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<float> values(static_cast<size_t>(count));
  for (auto& v : values) v = normal(engine);
  // Edge cases the quantizer must treat like the host: a NaN, an infinity, a zero block's worth of zeros.
  if (count > 300) {
    values[17] = std::numeric_limits<float>::quiet_NaN();
    values[200] = std::numeric_limits<float>::infinity();
    for (int i = 0; i < 128 && 256 + i < count; ++i) values[256 + i] = 0.0f;
  }
  std::vector<uint8_t> raw;
  if (dtype == MC_DTYPE_FP32) {
    raw.resize(values.size() * 4);
    std::memcpy(raw.data(), values.data(), raw.size());
  } else {
    std::vector<uint16_t> half(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      half[i] = dtype == MC_DTYPE_BF16 ? bf16_from_float(values[i]) : fp16_from_float(values[i]);
    }
    raw.resize(half.size() * 2);
    std::memcpy(raw.data(), half.data(), raw.size());
  }
  return raw;
}

TEST_F(CudaMoeStages, GatherQuantizeIsBitIdentical) {
  std::mt19937_64 engine(0x6A7);
  const int32_t top_k = 8, total = 256, tokens = 45;
  for (const int32_t dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16, MC_DTYPE_FP32}) {
    for (const int32_t hidden : {7168, 2048, 144}) {
      for (const int32_t first : {32, 0}) {
        const int32_t local = first == 0 ? total : 32;
        SCOPED_TRACE("dtype " + std::to_string(dtype) + " hidden " + std::to_string(hidden) + " local " +
                     std::to_string(local));
        const std::vector<int32_t> ids = random_ids(engine, tokens, top_k, total);
        std::vector<int32_t> offsets, sorted_slots, slot_to_row;
        reference_permute(ids, first, local, total, offsets, sorted_slots, slot_to_row);
        const int64_t rows = offsets[local];
        const int64_t capacity = static_cast<int64_t>(tokens) * top_k;
        const int64_t blocks = scale_blocks(hidden);
        const std::vector<uint8_t> raw = random_hidden(engine, dtype, static_cast<int64_t>(tokens) * hidden);

        std::vector<uint8_t> codes(static_cast<size_t>(capacity * hidden), kCodeCanary);
        std::vector<float> scales(static_cast<size_t>(capacity * blocks), -3.0f);
        gather_quantize_rows(raw.data(), dtype, tokens, hidden, sorted_slots.data(), rows, top_k, codes.data(),
                             scales.data());

        MoeGatherJob job;
        job.hidden = upload(raw);
        job.hidden_dtype = dtype;
        job.tokens = tokens;
        job.hidden_size = hidden;
        job.top_k = top_k;
        job.sorted_slots = upload(sorted_slots);
        job.offsets = upload(offsets);
        job.local_experts = local;
        job.out = upload(std::vector<uint8_t>(codes.size(), kCodeCanary));
        job.scales = upload(std::vector<float>(scales.size(), -3.0f));
        stages().gather_quantize(job, stream());
        EXPECT_TRUE(download(job.out, codes.size()) == codes) << "e4m3 codes differ (" << rows << " rows)";
        const std::vector<float> device_scales = download(job.scales, scales.size());
        EXPECT_EQ(std::memcmp(device_scales.data(), scales.data(), scales.size() * sizeof(float)), 0)
            << "scales differ";
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// SiLU-and-mul + quantize

TEST_F(CudaMoeStages, ActivateQuantizeMatchesUpToExpf) {
  std::mt19937_64 engine(0xAC7);
  int64_t compared_codes = 0, differing_codes = 0, compared_scales = 0, differing_scales = 0;
  for (const int32_t inter : {2048, 1536, 144}) {
    for (const int32_t rows : {0, 1, 37, 600}) {
      SCOPED_TRACE("inter " + std::to_string(inter) + " rows " + std::to_string(rows));
      const int32_t capacity = rows + 11;  // rows past the count must stay untouched
      const int32_t local = 4;
      std::vector<int32_t> offsets = {0, rows / 3, rows / 2, rows / 2, rows};
      std::normal_distribution<float> normal(0.0f, 3.0f);
      std::vector<uint16_t> gemm1(static_cast<size_t>(capacity) * 2 * inter);
      for (auto& h : gemm1) h = bf16_from_float(normal(engine));
      if (rows > 0) {
        gemm1[5] = bf16_from_float(-120.0f);  // exp(-g) overflows: SiLU's limit -0
        gemm1[6] = 0x7FC0;                    // NaN gate
      }
      const int64_t blocks = scale_blocks(inter);
      std::vector<uint8_t> codes(static_cast<size_t>(capacity) * inter, kCodeCanary);
      std::vector<float> scales(static_cast<size_t>(capacity * blocks), -3.0f);
      silu_and_mul_quantize(gemm1.data(), MC_DTYPE_BF16, rows, inter, codes.data(), scales.data());

      MoeActivationJob job;
      job.gemm1_out = upload(gemm1);
      job.offsets = upload(offsets);
      job.local_experts = local;
      job.inter = inter;
      job.out = upload(std::vector<uint8_t>(codes.size(), kCodeCanary));
      job.scales = upload(std::vector<float>(scales.size(), -3.0f));
      stages().activate_quantize(job, stream());
      const std::vector<uint8_t> device_codes = download(job.out, codes.size());
      const std::vector<float> device_scales = download(job.scales, scales.size());
      for (size_t i = static_cast<size_t>(rows) * inter; i < codes.size(); ++i) {
        ASSERT_EQ(device_codes[i], kCodeCanary) << "code " << i << " past the row count was written";
      }
      for (size_t i = static_cast<size_t>(rows * blocks); i < scales.size(); ++i) {
        ASSERT_EQ(bits_of(device_scales[i]), bits_of(-3.0f)) << "scale " << i << " past the row count was written";
      }
      for (size_t i = 0; i < static_cast<size_t>(rows * blocks); ++i) {
        EXPECT_LE(ulp_distance(device_scales[i], scales[i]), 8) << "scale " << i;
        ++compared_scales;
        if (bits_of(device_scales[i]) != bits_of(scales[i])) ++differing_scales;
      }
      for (size_t i = 0; i < static_cast<size_t>(rows) * inter; ++i) {
        const int32_t step = std::abs(e4m3_steps(device_codes[i]) - e4m3_steps(codes[i]));
        const bool both_nan = (device_codes[i] & 0x7F) == 0x7F && (codes[i] & 0x7F) == 0x7F;
        if (!both_nan) {
          EXPECT_LE(step, 1) << "code " << i;
        }
        ++compared_codes;
        if (device_codes[i] != codes[i]) ++differing_codes;
      }
    }
  }
  std::cout << "activate: " << differing_codes << " of " << compared_codes << " codes and " << differing_scales
            << " of " << compared_scales << " scales differ from the host (expf)\n";
  EXPECT_LE(differing_codes * 1000, compared_codes);
}

// ---------------------------------------------------------------------------------------------------------------
// combine

TEST_F(CudaMoeStages, CombineIsBitIdentical) {
  std::mt19937_64 engine(0xC0B);
  const int32_t top_k = 8, total = 256, tokens = 61;
  for (const int32_t output_dtype : {MC_DTYPE_BF16, MC_DTYPE_FP16, MC_DTYPE_FP32}) {
    for (const int32_t hidden : {7168, 144}) {
      for (const int32_t first : {32, 0}) {
        const int32_t local = first == 0 ? total : 32;
        SCOPED_TRACE("output dtype " + std::to_string(output_dtype) + " hidden " + std::to_string(hidden) +
                     " local " + std::to_string(local));
        const std::vector<int32_t> ids = random_ids(engine, tokens, top_k, total);
        std::vector<int32_t> offsets, sorted_slots, slot_to_row;
        reference_permute(ids, first, local, total, offsets, sorted_slots, slot_to_row);
        const int64_t rows = offsets[local];
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<uint16_t> gemm2(static_cast<size_t>(std::max<int64_t>(rows, 1)) * hidden);
        for (auto& h : gemm2) h = bf16_from_float(normal(engine));
        std::vector<float> weights(static_cast<size_t>(tokens) * top_k);
        for (auto& w : weights) w = std::uniform_real_distribution<float>(0.0f, 0.5f)(engine);
        const size_t element = output_dtype == MC_DTYPE_FP32 ? 4 : 2;
        std::vector<uint8_t> expected(static_cast<size_t>(tokens) * hidden * element, 0xCD);
        weighted_combine(gemm2.data(), MC_DTYPE_BF16, rows, hidden, weights.data(), slot_to_row.data(), tokens, top_k,
                         expected.data(), output_dtype);

        MoeCombineJob job;
        job.gemm2_out = upload(gemm2);
        job.hidden_size = hidden;
        job.weights = upload(weights);
        job.slot_to_row = upload(slot_to_row);
        job.tokens = tokens;
        job.top_k = top_k;
        job.output = upload(std::vector<uint8_t>(expected.size(), 0xCD));
        job.output_dtype = output_dtype;
        stages().combine(job, stream());
        EXPECT_TRUE(download(static_cast<const uint8_t*>(job.output), expected.size()) == expected)
            << "combine output differs";
      }
    }
  }
}

}  // namespace
