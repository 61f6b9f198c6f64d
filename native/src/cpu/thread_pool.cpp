#include "cpu/thread_pool.hpp"

#include <system_error>
#include <utility>

#include "core/error.hpp"

namespace moecutlass {

namespace {

std::mutex& starter_mutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}

ThreadPool::ThreadStarter& starter_for_testing() {
  static auto* starter = new ThreadPool::ThreadStarter();
  return *starter;
}

}  // namespace

void ThreadPool::set_thread_starter_for_testing(ThreadStarter starter) {
  std::lock_guard<std::mutex> lock(starter_mutex());
  starter_for_testing() = std::move(starter);
}

ThreadPool::ThreadPool(int threads) {
  const int workers = threads > 1 ? threads - 1 : 0;
  workers_.reserve(static_cast<std::size_t>(workers));
  ThreadStarter starter;
  {
    std::lock_guard<std::mutex> lock(starter_mutex());
    starter = starter_for_testing();
  }
  int i = 0;
  try {
    for (; i < workers; ++i) {
      if (starter) {
        workers_.push_back(starter([this] { worker_loop(); }));
      } else {
        workers_.emplace_back([this] { worker_loop(); });
      }
    }
  } catch (const std::system_error& error) {
    // A std::thread destroyed while joinable calls std::terminate: the started workers must be joined first.
    stop_workers();
    fail(MC_STATUS_OUT_OF_MEMORY, "cannot start CPU worker thread ", i + 1, " of ", workers, " (", error.what(),
         "): the process is out of threads or address space; ask for fewer (mc_context_desc.cpu_threads)");
  } catch (...) {
    stop_workers();
    throw;
  }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

void ThreadPool::drain() {
  for (;;) {
    if (failed_.load(std::memory_order_relaxed)) return;
    const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= count_) return;
    try {
      (*task_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    drain();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_workers_ == 0) done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(int64_t count, const std::function<void(int64_t)>& task) {
  if (count <= 0) return;
  std::lock_guard<std::mutex> submit(submit_mutex_);
  if (workers_.empty() || count == 1) {
    for (int64_t i = 0; i < count; ++i) task(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    count_ = count;
    next_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    busy_workers_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  drain();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_workers_ == 0; });
    task_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace moecutlass
