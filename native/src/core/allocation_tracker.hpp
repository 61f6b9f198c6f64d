// Live mc_malloc allocations of one context, so that a pointer into library memory can be checked against the
// bytes a tensor needs (MC_STATUS_BUFFER_TOO_SMALL) before anything is launched. Every live tracker is also listed
// process-wide, so a pointer into another context's allocation can be recognised and rejected (owned_elsewhere);
// whether a pointer no context knows is acceptable is the caller's policy (abi/common.hpp: require_context_memory).
//
// The check runs on every launch, so it is one ordered-map search under an uncontended mutex (well under a
// microsecond), never a scan.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace moecutlass {

class AllocationTracker {
 public:
  struct Range {
    std::uintptr_t base = 0;
    int64_t bytes = 0;
  };

  AllocationTracker();
  ~AllocationTracker();
  AllocationTracker(const AllocationTracker&) = delete;
  AllocationTracker& operator=(const AllocationTracker&) = delete;

  void add(void* base, int64_t bytes);
  // Removes the allocation that starts exactly at `base`; throws MC_STATUS_INVALID_ARGUMENT otherwise (unknown
  // pointer, double free, or a pointer into the middle of an allocation). Returns its size.
  int64_t remove(const void* base, const char* argument);
  // When `pointer` lies inside a tracked allocation, requires `needed_bytes` from it to the allocation's end.
  void check(const void* pointer, int64_t needed_bytes, const char* argument) const;
  // Like check, but returns false (and checks nothing) when `pointer` is not inside an allocation of this tracker.
  bool check_if_owned(const void* pointer, int64_t needed_bytes, const char* argument) const;
  // true when `pointer` lies inside an allocation of another live tracker (another context's memory).
  bool owned_elsewhere(const void* pointer) const;
  // The allocation containing `pointer`, if any.
  bool find(const void* pointer, Range& range) const;

  int64_t live_bytes() const;
  int64_t live_count() const;
  // Empties the tracker and hands back every allocation (context destruction frees them).
  std::vector<Range> take_all();

 private:
  bool find_locked(std::uintptr_t address, Range& range) const;

  mutable std::mutex mutex_;
  std::map<std::uintptr_t, int64_t> allocations_;  // base -> bytes
  int64_t live_bytes_ = 0;
};

}  // namespace moecutlass
