// Validation of AuditService requests. Every failure is INVALID_ARGUMENT and names the field
// by its path in the request, e.g. "filter.occurred: start must be before end".
// Pure and thread-safe; fuzzed by //tests/fuzz (never crashes on any input).
#ifndef SERVICES_QUERY_REQUEST_VALIDATION_H_
#define SERVICES_QUERY_REQUEST_VALIDATION_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "audit/v1/audit_service.pb.h"

namespace audit::query {

inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;
inline constexpr int kDefaultFrameEvents = 500;
inline constexpr int kMaxFrameEvents = 5000;
inline constexpr int kMaxFilterValues = 100;
inline constexpr size_t kMaxFilterStringBytes = 1024;
inline constexpr size_t kMaxDataContainsBytes = 64 * 1024;

absl::Status ValidateTimeRange(const v1::TimeRange& range, absl::string_view field);
absl::Status ValidateFilter(const v1::EventFilter& filter, absl::string_view field);

// The page size to use: `requested` if in 1..kMaxPageSize, `default_size` if 0.
absl::StatusOr<int> PageSize(int32_t requested, int default_size, absl::string_view field);

absl::Status Validate(const v1::GetEventRequest& r);
absl::Status Validate(const v1::ListEventsRequest& r);
absl::Status Validate(const v1::GetSubjectHistoryRequest& r);
absl::Status Validate(const v1::ReplayEventsRequest& r);
absl::Status Validate(const v1::GetStatisticsRequest& r);
absl::Status Validate(const v1::ListDeadLettersRequest& r);

}  // namespace audit::query

#endif  // SERVICES_QUERY_REQUEST_VALIDATION_H_
