// CUDA graphs through the C ABI: the CPU backend refuses capture with UNSUPPORTED; NULL, never-created,
// wrong-kind and destroyed graph handles; context mismatch; graphs destroyed with their context. The graph
// lifecycle is exercised on the CPU with a stand-in backend graph registered like a real one. On a machine with a
// CUDA device (skipped elsewhere): capture and replay, sync calls refused during capture, and recovery from a
// capture that other code invalidated.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#if defined(MOECUTLASS_WITH_CUDA) && MOECUTLASS_WITH_CUDA
#include <dlfcn.h>
#endif

#include "backend.hpp"
#include "core/objects.hpp"
#include "core/registry.hpp"
#include "test_support.hpp"

using mctest::Context;

namespace {

// Counts launches and reports its destruction, so the tests see what the ABI layer did with the backend graph.
struct GraphProbe {
  std::atomic<int> launches{0};
  std::atomic<bool> destroyed{false};
};

class FakeGraph final : public moecutlass::BackendGraph {
 public:
  explicit FakeGraph(std::shared_ptr<GraphProbe> probe) : probe_(std::move(probe)) {}
  ~FakeGraph() override { probe_->destroyed = true; }
  void launch(moecutlass::BackendStream&) override { ++probe_->launches; }

 private:
  std::shared_ptr<GraphProbe> probe_;
};

// Registers a graph of `context` as mc_stream_end_capture would (the CPU backend cannot capture one).
mc_graph make_fake_graph(mc_context context, const std::shared_ptr<GraphProbe>& probe) {
  using namespace moecutlass;
  std::shared_ptr<moecutlass::Context> owner = resolve<moecutlass::Context>(context, "context");
  auto graph = std::make_shared<Graph>(owner, std::make_unique<FakeGraph>(probe));
  return reinterpret_cast<mc_graph>(Registry::instance().add(graph));
}

}  // namespace

TEST(Graphs, CpuBackendRefusesCaptureAsUnsupported) {
  Context context(1);
  mc_stream stream = nullptr;
  MC_ASSERT_OK(mc_stream_create(context, &stream));
  MC_EXPECT_STATUS(mc_stream_begin_capture(stream), MC_STATUS_UNSUPPORTED, "mc_stream_begin_capture: ",
                   "CUDA graphs need the CUDA backend");
  // The stream is untouched: it still works, and it is not capturing.
  MC_ASSERT_OK(mc_stream_synchronize(stream));
  mc_graph graph = reinterpret_cast<mc_graph>(uintptr_t{0x5150});
  MC_EXPECT_STATUS(mc_stream_end_capture(stream, &graph), MC_STATUS_INVALID_ARGUMENT, "stream = 0x",
                   "is not capturing", "CUDA graphs need the CUDA backend");
  EXPECT_EQ(graph, reinterpret_cast<mc_graph>(uintptr_t{0x5150})) << "a failed call writes nothing";
  MC_ASSERT_OK(mc_stream_destroy(stream));
}

TEST(Graphs, NullArgumentsAreNullPointerErrorsAndNullDestroyIsANoOp) {
  Context context(1);
  mc_stream stream = nullptr;
  MC_ASSERT_OK(mc_stream_create(context, &stream));
  MC_EXPECT_STATUS(mc_stream_begin_capture(nullptr), MC_STATUS_NULL_POINTER, "stream is NULL",
                   "default stream would also capture unrelated library work");
  mc_graph graph = nullptr;
  MC_EXPECT_STATUS(mc_stream_end_capture(nullptr, &graph), MC_STATUS_NULL_POINTER, "stream is NULL");
  MC_EXPECT_STATUS(mc_stream_end_capture(stream, nullptr), MC_STATUS_NULL_POINTER, "graph is NULL");
  MC_EXPECT_STATUS(mc_graph_launch(nullptr, stream), MC_STATUS_NULL_POINTER, "graph is NULL");
  MC_EXPECT_STATUS(mc_graph_launch(nullptr, nullptr), MC_STATUS_NULL_POINTER, "graph is NULL");
  EXPECT_EQ(mc_graph_destroy(nullptr), MC_STATUS_OK);
  MC_ASSERT_OK(mc_stream_destroy(stream));
}

