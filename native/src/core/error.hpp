// Status-carrying exception and the thread-local last-error message.
//
// Validators and backends report failures by throwing Error; only the ABI guard (abi/guard.hpp) catches, turns
// the exception into a status code and stores the message. Keeping the C ABI's "status + message" contract in
// one place means no entry point can forget to set or clear the message.
#pragma once

#include <cstdint>
#include <exception>
#include <sstream>
#include <string>
#include <utility>

#include "moecutlass/moecutlass.h"

namespace moecutlass {

class Error : public std::exception {
 public:
  Error(mc_status status, std::string message) : status_(status), message_(std::move(message)) {}
  mc_status status() const noexcept { return status_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  mc_status status_;
  std::string message_;
};

// Concatenates anything streamable; used to build messages only on failure paths.
template <class... Args>
std::string str(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

// Formats a pointer as 0x... consistently (iostream's %p format is implementation-defined).
std::string pointer_text(const void* pointer);

template <class... Args>
[[noreturn]] void fail(mc_status status, Args&&... args) {
  throw Error(status, str(std::forward<Args>(args)...));
}

// "MC_STATUS_OUT_OF_RANGE" etc.; nullptr for codes the header does not define.
const char* status_name(mc_status status) noexcept;

// The calling thread's last-error message. set_last_error never throws: if storing the text fails for lack of
// memory, a static fallback text is used instead.
// Stores "<function>: <message><detail>".
void set_last_error(const char* function, const char* message, const char* detail = "") noexcept;
void clear_last_error() noexcept;
const char* last_error() noexcept;

}  // namespace moecutlass
