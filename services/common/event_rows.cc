#include "services/common/event_rows.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "audit/json.h"
#include "audit/rfc3339.h"
#include "services/common/pg.h"

namespace audit {

const char kStoredEventColumns[] =
    "position, event_id, source, type, spec_version, subject,"
    " (extract(epoch FROM occurred_at) * 1000000)::bigint,"
    " (extract(epoch FROM recorded_at) * 1000000)::bigint,"
    " data_content_type, data_schema, data::text, data_bytes, correlation_id, causation_id,"
    " actor, tenant, traceparent, sequence, extensions::text, kafka_topic, kafka_partition,"
    " kafka_offset, content_hash, leaf_hash, chain_hash";

absl::StatusOr<v1::StoredEvent> StoredEventFromRow(const PGresult* r, int row, int c) {
  const auto text = [&](int col) { return std::string(pg::Value(r, row, c + col)); };
  const auto null = [&](int col) { return pg::IsNull(r, row, c + col); };
  const auto int64 = [&](int col) { return pg::Int64Value(r, row, c + col); };
  v1::StoredEvent out;
  out.set_position(int64(0));
  *out.mutable_recorded_time() = FromUnixMicros(int64(7));
  v1::Event* e = out.mutable_event();
  e->set_id(text(1));
  e->set_source(text(2));
  e->set_type(text(3));
  e->set_spec_version(text(4));
  e->set_subject(text(5));
  *e->mutable_time() = FromUnixMicros(int64(6));
  if (!null(8)) e->set_data_content_type(text(8));
  if (!null(9)) e->set_data_schema(text(9));
  if (!null(10)) e->set_text_data(text(10));
  if (!null(11)) {
    absl::StatusOr<std::string> bytes = pg::DecodeByteaHex(pg::Value(r, row, c + 11));
    if (!bytes.ok()) return absl::InternalError("data_bytes does not decode");
    e->set_binary_data(*std::move(bytes));
  }
  if (!null(12)) e->set_correlation_id(text(12));
  if (!null(13)) e->set_causation_id(text(13));
  if (!null(14)) e->set_actor(text(14));
  if (!null(15)) e->set_tenant(text(15));
  if (!null(16)) e->set_traceparent(text(16));
  if (!null(17)) e->set_sequence(static_cast<uint64_t>(int64(17)));
  if (!null(18)) {
    absl::StatusOr<JsonValue> ext = ParseJson(pg::Value(r, row, c + 18));
    if (!ext.ok() || !ext->is_object()) return absl::InternalError("extensions do not decode");
    for (const auto& [k, v] : ext->members) {
      if (!v.is_string()) return absl::InternalError("extension value is not a string");
      (*e->mutable_extensions())[k] = v.scalar;
    }
  }
  v1::KafkaProvenance* p = out.mutable_provenance();
  p->set_topic(text(19));
  p->set_partition(static_cast<int32_t>(int64(20)));
  p->set_offset(int64(21));
  absl::StatusOr<std::string> hash = pg::DecodeByteaHex(pg::Value(r, row, c + 22));
  if (!hash.ok()) return absl::InternalError("content_hash does not decode");
  out.set_content_hash(*std::move(hash));
  absl::StatusOr<std::string> leaf = pg::DecodeByteaHex(pg::Value(r, row, c + 23));
  absl::StatusOr<std::string> chain = pg::DecodeByteaHex(pg::Value(r, row, c + 24));
  if (!leaf.ok() || !chain.ok()) return absl::InternalError("leaf_hash/chain_hash do not decode");
  out.set_leaf_hash(*std::move(leaf));
  out.set_chain_hash(*std::move(chain));
  return out;
}

}  // namespace audit