TEST(Graphs, NeverCreatedAndWrongKindHandlesAreRejected) {
  Context context(1);
  mc_stream stream = nullptr;
  MC_ASSERT_OK(mc_stream_create(context, &stream));
  const auto bogus = reinterpret_cast<mc_graph>(uintptr_t{0xDEADBEEF0});
  MC_EXPECT_STATUS(mc_graph_launch(bogus, nullptr), MC_STATUS_INVALID_HANDLE, "graph = 0xdeadbeef0",
                   "not a live mc_graph");
  MC_EXPECT_STATUS(mc_graph_destroy(bogus), MC_STATUS_INVALID_HANDLE, "not a live mc_graph");
  MC_EXPECT_STATUS(mc_graph_launch(reinterpret_cast<mc_graph>(stream), nullptr), MC_STATUS_INVALID_HANDLE,
                   "is an mc_stream, not an mc_graph");
  MC_EXPECT_STATUS(mc_graph_destroy(reinterpret_cast<mc_graph>(context.get())), MC_STATUS_INVALID_HANDLE,
                   "is an mc_context, not an mc_graph");
  MC_EXPECT_STATUS(mc_stream_begin_capture(reinterpret_cast<mc_stream>(context.get())), MC_STATUS_INVALID_HANDLE,
                   "is an mc_context, not an mc_stream");
  mc_graph graph = nullptr;
  MC_EXPECT_STATUS(mc_stream_end_capture(reinterpret_cast<mc_stream>(uintptr_t{0xABC0}), &graph),
                   MC_STATUS_INVALID_HANDLE, "not a live mc_stream");
  EXPECT_EQ(graph, nullptr);

  MC_ASSERT_OK(mc_stream_destroy(stream));
  MC_EXPECT_STATUS(mc_stream_begin_capture(stream), MC_STATUS_INVALID_HANDLE, "not a live mc_stream");
  MC_EXPECT_STATUS(mc_stream_end_capture(stream, &graph), MC_STATUS_INVALID_HANDLE, "not a live mc_stream");
}

TEST(Graphs, LaunchGoesToTheBackendGraphOnAnyStreamOfItsContext) {
  Context context(1);
  auto probe = std::make_shared<GraphProbe>();
  const mc_graph graph = make_fake_graph(context, probe);
  mc_stream stream = nullptr;
  MC_ASSERT_OK(mc_stream_create(context, &stream));
  MC_ASSERT_OK(mc_graph_launch(graph, nullptr));  // the context's default stream
  MC_ASSERT_OK(mc_graph_launch(graph, stream));
  MC_ASSERT_OK(mc_graph_launch(graph, stream));
  EXPECT_EQ(probe->launches.load(), 3);
  MC_ASSERT_OK(mc_graph_destroy(graph));
  EXPECT_TRUE(probe->destroyed.load());
  MC_ASSERT_OK(mc_stream_destroy(stream));
}

TEST(Graphs, StreamOfAnotherContextIsAContextMismatchAndLaunchesNothing) {
  Context context(1);
  Context other(1);
  auto probe = std::make_shared<GraphProbe>();
  const mc_graph graph = make_fake_graph(context, probe);
  mc_stream foreign = nullptr;
  MC_ASSERT_OK(mc_stream_create(other, &foreign));
  MC_EXPECT_STATUS(mc_graph_launch(graph, foreign), MC_STATUS_CONTEXT_MISMATCH, "stream = 0x", "belongs to context",
                   "not to the context");
  EXPECT_EQ(probe->launches.load(), 0) << "validation comes before any work";
  MC_EXPECT_STATUS(mc_graph_launch(graph, reinterpret_cast<mc_stream>(graph)), MC_STATUS_INVALID_HANDLE,
                   "is an mc_graph, not an mc_stream");
  EXPECT_EQ(probe->launches.load(), 0);
  MC_ASSERT_OK(mc_stream_destroy(foreign));
  MC_ASSERT_OK(mc_graph_destroy(graph));
}

