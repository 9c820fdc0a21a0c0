// RFC 3339 timestamps (CloudEvents `time`), strict, with PostgreSQL-compatible range.
#ifndef CLIENTS_CPP_AUDIT_RFC3339_H_
#define CLIENTS_CPP_AUDIT_RFC3339_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/timestamp.pb.h"

namespace audit {

// Parses "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" ('T' and 'Z' in either case; years
// 0001-9999; a leap second :60 counts as the next second, as PostgreSQL does). Fractions of
// any length are accepted; digits past nanoseconds are dropped. Errors are InvalidArgument
// naming what is wrong, e.g. "month 13 out of range".
absl::StatusOr<google::protobuf::Timestamp> ParseRfc3339(absl::string_view text);

// Formats in UTC with 'Z': no fraction when whole seconds, else 6 or 9 digits.
std::string FormatRfc3339(const google::protobuf::Timestamp& ts);

// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z since the Unix epoch.
inline constexpr int64_t kMinTimestampSeconds = -62135596800;
inline constexpr int64_t kMaxTimestampSeconds = 253402300799;

// Microseconds since the Unix epoch (nanoseconds truncated toward the past).
int64_t ToUnixMicros(const google::protobuf::Timestamp& ts);
google::protobuf::Timestamp FromUnixMicros(int64_t micros);

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_RFC3339_H_
