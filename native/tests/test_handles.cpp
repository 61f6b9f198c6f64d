// Handle registry: destroyed, never-created and wrong-kind handles are rejected without being dereferenced;
// destroying a context invalidates everything it owns; handles of one context are refused by another.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "core/registry.hpp"
#include "test_support.hpp"

using mctest::Context;

TEST(Handles, NullHandlesAreNullPointerErrorsAndNullDestroyIsANoOp) {
  mc_context_info info{};
  info.struct_size = sizeof info;
  MC_EXPECT_STATUS(mc_context_get_info(nullptr, &info), MC_STATUS_NULL_POINTER, "context is NULL");
  MC_EXPECT_STATUS(mc_stream_synchronize(nullptr), MC_STATUS_NULL_POINTER, "stream is NULL");
  EXPECT_EQ(mc_context_destroy(nullptr), MC_STATUS_OK);
  EXPECT_EQ(mc_stream_destroy(nullptr), MC_STATUS_OK);
  EXPECT_EQ(mc_event_destroy(nullptr), MC_STATUS_OK);
  EXPECT_EQ(mc_grouped_gemm_plan_destroy(nullptr), MC_STATUS_OK);
}

TEST(Handles, DestroyedContextIsAnInvalidHandle) {
  const mc_context_desc desc = mctest::cpu_desc(1);
  mc_context context = nullptr;
  MC_ASSERT_OK(mc_context_create(&desc, &context));
  MC_ASSERT_OK(mc_context_destroy(context));
  void* pointer = nullptr;
  MC_EXPECT_STATUS(mc_malloc(context, 16, &pointer), MC_STATUS_INVALID_HANDLE, "context = 0x", "not a live mc_context");
  EXPECT_EQ(pointer, nullptr);
  MC_EXPECT_STATUS(mc_context_destroy(context), MC_STATUS_INVALID_HANDLE);  // double destroy
}

TEST(Handles, NeverCreatedHandlesAreRejected) {
  // Values that were never issued, including ones that look like real pointers: never dereferenced.
  int not_a_context = 0;
  MC_EXPECT_STATUS(mc_context_synchronize(reinterpret_cast<mc_context>(&not_a_context)), MC_STATUS_INVALID_HANDLE);
  MC_EXPECT_STATUS(mc_context_synchronize(reinterpret_cast<mc_context>(uintptr_t{0xDEADBEEF0})),
                   MC_STATUS_INVALID_HANDLE, "0xdeadbeef0");
  MC_EXPECT_STATUS(mc_event_query(reinterpret_cast<mc_event>(uintptr_t{1})), MC_STATUS_INVALID_HANDLE);
}

TEST(Handles, WrongKindOfHandleIsRejected) {
  Context context(1);
  mc_stream stream = nullptr;
  MC_ASSERT_OK(mc_stream_create(context, &stream));
  MC_EXPECT_STATUS(mc_context_synchronize(reinterpret_cast<mc_context>(stream)), MC_STATUS_INVALID_HANDLE,
                   "is an mc_stream, not an mc_context");
  MC_EXPECT_STATUS(mc_event_query(reinterpret_cast<mc_event>(context.get())), MC_STATUS_INVALID_HANDLE,
                   "is an mc_context, not an mc_event");
  MC_ASSERT_OK(mc_stream_destroy(stream));
}

TEST(Handles, DestroyingAContextInvalidatesItsStreamsEventsAndPlans) {
  const size_t before = moecutlass::Registry::instance().size();
  const mc_context_desc desc = mctest::cpu_desc(1);
  mc_context context = nullptr;
  MC_ASSERT_OK(mc_context_create(&desc, &context));
  mc_stream stream = nullptr;
  mc_event event = nullptr;
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_stream_create(context, &stream));
  MC_ASSERT_OK(mc_event_create(context, &event));
  const mc_grouped_gemm_desc gemm = mctest::gemm_desc(2, 64, 128, 16);
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(context, &gemm, &plan));
  void* memory = nullptr;
  MC_ASSERT_OK(mc_malloc(context, 1024, &memory));
  EXPECT_EQ(moecutlass::Registry::instance().size(), before + 4);

  MC_ASSERT_OK(mc_context_destroy(context));
  EXPECT_EQ(moecutlass::Registry::instance().size(), before);
  MC_EXPECT_STATUS(mc_stream_synchronize(stream), MC_STATUS_INVALID_HANDLE, "not a live mc_stream");
  MC_EXPECT_STATUS(mc_event_record(event, nullptr), MC_STATUS_INVALID_HANDLE, "not a live mc_event");
  mc_grouped_gemm_plan_info info{};
  info.struct_size = sizeof info;
  MC_EXPECT_STATUS(mc_grouped_gemm_plan_get_info(plan, &info), MC_STATUS_INVALID_HANDLE,
                   "not a live mc_grouped_gemm_plan");
  MC_EXPECT_STATUS(mc_stream_destroy(stream), MC_STATUS_INVALID_HANDLE);
}

