#include "audit/envelope.h"

#include <array>
#include <cstdint>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "audit/json.h"
#include "audit/rfc3339.h"
#include "audit/utf8.h"

namespace audit {
namespace {

constexpr char kClassPayloadUrl[] = "type.googleapis.com/audit.v1.ErrorClass";

constexpr std::array<absl::string_view, 9> kClassNames = {
    "none",         "undecodable", "missing_attribute", "invalid_attribute", "invalid_time",
    "invalid_data", "oversized",   "conflict",          "rejected_by_store",
};

// Context attributes and the named extensions of v1::Event; an entry in `extensions` may not
// use these names (it would shadow the field).
constexpr std::array<absl::string_view, 16> kReservedNames = {
    "id",
    "source",
    "type",
    "specversion",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
    "data_base64",
    "correlationid",
    "causationid",
    "actor",
    "tenant",
    "traceparent",
    "sequence",
};

absl::Status Missing(absl::string_view field) {
  return EnvelopeError(ErrorClass::kMissingAttribute,
                       absl::StrCat("attribute '", field, "' is required"));
}

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return EnvelopeError(ErrorClass::kInvalidAttribute,
                       absl::StrCat("attribute '", field, "': ", why));
}

// UTF-8, no NUL, bounded.
absl::Status CheckText(absl::string_view field, absl::string_view value) {
  if (value.size() > kMaxAttributeBytes) {
    return Invalid(field, absl::StrCat("longer than ", kMaxAttributeBytes, " bytes"));
  }
  if (const size_t bad = FindInvalidUtf8(value); bad != absl::string_view::npos) {
    return Invalid(field, absl::StrCat("invalid UTF-8 at byte ", bad));
  }
  if (value.find('\0') != absl::string_view::npos) {
    return Invalid(field, "contains a NUL character");
  }
  return absl::OkStatus();
}

absl::Status CheckRequired(absl::string_view field, absl::string_view value) {
  if (value.empty()) return Missing(field);
  return CheckText(field, value);
}

bool HasControlOrSpace(absl::string_view s) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7F) return true;
  }
  return false;
}

bool IsTokenChar(unsigned char c) {
  // RFC 7230 tchar.
  return absl::ascii_isalnum(c) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

bool IsMediaType(absl::string_view v) {
  const size_t semi = v.find(';');
  absl::string_view essence = absl::StripAsciiWhitespace(v.substr(0, semi));
  const size_t slash = essence.find('/');
  if (slash == absl::string_view::npos || slash == 0 || slash + 1 == essence.size()) return false;
  for (size_t i = 0; i < essence.size(); ++i) {
    if (i != slash && !IsTokenChar(static_cast<unsigned char>(essence[i]))) return false;
  }
  return true;
}

// An absolute URI: scheme ":" rest, no whitespace or controls.
bool IsAbsoluteUri(absl::string_view v) {
  const size_t colon = v.find(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  if (!absl::ascii_isalpha(static_cast<unsigned char>(v[0]))) return false;
  for (size_t i = 1; i < colon; ++i) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return !HasControlOrSpace(v);
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(absl::string_view s) { return s.find_first_not_of('0') == absl::string_view::npos; }

// W3C Trace Context: version "-" trace-id(32) "-" parent-id(16) "-" flags(2).
absl::Status CheckTraceparent(absl::string_view v) {
  constexpr absl::string_view kField = "traceparent";
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') {
    return Invalid(kField, "expected version-traceid-parentid-flags (W3C Trace Context)");
  }
  const absl::string_view version = v.substr(0, 2), trace = v.substr(3, 32),
                          parent = v.substr(36, 16), flags = v.substr(53, 2);
  if (!IsLowerHex(version) || !IsLowerHex(trace) || !IsLowerHex(parent) || !IsLowerHex(flags)) {
    return Invalid(kField, "fields must be lowercase hex");
  }
  if (version == "ff") return Invalid(kField, "version ff is invalid");
  if (version == "00" && v.size() != 55) return Invalid(kField, "version 00 must be 55 chars");
  if (version != "00" && v.size() > 55 && v[55] != '-') {
    return Invalid(kField, "unexpected data after flags");
  }
  if (AllZero(trace)) return Invalid(kField, "trace-id must not be all zeros");
  if (AllZero(parent)) return Invalid(kField, "parent-id must not be all zeros");
  return absl::OkStatus();
}

absl::Status NormalizeData(v1::Event* event) {
  if (event->data_case() == v1::Event::DATA_NOT_SET) return absl::OkStatus();
  const bool text = event->data_case() == v1::Event::kTextData;
  const std::string& bytes = text ? event->text_data() : event->binary_data();
  if (bytes.empty()) {
    event->clear_data();
    return absl::OkStatus();
  }
  if (!IsJsonMediaType(event->data_content_type())) {
    if (text) {
      std::string moved = std::move(*event->mutable_text_data());
      event->clear_data();
      *event->mutable_binary_data() = std::move(moved);
    }
    return absl::OkStatus();
  }
  // The canonical text replaces the data; text data is overwritten in place, so a reused
  // event (the ingestor recycles them) keeps its buffer and nothing is allocated.
  thread_local std::string canonical;
  if (absl::Status s = CanonicalizeJsonTo(bytes, &canonical); !s.ok()) {
    const std::string message =
        absl::StrCat("data is not valid JSON (content type ",
                     QuoteForMessage(event->data_content_type()), "): ", s.message());
    event->clear_data();
    return EnvelopeError(ErrorClass::kInvalidData, message);
  }
  if (text) {
    event->mutable_text_data()->assign(canonical);
  } else {
    event->set_text_data(canonical);
  }
  if (canonical.capacity() > (size_t{1} << 16)) std::string().swap(canonical);
  return absl::OkStatus();
}

}  // namespace

absl::string_view ErrorClassName(ErrorClass c) { return kClassNames[static_cast<size_t>(c)]; }

absl::Status EnvelopeError(ErrorClass c, absl::string_view message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kClassPayloadUrl, absl::Cord(ErrorClassName(c)));
  return s;
}

