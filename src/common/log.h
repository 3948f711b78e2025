// Structured logging: one line per event, `ts=... level=... msg="..." key=value ...`.
//
// Thread-safety: Log() may be called from any thread; lines are written whole with one write(2).
// The minimum level is process-wide (SetLogLevel), read with a relaxed atomic.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace vlake {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug|info|warn|error"; false when unknown.
bool ParseLogLevel(std::string_view text, LogLevel* out);

using LogField = std::pair<std::string_view, std::string_view>;

// Writes one structured line to stderr. Values with spaces or quotes are quoted and escaped.
void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

inline bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= static_cast<int>(GetLogLevel());
}

}  // namespace vlake
