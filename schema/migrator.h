// Applies schema migrations: transactional, idempotent, recorded.
//
// Each migration runs in its own transaction together with its record in
// audit_migrations.applied (version, name, SHA-256 of the SQL, when, by whom); a failing
// migration leaves nothing behind. Concurrent migrators serialise on an advisory lock, and a
// migration already applied is skipped, so running Migrate again is a no-op. A recorded
// migration whose SQL has changed since is refused (FAILED_PRECONDITION): applied migrations
// are immutable, like the data they created.
//
// The connecting user needs CREATEROLE (or superuser) the first time (0001 creates the
// NOLOGIN group roles) and becomes a member of audit_owner. Example:
//
//   absl::StatusOr<MigrationReport> r = Migrate(conn, EmbeddedMigrations());
#ifndef SCHEMA_MIGRATOR_H_
#define SCHEMA_MIGRATOR_H_

#include <libpq-fe.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "schema/migrations.h"

namespace audit::schema {

struct MigrationReport {
  std::vector<int> applied;  // versions applied by this call
  int version = 0;           // the database's version afterwards
};

absl::StatusOr<MigrationReport> Migrate(PGconn* conn, absl::Span<const Migration> migrations);

// The highest applied version, 0 if none (or the bookkeeping table does not exist yet).
absl::StatusOr<int> CurrentVersion(PGconn* conn);

// FAILED_PRECONDITION unless the database is at least at `required` (services call this at
// start-up with the newest embedded version, so they never run against an older schema).
absl::Status CheckVersion(PGconn* conn, int required);

}  // namespace audit::schema

#endif  // SCHEMA_MIGRATOR_H_