TEST(Handles, ObjectsOfAnotherContextAreAContextMismatch) {
  Context a(1), b(1);
  mc_stream stream_b = nullptr;
  mc_event event_a = nullptr, event_b = nullptr;
  MC_ASSERT_OK(mc_stream_create(b, &stream_b));
  MC_ASSERT_OK(mc_event_create(a, &event_a));
  MC_ASSERT_OK(mc_event_create(b, &event_b));
  void* buffer = a.alloc(64);
  const uint8_t pattern = 7;

  MC_EXPECT_STATUS(mc_fill_async(a, buffer, &pattern, 1, 64, stream_b), MC_STATUS_CONTEXT_MISMATCH,
                   "stream = 0x", "belongs to context");
  MC_EXPECT_STATUS(mc_memcpy_async(a, buffer, buffer, 0, MC_COPY_DEVICE_TO_DEVICE, stream_b),
                   MC_STATUS_CONTEXT_MISMATCH);
  MC_EXPECT_STATUS(mc_event_record(event_a, stream_b), MC_STATUS_CONTEXT_MISMATCH);
  MC_ASSERT_OK(mc_event_record(event_a, nullptr));
  MC_ASSERT_OK(mc_event_record(event_b, nullptr));
  float ms = -1.0f;
  MC_EXPECT_STATUS(mc_event_elapsed_ms(event_a, event_b, &ms), MC_STATUS_CONTEXT_MISMATCH, "end = 0x");
  EXPECT_EQ(ms, -1.0f);

  const mc_grouped_gemm_desc desc = mctest::gemm_desc(1, 8, 16, 4);
  mc_grouped_gemm_plan plan = nullptr;
  MC_ASSERT_OK(mc_grouped_gemm_plan_create(a, &desc, &plan));
  auto* operand = static_cast<uint8_t*>(a.alloc(4096));
  std::memset(operand, 0, 4096);
  auto* offsets = a.alloc_array<int32_t>(2);
  offsets[0] = 0;
  offsets[1] = 4;
  mc_grouped_gemm_args args{};
  args.struct_size = sizeof args;
  args.rows = 4;
  args.a = operand;
  args.a_scales = reinterpret_cast<const float*>(operand + 1024);
  args.b = operand + 2048;
  args.b_scales = reinterpret_cast<const float*>(operand + 2560);
  args.expert_offsets = offsets;
  args.d = operand + 3072;
  MC_EXPECT_STATUS(mc_grouped_gemm_run(plan, &args, stream_b), MC_STATUS_CONTEXT_MISMATCH);
  MC_ASSERT_OK(mc_grouped_gemm_run(plan, &args, nullptr));
}

TEST(Handles, ConcurrentCreateUseDestroyFromManyThreads) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        const mc_context_desc desc = mctest::cpu_desc(1);
        mc_context context = nullptr;
        mc_stream stream = nullptr;
        void* memory = nullptr;
        const uint32_t pattern = 0x01020304u;
        if (mc_context_create(&desc, &context) != MC_STATUS_OK) ++failures;
        if (mc_stream_create(context, &stream) != MC_STATUS_OK) ++failures;
        if (mc_malloc(context, 4096, &memory) != MC_STATUS_OK) ++failures;
        if (mc_fill_async(context, memory, &pattern, 4, 1024, stream) != MC_STATUS_OK) ++failures;
        if (static_cast<uint32_t*>(memory)[1023] != pattern) ++failures;
        if (mc_context_destroy(context) != MC_STATUS_OK) ++failures;
        if (mc_stream_destroy(stream) != MC_STATUS_INVALID_HANDLE) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

