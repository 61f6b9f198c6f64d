#include "core/error.hpp"

#include <cinttypes>
#include <cstdio>

namespace moecutlass {

std::string pointer_text(const void* pointer) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "0x%" PRIxPTR, reinterpret_cast<std::uintptr_t>(pointer));
  return buffer;
}

const char* status_name(mc_status status) noexcept {
  switch (status) {
    case MC_STATUS_OK: return "MC_STATUS_OK";
    case MC_STATUS_NULL_POINTER: return "MC_STATUS_NULL_POINTER";
    case MC_STATUS_OUT_OF_RANGE: return "MC_STATUS_OUT_OF_RANGE";
    case MC_STATUS_MISALIGNED: return "MC_STATUS_MISALIGNED";
    case MC_STATUS_INVALID_DTYPE: return "MC_STATUS_INVALID_DTYPE";
    case MC_STATUS_INVALID_STRATEGY: return "MC_STATUS_INVALID_STRATEGY";
    case MC_STATUS_INVALID_BACKEND: return "MC_STATUS_INVALID_BACKEND";
    case MC_STATUS_INVALID_HANDLE: return "MC_STATUS_INVALID_HANDLE";
    case MC_STATUS_CONTEXT_MISMATCH: return "MC_STATUS_CONTEXT_MISMATCH";
    case MC_STATUS_INVALID_OFFSETS: return "MC_STATUS_INVALID_OFFSETS";
    case MC_STATUS_BUFFER_TOO_SMALL: return "MC_STATUS_BUFFER_TOO_SMALL";
    case MC_STATUS_INVALID_STRUCT_SIZE: return "MC_STATUS_INVALID_STRUCT_SIZE";
    case MC_STATUS_INVALID_ARGUMENT: return "MC_STATUS_INVALID_ARGUMENT";
    case MC_STATUS_NOT_READY: return "MC_STATUS_NOT_READY";
    case MC_STATUS_BUSY: return "MC_STATUS_BUSY";
    case MC_STATUS_UNSUPPORTED: return "MC_STATUS_UNSUPPORTED";
    case MC_STATUS_NO_DEVICE: return "MC_STATUS_NO_DEVICE";
    case MC_STATUS_OUT_OF_MEMORY: return "MC_STATUS_OUT_OF_MEMORY";
    case MC_STATUS_DEVICE_FAULT: return "MC_STATUS_DEVICE_FAULT";
    case MC_STATUS_CUDA_ERROR: return "MC_STATUS_CUDA_ERROR";
    case MC_STATUS_INTERNAL: return "MC_STATUS_INTERNAL";
    default: return nullptr;
  }
}

namespace {

struct LastError {
  std::string text;
  // Points into `text`, or at a static string when `text` could not be stored.
  const char* view = "";
};

LastError& last_error_slot() noexcept {
  thread_local LastError slot;
  return slot;
}

}  // namespace

void set_last_error(const char* function, const char* message, const char* detail) noexcept {
  LastError& slot = last_error_slot();
  try {
    slot.text.assign(function);
    slot.text.append(": ");
    slot.text.append(message);
    slot.text.append(detail);
    slot.view = slot.text.c_str();
  } catch (...) {
    slot.view = "MoeCutlass: the error message could not be stored (out of host memory)";
  }
}

void clear_last_error() noexcept {
  LastError& slot = last_error_slot();
  slot.text.clear();  // keeps capacity: no allocation on the success path
  slot.view = "";
}

const char* last_error() noexcept { return last_error_slot().view; }

}  // namespace moecutlass
