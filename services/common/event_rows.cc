#include "services/common/event_rows.h"

#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "audit/json.h"
#include "audit/rfc3339.h"
#include "services/common/pg.h"

namespace audit {

const char kStoredEventColumns[] =
    "position, event_id, source, type, spec_version, subject, occurred_at, recorded_at,"
    " data_content_type, data_schema, data::text, data_bytes, correlation_id, causation_id,"
    " actor, tenant, traceparent, sequence, extensions::text, kafka_topic, kafka_partition,"
    " kafka_offset, content_hash, leaf_hash, chain_hash";

absl::StatusOr<v1::StoredEvent> StoredEventFromRow(const PGresult* r, int row, int c) {
  v1::StoredEvent out;
  if (absl::Status s = ReadStoredEventRow(r, row, c, &out); !s.ok()) return s;
  return out;
}

absl::Status ReadStoredEventRow(const PGresult* r, int row, int c, v1::StoredEvent* stored,
                                int64_t* bytes) {
  if (PQnfields(r) < c + 25 || PQfformat(r, c) != 1) {
    return absl::InternalError("stored-event rows must be read in binary format");
  }
  // Text, bytea and the ::text casts arrive as their bytes in binary format; assigning them
  // into the (possibly reused) strings keeps their capacity.
  // Fixed-size fields (at most 11 bytes each as varints), every tag and length, and the
  // timestamps, provenance and sub-message headers, generously; the values are added below.
  int64_t size = 256;
  const auto set = [&](std::string* field, int col) {
    const absl::string_view v = pg::Value(r, row, c + col);
    field->assign(v.data(), v.size());
    size += static_cast<int64_t>(v.size());
  };
  const auto null = [&](int col) { return pg::IsNull(r, row, c + col); };
  const std::optional<int64_t> position = pg::BinaryInt64(r, row, c);
  const std::optional<int64_t> occurred = pg::BinaryTimestampUnixMicros(r, row, c + 6);
  const std::optional<int64_t> recorded = pg::BinaryTimestampUnixMicros(r, row, c + 7);
  const std::optional<int32_t> partition = pg::BinaryInt32(r, row, c + 20);
  const std::optional<int64_t> offset = pg::BinaryInt64(r, row, c + 21);
  if (!position || !occurred || !recorded || !partition || !offset) {
    return absl::InternalError("a stored-event column does not decode");
  }
  // Every field is overwritten rather than the message cleared first: Clear() would free the
  // sub-messages and their strings, which a reused message is meant to keep. NULL text reads
  // as "" (proto3's unset).
  v1::StoredEvent& out = *stored;
  out.set_position(*position);
  *out.mutable_recorded_time() = FromUnixMicros(*recorded);
  v1::Event* e = out.mutable_event();
  set(e->mutable_id(), 1);
  set(e->mutable_source(), 2);
  set(e->mutable_type(), 3);
  set(e->mutable_spec_version(), 4);
  set(e->mutable_subject(), 5);
  *e->mutable_time() = FromUnixMicros(*occurred);
  set(e->mutable_data_content_type(), 8);
  set(e->mutable_data_schema(), 9);
  if (!null(10)) {
    set(e->mutable_text_data(), 10);
  } else if (!null(11)) {
    set(e->mutable_binary_data(), 11);
  } else {
    e->clear_data();
  }
  set(e->mutable_correlation_id(), 12);
  set(e->mutable_causation_id(), 13);
  set(e->mutable_actor(), 14);
  set(e->mutable_tenant(), 15);
  set(e->mutable_traceparent(), 16);
  if (!null(17)) {
    const std::optional<int64_t> sequence = pg::BinaryInt64(r, row, c + 17);
    if (!sequence) return absl::InternalError("sequence does not decode");
    e->set_sequence(static_cast<uint64_t>(*sequence));
  } else {
    e->clear_sequence();
  }
  if (!e->extensions().empty()) e->mutable_extensions()->clear();
  if (!null(18)) {
    // The extensions' JSON text is longer than their encoding (quotes, colons, commas).
    size += static_cast<int64_t>(pg::Value(r, row, c + 18).size());
    absl::StatusOr<JsonValue> ext = ParseJson(pg::Value(r, row, c + 18));
    if (!ext.ok() || !ext->is_object()) return absl::InternalError("extensions do not decode");
    for (const auto& [k, v] : ext->members) {
      if (!v.is_string()) return absl::InternalError("extension value is not a string");
      (*e->mutable_extensions())[k] = v.scalar;
    }
  }
  v1::KafkaProvenance* p = out.mutable_provenance();
  set(p->mutable_topic(), 19);
  p->set_partition(*partition);
  p->set_offset(*offset);
  set(out.mutable_content_hash(), 22);
  set(out.mutable_leaf_hash(), 23);
  set(out.mutable_chain_hash(), 24);
  if (bytes != nullptr) *bytes = size;
  return absl::OkStatus();
}

}  // namespace audit
