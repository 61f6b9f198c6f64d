// The catch-all wrapper every exported function runs its body in: no C++ exception may cross the C ABI.
//
//   return guard("mc_malloc", [&] { ...; });
//
// The body signals failure by throwing moecutlass::Error (validators do); the guard turns it into the status code
// and stores "<function>: <message>" as the thread's last error. Any other exception is a library bug and becomes
// MC_STATUS_INTERNAL (std::bad_alloc: MC_STATUS_OUT_OF_MEMORY). On success the last error is cleared.
// A body may return an mc_status to report a non-failure status (MC_STATUS_NOT_READY).
#pragma once

#include <new>
#include <type_traits>
#include <utility>

#include "core/error.hpp"
#include "moecutlass/moecutlass.h"

namespace moecutlass {

template <class Body>
mc_status guard(const char* function, Body&& body) noexcept {
  try {
    mc_status status = MC_STATUS_OK;
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
    } else {
      status = body();
    }
    clear_last_error();
    return status;
  } catch (const Error& error) {
    set_last_error(function, error.what());
    return error.status();
  } catch (const std::bad_alloc&) {
    set_last_error(function, "out of host memory");
    return MC_STATUS_OUT_OF_MEMORY;
  } catch (const std::exception& error) {
    set_last_error(function, "internal error: ", error.what());
    return MC_STATUS_INTERNAL;
  } catch (...) {
    set_last_error(function, "internal error: unknown exception");
    return MC_STATUS_INTERNAL;
  }
}

}  // namespace moecutlass