TEST(Graphs, DestroyedGraphIsAnInvalidHandle) {
  Context context(1);
  auto probe = std::make_shared<GraphProbe>();
  const mc_graph graph = make_fake_graph(context, probe);
  MC_ASSERT_OK(mc_graph_destroy(graph));
  EXPECT_TRUE(probe->destroyed.load());
  MC_EXPECT_STATUS(mc_graph_launch(graph, nullptr), MC_STATUS_INVALID_HANDLE, "not a live mc_graph");
  MC_EXPECT_STATUS(mc_graph_destroy(graph), MC_STATUS_INVALID_HANDLE, "not a live mc_graph");  // double destroy
  EXPECT_EQ(probe->launches.load(), 0);
}

TEST(Graphs, DestroyingTheContextDestroysItsGraphs) {
  const size_t before = moecutlass::Registry::instance().size();
  const mc_context_desc desc = mctest::cpu_desc(1);
  mc_context context = nullptr;
  MC_ASSERT_OK(mc_context_create(&desc, &context));
  auto probe = std::make_shared<GraphProbe>();
  const mc_graph graph = make_fake_graph(context, probe);
  EXPECT_EQ(moecutlass::Registry::instance().size(), before + 2);
  MC_ASSERT_OK(mc_context_destroy(context));
  EXPECT_EQ(moecutlass::Registry::instance().size(), before);
  EXPECT_TRUE(probe->destroyed.load());
  MC_EXPECT_STATUS(mc_graph_launch(graph, nullptr), MC_STATUS_INVALID_HANDLE, "not a live mc_graph");
}

// ---- on a CUDA device ---------------------------------------------------------------------------------------

namespace {

class CudaGraphs : public ::testing::Test {
 protected:
  static constexpr int64_t kCount = 1 << 20;  // uint32 elements per buffer

  void SetUp() override {
    int32_t count = 0;
    ASSERT_EQ(mc_get_device_count(&count), MC_STATUS_OK);
    if (count == 0) GTEST_SKIP() << "no CUDA device (or built without CUDA)";
    mc_context_desc desc = mctest::cpu_desc();
    desc.backend = MC_BACKEND_CUDA;
    ASSERT_EQ(mc_context_create(&desc, &context_), MC_STATUS_OK) << mctest::last_error();
    ASSERT_EQ(mc_stream_create(context_, &stream_), MC_STATUS_OK) << mctest::last_error();
    ASSERT_EQ(mc_malloc(context_, kCount * 4, &source_), MC_STATUS_OK) << mctest::last_error();
    ASSERT_EQ(mc_malloc(context_, kCount * 4, &target_), MC_STATUS_OK) << mctest::last_error();
  }

  void TearDown() override {
    if (context_ != nullptr) {
      EXPECT_EQ(mc_context_destroy(context_), MC_STATUS_OK) << mctest::last_error();
    }
  }

  // Eagerly (default stream) sets every element of `buffer` to `value` and waits.
  void fill_now(void* buffer, uint32_t value) {
    ASSERT_EQ(mc_fill_async(context_, buffer, &value, 4, kCount, nullptr), MC_STATUS_OK) << mctest::last_error();
    ASSERT_EQ(mc_context_synchronize(context_), MC_STATUS_OK) << mctest::last_error();
  }

  // Copies `buffer` to the host (after all work of the context) and counts the elements equal to `value`.
  int64_t count_equal(const void* buffer, uint32_t value) {
    EXPECT_EQ(mc_context_synchronize(context_), MC_STATUS_OK) << mctest::last_error();
    std::vector<uint32_t> host(kCount, 0);
    EXPECT_EQ(mc_memcpy_async(context_, host.data(), buffer, kCount * 4, MC_COPY_DEVICE_TO_HOST, nullptr),
              MC_STATUS_OK)
        << mctest::last_error();
    EXPECT_EQ(mc_context_synchronize(context_), MC_STATUS_OK) << mctest::last_error();
    int64_t equal = 0;
    for (uint32_t element : host) equal += element == value ? 1 : 0;
    return equal;
  }

