#include "audit/cloudevents.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "audit/envelope.h"
#include "audit/json.h"
#include "audit/rfc3339.h"
#include "audit/utf8.h"
#include "google/protobuf/unknown_field_set.h"

namespace audit {
namespace {

absl::Status Undecodable(absl::string_view why) {
  return EnvelopeError(ErrorClass::kUndecodable, why);
}

absl::Status InvalidAttr(absl::string_view name, absl::string_view why) {
  return EnvelopeError(ErrorClass::kInvalidAttribute,
                       absl::StrCat("attribute '", name, "': ", why));
}

absl::Status SetTime(absl::string_view value, v1::Event* event) {
  absl::StatusOr<google::protobuf::Timestamp> ts = ParseRfc3339(value);
  if (!ts.ok()) {
    return EnvelopeError(ErrorClass::kInvalidTime,
                         absl::StrCat("attribute 'time': ", ts.status().message(), " (got ",
                                      QuoteForMessage(value), ")"));
  }
  *event->mutable_time() = *ts;
  return absl::OkStatus();
}

absl::Status SetSequence(absl::string_view value, v1::Event* event) {
  uint64_t seq = 0;
  if (value.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(value[0])) ||
      !absl::SimpleAtoi(value, &seq)) {
    return InvalidAttr(
        "sequence", absl::StrCat("expected a non-negative integer, got ", QuoteForMessage(value)));
  }
  event->set_sequence(seq);
  return absl::OkStatus();
}

// Assigns a string attribute by its CloudEvents name. Returns false if `name` is not one of
// the named attributes (it is then an extension).
bool SetNamedString(absl::string_view name, std::string value, v1::Event* e) {
  if (name == "id") {
    e->set_id(std::move(value));
  } else if (name == "source") {
    e->set_source(std::move(value));
  } else if (name == "type") {
    e->set_type(std::move(value));
  } else if (name == "specversion") {
    e->set_spec_version(std::move(value));
  } else if (name == "subject") {
    e->set_subject(std::move(value));
  } else if (name == "datacontenttype") {
    e->set_data_content_type(std::move(value));
  } else if (name == "dataschema") {
    e->set_data_schema(std::move(value));
  } else if (name == "correlationid") {
    e->set_correlation_id(std::move(value));
  } else if (name == "causationid") {
    e->set_causation_id(std::move(value));
  } else if (name == "actor") {
    e->set_actor(std::move(value));
  } else if (name == "tenant") {
    e->set_tenant(std::move(value));
  } else if (name == "traceparent") {
    e->set_traceparent(std::move(value));
  } else {
    return false;
  }
  return true;
}

// Sets attribute `name` from its string form (binary-mode header or JSON string member).
absl::Status SetAttribute(absl::string_view name, std::string value, v1::Event* event) {
  if (name == "time") return SetTime(value, event);
  if (name == "sequence") return SetSequence(value, event);
  if (SetNamedString(name, value, event)) return absl::OkStatus();
  if (!IsValidAttributeName(name)) {
    return InvalidAttr(QuoteForMessage(name), "names must be lowercase a-z and 0-9");
  }
  (*event->mutable_extensions())[std::string(name)] = std::move(value);
  return absl::OkStatus();
}

// True for the attributes v1::Event has a field for (everything but extensions).
bool IsNamedAttribute(absl::string_view name) {
  static constexpr absl::string_view kNamed[] = {
      "id",    "source",          "type",        "specversion",   "subject",
      "time",  "datacontenttype", "dataschema",  "correlationid", "causationid",
      "actor", "tenant",          "traceparent", "sequence"};
  for (absl::string_view n : kNamed) {
    if (n == name) return true;
  }
  return false;
}

void AddMember(absl::string_view name, absl::string_view value, bool* first, std::string* out) {
  if (value.empty()) return;
  out->append(*first ? "{" : ",");
  *first = false;
  AppendJsonString(name, out);
  out->push_back(':');
  AppendJsonString(value, out);
}

}  // namespace

