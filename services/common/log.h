// Structured logs: one JSON object per line on stderr.
//
//   LogInfo("batch committed").With("events", 500).With("topic", topic);
//
// emits, when the temporary is destroyed,
//   {"ts":"2026-11-26T10:00:00.123456Z","level":"info","component":"ingestor",
//    "msg":"batch committed","events":500,"topic":"orders.events"}
// Values are escaped; strings that are not valid UTF-8 are rendered with \x escapes, so a
// hostile value can never break the line. Thread-safe: each line is written with one write().
#ifndef SERVICES_COMMON_LOG_H_
#define SERVICES_COMMON_LOG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace audit {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Process-wide settings; call once at start-up, before other threads log.
void SetLogComponent(absl::string_view component);
void SetMinLogLevel(LogLevel level);
// Parses "debug", "info", "warning" or "error".
bool ParseLogLevel(absl::string_view text, LogLevel* level);

class LogLine {
 public:
  LogLine(LogLevel level, absl::string_view message);
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;
  ~LogLine();

  LogLine& With(absl::string_view key, absl::string_view value);
  LogLine& With(absl::string_view key, const char* value) {
    return With(key, absl::string_view(value));
  }
  LogLine& With(absl::string_view key, const std::string& value) {
    return With(key, absl::string_view(value));
  }
  LogLine& With(absl::string_view key, int64_t value);
  LogLine& With(absl::string_view key, int value) { return With(key, int64_t{value}); }
  LogLine& With(absl::string_view key, uint64_t value);
  LogLine& With(absl::string_view key, double value);
  LogLine& With(absl::string_view key, bool value);
  LogLine& With(absl::string_view key, absl::Duration value);
  // Adds "error" (the message) and "code".
  LogLine& With(const absl::Status& status);

 private:
  void Key(absl::string_view key);
  bool enabled_;
  std::string line_;
};

inline LogLine LogDebug(absl::string_view m) { return LogLine(LogLevel::kDebug, m); }
inline LogLine LogInfo(absl::string_view m) { return LogLine(LogLevel::kInfo, m); }
inline LogLine LogWarning(absl::string_view m) { return LogLine(LogLevel::kWarning, m); }
inline LogLine LogError(absl::string_view m) { return LogLine(LogLevel::kError, m); }

}  // namespace audit

#endif  // SERVICES_COMMON_LOG_H_
