// Reading and writing audit.checkpoints rows as audit.v1.Checkpoint.
//
//   std::string sql = absl::StrCat("SELECT ", kCheckpointColumns,
//                                  " FROM audit.checkpoints ORDER BY seq DESC LIMIT 1");
//   ... CheckpointFromRow(result, 0) ...
//
// Thread-safe (no state).
#ifndef SERVICES_COMMON_CHECKPOINT_ROWS_H_
#define SERVICES_COMMON_CHECKPOINT_ROWS_H_

#include <libpq-fe.h>

#include <optional>

#include "absl/status/statusor.h"
#include "audit/v1/proof.pb.h"

namespace audit {

// The select list CheckpointFromRow expects (text result format).
extern const char kCheckpointColumns[];

// INTERNAL if a column does not decode.
absl::StatusOr<v1::Checkpoint> CheckpointFromRow(const PGresult* result, int row);

// The checkpoint log's newest entry; nullopt when it is empty.
absl::StatusOr<std::optional<v1::Checkpoint>> LatestCheckpoint(PGconn* conn);

// The newest checkpoint; NOT_FOUND (saying how to turn signing on) before the first.
absl::StatusOr<v1::Checkpoint> RequireLatestCheckpoint(PGconn* conn);

// Inserts `c` (every field set, signature included). The primary key refuses a seq that
// another writer took first (SQLSTATE 23505).
absl::Status InsertCheckpoint(PGconn* conn, const v1::Checkpoint& c);

}  // namespace audit

#endif  // SERVICES_COMMON_CHECKPOINT_ROWS_H_
