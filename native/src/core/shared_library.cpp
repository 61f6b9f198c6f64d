#include "core/shared_library.hpp"

namespace moecutlass::shared_library {

void* open(const std::string& candidate, std::string& error) {
  dlerror();
  void* library = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    const std::string reason = why != nullptr ? why : "not found";
    error += "\n  " + (reason.rfind(candidate, 0) == 0 ? reason : candidate + ": " + reason);
  }
  return library;
}

std::string path_of(const void* symbol, const std::string& fallback) {
  Dl_info info{};
  return dladdr(symbol, &info) != 0 && info.dli_fname != nullptr ? std::string(info.dli_fname) : fallback;
}

bool load_first(const std::vector<std::string>& candidates,
                const std::function<bool(const std::string& candidate, std::string& error)>& load_one,
                std::string& error) {
  error.clear();
  for (const std::string& candidate : candidates) {
    if (load_one(candidate, error)) {
      error.clear();
      return true;
    }
  }
  return false;
}

}  // namespace moecutlass::shared_library
