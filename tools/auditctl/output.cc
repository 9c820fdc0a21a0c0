#include "tools/auditctl/output.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "audit/canonical.h"
#include "audit/cloudevents.h"
#include "audit/json.h"
#include "audit/rfc3339.h"

namespace audit::cli {
namespace {

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

// Display width in code points (close enough for a terminal table).
size_t Width(absl::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Cut(const std::string& s, size_t max_width) {
  if (Width(s) <= max_width) return s;
  std::string out;
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) != 0x80 && ++n > max_width - 1) break;
    out.push_back(s[i]);
  }
  return out + "…";
}

}  // namespace

std::string EventJson(const v1::StoredEvent& e) {
  std::string out = absl::StrCat("{\"position\":", e.position(), ",\"recorded_time\":\"",
                                 FormatRfc3339(e.recorded_time()), "\",\"topic\":");
  AppendJsonString(e.provenance().topic(), &out);
  absl::StrAppend(&out, ",\"partition\":", e.provenance().partition(),
                  ",\"offset\":", e.provenance().offset(), ",\"content_hash\":\"",
                  Hex(e.content_hash()), "\",\"event\":", ToStructuredJson(e.event()), "}");
  return out;
}

std::string DeadLetterJson(const v1::DeadLetter& d) {
  std::string out = absl::StrCat("{\"id\":", d.id(), ",\"topic\":");
  AppendJsonString(d.provenance().topic(), &out);
  absl::StrAppend(&out, ",\"partition\":", d.provenance().partition(),
                  ",\"offset\":", d.provenance().offset(), ",\"error_class\":");
  std::string cls = v1::ErrorClass_Name(d.error_class());
  AppendJsonString(absl::AsciiStrToLower(absl::StripPrefix(cls, "ERROR_CLASS_")), &out);
  out.append(",\"reason\":");
  AppendJsonString(d.reason(), &out);
  absl::StrAppend(&out, ",\"received_time\":\"", FormatRfc3339(d.received_time()), "\"");
  if (d.has_raw_key())
    absl::StrAppend(&out, ",\"raw_key_base64\":\"", absl::Base64Escape(d.raw_key()), "\"");
  if (d.has_raw_value()) {
    absl::StrAppend(&out, ",\"raw_value_base64\":\"", absl::Base64Escape(d.raw_value()), "\"");
  }
  out.append(",\"raw_headers\":[");
  for (int i = 0; i < d.raw_headers_size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", "{\"key_base64\":\"",
                    absl::Base64Escape(d.raw_headers(i).key()), "\"");
    if (d.raw_headers(i).has_value()) {
      absl::StrAppend(&out, ",\"value_base64\":\"", absl::Base64Escape(d.raw_headers(i).value()),
                      "\"");
    }
    out.push_back('}');
  }
  out.push_back(']');
  if (!d.event_source().empty()) {
    out.append(",\"event_source\":");
    AppendJsonString(d.event_source(), &out);
  }
  if (!d.event_id().empty()) {
    out.append(",\"event_id\":");
    AppendJsonString(d.event_id(), &out);
  }
  if (d.conflicting_position() > 0) {
    absl::StrAppend(&out, ",\"conflicting_position\":", d.conflicting_position());
  }
  out.push_back('}');
  return out;
}

std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows, size_t max_width) {
  std::vector<size_t> widths(header.size());
  const auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(Cut(row[i], max_width)));
    }
  };
  measure(header);
  for (const auto& row : rows) measure(row);
  std::string out;
  const auto line = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < row.size() ? Cut(row[i], max_width) : "";
      out.append(cell);
      if (i + 1 < widths.size()) out.append(widths[i] - Width(cell) + 2, ' ');
    }
    out.push_back('\n');
  };
  line(header);
  for (const auto& row : rows) line(row);
  return out;
}

std::string EventDetails(const v1::StoredEvent& s) {
  const v1::Event& e = s.event();
  std::vector<std::vector<std::string>> rows = {
      {"position", absl::StrCat(s.position())},
      {"recorded_time", FormatRfc3339(s.recorded_time())},
      {"kafka", absl::StrCat(s.provenance().topic(), "/", s.provenance().partition(), "@",
                             s.provenance().offset())},
      {"content_hash", Hex(s.content_hash())},
      {"id", e.id()},
      {"source", e.source()},
      {"type", e.type()},
      {"subject", e.subject()},
      {"time", FormatRfc3339(e.time())},
  };
  const std::pair<const char*, std::string> optional[] = {
      {"datacontenttype", e.data_content_type()},
      {"dataschema", e.data_schema()},
      {"correlation_id", e.correlation_id()},
      {"causation_id", e.causation_id()},
      {"actor", e.actor()},
      {"tenant", e.tenant()},
      {"traceparent", e.traceparent()},
      {"sequence", e.has_sequence() ? absl::StrCat(e.sequence()) : ""},
  };
  for (const auto& [name, value] : optional) {
    if (!value.empty()) rows.push_back({name, value});
  }
  for (const auto& [name, value] : e.extensions()) rows.push_back({"ext." + name, value});
  if (e.data_case() == v1::Event::kTextData) rows.push_back({"data", e.text_data()});
  if (e.data_case() == v1::Event::kBinaryData) {
    rows.push_back({"data_base64", absl::Base64Escape(e.binary_data())});
  }
  std::string table = Table({"FIELD", "VALUE"}, rows, 4096);
  return table.substr(table.find('\n') + 1);  // no header for a single record
}

std::vector<std::string> EventHeader() {
  return {"POSITION", "OCCURRED", "TYPE", "SUBJECT", "SOURCE", "ID"};
}

std::vector<std::string> EventRow(const v1::StoredEvent& e) {
  return {absl::StrCat(e.position()), FormatRfc3339(e.event().time()),
          e.event().type(),           e.event().subject(),
          e.event().source(),         e.event().id()};
}

}  // namespace audit::cli
