// CloudEvents encodings of v1::Event: JSON structured mode, Kafka binary mode, and the binary
// protobuf envelope. Parsers return events that still need NormalizeEvent(); their errors are
// InvalidArgument with an ErrorClass payload (audit/envelope.h). Writers take normalised
// events. All functions are thread-safe.
#ifndef CLIENTS_CPP_AUDIT_CLOUDEVENTS_H_
#define CLIENTS_CPP_AUDIT_CLOUDEVENTS_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "audit/v1/event.pb.h"

namespace audit {

// Content types that select an encoding (Kafka header `content-type`).
inline constexpr absl::string_view kStructuredJsonContentType =
    "application/cloudevents+json; charset=UTF-8";
inline constexpr absl::string_view kProtobufContentType = "application/protobuf";

// A Kafka message header; `value` is nullopt for a null header value.
struct HeaderView {
  absl::string_view key;
  std::optional<absl::string_view> value;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// CloudEvents JSON format (structured mode): a JSON object with the context attributes as
// members, `data` (any JSON value) or `data_base64`, and extensions as further members.
// A `data` member without `datacontenttype` means application/json, which is made explicit.
absl::StatusOr<v1::Event> ParseStructuredJson(absl::string_view json);

// Writes a normalised event as a CloudEvents JSON document (compact, one line): JSON data
// inline as `data`, other data as `data_base64`.
std::string ToStructuredJson(const v1::Event& event);

// CloudEvents Kafka protocol binding, binary mode: attributes in `ce_<name>` headers,
// datacontenttype in `content-type`, data in the message value (nullopt = no value).
absl::StatusOr<v1::Event> ParseBinaryMode(absl::Span<const HeaderView> headers,
                                          std::optional<absl::string_view> value);

// Writes a normalised event in binary mode. The Kafka key should be the event's subject.
void ToBinaryMode(const v1::Event& event, Headers* headers, std::string* value);

// The binary protobuf envelope (serialised v1::Event). Unknown fields are rejected: they
// would be silently dropped by the store.
absl::StatusOr<v1::Event> ParseProtobufEnvelope(absl::string_view bytes);
// The same into `*event`, replacing its contents (a reused event keeps its strings' buffers).
absl::Status ParseProtobufEnvelopeInto(absl::string_view bytes, v1::Event* event);

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_CLOUDEVENTS_H_
