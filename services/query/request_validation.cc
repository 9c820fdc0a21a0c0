#include "services/query/request_validation.h"

#include "absl/strings/str_cat.h"
#include "audit/json.h"
#include "audit/rfc3339.h"
#include "audit/utf8.h"

namespace audit::query {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::Status CheckString(absl::string_view field, absl::string_view value) {
  if (value.size() > kMaxFilterStringBytes) {
    return Invalid(field, absl::StrCat("longer than ", kMaxFilterStringBytes, " bytes"));
  }
  if (!IsValidUtf8(value)) return Invalid(field, "not valid UTF-8");
  if (value.find('\0') != absl::string_view::npos) return Invalid(field, "contains a NUL");
  return absl::OkStatus();
}

absl::Status CheckTimestamp(const google::protobuf::Timestamp& t, absl::string_view field) {
  if (t.seconds() < kMinTimestampSeconds || t.seconds() > kMaxTimestampSeconds || t.nanos() < 0 ||
      t.nanos() > 999'999'999) {
    return Invalid(field, "timestamp out of range 0001-01-01..9999-12-31");
  }
  return absl::OkStatus();
}

bool Before(const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
  return a.seconds() < b.seconds() || (a.seconds() == b.seconds() && a.nanos() < b.nanos());
}

absl::Status CheckList(absl::string_view field,
                       const google::protobuf::RepeatedPtrField<std::string>& values) {
  if (values.size() > kMaxFilterValues) {
    return Invalid(field, absl::StrCat("more than ", kMaxFilterValues, " values"));
  }
  for (int i = 0; i < values.size(); ++i) {
    if (values[i].empty()) return Invalid(absl::StrCat(field, "[", i, "]"), "empty");
    if (absl::Status s = CheckString(absl::StrCat(field, "[", i, "]"), values[i]); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

std::string Path(absl::string_view prefix, absl::string_view field) {
  return prefix.empty() ? std::string(field) : absl::StrCat(prefix, ".", field);
}

}  // namespace

absl::Status ValidateTimeRange(const v1::TimeRange& range, absl::string_view field) {
  if (range.has_start()) {
    if (absl::Status s = CheckTimestamp(range.start(), Path(field, "start")); !s.ok()) return s;
  }
  if (range.has_end()) {
    if (absl::Status s = CheckTimestamp(range.end(), Path(field, "end")); !s.ok()) return s;
  }
  if (range.has_start() && range.has_end() && !Before(range.start(), range.end())) {
    return Invalid(field, "start must be before end");
  }
  return absl::OkStatus();
}

absl::Status ValidateFilter(const v1::EventFilter& f, absl::string_view field) {
  const std::pair<const char*, const std::string*> strings[] = {
      {"subject", &f.subject()},
      {"correlation_id", &f.correlation_id()},
      {"actor", &f.actor()},
      {"tenant", &f.tenant()},
  };
  for (const auto& [name, value] : strings) {
    if (absl::Status s = CheckString(Path(field, name), *value); !s.ok()) return s;
  }
  if (absl::Status s = CheckList(Path(field, "types"), f.types()); !s.ok()) return s;
  if (absl::Status s = CheckList(Path(field, "sources"), f.sources()); !s.ok()) return s;
  if (absl::Status s = ValidateTimeRange(f.occurred(), Path(field, "occurred")); !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateTimeRange(f.recorded(), Path(field, "recorded")); !s.ok()) {
    return s;
  }
  if (!f.data_contains().empty()) {
    const std::string path = Path(field, "data_contains");
    if (f.data_contains().size() > kMaxDataContainsBytes) {
      return Invalid(path, absl::StrCat("longer than ", kMaxDataContainsBytes, " bytes"));
    }
    absl::StatusOr<JsonValue> json = ParseJson(f.data_contains());
    if (!json.ok()) return Invalid(path, absl::StrCat("not valid JSON: ", json.status().message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PageSize(int32_t requested, int default_size, absl::string_view field) {
  if (requested == 0) return default_size;
  if (requested < 0 || requested > kMaxPageSize) {
    return Invalid(field, absl::StrCat("must be between 1 and ", kMaxPageSize, " (or 0 for ",
                                       default_size, "), got ", requested));
  }
  return requested;
}

absl::Status Validate(const v1::GetEventRequest& r) {
  switch (r.lookup_case()) {
    case v1::GetEventRequest::kPosition:
      if (r.position() <= 0) return Invalid("position", "must be positive");
      return absl::OkStatus();
    case v1::GetEventRequest::kKey:
      if (r.key().source().empty()) return Invalid("key.source", "required");
      if (r.key().id().empty()) return Invalid("key.id", "required");
      if (absl::Status s = CheckString("key.source", r.key().source()); !s.ok()) return s;
      return CheckString("key.id", r.key().id());
    case v1::GetEventRequest::LOOKUP_NOT_SET:
      break;
  }
  return Invalid("lookup", "set either position or key");
}

absl::Status Validate(const v1::ListEventsRequest& r) {
  if (absl::Status s = ValidateFilter(r.filter(), "filter"); !s.ok()) return s;
  if (!v1::Order_IsValid(r.order())) {
    return Invalid("order", absl::StrCat("unknown value ", r.order()));
  }
  return PageSize(r.page_size(), kDefaultPageSize, "page_size").status();
}

absl::Status Validate(const v1::GetSubjectHistoryRequest& r) {
  if (r.subject().empty()) return Invalid("subject", "required");
  if (absl::Status s = CheckString("subject", r.subject()); !s.ok()) return s;
  if (r.has_as_of()) {
    if (absl::Status s = CheckTimestamp(r.as_of(), "as_of"); !s.ok()) return s;
  }
  return PageSize(r.page_size(), kMaxPageSize, "page_size").status();
}

absl::Status Validate(const v1::ReplayEventsRequest& r) {
  if (r.start_case() == v1::ReplayEventsRequest::kAfterPosition && r.after_position() < 0) {
    return Invalid("after_position", "must not be negative");
  }
  if (r.start_case() == v1::ReplayEventsRequest::kFromRecordedTime) {
    if (absl::Status s = CheckTimestamp(r.from_recorded_time(), "from_recorded_time"); !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = ValidateFilter(r.filter(), "filter"); !s.ok()) return s;
  if (r.with_proofs() && r.follow()) {
    return Invalid("with_proofs",
                   "cannot be combined with follow: proofs are against a fixed checkpoint (replay "
                   "with proofs up to it, then follow from its tree size)");
  }
  if (r.with_proofs() && r.has_filter() && r.filter().ByteSizeLong() > 0) {
    return Invalid("with_proofs",
                   "cannot be combined with a filter: a proven range holds every event in it");
  }
  if (r.max_events_per_frame() < 0 || r.max_events_per_frame() > kMaxFrameEvents) {
    return Invalid("max_events_per_frame",
                   absl::StrCat("must be between 1 and ", kMaxFrameEvents, " (or 0 for ",
                                kDefaultFrameEvents, "), got ", r.max_events_per_frame()));
  }
  return absl::OkStatus();
}

absl::Status Validate(const v1::GetStatisticsRequest& r) {
  if (absl::Status s = ValidateTimeRange(r.occurred(), "occurred"); !s.ok()) return s;
  return ValidateTimeRange(r.recorded(), "recorded");
}

absl::Status Validate(const v1::ListDeadLettersRequest& r) {
  if (!v1::ErrorClass_IsValid(r.error_class())) {
    return Invalid("error_class", absl::StrCat("unknown value ", r.error_class()));
  }
  if (absl::Status s = ValidateTimeRange(r.received(), "received"); !s.ok()) return s;
  return PageSize(r.page_size(), kDefaultPageSize, "page_size").status();
}

}  // namespace audit::query
