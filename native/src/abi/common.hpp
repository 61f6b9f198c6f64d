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

// Copies a string into a fixed char array, truncating, always NUL-terminated.
template <std::size_t N>
void copy_text(char (&out)[N], const char* text) {
  std::size_t i = 0;
  for (; i + 1 < N && text[i] != '\0'; ++i) out[i] = text[i];
  for (; i < N; ++i) out[i] = '\0';
}

}  // namespace moecutlass
