// The steps of loading an optional shared library at run time that the cuBLAS and NCCL loaders share
// (cublas/cublas_loader.cpp, nccl/nccl_loader.cpp): open a candidate, resolve entry points by name, say which file
// was loaded, and try candidates in order, collecting for each one why it was not taken. Each loader keeps what is
// its own: the candidates, the entry points, the version rule and the final message.
#pragma once

#include <dlfcn.h>

#include <functional>
#include <string>
#include <vector>

namespace moecutlass::shared_library {

// dlopen(candidate, RTLD_NOW | RTLD_LOCAL); on failure appends "\n  <candidate>: <reason>" to `error` (glibc's
// reason already starts with the file name where it has one) and returns null.
void* open(const std::string& candidate, std::string& error);

// Resolves `name` into `function`; a missing entry point is appended to `missing` ("a, b, ...").
template <class F>
void resolve(void* library, const char* name, F& function, std::string& missing) {
  function = reinterpret_cast<F>(dlsym(library, name));
  if (function == nullptr) missing += missing.empty() ? name : std::string(", ") + name;
}

// The file `symbol` was loaded from (what the dynamic loader actually found for a bare soname), else `fallback`.
std::string path_of(const void* symbol, const std::string& fallback);

// Calls load_one on each candidate in order until one succeeds; load_one appends its reason to `error` when it does
// not. Returns true (and clears `error`) on the first success; false with every candidate's reason in `error`.
bool load_first(const std::vector<std::string>& candidates,
                const std::function<bool(const std::string& candidate, std::string& error)>& load_one,
                std::string& error);

}  // namespace moecutlass::shared_library
