// The platform's CloudEvents profile: which envelopes are valid, and their normal form.
//
// Both sides use these rules: the producer helper checks an event before sending it, and the
// ingestor applies them to every Kafka message, dead-lettering what fails with the error's
// class. docs/API.md lists every rule and limit.
#ifndef CLIENTS_CPP_AUDIT_ENVELOPE_H_
#define CLIENTS_CPP_AUDIT_ENVELOPE_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "audit/v1/event.pb.h"

namespace audit {

// Why an input was rejected. The names are the `error_class` values of audit.dead_letters.
enum class ErrorClass {
  kNone,
  kUndecodable,       // not a decodable envelope in any accepted encoding
  kMissingAttribute,  // a required attribute is absent or empty
  kInvalidAttribute,  // an attribute is present but malformed
  kInvalidTime,       // `time` is not a valid RFC 3339 timestamp in range
  kInvalidData,       // JSON content type but the data is not valid JSON (or out of range)
  kOversized,         // the message exceeds the configured size limit
  kConflict,          // same (source, id) as a stored event, different content
  kRejectedByStore,   // the database refused this one event (after isolating it)
};

absl::string_view ErrorClassName(ErrorClass c);

// Returns an InvalidArgument status carrying `c` (as a payload) and `message`.
absl::Status EnvelopeError(ErrorClass c, absl::string_view message);

// The class carried by `status`; kNone for OK or for a status without one.
ErrorClass ErrorClassOf(const absl::Status& status);

// Limits of the profile. Attribute values are counted in bytes. 1 KiB keeps any indexed pair
// (source + id, subject, correlation id) well under PostgreSQL's btree row limit (~2.7 KB), so
// the database never refuses an event the rules accepted.
inline constexpr size_t kMaxAttributeBytes = 1024;
inline constexpr size_t kMaxExtensionNameBytes = 64;
inline constexpr size_t kMaxExtensions = 64;

// Validates `event` against the profile and rewrites it in normal form, in place:
//  - required: id, source, type, spec_version == "1.0", subject, time;
//  - every string valid UTF-8 with no NUL and at most kMaxAttributeBytes;
//  - source a URI-reference, data_schema an absolute URI, data_content_type a media type,
//    traceparent W3C Trace Context, sequence <= 2^63-1, extension names [a-z0-9]+ not
//    shadowing a named attribute;
//  - time truncated to microseconds (what the store keeps);
//  - data: empty data is no data; with a JSON content type the data must be valid JSON and
//    becomes text_data in canonical form (audit/json.h); otherwise it becomes binary_data.
// Errors: InvalidArgument naming the attribute, with an ErrorClass payload.
// Idempotent: normalising a normalised event changes nothing.
absl::Status NormalizeEvent(v1::Event* event);

// True if `name` is a valid CloudEvents attribute name (lowercase a-z, 0-9, non-empty).
bool IsValidAttributeName(absl::string_view name);

// True if `event` has data the store keeps as JSON (after NormalizeEvent).
inline bool HasJsonData(const v1::Event& event) {
  return event.data_case() == v1::Event::kTextData;
}

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_ENVELOPE_H_
