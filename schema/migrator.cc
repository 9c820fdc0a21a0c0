#include "schema/migrator.h"

#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "audit/canonical.h"
#include "services/common/log.h"
#include "services/common/pg.h"

namespace audit::schema {
namespace {

// pg_advisory_xact_lock key shared by every migrator ("audit-mg").
constexpr char kLock[] = "SELECT pg_advisory_xact_lock(7022841836262663783)";

constexpr char kBootstrap[] = R"sql(
CREATE SCHEMA IF NOT EXISTS audit_migrations;
CREATE TABLE IF NOT EXISTS audit_migrations.applied (
  version    integer     PRIMARY KEY,
  name       text        NOT NULL,
  sha256     text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  applied_by text        NOT NULL DEFAULT current_user
);
)sql";

// Lets the services read the schema version (they check it at start-up).
constexpr char kGrantReaders[] = R"sql(
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['audit_reader', 'audit_writer'] LOOP
    IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
      EXECUTE format('GRANT USAGE ON SCHEMA audit_migrations TO %I', r);
      EXECUTE format('GRANT SELECT ON audit_migrations.applied TO %I', r);
    END IF;
  END LOOP;
END
$$;
)sql";

absl::Status Rollback(PGconn* conn, absl::Status cause) {
  (void)pg::Exec(conn, "ROLLBACK");
  return cause;
}

// Version -> recorded checksum.
absl::StatusOr<std::map<int, std::string>> Applied(PGconn* conn) {
  absl::StatusOr<pg::ResultPtr> r =
      pg::Exec(conn, "SELECT version, sha256 FROM audit_migrations.applied ORDER BY version");
  if (!r.ok()) return r.status();
  std::map<int, std::string> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    out[static_cast<int>(pg::Int64Value(r->get(), i, 0))] = std::string(pg::Value(r->get(), i, 1));
  }
  return out;
}

// Runs `body` in a transaction holding the migration lock, with the bookkeeping table present.
template <typename Body>
absl::Status InLockedTransaction(PGconn* conn, Body body) {
  for (const char* sql : {"BEGIN", kLock, kBootstrap}) {
    if (absl::StatusOr<pg::ResultPtr> r = pg::Exec(conn, sql); !r.ok()) {
      return Rollback(conn, r.status());
    }
  }
  if (absl::Status s = body(); !s.ok()) return Rollback(conn, s);
  if (absl::StatusOr<pg::ResultPtr> r = pg::Exec(conn, "COMMIT"); !r.ok()) return r.status();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MigrationReport> Migrate(PGconn* conn, absl::Span<const Migration> migrations) {
  MigrationReport report;
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return absl::InternalError(absl::StrCat("migration versions must be 1, 2, 3, ...; found ",
                                              migrations[i].version, " at place ", i + 1));
    }
  }
  for (const Migration& m : migrations) {
    const std::string checksum = HexDigest(Sha256(m.sql));
    absl::Status s = InLockedTransaction(conn, [&]() -> absl::Status {
      absl::StatusOr<std::map<int, std::string>> applied = Applied(conn);
      if (!applied.ok()) return applied.status();
      if (auto it = applied->find(m.version); it != applied->end()) {
        if (it->second != checksum) {
          return absl::FailedPreconditionError(absl::StrCat(
              "migration ", m.version, " (", m.name,
              ") differs from the one applied to this database; applied migrations must never "
              "change: add a new migration instead"));
        }
        return absl::OkStatus();
      }
      if (!applied->empty() && applied->rbegin()->first != m.version - 1) {
        return absl::FailedPreconditionError(absl::StrCat("cannot apply migration ", m.version,
                                                          ": database is at version ",
                                                          applied->rbegin()->first));
      }
      if (absl::StatusOr<pg::ResultPtr> r = pg::Exec(conn, std::string(m.sql).c_str()); !r.ok()) {
        return absl::Status(r.status().code(), absl::StrCat("migration ", m.version, " (", m.name,
                                                            ") failed: ", r.status().message()));
      }
      if (absl::StatusOr<pg::ResultPtr> r = pg::Exec(conn, "RESET ROLE"); !r.ok()) {
        return r.status();
      }
      const std::optional<std::string> params[] = {std::to_string(m.version), std::string(m.name),
                                                   checksum};
      absl::StatusOr<pg::ResultPtr> rec = pg::ExecParams(
          conn, "INSERT INTO audit_migrations.applied (version, name, sha256) VALUES ($1, $2, $3)",
          params);
      if (!rec.ok()) return rec.status();
      report.applied.push_back(m.version);
      LogInfo("migration applied").With("version", m.version).With("name", m.name);
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  if (absl::Status s = InLockedTransaction(conn,
                                           [&]() -> absl::Status {
                                             absl::StatusOr<pg::ResultPtr> r =
                                                 pg::Exec(conn, kGrantReaders);
                                             return r.ok() ? absl::OkStatus() : r.status();
                                           });
      !s.ok()) {
    return s;
  }
  absl::StatusOr<int> version = CurrentVersion(conn);
  if (!version.ok()) return version.status();
  report.version = *version;
  return report;
}

absl::StatusOr<int> CurrentVersion(PGconn* conn) {
  absl::StatusOr<pg::ResultPtr> exists =
      pg::Exec(conn, "SELECT to_regclass('audit_migrations.applied') IS NOT NULL");
  if (!exists.ok()) return exists.status();
  if (pg::Value(exists->get(), 0, 0) != "t") return 0;
  absl::StatusOr<pg::ResultPtr> r =
      pg::Exec(conn, "SELECT coalesce(max(version), 0) FROM audit_migrations.applied");
  if (!r.ok()) return r.status();
  return static_cast<int>(pg::Int64Value(r->get(), 0, 0));
}

absl::Status CheckVersion(PGconn* conn, int required) {
  absl::StatusOr<int> v = CurrentVersion(conn);
  if (!v.ok()) return v.status();
  if (*v < required) {
    return absl::FailedPreconditionError(absl::StrCat("database schema is at version ", *v,
                                                      " but this build needs ", required,
                                                      ": run `auditctl migrate` first"));
  }
  return absl::OkStatus();
}

}  // namespace audit::schema
