#include "services/common/checkpoint_rows.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "audit/rfc3339.h"
#include "services/common/pg.h"

namespace audit {
namespace {

constexpr const char* kKindNames[] = {"", "checkpoint", "key_rotation", "gap"};

}  // namespace

const char kCheckpointColumns[] =
    "seq, kind, tree_size, root_hash, chain_hash,"
    " (extract(epoch FROM created_at) * 1000000)::bigint, key_id, public_key,"
    " previous_signature_hash, note, signature, endorsement, endorsing_key_id";

absl::StatusOr<v1::Checkpoint> CheckpointFromRow(const PGresult* r, int row) {
  const auto bytes = [&](int col, std::string* out) {
    if (pg::IsNull(r, row, col)) return true;
    absl::StatusOr<std::string> b = pg::DecodeByteaHex(pg::Value(r, row, col));
    if (!b.ok()) return false;
    *out = *std::move(b);
    return true;
  };
  v1::Checkpoint c;
  c.set_seq(pg::Int64Value(r, row, 0));
  const absl::string_view kind = pg::Value(r, row, 1);
  for (int k = 1; k < 4; ++k) {
    if (kind == kKindNames[k]) c.set_kind(static_cast<v1::CheckpointKind>(k));
  }
  if (c.kind() == v1::CHECKPOINT_KIND_UNSPECIFIED) {
    return absl::InternalError(absl::StrCat("checkpoint ", c.seq(), " has an unknown kind"));
  }
  c.set_tree_size(pg::Int64Value(r, row, 2));
  *c.mutable_created_time() = FromUnixMicros(pg::Int64Value(r, row, 5));
  c.set_key_id(std::string(pg::Value(r, row, 6)));
  c.set_note(std::string(pg::Value(r, row, 9)));
  if (!pg::IsNull(r, row, 12)) c.set_endorsing_key_id(std::string(pg::Value(r, row, 12)));
  if (!bytes(3, c.mutable_root_hash()) || !bytes(4, c.mutable_chain_hash()) ||
      !bytes(7, c.mutable_public_key()) || !bytes(8, c.mutable_previous_signature_hash()) ||
      !bytes(10, c.mutable_signature()) || !bytes(11, c.mutable_endorsement())) {
    return absl::InternalError(absl::StrCat("checkpoint ", c.seq(), " does not decode"));
  }
  return c;
}

absl::StatusOr<std::optional<v1::Checkpoint>> LatestCheckpoint(PGconn* conn) {
  const std::string sql = absl::StrCat("SELECT ", kCheckpointColumns,
                                       " FROM audit.checkpoints ORDER BY seq DESC LIMIT 1");
  absl::StatusOr<pg::ResultPtr> r = pg::Exec(conn, sql.c_str());
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) return std::optional<v1::Checkpoint>();
  absl::StatusOr<v1::Checkpoint> c = CheckpointFromRow(r->get(), 0);
  if (!c.ok()) return c.status();
  return std::optional<v1::Checkpoint>(*std::move(c));
}

absl::StatusOr<v1::Checkpoint> RequireLatestCheckpoint(PGconn* conn) {
  absl::StatusOr<std::optional<v1::Checkpoint>> c = LatestCheckpoint(conn);
  if (!c.ok()) return c.status();
  if (!c->has_value()) {
    return absl::NotFoundError(
        "no checkpoint has been signed yet (run an ingestor with --checkpoint_key_file)");
  }
  return **std::move(c);
}

absl::Status InsertCheckpoint(PGconn* conn, const v1::Checkpoint& c) {
  const auto hex = [](const std::string& b) { return pg::EncodeByteaHex(b); };
  const int kind = static_cast<int>(c.kind());
  if (kind < 1 || kind > 3) return absl::InvalidArgumentError("checkpoint kind is unspecified");
  std::optional<std::string> params[] = {absl::StrCat(c.seq()),
                                         kKindNames[kind],
                                         absl::StrCat(c.tree_size()),
                                         hex(c.root_hash()),
                                         hex(c.chain_hash()),
                                         absl::StrCat(ToUnixMicros(c.created_time())),
                                         c.key_id(),
                                         hex(c.public_key()),
                                         hex(c.previous_signature_hash()),
                                         c.note(),
                                         hex(c.signature()),
                                         std::nullopt,
                                         std::nullopt};
  if (!c.endorsement().empty()) {
    params[11] = hex(c.endorsement());
    params[12] = c.endorsing_key_id();
  }
  absl::StatusOr<pg::ResultPtr> r = pg::ExecParams(
      conn,
      "INSERT INTO audit.checkpoints (seq, kind, tree_size, root_hash, chain_hash, created_at,"
      " key_id, public_key, previous_signature_hash, note, signature, endorsement,"
      " endorsing_key_id) VALUES ($1, $2, $3, $4, $5,"
      " 'epoch'::timestamptz + $6::bigint * interval '1 microsecond', $7, $8, $9, $10, $11,"
      " $12, $13)",
      params);
  return r.status();
}

}  // namespace audit
