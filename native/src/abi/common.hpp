// Lookups shared by the entry points: resolving a stream argument against the context it must belong to.
#pragma once

#include <memory>

#include "backend.hpp"
#include "core/objects.hpp"
#include "core/registry.hpp"

namespace moecutlass {

// The backend stream for a `stream` argument: NULL means the context's default stream; otherwise the stream must
// be live (MC_STATUS_INVALID_HANDLE) and belong to `context` (MC_STATUS_CONTEXT_MISMATCH). `keep` holds the stream
// alive for the duration of the call.
BackendStream& resolve_stream(mc_stream stream, Context& context, std::shared_ptr<Stream>& keep, const char* argument);

// Throws MC_STATUS_CONTEXT_MISMATCH when `child` does not belong to `context`.
void require_same_context(const ContextChild& child, const Context& context, const char* argument,
                          const char* context_argument);

// A tensor operand that must be memory of `context` (everything the library reads or writes on the device side):
//  - inside an mc_malloc allocation of `context`: `needed_bytes` must remain from it (MC_STATUS_BUFFER_TOO_SMALL);
//  - inside an allocation of another context: MC_STATUS_INVALID_ARGUMENT;
//  - anywhere else: MC_STATUS_INVALID_ARGUMENT on a backend whose context memory is host memory (the CPU: nothing
//    but mc_malloc memory can be size-checked, and any other pointer would be written unchecked); accepted
//    unchecked on CUDA, where device memory of other libraries (cudaMalloc, PyTorch...) is documented as usable.
void require_context_memory(const Context& context, const void* pointer, int64_t needed_bytes, const char* argument);

// A host-side operand (the host end of mc_memcpy_async): size-checked when it lies in this context's memory (legal on
// the CPU backend), MC_STATUS_INVALID_ARGUMENT when it lies in another context's allocation.
void require_not_foreign_context_memory(const Context& context, const void* pointer, int64_t needed_bytes,
                                        const char* argument);

// The communicator and parallel-layer calls' preconditions after their arguments: a library built with NCCL
// (MC_STATUS_UNSUPPORTED, kBuiltWithoutNccl) and a CUDA context, since the CPU backend has no communicators
// (MC_STATUS_UNSUPPORTED naming `argument`).
void require_nccl_cuda_context(const Context& context, const char* argument);

// Copies a string into a fixed char array, truncating, always NUL-terminated.
template <std::size_t N>
void copy_text(char (&out)[N], const char* text) {
  std::size_t i = 0;
  for (; i + 1 < N && text[i] != '\0'; ++i) out[i] = text[i];
  for (; i < N; ++i) out[i] = '\0';
}

}  // namespace moecutlass