absl::StatusOr<v1::Event> ParseStructuredJson(absl::string_view json) {
  absl::StatusOr<JsonValue> doc = ParseJson(json);
  if (!doc.ok()) {
    return Undecodable(absl::StrCat("not a CloudEvents JSON document: ", doc.status().message()));
  }
  if (!doc->is_object()) return Undecodable("not a CloudEvents JSON document: not an object");
  if (doc->HasDuplicateKeys()) {
    return Undecodable("CloudEvents JSON document has a duplicate member");
  }
  v1::Event event;
  const JsonValue* data = nullptr;
  const JsonValue* data_base64 = nullptr;
  for (const auto& [name, value] : doc->members) {
    if (name == "data") {
      data = &value;
      continue;
    }
    if (name == "data_base64") {
      data_base64 = &value;
      continue;
    }
    switch (value.type) {
      case JsonValue::Type::kNull:
        continue;  // an attribute set to null is absent
      case JsonValue::Type::kString:
        if (absl::Status s = SetAttribute(name, value.scalar, &event); !s.ok()) return s;
        continue;
      case JsonValue::Type::kNumber:
        // CloudEvents Integer: `sequence` and extensions; the canonical string form is the
        // decimal text.
        if (name == "sequence" || !IsNamedAttribute(name)) {
          if (absl::Status s = SetAttribute(name, value.scalar, &event); !s.ok()) return s;
          continue;
        }
        break;
      case JsonValue::Type::kBool:
        if (!IsNamedAttribute(name)) {
          if (absl::Status s = SetAttribute(name, value.boolean ? "true" : "false", &event);
              !s.ok()) {
            return s;
          }
          continue;
        }
        break;
      case JsonValue::Type::kArray:
      case JsonValue::Type::kObject:
        break;
    }
    return InvalidAttr(QuoteForMessage(name), "must be a string");
  }
  if (data != nullptr && data->type == JsonValue::Type::kNull) data = nullptr;
  if (data_base64 != nullptr && data_base64->type == JsonValue::Type::kNull) {
    data_base64 = nullptr;
  }
  if (data != nullptr && data_base64 != nullptr) {
    return EnvelopeError(ErrorClass::kInvalidData, "both 'data' and 'data_base64' are present");
  }
  if (data_base64 != nullptr) {
    if (!data_base64->is_string()) {
      return EnvelopeError(ErrorClass::kInvalidData, "'data_base64' must be a string");
    }
    std::string bytes;
    if (!absl::Base64Unescape(data_base64->scalar, &bytes)) {
      return EnvelopeError(ErrorClass::kInvalidData, "'data_base64' is not valid base64");
    }
    event.set_binary_data(std::move(bytes));
  } else if (data != nullptr) {
    if (event.data_content_type().empty()) event.set_data_content_type("application/json");
    if (IsJsonMediaType(event.data_content_type())) {
      event.set_text_data(CanonicalJson(*data));
    } else if (data->is_string()) {
      event.set_binary_data(data->scalar);
    } else {
      return EnvelopeError(ErrorClass::kInvalidData,
                           "'data' must be a string when datacontenttype is not JSON");
    }
  }
  return event;
}

std::string ToStructuredJson(const v1::Event& e) {
  std::string out;
  out.reserve(256 + e.text_data().size() + e.binary_data().size() * 4 / 3);
  bool first = true;
  AddMember("specversion", e.spec_version(), &first, &out);
  AddMember("id", e.id(), &first, &out);
  AddMember("source", e.source(), &first, &out);
  AddMember("type", e.type(), &first, &out);
  AddMember("subject", e.subject(), &first, &out);
  if (e.has_time()) AddMember("time", FormatRfc3339(e.time()), &first, &out);
  AddMember("datacontenttype", e.data_content_type(), &first, &out);
  AddMember("dataschema", e.data_schema(), &first, &out);
  AddMember("correlationid", e.correlation_id(), &first, &out);
  AddMember("causationid", e.causation_id(), &first, &out);
  AddMember("actor", e.actor(), &first, &out);
  AddMember("tenant", e.tenant(), &first, &out);
  AddMember("traceparent", e.traceparent(), &first, &out);
  if (e.has_sequence()) AddMember("sequence", absl::StrCat(e.sequence()), &first, &out);
  std::vector<std::pair<std::string, std::string>> extensions(e.extensions().begin(),
                                                              e.extensions().end());
  std::sort(extensions.begin(), extensions.end());
  for (const auto& [name, value] : extensions) AddMember(name, value, &first, &out);
  if (e.data_case() == v1::Event::kTextData) {
    out.append(first ? "{" : ",");
    first = false;
    out.append("\"data\":");
    out.append(e.text_data());
  } else if (e.data_case() == v1::Event::kBinaryData) {
    AddMember("data_base64", absl::Base64Escape(e.binary_data()), &first, &out);
  }
  out.append(first ? "{}" : "}");
  return out;
}