ErrorClass ErrorClassOf(const absl::Status& status) {
  const absl::optional<absl::Cord> payload = status.GetPayload(kClassPayloadUrl);
  if (!payload.has_value()) return ErrorClass::kNone;
  for (size_t i = 0; i < kClassNames.size(); ++i) {
    if (*payload == kClassNames[i]) return static_cast<ErrorClass>(i);
  }
  return ErrorClass::kNone;
}

bool IsValidAttributeName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

absl::Status NormalizeEvent(v1::Event* event) {
  if (absl::Status s = CheckRequired("specversion", event->spec_version()); !s.ok()) return s;
  if (event->spec_version() != "1.0") {
    return Invalid("specversion",
                   absl::StrCat("unsupported version ", QuoteForMessage(event->spec_version()),
                                ", expected \"1.0\""));
  }
  if (absl::Status s = CheckRequired("id", event->id()); !s.ok()) return s;
  if (absl::Status s = CheckRequired("source", event->source()); !s.ok()) return s;
  if (HasControlOrSpace(event->source())) {
    return Invalid("source", "must be a URI-reference (no spaces or control characters)");
  }
  if (absl::Status s = CheckRequired("type", event->type()); !s.ok()) return s;
  if (absl::Status s = CheckRequired("subject", event->subject()); !s.ok()) return s;
  if (!event->has_time()) return Missing("time");
  const auto& t = event->time();
  if (t.seconds() < kMinTimestampSeconds || t.seconds() > kMaxTimestampSeconds || t.nanos() < 0 ||
      t.nanos() > 999'999'999) {
    return EnvelopeError(ErrorClass::kInvalidTime,
                         "attribute 'time': out of range 0001-01-01..9999-12-31 UTC");
  }
  event->mutable_time()->set_nanos(t.nanos() / 1000 * 1000);

  if (!event->data_content_type().empty()) {
    if (absl::Status s = CheckText("datacontenttype", event->data_content_type()); !s.ok()) {
      return s;
    }
    if (!IsMediaType(event->data_content_type())) {
      return Invalid("datacontenttype", absl::StrCat("not a media type: ",
                                                     QuoteForMessage(event->data_content_type())));
    }
  }
  if (!event->data_schema().empty()) {
    if (absl::Status s = CheckText("dataschema", event->data_schema()); !s.ok()) return s;
    if (!IsAbsoluteUri(event->data_schema())) {
      return Invalid("dataschema", "must be an absolute URI");
    }
  }
  const std::pair<absl::string_view, const std::string*> optional_text[] = {
      {"correlationid", &event->correlation_id()},
      {"causationid", &event->causation_id()},
      {"actor", &event->actor()},
      {"tenant", &event->tenant()},
  };
  for (const auto& [field, value] : optional_text) {
    if (absl::Status s = CheckText(field, *value); !s.ok()) return s;
  }
  if (!event->traceparent().empty()) {
    if (absl::Status s = CheckTraceparent(event->traceparent()); !s.ok()) return s;
  }
  if (event->has_sequence() &&
      event->sequence() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Invalid("sequence", "greater than 2^63-1");
  }
  if (event->extensions_size() > static_cast<int>(kMaxExtensions)) {
    return Invalid("extensions", absl::StrCat("more than ", kMaxExtensions, " extensions"));
  }
  for (const auto& [name, value] : event->extensions()) {
    if (!IsValidAttributeName(name) || name.size() > kMaxExtensionNameBytes) {
      return Invalid(absl::StrCat("extension ", QuoteForMessage(name)),
                     "names must be 1-64 characters of a-z and 0-9");
    }
    for (absl::string_view reserved : kReservedNames) {
      if (name == reserved) {
        return Invalid(absl::StrCat("extension ", name),
                       "shadows a named attribute; use the Event field instead");
      }
    }
    if (absl::Status s = CheckText(name, value); !s.ok()) return s;
  }
  return NormalizeData(event);
}

}  // namespace audit
