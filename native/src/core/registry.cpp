#include "core/registry.hpp"

namespace moecutlass {

Registry& Registry::instance() {
  static Registry* registry = new Registry();
  return *registry;
}

void fail_not_live(std::uintptr_t handle, HandleKind kind, const char* argument) {
  fail(MC_STATUS_INVALID_HANDLE, argument, " = ", pointer_text(reinterpret_cast<const void*>(handle)),
       " is not a live ", handle_type_name(kind), " (destroyed, or never created by this library)");
}

void fail_wrong_kind(std::uintptr_t handle, HandleKind actual, HandleKind expected, const char* argument) {
  fail(MC_STATUS_INVALID_HANDLE, argument, " = ", pointer_text(reinterpret_cast<const void*>(handle)), " is an ",
       handle_type_name(actual), ", not an ", handle_type_name(expected));
}

std::uintptr_t Registry::add(std::shared_ptr<Object> object) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (const auto* child = dynamic_cast<const ContextChild*>(object.get())) {
    // Checked under the same lock take_context holds while it collects the children: a child is either
    // registered before its context is taken (and taken with it) or refused here.
    const Context& context = child->context();
    auto it = objects_.find(context.handle());
    if (it == objects_.end() || it->second.get() != &context) {
      fail(MC_STATUS_INVALID_HANDLE, "context ", pointer_text(reinterpret_cast<const void*>(context.handle())),
           " was destroyed while this ", handle_type_name(object->kind()), " was being created");
    }
  }
  // Shifted so handles look like aligned pointers to debuggers and interop code, and are never NULL.
  const std::uintptr_t handle = next_id_++ << 4;
  object->set_handle(handle);
  objects_.emplace(handle, std::move(object));
  return handle;
}

std::shared_ptr<Object> Registry::find(std::uintptr_t handle) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = objects_.find(handle);
  return it == objects_.end() ? nullptr : it->second;
}

std::shared_ptr<Object> Registry::take_locked(std::uintptr_t handle, HandleKind kind, const char* argument) {
  auto it = objects_.find(handle);
  if (it == objects_.end()) fail_not_live(handle, kind, argument);
  if (it->second->kind() != kind) fail_wrong_kind(handle, it->second->kind(), kind, argument);
  std::shared_ptr<Object> object = std::move(it->second);
  objects_.erase(it);
  return object;
}

std::shared_ptr<Object> Registry::take(std::uintptr_t handle, HandleKind kind, const char* argument) {
  std::lock_guard<std::mutex> lock(mutex_);
  return take_locked(handle, kind, argument);
}

std::vector<std::shared_ptr<Object>> Registry::take_context(std::uintptr_t handle, const char* argument) {
  std::vector<std::shared_ptr<Object>> removed;
  std::lock_guard<std::mutex> lock(mutex_);
  std::shared_ptr<Object> context = take_locked(handle, HandleKind::Context, argument);
  for (auto it = objects_.begin(); it != objects_.end();) {
    const auto* child = dynamic_cast<const ContextChild*>(it->second.get());
    if (child != nullptr && &child->context() == context.get()) {
      removed.push_back(std::move(it->second));
      it = objects_.erase(it);
    } else {
      ++it;
    }
  }
  removed.push_back(std::move(context));
  return removed;
}

std::size_t Registry::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return objects_.size();
}

}  // namespace moecutlass
