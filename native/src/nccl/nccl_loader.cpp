#include "nccl/nccl_loader.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "core/error.hpp"
#include "core/shared_library.hpp"

// A build configured with NCCL (MOECUTLASS_NCCL=ON, or AUTO with nccl.h found) checks the declared constants
// against the header; the header is never needed otherwise.
#if defined(MOECUTLASS_WITH_NCCL) && MOECUTLASS_WITH_NCCL && __has_include(<nccl.h>)
#include <nccl.h>
static_assert(moecutlass::nccl::kSuccess == ncclSuccess);
static_assert(moecutlass::nccl::kUint8 == ncclUint8);
static_assert(moecutlass::nccl::kFloat32 == ncclFloat32);
static_assert(moecutlass::nccl::kSum == ncclSum);
static_assert(moecutlass::nccl::kUniqueIdBytes == NCCL_UNIQUE_ID_BYTES);
static_assert(sizeof(moecutlass::nccl::UniqueId) == sizeof(ncclUniqueId));
static_assert(sizeof(moecutlass::nccl::Result) == sizeof(ncclResult_t));
static_assert(sizeof(moecutlass::nccl::DataType) == sizeof(ncclDataType_t));
static_assert(sizeof(moecutlass::nccl::RedOp) == sizeof(ncclRedOp_t));
#endif

namespace moecutlass {
namespace nccl {

namespace {

constexpr const char* kSoname = "libnccl.so.2";

using shared_library::resolve;

// Opens one candidate; on failure appends "candidate: reason" to `error` and closes what it opened.
bool load_one(const std::string& candidate, Api& api, std::string& error) {
  void* library = shared_library::open(candidate, error);
  if (library == nullptr) return false;
  Api loaded;
  std::string missing;
  resolve(library, "ncclGetVersion", loaded.get_version, missing);
  resolve(library, "ncclGetUniqueId", loaded.get_unique_id, missing);
  resolve(library, "ncclCommInitRank", loaded.comm_init_rank, missing);
  resolve(library, "ncclCommInitAll", loaded.comm_init_all, missing);
  resolve(library, "ncclCommDestroy", loaded.comm_destroy, missing);
  resolve(library, "ncclAllReduce", loaded.all_reduce, missing);
  resolve(library, "ncclAllGather", loaded.all_gather, missing);
  resolve(library, "ncclReduceScatter", loaded.reduce_scatter, missing);
  resolve(library, "ncclGroupStart", loaded.group_start, missing);
  resolve(library, "ncclGroupEnd", loaded.group_end, missing);
  resolve(library, "ncclGetErrorString", loaded.error_string, missing);
  int version = 0;
  if (loaded.get_version != nullptr && loaded.get_version(&version) != kSuccess) version = 0;
  loaded.version = version;
  if (loaded.get_version == nullptr) {
    error += "\n  " + candidate + ": not NCCL (it lacks ncclGetVersion)";
  } else if (version < kMinimumVersion) {
    error += "\n  " + candidate + ": NCCL " + version_text(version) + " is older than 2.18, the oldest supported";
  } else if (!missing.empty()) {
    error += "\n  " + candidate + ": NCCL " + version_text(version) + " lacks " + missing;
  } else {
    loaded.path = shared_library::path_of(reinterpret_cast<const void*>(loaded.get_version), candidate);
    api = loaded;
    return true;  // stays loaded for the life of the process
  }
  dlclose(library);
  return false;
}

}  // namespace

std::string version_text(int version) {
  return std::to_string(version / 10000) + "." + std::to_string(version / 100 % 100) + "." +
         std::to_string(version % 100);
}

std::vector<std::string> default_candidates() {
  std::vector<std::string> candidates{kSoname};
  const char* nccl_home = std::getenv("NCCL_HOME");
  if (nccl_home != nullptr && *nccl_home != '\0') candidates.push_back(std::string(nccl_home) + "/lib/" + kSoname);
#if defined(MOECUTLASS_NCCL_LIBRARY_DIR)
  const std::string built_with = std::string(MOECUTLASS_NCCL_LIBRARY_DIR) + "/" + kSoname;
  bool listed = false;
  for (const std::string& candidate : candidates) listed = listed || candidate == built_with;
  if (!listed) candidates.push_back(built_with);
#endif
  return candidates;
}

bool try_load(const std::vector<std::string>& candidates, Api& api, std::string& error) {
  const auto load = [&api](const std::string& candidate, std::string& reasons) {
    return load_one(candidate, api, reasons);
  };
  if (shared_library::load_first(candidates, load, error)) return true;
  error = "no usable NCCL (the parallel MoE layer needs libnccl.so.2, NCCL 2.18 or later, loaded at run time; set "
          "NCCL_HOME or the loader's path); tried:" + error;
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

void check(const Api& api, Result result, const char* call) {
  if (result == kSuccess) return;
  const char* text = api.error_string != nullptr ? api.error_string(result) : nullptr;
  fail(MC_STATUS_CUDA_ERROR, call, " failed: ", text != nullptr ? text : "unknown NCCL error", " (ncclResult_t ",
       result, ")");
}

}  // namespace nccl
}  // namespace moecutlass
