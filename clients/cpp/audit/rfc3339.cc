#include "audit/rfc3339.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace audit {
namespace {

bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

class Cursor {
 public:
  explicit Cursor(absl::string_view s) : s_(s) {}
  bool Digits(int n, int* out) {
    if (s_.size() - pos_ < static_cast<size_t>(n)) return false;
    int v = 0;
    for (int i = 0; i < n; ++i) {
      const char c = s_[pos_ + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    pos_ += n;
    *out = v;
    return true;
  }
  bool Char(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool CharAnyCase(char upper) { return Char(upper) || Char(static_cast<char>(upper - 'A' + 'a')); }
  bool AtEnd() const { return pos_ == s_.size(); }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void Advance() { ++pos_; }

 private:
  absl::string_view s_;
  size_t pos_ = 0;
};

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("not an RFC 3339 timestamp: ", what));
}

}  // namespace

absl::StatusOr<google::protobuf::Timestamp> ParseRfc3339(absl::string_view text) {
  Cursor c(text);
  int year, month, day, hour, minute, second;
  if (!c.Digits(4, &year) || !c.Char('-') || !c.Digits(2, &month) || !c.Char('-') ||
      !c.Digits(2, &day)) {
    return Bad("expected YYYY-MM-DD");
  }
  if (!c.CharAnyCase('T')) return Bad("expected 'T' between date and time");
  if (!c.Digits(2, &hour) || !c.Char(':') || !c.Digits(2, &minute) || !c.Char(':') ||
      !c.Digits(2, &second)) {
    return Bad("expected HH:MM:SS");
  }
  int64_t nanos = 0;
  if (c.Char('.')) {
    int digits = 0;
    while (c.Peek() >= '0' && c.Peek() <= '9') {
      if (digits < 9) nanos = nanos * 10 + (c.Peek() - '0');
      ++digits;
      c.Advance();
    }
    if (digits == 0) return Bad("expected digits after '.'");
    for (int i = digits; i < 9; ++i) nanos *= 10;
  }
  int offset_minutes = 0;
  if (!c.CharAnyCase('Z')) {
    const char sign = c.Peek();
    if (sign != '+' && sign != '-') return Bad("expected 'Z' or a +HH:MM/-HH:MM offset");
    c.Advance();
    int oh, om;
    if (!c.Digits(2, &oh) || !c.Char(':') || !c.Digits(2, &om)) {
      return Bad("expected a +HH:MM/-HH:MM offset");
    }
    if (oh > 23 || om > 59) return Bad("offset out of range");
    offset_minutes = (oh * 60 + om) * (sign == '-' ? -1 : 1);
  }
  if (!c.AtEnd()) return Bad("unexpected characters after the timestamp");
  if (year < 1) return Bad("year 0000 out of range");
  if (month < 1 || month > 12) return Bad(absl::StrCat("month ", month, " out of range"));
  if (day < 1 || day > DaysInMonth(year, month)) {
    return Bad(absl::StrCat("day ", day, " out of range for month ", month));
  }
  if (hour > 23) return Bad(absl::StrCat("hour ", hour, " out of range"));
  if (minute > 59) return Bad(absl::StrCat("minute ", minute, " out of range"));
  if (second > 60) return Bad(absl::StrCat("second ", second, " out of range"));
  const int64_t seconds = DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
                          second - offset_minutes * 60;
  if (seconds < kMinTimestampSeconds || seconds > kMaxTimestampSeconds) {
    return Bad("out of range 0001-01-01..9999-12-31 UTC");
  }
  google::protobuf::Timestamp ts;
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(nanos));
  return ts;
}

std::string FormatRfc3339(const google::protobuf::Timestamp& ts) {
  const int64_t secs = ts.seconds();
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  int64_t y;
  int m, d;
  CivilFromDays(days, &y, &m, &d);
  std::string out = absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d", y, m, d, rem / 3600,
                                    (rem / 60) % 60, rem % 60);
  if (ts.nanos() != 0) {
    if (ts.nanos() % 1000 == 0) {
      absl::StrAppendFormat(&out, ".%06d", ts.nanos() / 1000);
    } else {
      absl::StrAppendFormat(&out, ".%09d", ts.nanos());
    }
  }
  out.push_back('Z');
  return out;
}

int64_t ToUnixMicros(const google::protobuf::Timestamp& ts) {
  return ts.seconds() * 1'000'000 + ts.nanos() / 1000;
}

google::protobuf::Timestamp FromUnixMicros(int64_t micros) {
  int64_t secs = micros / 1'000'000;
  int64_t rem = micros % 1'000'000;
  if (rem < 0) {
    rem += 1'000'000;
    --secs;
  }
  google::protobuf::Timestamp ts;
  ts.set_seconds(secs);
  ts.set_nanos(static_cast<int32_t>(rem * 1000));
  return ts;
}

}  // namespace audit