absl::StatusOr<v1::Event> ParseBinaryMode(absl::Span<const HeaderView> headers,
                                          std::optional<absl::string_view> value) {
  v1::Event event;
  std::vector<absl::string_view> seen;
  for (const HeaderView& h : headers) {
    absl::string_view name;
    if (absl::EqualsIgnoreCase(h.key, "content-type")) {
      name = "datacontenttype";
    } else if (absl::StartsWith(h.key, "ce_")) {
      name = h.key.substr(3);
    } else {
      continue;  // other headers (tracing, producer metadata) are not event attributes
    }
    for (absl::string_view s : seen) {
      if (s == name) {
        return InvalidAttr(
            name, absl::StrCat("header ", QuoteForMessage(h.key), " appears more than once"));
      }
    }
    seen.push_back(name);
    if (!h.value.has_value()) continue;  // a null header value is an absent attribute
    if (!IsValidUtf8(*h.value)) {
      return InvalidAttr(name,
                         absl::StrCat("header ", QuoteForMessage(h.key), " is not valid UTF-8"));
    }
    if (absl::Status s = SetAttribute(name, std::string(*h.value), &event); !s.ok()) return s;
  }
  if (value.has_value() && !value->empty()) event.set_binary_data(std::string(*value));
  return event;
}

void ToBinaryMode(const v1::Event& e, Headers* headers, std::string* value) {
  const auto add = [&](absl::string_view name, absl::string_view v) {
    if (!v.empty()) headers->emplace_back(absl::StrCat("ce_", name), std::string(v));
  };
  add("specversion", e.spec_version());
  add("id", e.id());
  add("source", e.source());
  add("type", e.type());
  add("subject", e.subject());
  if (e.has_time()) add("time", FormatRfc3339(e.time()));
  add("dataschema", e.data_schema());
  add("correlationid", e.correlation_id());
  add("causationid", e.causation_id());
  add("actor", e.actor());
  add("tenant", e.tenant());
  add("traceparent", e.traceparent());
  if (e.has_sequence()) add("sequence", absl::StrCat(e.sequence()));
  for (const auto& [name, v] : e.extensions()) add(name, v);
  if (!e.data_content_type().empty()) {
    headers->emplace_back("content-type", e.data_content_type());
  }
  *value = e.data_case() == v1::Event::kTextData ? e.text_data() : e.binary_data();
}

absl::Status ParseProtobufEnvelopeInto(absl::string_view bytes, v1::Event* event) {
  if (!event->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Undecodable(
        "not a CloudEvents JSON document nor a valid audit.v1.Event protobuf (malformed wire "
        "format or invalid UTF-8 in a string field)");
  }
  const auto& unknown = event->GetReflection()->GetUnknownFields(*event);
  if (!unknown.empty()) {
    return Undecodable(absl::StrCat("audit.v1.Event has unknown field number ",
                                    unknown.field(0).number(),
                                    " (produced with a newer schema?); refusing to drop it"));
  }
  if (event->has_time() &&
      !event->time().GetReflection()->GetUnknownFields(event->time()).empty()) {
    return Undecodable("audit.v1.Event.time has unknown fields");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Event> ParseProtobufEnvelope(absl::string_view bytes) {
  v1::Event event;
  if (absl::Status s = ParseProtobufEnvelopeInto(bytes, &event); !s.ok()) return s;
  return event;
}

}  // namespace audit