// Issue 14 item 7 (fuzzing): a plan created while its context was being destroyed survived the destroy (16-35 of
// 50 trials), keeping the destroyed context's threads and memory alive. A create racing a destroy must either
// fail (MC_STATUS_INVALID_HANDLE) or be destroyed with the context.
TEST(Handles, PlanCreatedWhileItsContextIsDestroyedDoesNotSurviveIt) {
  const std::size_t before = moecutlass::Registry::instance().size();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int trials = 0;
  int survivors = 0;
  int unexpected = 0;
  for (; trials < 400; ++trials) {
    if (trials >= 50 && std::chrono::steady_clock::now() >= deadline) break;
    const mc_context_desc desc = mctest::cpu_desc(1);
    mc_context context = nullptr;
    MC_ASSERT_OK(mc_context_create(&desc, &context));
    std::atomic<bool> go{false};
    std::vector<std::vector<mc_grouped_gemm_plan>> created(2);
    std::vector<std::thread> creators;
    for (std::size_t t = 0; t < created.size(); ++t) {
      creators.emplace_back([&, t] {
        while (!go.load()) std::this_thread::yield();
        const mc_grouped_gemm_desc gemm = mctest::gemm_desc(1, 16, 16, 8);
        for (int i = 0; i < 10000; ++i) {
          mc_grouped_gemm_plan plan = nullptr;
          const mc_status status = mc_grouped_gemm_plan_create(context, &gemm, &plan);
          if (status == MC_STATUS_OK) {
            created[t].push_back(plan);
          } else {
            if (status != MC_STATUS_INVALID_HANDLE) ++unexpected;
            return;  // the context is gone
          }
        }
      });
    }
    go.store(true);
    std::this_thread::sleep_for(std::chrono::microseconds(50 + 17 * (trials % 7)));
    EXPECT_EQ(mc_context_destroy(context), MC_STATUS_OK) << mctest::last_error();
    for (auto& creator : creators) creator.join();
    mc_grouped_gemm_plan_info info{};
    info.struct_size = sizeof info;
    for (const auto& plans : created) {
      for (mc_grouped_gemm_plan plan : plans) {
        if (mc_grouped_gemm_plan_get_info(plan, &info) != MC_STATUS_INVALID_HANDLE) ++survivors;
      }
    }
    if (moecutlass::Registry::instance().size() != before) {
      ADD_FAILURE() << "trial " << trials << ": " << moecutlass::Registry::instance().size() - before
                    << " handles outlived their destroyed context";
      break;
    }
  }
  EXPECT_EQ(survivors, 0) << "plans still live after their context was destroyed, over " << trials << " trials";
  EXPECT_EQ(unexpected, 0);
}

// Issue 14 item 8 (fuzzing): two threads destroying the same handle could both get MC_STATUS_OK (about 1 in
// 60,000-80,000 racing destroys). Exactly one destroy of a handle may succeed.
TEST(Handles, RacingDestroysOfOneHandleSucceedExactlyOnce) {
  Context context(1);
  // At least 3 s and at least kMinRounds rounds: under ASan, or with the other ctest job on a loaded 2-core machine,
  // 3 s can give fewer rounds (829 were seen), and the floor is what keeps the test from passing vacuously. The
  // hard limit bounds it on a machine that is slower still (the floor then fails the test with the count).
  constexpr int kMinRounds = 1000;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::seconds(3);
  const auto hard_deadline = start + std::chrono::seconds(60);
  std::atomic<mc_event> published{nullptr};
  std::atomic<int> round{0};
  std::atomic<int> racer_done{0};
  std::atomic<int> racer_ok{0};
  std::atomic<bool> stop{false};
  std::thread racer([&] {
    int seen = 0;
    for (;;) {
      int now;
      while ((now = round.load(std::memory_order_acquire)) == seen) {
        if (stop.load(std::memory_order_relaxed)) return;
        std::this_thread::yield();  // CI machines have 2 cores shared with builds: spinning starves the other side
      }
      seen = now;
      if (mc_event_destroy(published.load()) == MC_STATUS_OK) racer_ok.fetch_add(1);
      racer_done.store(now, std::memory_order_release);
    }
  });
  int rounds = 0;
  int double_ok = 0;
  int none_ok = 0;
  int main_ok = 0;
  for (auto now = start; now < deadline || (rounds < kMinRounds && now < hard_deadline);
       now = std::chrono::steady_clock::now()) {
    mc_event event = nullptr;
    MC_ASSERT_OK(mc_event_create(context, &event));
    published.store(event);
    const int ok_before = racer_ok.load();
    round.store(++rounds, std::memory_order_release);
    const bool mine = mc_event_destroy(event) == MC_STATUS_OK;
    while (racer_done.load(std::memory_order_acquire) != rounds) {
      std::this_thread::yield();
    }
    const int oks = (mine ? 1 : 0) + (racer_ok.load() - ok_before);
    main_ok += mine ? 1 : 0;
    if (oks > 1) ++double_ok;
    if (oks == 0) ++none_ok;
  }
  stop.store(true);
  racer.join();
  EXPECT_EQ(double_ok, 0) << "both destroys returned OK in " << double_ok << " of " << rounds << " rounds";
  EXPECT_EQ(none_ok, 0) << "no destroy returned OK in " << none_ok << " of " << rounds << " rounds";
  // Run until enough rounds have raced (the old registry double-succeeded in about 1 of 52 rounds), however slow a
  // loaded 2-core CI machine or the sanitizers make each round.
  EXPECT_GE(rounds, kMinRounds);
  std::printf("racing destroys: %d rounds, main thread won %d\n", rounds, main_ok);
}
