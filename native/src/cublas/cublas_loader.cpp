#include "cublas/cublas_loader.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "core/error.hpp"
#include "core/shared_library.hpp"

#if defined(MOECUTLASS_WITH_CUDA) && __has_include(<cublas_v2.h>)
#include <cublas_v2.h>
static_assert(moecutlass::cublas::kSuccess == CUBLAS_STATUS_SUCCESS);
static_assert(moecutlass::cublas::kOpN == CUBLAS_OP_N && moecutlass::cublas::kOpT == CUBLAS_OP_T);
static_assert(moecutlass::cublas::kR16BF == CUDA_R_16BF);
static_assert(moecutlass::cublas::kCompute32F == CUBLAS_COMPUTE_32F);
static_assert(moecutlass::cublas::kGemmDefault == CUBLAS_GEMM_DEFAULT);
#endif

namespace moecutlass {
namespace cublas {

namespace {

constexpr const char* kSonames[] = {"libcublas.so.13", "libcublas.so.12"};

// libraryPropertyType: MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL.
using GetProperty = Status (*)(int, int*);

using shared_library::resolve;

// Opens one candidate; on failure appends "candidate: reason" to `error` and closes what it opened.
bool load_one(const std::string& candidate, Api& api, std::string& error) {
  void* library = shared_library::open(candidate, error);
  if (library == nullptr) return false;
  Api loaded;
  GetProperty get_property = nullptr;
  std::string missing;
  resolve(library, "cublasGetProperty", get_property, missing);
  resolve(library, "cublasCreate_v2", loaded.create, missing);
  resolve(library, "cublasDestroy_v2", loaded.destroy, missing);
  resolve(library, "cublasSetStream_v2", loaded.set_stream, missing);
  resolve(library, "cublasSetWorkspace_v2", loaded.set_workspace, missing);
  resolve(library, "cublasGetStatusString", loaded.status_string, missing);
  resolve(library, "cublasGemmGroupedBatchedEx", loaded.gemm_grouped_batched_ex, missing);
  resolve(library, "cublasGemmEx", loaded.gemm_ex, missing);
  int major = 0, minor = 0, patch = 0;
  if (get_property != nullptr) {
    if (get_property(0, &major) != kSuccess || get_property(1, &minor) != kSuccess ||
        get_property(2, &patch) != kSuccess) {
      major = minor = patch = 0;
    }
  }
  loaded.version = major * 10000 + minor * 100 + patch;
  const std::string version_text =
      std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  if (get_property == nullptr) {
    error += "\n  " + candidate + ": not cuBLAS (it lacks cublasGetProperty)";
  } else if (loaded.version < kMinimumVersion) {
    error += "\n  " + candidate + ": cuBLAS " + version_text +
             " is older than 12.5, the first with cublasGemmGroupedBatchedEx";
  } else if (!missing.empty()) {
    error += "\n  " + candidate + ": cuBLAS " + version_text + " lacks " + missing;
  } else {
    loaded.path = shared_library::path_of(reinterpret_cast<const void*>(loaded.create), candidate);
    api = loaded;
    return true;  // stays loaded for the life of the process
  }
  dlclose(library);
  return false;
}

}  // namespace

std::vector<std::string> default_candidates() {
  std::vector<std::string> candidates;
  for (const char* soname : kSonames) candidates.emplace_back(soname);
  const char* cuda_home = std::getenv("CUDA_HOME");
  for (const std::string& directory :
       {cuda_home != nullptr && *cuda_home != '\0' ? std::string(cuda_home) + "/lib64" : std::string(),
        std::string("/usr/local/cuda/lib64")}) {
    if (directory.empty()) continue;
    for (const char* soname : kSonames) candidates.push_back(directory + "/" + soname);
  }
  return candidates;
}

bool try_load(const std::vector<std::string>& candidates, Api& api, std::string& error) {
  const auto load = [&api](const std::string& candidate, std::string& reasons) {
    return load_one(candidate, api, reasons);
  };
  if (shared_library::load_first(candidates, load, error)) return true;
  error = "no usable cuBLAS (the cublas strategy needs libcublas 12.5 or later, loaded at run time); tried:" + error;
  return false;
}

const Api& api() {
  static std::once_flag once;
  static Api loaded;
  static bool ok = false;
  static std::string error;
  std::call_once(once, [] { ok = try_load(default_candidates(), loaded, error); });
  if (!ok) fail(MC_STATUS_UNSUPPORTED, error);
  return loaded;
}

}  // namespace cublas
}  // namespace moecutlass
