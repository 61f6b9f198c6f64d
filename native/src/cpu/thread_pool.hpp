// Persistent worker threads owned by a CPU context.
//
// The CPU backend runs every operation to completion inside the call, spread over the context's threads; keeping
// the workers alive avoids paying thread creation on every call (conversion and quantization calls are often
// small). The calling thread works too, so a pool of size 1 has no workers and runs everything inline.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace moecutlass {

class ThreadPool {
 public:
  // Starts one worker thread running `body`; throws std::system_error when the system cannot create a thread.
  using ThreadStarter = std::function<std::thread(std::function<void()> body)>;

  // threads >= 1, counting the calling thread. When a worker cannot be started (process or address-space limits),
  // the workers already started are stopped and joined and Error(MC_STATUS_OUT_OF_MEMORY) is thrown.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(i) for every i in [0, count), returns when all are done and rethrows the first exception a task
  // threw (tasks not yet started are then skipped). Jobs from several threads run one after another.
  void parallel_for(int64_t count, const std::function<void(int64_t)>& task);

  // Test hook: pools created afterwards start their workers through `starter` instead of std::thread (an empty
  // function restores std::thread). Lets tests make thread creation fail deterministically.
  static void set_thread_starter_for_testing(ThreadStarter starter);

 private:
  void worker_loop();
  void stop_workers() noexcept;
  void drain();

  std::mutex submit_mutex_;  // one job at a time

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  uint64_t generation_ = 0;  // bumped per job; a worker joins each generation exactly once
  int busy_workers_ = 0;     // workers that have not finished the current generation
  bool stopping_ = false;
  std::exception_ptr error_;

  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t count_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<bool> failed_{false};

  std::vector<std::thread> workers_;
};

}  // namespace moecutlass