  // Captures "fill source with `value`, copy source to target" on stream_.
  mc_graph capture_fill_and_copy(uint32_t value) {
    EXPECT_EQ(mc_stream_begin_capture(stream_), MC_STATUS_OK) << mctest::last_error();
    EXPECT_EQ(mc_fill_async(context_, source_, &value, 4, kCount, stream_), MC_STATUS_OK) << mctest::last_error();
    EXPECT_EQ(mc_memcpy_async(context_, target_, source_, kCount * 4, MC_COPY_DEVICE_TO_DEVICE, stream_),
              MC_STATUS_OK)
        << mctest::last_error();
    mc_graph graph = nullptr;
    EXPECT_EQ(mc_stream_end_capture(stream_, &graph), MC_STATUS_OK) << mctest::last_error();
    return graph;
  }

  mc_context context_ = nullptr;
  mc_stream stream_ = nullptr;
  void* source_ = nullptr;
  void* target_ = nullptr;
};

}  // namespace

TEST_F(CudaGraphs, CaptureRecordsInsteadOfRunningAndEveryReplayRunsTheWork) {
  fill_now(source_, 0);
  fill_now(target_, 0);
  const mc_graph graph = capture_fill_and_copy(0xC0FFEE);
  ASSERT_NE(graph, nullptr);
  EXPECT_EQ(count_equal(target_, 0), kCount) << "captured work must not run before the graph is launched";
  for (int replay = 0; replay < 3; ++replay) {
    fill_now(source_, 1);
    fill_now(target_, 2);
    MC_ASSERT_OK(mc_graph_launch(graph, stream_));
    MC_ASSERT_OK(mc_stream_synchronize(stream_));
    EXPECT_EQ(count_equal(target_, 0xC0FFEE), kCount) << "replay " << replay;
  }
  // Any stream of the context, the default stream included.
  fill_now(target_, 3);
  MC_ASSERT_OK(mc_graph_launch(graph, nullptr));
  EXPECT_EQ(count_equal(target_, 0xC0FFEE), kCount);
  MC_ASSERT_OK(mc_graph_destroy(graph));
  MC_EXPECT_STATUS(mc_graph_launch(graph, stream_), MC_STATUS_INVALID_HANDLE, "not a live mc_graph");
}

TEST_F(CudaGraphs, SyncCallsDuringCaptureAreRefusedAndTheCaptureSurvives) {
  fill_now(target_, 0);
  MC_ASSERT_OK(mc_stream_begin_capture(stream_));
  MC_EXPECT_STATUS(mc_stream_begin_capture(stream_), MC_STATUS_INVALID_ARGUMENT, "is already capturing");
  const uint32_t value = 77;
  MC_ASSERT_OK(mc_fill_async(context_, target_, &value, 4, kCount, stream_));
  MC_EXPECT_STATUS(mc_stream_synchronize(stream_), MC_STATUS_INVALID_ARGUMENT, "stream = 0x",
                   "the stream is capturing", "mc_stream_end_capture");
  MC_EXPECT_STATUS(mc_context_synchronize(context_), MC_STATUS_INVALID_ARGUMENT, "stream is capturing");
  int32_t flags = -1;
  MC_EXPECT_STATUS(mc_context_query_device_errors(context_, 0, &flags), MC_STATUS_INVALID_ARGUMENT,
                   "stream is capturing");
  EXPECT_EQ(flags, -1);
  mc_graph graph = nullptr;
  MC_ASSERT_OK(mc_stream_end_capture(stream_, &graph));
  MC_EXPECT_STATUS(mc_stream_end_capture(stream_, &graph), MC_STATUS_INVALID_ARGUMENT, "is not capturing");
  MC_ASSERT_OK(mc_graph_launch(graph, stream_));
  MC_ASSERT_OK(mc_stream_synchronize(stream_));
  EXPECT_EQ(count_equal(target_, 77), kCount);
  MC_ASSERT_OK(mc_graph_destroy(graph));
}

