// Process-wide table of live handles.
//
// Handles are opaque numbers issued from a counter, not object addresses: the library never dereferences what a
// caller passes in, and a destroyed handle can never alias a newer object (an address could be reused). Every
// entry point resolves its handles here first, so a destroyed, never-created or wrong-kind handle yields
// MC_STATUS_INVALID_HANDLE instead of a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/error.hpp"
#include "core/objects.hpp"

namespace moecutlass {

class Registry {
 public:
  // Intentionally never destroyed: objects a caller leaks stay valid until exit instead of being torn down by
  // static destructors after the CUDA runtime (or worker threads) may already be gone.
  static Registry& instance();

  // Registers the object and returns its handle value. A stream, event, plan or graph is registered only while
  // its context still is: a create that races mc_context_destroy either finishes first (and the destroy takes
  // the new object with the context) or fails with MC_STATUS_INVALID_HANDLE (and the caller's reference, the
  // last one, destroys the object).
  std::uintptr_t add(std::shared_ptr<Object> object);
  std::shared_ptr<Object> find(std::uintptr_t handle) const;
  // Unregisters the live object of `kind` at `handle` and hands it over; exactly one of any number of concurrent
  // destroys of one handle gets it, the others fail like resolve (MC_STATUS_INVALID_HANDLE). Throws, removing
  // nothing, for a handle of another kind.
  std::shared_ptr<Object> take(std::uintptr_t handle, HandleKind kind, const char* argument);
  // take() for a context, together with every stream, event, plan and graph it owns, in one step. The context
  // comes last in the vector, so destroying the elements in order releases the children first.
  std::vector<std::shared_ptr<Object>> take_context(std::uintptr_t handle, const char* argument);
  std::size_t size() const;

 private:
  std::shared_ptr<Object> take_locked(std::uintptr_t handle, HandleKind kind, const char* argument);

  mutable std::mutex mutex_;
  std::unordered_map<std::uintptr_t, std::shared_ptr<Object>> objects_;
  std::uintptr_t next_id_ = 1;
};

// Resolves `handle` (a public handle type) to the object of type T, or throws:
// MC_STATUS_NULL_POINTER for NULL, MC_STATUS_INVALID_HANDLE for anything not live or of another kind.
// The MC_STATUS_INVALID_HANDLE failures of resolve and Registry::take.
[[noreturn]] void fail_not_live(std::uintptr_t handle, HandleKind kind, const char* argument);
[[noreturn]] void fail_wrong_kind(std::uintptr_t handle, HandleKind actual, HandleKind expected, const char* argument);

template <class T, class Handle>
std::shared_ptr<T> resolve(Handle handle, const char* argument) {
  if (handle == nullptr) fail(MC_STATUS_NULL_POINTER, argument, " is NULL");
  const auto value = reinterpret_cast<std::uintptr_t>(handle);
  std::shared_ptr<Object> object = Registry::instance().find(value);
  if (!object) fail_not_live(value, T::kKind, argument);
  if (object->kind() != T::kKind) fail_wrong_kind(value, object->kind(), T::kKind, argument);
  return std::static_pointer_cast<T>(object);
}

// The destroy half of resolve: unregisters the handle (exactly once, see Registry::take) and returns the object,
// whose last reference the caller then drops. NULL is rejected here; destroy functions treat it as a no-op first.
template <class T, class Handle>
std::shared_ptr<T> take(Handle handle, const char* argument) {
  if (handle == nullptr) fail(MC_STATUS_NULL_POINTER, argument, " is NULL");
  return std::static_pointer_cast<T>(
      Registry::instance().take(reinterpret_cast<std::uintptr_t>(handle), T::kKind, argument));
}

template <class Handle>
Handle to_handle(const Object& object) {
  return reinterpret_cast<Handle>(object.handle());
}

}  // namespace moecutlass
