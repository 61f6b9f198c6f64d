#include "core/allocation_tracker.hpp"

#include <set>

#include "core/error.hpp"

namespace moecutlass {

namespace {

// Every live tracker, for owned_elsewhere. Lock order: this mutex, then a tracker's own mutex (a tracker never
// takes this one while holding its own). Intentionally leaked, like the handle registry.
std::mutex& trackers_mutex() {
  static auto* mutex = new std::mutex();
  return *mutex;
}

std::set<const AllocationTracker*>& trackers() {
  static auto* all = new std::set<const AllocationTracker*>();
  return *all;
}

}  // namespace

AllocationTracker::AllocationTracker() {
  std::lock_guard<std::mutex> lock(trackers_mutex());
  trackers().insert(this);
}

AllocationTracker::~AllocationTracker() {
  std::lock_guard<std::mutex> lock(trackers_mutex());
  trackers().erase(this);
}

bool AllocationTracker::owned_elsewhere(const void* pointer) const {
  const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(pointer);
  std::lock_guard<std::mutex> lock(trackers_mutex());
  for (const AllocationTracker* tracker : trackers()) {
    if (tracker == this) continue;
    Range range;
    std::lock_guard<std::mutex> tracker_lock(tracker->mutex_);
    if (tracker->find_locked(address, range)) return true;
  }
  return false;
}

void AllocationTracker::add(void* base, int64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  allocations_.emplace(reinterpret_cast<std::uintptr_t>(base), bytes);
  live_bytes_ += bytes;
}

bool AllocationTracker::find_locked(std::uintptr_t address, Range& range) const {
  // The candidate is the allocation with the greatest base <= address.
  auto it = allocations_.upper_bound(address);
  if (it == allocations_.begin()) return false;
  --it;
  const std::uintptr_t end = it->first + static_cast<std::uintptr_t>(it->second);
  if (address >= end) return false;
  range.base = it->first;
  range.bytes = it->second;
  return true;
}

bool AllocationTracker::find(const void* pointer, Range& range) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return find_locked(reinterpret_cast<std::uintptr_t>(pointer), range);
}

int64_t AllocationTracker::remove(const void* base, const char* argument) {
  std::lock_guard<std::mutex> lock(mutex_);
  const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(base);
  auto it = allocations_.find(address);
  if (it == allocations_.end()) {
    Range range;
    if (find_locked(address, range)) {
      fail(MC_STATUS_INVALID_ARGUMENT, argument, " = ", pointer_text(base), " points into the allocation at ",
           pointer_text(reinterpret_cast<const void*>(range.base)),
           " of this context but is not its start; pass the pointer mc_malloc returned");
    }
    fail(MC_STATUS_INVALID_ARGUMENT, argument, " = ", pointer_text(base),
         " was not allocated by mc_malloc on this context (or was already freed)");
  }
  const int64_t bytes = it->second;
  allocations_.erase(it);
  live_bytes_ -= bytes;
  return bytes;
}

void AllocationTracker::check(const void* pointer, int64_t needed_bytes, const char* argument) const {
  check_if_owned(pointer, needed_bytes, argument);
}

bool AllocationTracker::check_if_owned(const void* pointer, int64_t needed_bytes, const char* argument) const {
  Range range;
  const std::uintptr_t address = reinterpret_cast<std::uintptr_t>(pointer);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!find_locked(address, range)) return false;
  }
  const int64_t available = static_cast<int64_t>(range.base + static_cast<std::uintptr_t>(range.bytes) - address);
  if (needed_bytes > available) {
    fail(MC_STATUS_BUFFER_TOO_SMALL, argument, " = ", pointer_text(pointer), " needs ", needed_bytes,
         " bytes, but only ", available, " bytes remain from it to the end of its mc_malloc allocation (",
         range.bytes, " bytes at ", pointer_text(reinterpret_cast<const void*>(range.base)), ")");
  }
  return true;
}

int64_t AllocationTracker::live_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return live_bytes_;
}

int64_t AllocationTracker::live_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(allocations_.size());
}

std::vector<AllocationTracker::Range> AllocationTracker::take_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Range> all;
  all.reserve(allocations_.size());
  for (const auto& [base, bytes] : allocations_) all.push_back(Range{base, bytes});
  allocations_.clear();
  live_bytes_ = 0;
  return all;
}

}  // namespace moecutlass
