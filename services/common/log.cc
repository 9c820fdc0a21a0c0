#include "services/common/log.h"

#include <unistd.h>

#include <atomic>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "audit/json.h"
#include "audit/utf8.h"

namespace audit {
namespace {

std::atomic<int> min_level{static_cast<int>(LogLevel::kInfo)};
std::string* component = new std::string("audit");

constexpr absl::string_view kLevelNames[] = {"debug", "info", "warning", "error"};

void AppendSafeString(absl::string_view value, std::string* out) {
  if (IsValidUtf8(value)) {
    AppendJsonString(value, out);
  } else {
    // QuoteForMessage yields printable ASCII/UTF-8 with \x escapes; bound generously.
    std::string quoted = QuoteForMessage(value, 4096);
    AppendJsonString(absl::string_view(quoted).substr(1, quoted.size() - 2), out);
  }
}

}  // namespace

void SetLogComponent(absl::string_view c) { *component = std::string(c); }
void SetMinLogLevel(LogLevel level) { min_level = static_cast<int>(level); }

bool ParseLogLevel(absl::string_view text, LogLevel* level) {
  for (int i = 0; i < 4; ++i) {
    if (text == kLevelNames[i]) {
      *level = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

LogLine::LogLine(LogLevel level, absl::string_view message)
    : enabled_(static_cast<int>(level) >= min_level.load(std::memory_order_relaxed)) {
  if (!enabled_) return;
  line_.reserve(256);
  absl::StrAppend(&line_, "{\"ts\":\"",
                  absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()),
                  "\",\"level\":\"", kLevelNames[static_cast<int>(level)], "\",\"component\":");
  AppendSafeString(*component, &line_);
  line_.append(",\"msg\":");
  AppendSafeString(message, &line_);
}

LogLine::~LogLine() {
  if (!enabled_) return;
  line_.append("}\n");
  const char* p = line_.data();
  size_t left = line_.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void LogLine::Key(absl::string_view key) {
  line_.push_back(',');
  AppendSafeString(key, &line_);
  line_.push_back(':');
}

LogLine& LogLine::With(absl::string_view key, absl::string_view value) {
  if (!enabled_) return *this;
  Key(key);
  AppendSafeString(value, &line_);
  return *this;
}

LogLine& LogLine::With(absl::string_view key, int64_t value) {
  if (!enabled_) return *this;
  Key(key);
  absl::StrAppend(&line_, value);
  return *this;
}

LogLine& LogLine::With(absl::string_view key, uint64_t value) {
  if (!enabled_) return *this;
  Key(key);
  absl::StrAppend(&line_, value);
  return *this;
}

LogLine& LogLine::With(absl::string_view key, double value) {
  if (!enabled_) return *this;
  Key(key);
  if (std::isfinite(value)) {
    absl::StrAppend(&line_, value);
  } else {
    line_.append("null");
  }
  return *this;
}

LogLine& LogLine::With(absl::string_view key, bool value) {
  if (!enabled_) return *this;
  Key(key);
  line_.append(value ? "true" : "false");
  return *this;
}

LogLine& LogLine::With(absl::string_view key, absl::Duration value) {
  return With(absl::StrCat(key, "_ms"), absl::ToDoubleMilliseconds(value));
}

LogLine& LogLine::With(const absl::Status& status) {
  if (!enabled_) return *this;
  With("code", absl::StatusCodeToString(status.code()));
  return With("error", status.message());
}

}  // namespace audit
