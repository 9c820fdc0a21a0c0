#include "services/ingestor/decoder.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit/cloudevents.h"
#include "audit/utf8.h"

namespace audit::ingestor {
namespace {

std::optional<absl::string_view> ContentType(const KafkaRecord& r) {
  for (const HeaderView& h : r.headers) {
    if (absl::EqualsIgnoreCase(h.key, "content-type")) return h.value;
  }
  return std::nullopt;
}

bool HasCeHeader(const KafkaRecord& r) {
  for (const HeaderView& h : r.headers) {
    if (absl::StartsWith(h.key, "ce_")) return true;
  }
  return false;
}

absl::string_view MediaEssence(absl::string_view content_type) {
  return absl::StripAsciiWhitespace(content_type.substr(0, content_type.find(';')));
}

}  // namespace

absl::string_view EncodingName(Encoding e) {
  switch (e) {
    case Encoding::kStructuredJson:
      return "structured_json";
    case Encoding::kBinaryMode:
      return "binary_mode";
    case Encoding::kProtobuf:
      return "protobuf";
    case Encoding::kUnknown:
      break;
  }
  return "unknown";
}

size_t MessageSize(const KafkaRecord& r) {
  size_t n = r.key.has_value() ? r.key->size() : 0;
  n += r.value.has_value() ? r.value->size() : 0;
  for (const HeaderView& h : r.headers) n += h.key.size() + (h.value ? h.value->size() : 0);
  return n;
}

Decoded Decode(const KafkaRecord& record, const DecoderOptions& options) {
  Decoded out;
  DecodeInto(record, options, &out);
  return out;
}

void DecodeInto(const KafkaRecord& record, const DecoderOptions& options, Decoded* out) {
  out->status = absl::OkStatus();
  out->encoding = Encoding::kUnknown;
  out->event.Clear();
  if (const size_t size = MessageSize(record); size > options.max_message_bytes) {
    out->status = EnvelopeError(ErrorClass::kOversized,
                                absl::StrCat("message of ", size, " bytes exceeds the limit of ",
                                             options.max_message_bytes, " bytes"));
    return;
  }
  const absl::string_view value = record.value.value_or(absl::string_view());
  const std::optional<absl::string_view> content_type = ContentType(record);
  const absl::string_view essence =
      content_type ? MediaEssence(*content_type) : absl::string_view();

  // The JSON parsers build a new event; the protobuf one parses into the (maybe reused) one.
  std::optional<absl::StatusOr<v1::Event>> parsed;
  if (absl::StartsWithIgnoreCase(essence, "application/cloudevents")) {
    if (!absl::EqualsIgnoreCase(essence, "application/cloudevents+json")) {
      out->status = EnvelopeError(ErrorClass::kUndecodable,
                                  absl::StrCat("unsupported CloudEvents event format ",
                                               QuoteForMessage(absl::AsciiStrToLower(essence)),
                                               "; use application/cloudevents+json"));
      return;
    }
    out->encoding = Encoding::kStructuredJson;
    parsed = ParseStructuredJson(value);
  } else if (HasCeHeader(record)) {
    out->encoding = Encoding::kBinaryMode;
    parsed = ParseBinaryMode(record.headers, record.value);
  } else if (absl::EqualsIgnoreCase(essence, "application/protobuf") ||
             absl::EqualsIgnoreCase(essence, "application/x-protobuf")) {
    out->encoding = Encoding::kProtobuf;
    out->status = ParseProtobufEnvelopeInto(value, &out->event);
  } else if (!essence.empty()) {
    out->status = EnvelopeError(
        ErrorClass::kUndecodable,
        absl::StrCat("content-type ", QuoteForMessage(*content_type),
                     " is neither application/cloudevents+json nor application/protobuf, and "
                     "there are no ce_ headers"));
    return;
  } else if (value.empty()) {
    out->status = EnvelopeError(ErrorClass::kUndecodable,
                                "empty message: no value, no content-type and no ce_ headers");
    return;
  } else {
    const absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(value);
    if (!trimmed.empty() && trimmed[0] == '{') {
      out->encoding = Encoding::kStructuredJson;
      parsed = ParseStructuredJson(value);
    } else {
      out->encoding = Encoding::kProtobuf;
      out->status = ParseProtobufEnvelopeInto(value, &out->event);
    }
  }
  if (parsed.has_value()) {
    if (!parsed->ok()) {
      out->status = parsed->status();
      return;
    }
    out->event = **std::move(parsed);
  }
  if (!out->status.ok()) return;
  out->status = NormalizeEvent(&out->event);
  if (out->status.ok()) out->content_hash = ContentHash(out->event);
}

}  // namespace audit::ingestor