#if defined(MOECUTLASS_WITH_CUDA) && MOECUTLASS_WITH_CUDA
TEST_F(CudaGraphs, CaptureInvalidatedByOtherCodeFailsAtEndAndTheStreamRecovers) {
  // Another CUDA library holding the native stream synchronizes it during the capture: not permitted, and it
  // invalidates the capture. The driver API is used so the test needs no CUDA headers.
  void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(driver, nullptr) << "libcuda.so.1: " << dlerror();
  using StreamSynchronize = int (*)(void*);
  auto cu_stream_synchronize = reinterpret_cast<StreamSynchronize>(dlsym(driver, "cuStreamSynchronize"));
  ASSERT_NE(cu_stream_synchronize, nullptr);
  void* native = nullptr;
  MC_ASSERT_OK(mc_stream_get_native(stream_, &native));

  fill_now(target_, 0);
  MC_ASSERT_OK(mc_stream_begin_capture(stream_));
  const uint32_t value = 5;
  MC_ASSERT_OK(mc_fill_async(context_, target_, &value, 4, kCount, stream_));
  EXPECT_NE(cu_stream_synchronize(native), 0) << "synchronizing a capturing stream must fail";
  mc_graph graph = reinterpret_cast<mc_graph>(uintptr_t{0x5150});
  MC_EXPECT_STATUS(mc_stream_end_capture(stream_, &graph), MC_STATUS_CUDA_ERROR, "cudaStreamEndCapture",
                   "cudaErrorStreamCaptureInvalidated", "the stream is usable again");
  EXPECT_EQ(graph, reinterpret_cast<mc_graph>(uintptr_t{0x5150})) << "no graph from a broken capture";

  // The stream is out of capture mode and runs work again, and a new capture works.
  MC_EXPECT_STATUS(mc_stream_end_capture(stream_, &graph), MC_STATUS_INVALID_ARGUMENT, "is not capturing");
  const uint32_t eager = 9;
  MC_ASSERT_OK(mc_fill_async(context_, target_, &eager, 4, kCount, stream_));
  MC_ASSERT_OK(mc_stream_synchronize(stream_));
  EXPECT_EQ(count_equal(target_, 9), kCount);
  graph = capture_fill_and_copy(11);
  ASSERT_NE(graph, reinterpret_cast<mc_graph>(uintptr_t{0x5150}));
  MC_ASSERT_OK(mc_graph_launch(graph, stream_));
  EXPECT_EQ(count_equal(target_, 11), kCount);
  MC_ASSERT_OK(mc_graph_destroy(graph));
  int32_t flags = -1;
  MC_ASSERT_OK(mc_context_query_device_errors(context_, 0, &flags));
  EXPECT_EQ(flags, 0);
  dlclose(driver);
}
#endif

TEST_F(CudaGraphs, DestroyingTheStreamOrContextEndsAnOpenCapture) {
  mc_stream doomed = nullptr;
  MC_ASSERT_OK(mc_stream_create(context_, &doomed));
  MC_ASSERT_OK(mc_stream_begin_capture(doomed));
  const uint32_t value = 1;
  MC_ASSERT_OK(mc_fill_async(context_, target_, &value, 4, kCount, doomed));
  MC_ASSERT_OK(mc_stream_destroy(doomed));
  // The capture ended with its stream, so this thread may allocate and synchronize again.
  void* memory = nullptr;
  MC_ASSERT_OK(mc_malloc(context_, 1 << 20, &memory));
  MC_ASSERT_OK(mc_context_synchronize(context_));
  MC_ASSERT_OK(mc_stream_begin_capture(stream_));
  MC_ASSERT_OK(mc_fill_async(context_, target_, &value, 4, kCount, stream_));
  MC_ASSERT_OK(mc_context_destroy(context_));  // with stream_ still capturing
  context_ = nullptr;
  mc_context_desc desc = mctest::cpu_desc();
  desc.backend = MC_BACKEND_CUDA;
  mc_context fresh = nullptr;
  MC_ASSERT_OK(mc_context_create(&desc, &fresh));
  MC_ASSERT_OK(mc_malloc(fresh, 1 << 20, &memory));
  MC_ASSERT_OK(mc_context_destroy(fresh));
}
