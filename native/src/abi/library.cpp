// Library-level entry points: ABI version, build identity, last error, status names, struct layouts.
#include <cstdio>
#include <cstring>

#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "backend.hpp"
#include "core/struct_layout.hpp"
#include "core/validate.hpp"
#include "moecutlass_build_config.hpp"

using namespace moecutlass;

extern "C" {

MC_API mc_status mc_get_abi_version(int32_t* abi_version) {
  return guard("mc_get_abi_version", [&] {
    require_not_null(abi_version, "abi_version");
    *abi_version = MC_ABI_VERSION;
  });
}

MC_API mc_status mc_get_build_info(mc_build_info* info) {
  return guard("mc_get_build_info", [&] {
    require_not_null(info, "info");
    require_struct_size(info->struct_size, sizeof(mc_build_info), "mc_build_info", "info->struct_size");
    mc_build_info out{};
    out.struct_size = sizeof(mc_build_info);
    out.abi_version = MC_ABI_VERSION;
    out.version_major = MOECUTLASS_VERSION_MAJOR;
    out.version_minor = MOECUTLASS_VERSION_MINOR;
    out.version_patch = MOECUTLASS_VERSION_PATCH;
    out.has_cuda = kCudaCompiledIn ? 1 : 0;
    // SemVer build metadata: "0.1.0+<commit>" when the commit is known.
    const char* commit = MOECUTLASS_GIT_COMMIT;
    std::snprintf(out.version, sizeof out.version, "%s%s%s", MOECUTLASS_VERSION_STRING, commit[0] ? "+" : "",
                  commit);
    copy_text(out.git_commit, commit);
    copy_text(out.cuda_architectures, kCudaCompiledIn ? MOECUTLASS_CUDA_ARCHITECTURES : "");
    const char* cuda_compiler = MOECUTLASS_CUDA_COMPILER;
    std::snprintf(out.compiler, sizeof out.compiler, "%s%s%s", MOECUTLASS_CXX_COMPILER,
                  kCudaCompiledIn && cuda_compiler[0] ? ", " : "", kCudaCompiledIn ? cuda_compiler : "");
    std::memcpy(info, &out, sizeof out);
  });
}

// Not guarded like the others: reading the message must not clear it, and nothing here can throw.
MC_API mc_status mc_get_last_error(const char** message) {
  if (message == nullptr) {
    set_last_error("mc_get_last_error", "message is NULL");
    return MC_STATUS_NULL_POINTER;
  }
  *message = last_error();
  return MC_STATUS_OK;
}

MC_API mc_status mc_status_name(mc_status status, const char** name) {
  return guard("mc_status_name", [&] {
    require_not_null(name, "name");
    const char* text = status_name(status);
    if (text == nullptr) fail(MC_STATUS_INVALID_ARGUMENT, "status = ", status, " is not an MC_STATUS_* code");
    *name = text;
  });
}

MC_API mc_status mc_get_struct_layout(const char* struct_name, const char* field_name, int64_t* value) {
  return guard("mc_get_struct_layout", [&] {
    require_not_null(struct_name, "struct_name");
    require_not_null(value, "value");
    const StructLayoutEntry* entry = find_struct_layout(struct_name, field_name);
    if (entry == nullptr) {
      if (find_struct_layout(struct_name, nullptr) == nullptr) {
        fail(MC_STATUS_INVALID_ARGUMENT, "struct_name = \"", struct_name, "\" is not a public struct of moecutlass.h");
      }
      fail(MC_STATUS_INVALID_ARGUMENT, "field_name = \"", field_name, "\" is not a field of ", struct_name);
    }
    *value = entry->value;
  });
}

}  // extern "C"
