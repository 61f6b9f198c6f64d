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

  // Registers the object and returns its handle value.
  std::uintptr_t add(std::shared_ptr<Object> object);
  std::shared_ptr<Object> find(std::uintptr_t handle) const;
  std::shared_ptr<Object> remove(std::uintptr_t handle);
  // Unregisters every stream, event and plan owned by `context`.
  std::vector<std::shared_ptr<Object>> remove_children_of(const Context* context);
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::uintptr_t, std::shared_ptr<Object>> objects_;
  std::uintptr_t next_id_ = 1;
};

// Resolves `handle` (a public handle type) to the object of type T, or throws:
// MC_STATUS_NULL_POINTER for NULL, MC_STATUS_INVALID_HANDLE for anything not live or of another kind.
template <class T, class Handle>
std::shared_ptr<T> resolve(Handle handle, const char* argument) {
  if (handle == nullptr) fail(MC_STATUS_NULL_POINTER, argument, " is NULL");
  std::shared_ptr<Object> object = Registry::instance().find(reinterpret_cast<std::uintptr_t>(handle));
  if (!object) {
    fail(MC_STATUS_INVALID_HANDLE, argument, " = ", pointer_text(reinterpret_cast<const void*>(handle)),
         " is not a live ", handle_type_name(T::kKind), " (destroyed, or never created by this library)");
  }
  if (object->kind() != T::kKind) {
    fail(MC_STATUS_INVALID_HANDLE, argument, " = ", pointer_text(reinterpret_cast<const void*>(handle)), " is an ",
         handle_type_name(object->kind()), ", not an ", handle_type_name(T::kKind));
  }
  return std::static_pointer_cast<T>(object);
}

template <class Handle>
Handle to_handle(const Object& object) {
  return reinterpret_cast<Handle>(object.handle());
}

}  // namespace moecutlass
