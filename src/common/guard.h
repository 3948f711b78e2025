// Exception fences for thread entries and callbacks (style rule 8: exceptions never cross a
// thread entry, an event-loop callback or a completion handler). Library code may throw
// (std::bad_alloc, std::system_error from std::thread, a FAISS error); these turn that into a
// log line or a Status, so the process stays up and the caller learns what failed.
//
// Thread-safety: stateless.
#pragma once

#include <exception>
#include <string>

#include "common/log.h"
#include "common/status.h"

namespace vlake {

// Runs fn(); an exception is logged with `where` and swallowed. False when one was caught.
template <typename Fn>
bool RunGuarded(const char* where, Fn&& fn) noexcept {
  try {
    fn();
    return true;
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "exception caught", {{"in", where}, {"error", e.what()}});
  } catch (...) {
    Log(LogLevel::kError, "exception caught", {{"in", where}});
  }
  return false;
}

// Returns fn() (a Status or a Result<T>); an exception becomes kInternal naming `where`.
template <typename Fn>
auto GuardedCall(const char* where, Fn&& fn) noexcept -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string(where) + " threw: " + e.what());
  } catch (...) {
    return Status(Code::kInternal, std::string(where) + " threw");
  }
}

}  // namespace vlake
