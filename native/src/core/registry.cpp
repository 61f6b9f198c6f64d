#include "core/registry.hpp"

namespace moecutlass {

Registry& Registry::instance() {
  static Registry* registry = new Registry();
  return *registry;
}

std::uintptr_t Registry::add(std::shared_ptr<Object> object) {
  std::lock_guard<std::mutex> lock(mutex_);
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

std::shared_ptr<Object> Registry::remove(std::uintptr_t handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = objects_.find(handle);
  if (it == objects_.end()) return nullptr;
  std::shared_ptr<Object> object = std::move(it->second);
  objects_.erase(it);
  return object;
}

std::vector<std::shared_ptr<Object>> Registry::remove_children_of(const Context* context) {
  std::vector<std::shared_ptr<Object>> removed;
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = objects_.begin(); it != objects_.end();) {
    const auto* child = dynamic_cast<const ContextChild*>(it->second.get());
    if (child != nullptr && &child->context() == context) {
      removed.push_back(std::move(it->second));
      it = objects_.erase(it);
    } else {
      ++it;
    }
  }
  return removed;
}

std::size_t Registry::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return objects_.size();
}

}  // namespace moecutlass
