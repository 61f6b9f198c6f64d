// Context lifecycle and context-wide queries.
#include <memory>
#include <vector>

#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "core/validate.hpp"

using namespace moecutlass;

namespace {

// Upper bound for mc_context_desc.cpu_threads: far above any real machine, low enough to catch garbage values.
constexpr int32_t kMaxCpuThreads = 4096;

}  // namespace

extern "C" {

MC_API mc_status mc_context_create(const mc_context_desc* desc, mc_context* context) {
  return guard("mc_context_create", [&] {
    require_not_null(desc, "desc");
    require_struct_size(desc->struct_size, sizeof(mc_context_desc), "mc_context_desc", "desc->struct_size");
    require_not_null(context, "context");
    require_range(desc->cpu_threads, 0, kMaxCpuThreads, "desc->cpu_threads", "0 .. 4096 (0 = all hardware threads)");
    std::unique_ptr<Backend> backend;
    switch (desc->backend) {
      case MC_BACKEND_CPU:
        require_range(desc->device, 0, 0, "desc->device", "0 .. 0 (MC_BACKEND_CPU has only device 0)");
        backend = make_cpu_backend(desc->cpu_threads);
        break;
      case MC_BACKEND_CUDA:
        require_range(desc->device, 0, INT32_MAX, "desc->device", "0 .. device count - 1");
        if (!kCudaCompiledIn) fail(MC_STATUS_UNSUPPORTED, kBuiltWithoutCuda);
        backend = make_cuda_backend(desc->device);
        break;
      default:
        fail(MC_STATUS_INVALID_BACKEND, "desc->backend = ", desc->backend,
             " is not MC_BACKEND_CPU (0) or MC_BACKEND_CUDA (1)");
    }
    auto object = std::make_shared<Context>(std::move(backend));
    const auto handle = Registry::instance().add(object);
    *context = reinterpret_cast<mc_context>(handle);
  });
}

MC_API mc_status mc_context_destroy(mc_context context) {
  return guard("mc_context_destroy", [&] {
    if (context == nullptr) return;
    // Works on a faulted context too: destroying it is the documented way out. The context and its children are
    // unregistered in one step, so exactly one of two racing destroys succeeds and a stream, event, plan or graph
    // being created at the same time is either taken along or refused (Registry::add).
    std::vector<std::shared_ptr<Object>> removed =
        Registry::instance().take_context(reinterpret_cast<std::uintptr_t>(context), "context");
    // Children go first (their backend objects need the context's backend), then the context itself (last in the
    // vector). A child still in use by another thread's call keeps the context alive until that call returns.
    for (std::shared_ptr<Object>& object : removed) object.reset();
  });
}

MC_API mc_status mc_context_get_info(mc_context context, mc_context_info* info) {
  return guard("mc_context_get_info", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(info, "info");
    require_struct_size(info->struct_size, sizeof(mc_context_info), "mc_context_info", "info->struct_size");
    // Deliberately available on a faulted context: `usable` is how a caller finds out.
    const Backend& backend = object->backend();
    mc_context_info out{};
    out.struct_size = sizeof(mc_context_info);
    out.backend = backend.kind();
    out.device = backend.device();
    out.cpu_threads = backend.worker_threads();
    out.usable = object->usable() ? 1 : 0;
    out.allocated_bytes = object->allocations().live_bytes();
    out.allocation_count = object->allocations().live_count();
    *info = out;
  });
}

MC_API mc_status mc_context_query_device_errors(mc_context context, int32_t reset, int32_t* flags) {
  return guard("mc_context_query_device_errors", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(flags, "flags");
    object->require_usable();
    *flags = object->backend().query_device_errors(reset != 0);
  });
}

MC_API mc_status mc_context_synchronize(mc_context context) {
  return guard("mc_context_synchronize", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    object->require_usable();
    object->backend().synchronize();
  });
}

}  // extern "C"
