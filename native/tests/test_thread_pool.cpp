// The CPU backend's persistent thread pool: every index runs exactly once, exceptions propagate and leave the
// pool usable, concurrent submitters are serialized.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/registry.hpp"
#include "cpu/thread_pool.hpp"
#include "test_support.hpp"

using moecutlass::ThreadPool;

TEST(ThreadPool, RunsEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t count : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(count));
      pool.parallel_for(count, [&](int64_t i) { hits[static_cast<std::size_t>(i)]++; });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
  }
}

TEST(ThreadPool, UsesSeveralThreads) {
  ThreadPool pool(3);
  std::atomic<int> running{0}, peak{0};
  pool.parallel_for(64, [&](int64_t) {
    const int now = ++running;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    --running;
  });
  EXPECT_GT(peak.load(), 1);
}

TEST(ThreadPool, PropagatesTheFirstExceptionAndStaysUsable) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(100,
                                 [&](int64_t i) {
                                   if (i == 37) throw std::runtime_error("task 37 failed");
                                 }),
               std::runtime_error);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(100, [&](int64_t i) { sum += i; });
  EXPECT_EQ(sum.load(), 4950);
}

TEST(ThreadPool, ConcurrentSubmittersAreSerialized) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> submitters;
  for (int s = 0; s < 4; ++s) {
    submitters.emplace_back([&] {
      for (int round = 0; round < 20; ++round) pool.parallel_for(50, [&](int64_t i) { total += i; });
    });
  }
  for (auto& t : submitters) t.join();
  EXPECT_EQ(total.load(), 4 * 20 * 1225);
}

namespace {

// Makes the next pools' thread creation fail after `allowed` workers, as pthread_create does under RLIMIT_NPROC or
// RLIMIT_AS; counts the workers that were started and that finished (were stopped) again.
struct FailingThreadStarter {
  explicit FailingThreadStarter(int allowed) {
    ThreadPool::set_thread_starter_for_testing([this, allowed](std::function<void()> body) {
      if (started.load() >= allowed) {
        throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again),
                                "pthread_create (test)");
      }
      ++started;
      return std::thread([this, body = std::move(body)] {
        body();
        ++finished;
      });
    });
  }
  ~FailingThreadStarter() { ThreadPool::set_thread_starter_for_testing(nullptr); }
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
};

}  // namespace

// Issue 14 item 6 (fuzzing): a worker thread that could not be created left the started ones joinable, and
// std::thread's destructor called std::terminate (exit 134). The pool must stop and join them and throw.
TEST(ThreadPool, WorkerThatCannotStartStopsTheOthersAndThrowsOutOfMemory) {
  FailingThreadStarter starter(2);
  try {
    ThreadPool pool(6);
    FAIL() << "expected the pool constructor to throw";
  } catch (const moecutlass::Error& error) {
    EXPECT_EQ(error.status(), MC_STATUS_OUT_OF_MEMORY);
    EXPECT_NE(std::string(error.what()).find("cannot start CPU worker thread 3 of 5"), std::string::npos)
        << error.what();
  }
  EXPECT_EQ(starter.started.load(), 2);
  EXPECT_EQ(starter.finished.load(), 2);  // joined, not abandoned
}

TEST(ThreadPool, ContextCreateReturnsOutOfMemoryWhenAWorkerThreadCannotStart) {
  const std::size_t handles_before = moecutlass::Registry::instance().size();
  {
    FailingThreadStarter starter(3);
    const mc_context_desc desc = mctest::cpu_desc(8);
    mc_context context = nullptr;
    MC_EXPECT_STATUS(mc_context_create(&desc, &context), MC_STATUS_OUT_OF_MEMORY, "mc_context_create: ",
                     "cannot start CPU worker thread 4 of 7", "cpu_threads");
    EXPECT_EQ(context, nullptr);  // nothing written
    EXPECT_EQ(starter.started.load(), 3);
    EXPECT_EQ(starter.finished.load(), 3);
  }
  EXPECT_EQ(moecutlass::Registry::instance().size(), handles_before);  // nothing registered
  // Thread creation works again: the same request succeeds.
  mctest::Context context(8);
  mc_context_info info{};
  info.struct_size = sizeof info;
  MC_ASSERT_OK(mc_context_get_info(context, &info));
  EXPECT_EQ(info.cpu_threads, 8);
}
