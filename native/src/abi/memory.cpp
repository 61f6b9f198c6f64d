// Context memory: allocation, copies and fills.
#include <cstdint>

#include "abi/common.hpp"
#include "abi/guard.hpp"
#include "core/validate.hpp"

using namespace moecutlass;

namespace {

const char* copy_kind_name(int32_t kind) {
  switch (kind) {
    case MC_COPY_HOST_TO_DEVICE: return "MC_COPY_HOST_TO_DEVICE";
    case MC_COPY_DEVICE_TO_HOST: return "MC_COPY_DEVICE_TO_HOST";
    default: return "MC_COPY_DEVICE_TO_DEVICE";
  }
}

// On a device backend, a host-side operand that lies in this context's device memory means the copy kind is wrong
// (cudaMemcpyAsync with unified addressing might silently accept it). On the CPU every kind is a host copy.
void require_not_context_memory(const Context& context, const void* pointer, int32_t kind, const char* argument) {
  if (context.backend().host_accessible_memory()) return;
  AllocationTracker::Range range;
  if (context.allocations().find(pointer, range)) {
    fail(MC_STATUS_INVALID_ARGUMENT, argument, " = ", pointer_text(pointer),
         " is device memory of this context, but kind = ", copy_kind_name(kind), " says it is host memory");
  }
}

}  // namespace

extern "C" {

MC_API mc_status mc_malloc(mc_context context, int64_t bytes, void** pointer) {
  return guard("mc_malloc", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(pointer, "pointer");
    require_range(bytes, 1, INT64_MAX, "bytes", "1 .. 2^63-1 (bytes > 0)");
    object->require_usable();
    Backend& backend = object->backend();
    void* allocation = backend.allocate(bytes);
    try {
      object->allocations().add(allocation, bytes);
    } catch (...) {
      backend.release(allocation);
      throw;
    }
    *pointer = allocation;
  });
}

MC_API mc_status mc_free(mc_context context, void* pointer) {
  return guard("mc_free", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    if (pointer == nullptr) return;
    // No usability check: releasing memory must work on a faulted context (the backend ignores device errors).
    object->allocations().remove(pointer, "pointer");
    object->backend().release(pointer);
  });
}

MC_API mc_status mc_memcpy_async(mc_context context, void* dst, const void* src, int64_t bytes, int32_t kind,
                                 mc_stream stream) {
  return guard("mc_memcpy_async", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(dst, "dst");
    require_not_null(src, "src");
    require_range(bytes, 0, INT64_MAX, "bytes", "0 .. 2^63-1");
    if (kind != MC_COPY_HOST_TO_DEVICE && kind != MC_COPY_DEVICE_TO_HOST && kind != MC_COPY_DEVICE_TO_DEVICE) {
      fail(MC_STATUS_INVALID_ARGUMENT, "kind = ", kind,
           " is not MC_COPY_HOST_TO_DEVICE (1), MC_COPY_DEVICE_TO_HOST (2) or MC_COPY_DEVICE_TO_DEVICE (3)");
    }
    std::shared_ptr<Stream> keep;
    BackendStream& queue = resolve_stream(stream, *object, keep, "stream");
    object->require_usable();
    if (kind == MC_COPY_HOST_TO_DEVICE) require_not_context_memory(*object, src, kind, "src");
    if (kind == MC_COPY_DEVICE_TO_HOST) require_not_context_memory(*object, dst, kind, "dst");
    // The device side of the copy must be this context's memory; the host side may be any host memory.
    if (kind == MC_COPY_HOST_TO_DEVICE) {
      require_context_memory(*object, dst, bytes, "dst");
      require_not_foreign_context_memory(*object, src, bytes, "src");
    } else if (kind == MC_COPY_DEVICE_TO_HOST) {
      require_not_foreign_context_memory(*object, dst, bytes, "dst");
      require_context_memory(*object, src, bytes, "src");
    } else {
      require_context_memory(*object, dst, bytes, "dst");
      require_context_memory(*object, src, bytes, "src");
    }
    if (bytes == 0) return;
    object->backend().copy(dst, src, bytes, kind, queue);
  });
}

MC_API mc_status mc_fill_async(mc_context context, void* dst, const void* value, int32_t element_size, int64_t count,
                               mc_stream stream) {
  return guard("mc_fill_async", [&] {
    std::shared_ptr<Context> object = resolve<Context>(context, "context");
    require_not_null(dst, "dst");
    require_not_null(value, "value");
    if (element_size != 1 && element_size != 2 && element_size != 4) {
      fail(MC_STATUS_INVALID_ARGUMENT, "element_size = ", element_size, " is not 1, 2 or 4");
    }
    require_range(count, 0, INT64_MAX / element_size, "count", "0 .. (2^63-1) / element_size");
    // Each element is stored whole, so dst must be aligned to it.
    require_aligned(dst, static_cast<std::size_t>(element_size), "dst", "element_size");
    std::shared_ptr<Stream> keep;
    BackendStream& queue = resolve_stream(stream, *object, keep, "stream");
    object->require_usable();
    require_context_memory(*object, dst, count * element_size, "dst");
    if (count == 0) return;
    object->backend().fill(dst, value, element_size, count, queue);
  });
}

}  // extern "C"
