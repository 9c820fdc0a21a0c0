#include "services/ingestor/decoder.h"

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
  if (const size_t size = MessageSize(record); size > options.max_message_bytes) {
    out.status = EnvelopeError(ErrorClass::kOversized,
                               absl::StrCat("message of ", size, " bytes exceeds the limit of ",
                                            options.max_message_bytes, " bytes"));
    return out;
  }
  const absl::string_view value = record.value.value_or(absl::string_view());
  const std::optional<absl::string_view> content_type = ContentType(record);
  const std::string essence =
      content_type ? absl::AsciiStrToLower(MediaEssence(*content_type)) : std::string();

  absl::StatusOr<v1::Event> parsed;
  if (absl::StartsWith(essence, "application/cloudevents")) {
    if (essence != "application/cloudevents+json") {
      out.status = EnvelopeError(
          ErrorClass::kUndecodable,
          absl::StrCat("unsupported CloudEvents event format ", QuoteForMessage(essence),
                       "; use application/cloudevents+json"));
      return out;
    }
    out.encoding = Encoding::kStructuredJson;
    parsed = ParseStructuredJson(value);
  } else if (HasCeHeader(record)) {
    out.encoding = Encoding::kBinaryMode;
    parsed = ParseBinaryMode(record.headers, record.value);
  } else if (essence == "application/protobuf" || essence == "application/x-protobuf") {
    out.encoding = Encoding::kProtobuf;
    parsed = ParseProtobufEnvelope(value);
  } else if (!essence.empty()) {
    out.status = EnvelopeError(
        ErrorClass::kUndecodable,
        absl::StrCat("content-type ", QuoteForMessage(*content_type),
                     " is neither application/cloudevents+json nor application/protobuf, and "
                     "there are no ce_ headers"));
    return out;
  } else if (value.empty()) {
    out.status = EnvelopeError(ErrorClass::kUndecodable,
                               "empty message: no value, no content-type and no ce_ headers");
    return out;
  } else {
    const absl::string_view trimmed = absl::StripLeadingAsciiWhitespace(value);
    if (!trimmed.empty() && trimmed[0] == '{') {
      out.encoding = Encoding::kStructuredJson;
      parsed = ParseStructuredJson(value);
    } else {
      out.encoding = Encoding::kProtobuf;
      parsed = ParseProtobufEnvelope(value);
    }
  }
  if (!parsed.ok()) {
    out.status = parsed.status();
    return out;
  }
  out.event = *std::move(parsed);
  out.status = NormalizeEvent(&out.event);
  if (out.status.ok()) out.content_hash = ContentHash(out.event);
  return out;
}

}  // namespace audit::ingestor
