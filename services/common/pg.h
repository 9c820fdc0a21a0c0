// libpq with owned handles and absl::Status errors that keep the SQLSTATE.
//
// Error mapping (the SQLSTATE stays available through SqlStateOf()):
//   connection lost / class 08, 57P01-57P03, class 53, class 58 -> UNAVAILABLE
//   40001, 40P01, 55P03 -> ABORTED          57014 (statement timeout) -> DEADLINE_EXCEEDED
//   class 22 (data exception) -> INVALID_ARGUMENT    class 54 -> RESOURCE_EXHAUSTED
//   23505 -> ALREADY_EXISTS    other class 23, class 42 but 42501 -> FAILED_PRECONDITION
//   42501 -> PERMISSION_DENIED    AU001 (log head raced) -> ABORTED
//   AU002 (append-only violation) -> PERMISSION_DENIED    anything else -> INTERNAL
// Thread safety: a connection is used by one thread at a time.
#ifndef SERVICES_COMMON_PG_H_
#define SERVICES_COMMON_PG_H_

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace audit::pg {

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

struct ConnectOptions {
  std::string application_name = "audit";
  absl::Duration connect_timeout = absl::Seconds(5);
  // Server-side limits set for the session (0 = leave the server default).
  absl::Duration statement_timeout = absl::Seconds(60);
  // A client that stalls inside a transaction (holding the append lock) is cut off.
  absl::Duration idle_in_transaction_timeout = absl::Seconds(30);
  // PostgreSQL's JIT compiler. Off: our statements are short, and the planner's cost estimates
  // for a recursive binary search or a large table trigger 20-100 ms of compilation for a
  // query that runs in one (docs/PERFORMANCE.md). Long aggregations turn it on locally.
  bool jit = false;
};

// Connects to `url` (a libpq URI or key=value string). Settings in the URL win over the
// options' defaults; TCP keepalives are on so a vanished server is noticed. Errors: UNAVAILABLE
// (with libpq's message, the password never included).
absl::StatusOr<ConnPtr> Connect(absl::string_view url, const ConnectOptions& options = {});

// OK for a successful result, otherwise the mapped error (see above) with message
// "<sqlstate>: <primary message> (<detail>)".
absl::Status ResultStatus(PGconn* conn, const PGresult* result);

// The SQLSTATE carried by a status from this library, or "" if none.
std::string SqlStateOf(const absl::Status& status);

// The gRPC-style code for a SQLSTATE (exposed for tests).
absl::StatusCode CodeForSqlState(absl::string_view sqlstate);

// Runs a statement without parameters.
absl::StatusOr<ResultPtr> Exec(PGconn* conn, const char* sql);

// The format PostgreSQL returns result columns in.
enum class ResultFormat { kText = 0, kBinary = 1 };

// Runs a statement with text-format parameters; nullopt is SQL NULL.
absl::StatusOr<ResultPtr> ExecParams(PGconn* conn, const char* sql,
                                     absl::Span<const std::optional<std::string>> params,
                                     ResultFormat format = ResultFormat::kText);

// As ExecParams, through a statement prepared once per connection (named, kept until the
// connection closes or resets): a repeated query skips parsing and planning. For the few
// fixed query shapes on hot paths, not for SQL assembled from arbitrary input (each distinct
// text is prepared and kept). Falls back to ExecParams if the server lost the statement
// twice (a pooler that does not keep sessions). Not for use inside a transaction block: the
// lost-statement retry needs autocommit.
absl::StatusOr<ResultPtr> ExecPrepared(PGconn* conn, const std::string& sql,
                                       absl::Span<const std::optional<std::string>> params,
                                       ResultFormat format = ResultFormat::kText);

// Runs a statement without parameters whose result columns come back in binary format.
inline absl::StatusOr<ResultPtr> ExecBinary(PGconn* conn, const char* sql) {
  return ExecParams(conn, sql, {}, ResultFormat::kBinary);
}

// Runs `copy_sql` (a COPY ... FROM STDIN) and streams `data` to it.
absl::Status CopyIn(PGconn* conn, const char* copy_sql, absl::string_view data);

// A COPY ... FROM STDIN sent in pieces, so that the client can encode the next rows while the
// server processes the ones sent (the server works on rows as they arrive):
//   CopyStream copy;
//   if (absl::Status s = copy.Start(conn, sql); !s.ok()) ...
//   copy.Put(chunk1); copy.Put(chunk2); ...
//   absl::Status s = copy.Finish();
// Errors are sticky: after a failed Put, Finish reports it (and ends the COPY). Not
// thread-safe.
class CopyStream {
 public:
  absl::Status Start(PGconn* conn, const char* copy_sql);
  // Takes over a COPY ... FROM STDIN that a Script reached (Script::Next returned COPY_IN).
  void Attach(PGconn* conn);
  void Put(absl::string_view data);
  // Ends the COPY and reads its result, and nothing after it (a Script goes on).
  absl::Status End();
  // End, then drains every remaining result of the query.
  absl::Status Finish();

 private:
  PGconn* conn_ = nullptr;
  absl::Status error_;
};

// A multi-statement simple query whose results are taken one statement at a time, so that a
// whole transaction, COPYs included, costs one round trip plus the server's own work:
//   Script script;
//   if (absl::Status s = script.Send(conn, "BEGIN; SELECT ...; COPY t FROM STDIN; COMMIT");
//       !s.ok()) ...
//   StatusOr<ResultPtr> begun = script.Next();  // BEGIN
//   StatusOr<ResultPtr> rows = script.Next();   // the SELECT's rows
//   StatusOr<ResultPtr> copy = script.Next();   // PGRES_COPY_IN: CopyStream::Attach, Put, End
//   absl::Status s = script.Finish();           // the remaining results (COMMIT), first error
// After an error the server skips the rest of the query (and an explicit transaction is left
// aborted: the caller rolls back). Next returns the failed statement's error; Finish drains.
// Not thread-safe; the connection runs nothing else until Finish.
class Script {
 public:
  absl::Status Send(PGconn* conn, const char* sql);
  // The next statement's result: OK with the result (tuples, command or COPY_IN), its error,
  // or FAILED_PRECONDITION if the query has no more results.
  absl::StatusOr<ResultPtr> Next();
  // Reads every remaining result; returns the first error among them.
  absl::Status Finish();

 private:
  PGconn* conn_ = nullptr;
};

// `url` with any password removed, for logs.
std::string RedactUrl(absl::string_view url);

// Column value helpers over a tuples result.
inline absl::string_view Value(const PGresult* r, int row, int col) {
  return absl::string_view(PQgetvalue(r, row, col), PQgetlength(r, row, col));
}
inline bool IsNull(const PGresult* r, int row, int col) { return PQgetisnull(r, row, col) != 0; }
int64_t Int64Value(const PGresult* r, int row, int col);

// Binary-format column helpers. Each returns nullopt unless the column is binary and its value
// has the type's exact length (int8: 8 bytes, int4: 4, timestamptz: 8 bytes of microseconds
// since 2000-01-01 UTC, returned here as microseconds since the Unix epoch).
std::optional<int64_t> BinaryInt64(const PGresult* r, int row, int col);
std::optional<int32_t> BinaryInt32(const PGresult* r, int row, int col);
std::optional<int64_t> BinaryTimestampUnixMicros(const PGresult* r, int row, int col);

// A PostgreSQL array literal of quoted text elements ({"a","b\"c"}), for a text[] parameter.
// `get` maps an item to its string.
template <typename Range, typename Get>
std::string TextArrayLiteral(const Range& items, Get get) {
  std::string out = "{";
  bool first = true;
  for (const auto& item : items) {
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    for (char c : get(item)) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}
template <typename Range>
std::string TextArrayLiteral(const Range& strings) {
  return TextArrayLiteral(
      strings, [](const auto& s) -> const auto& { return s; });
}

// Decodes a bytea in text output format ("\x0a1b...").
absl::StatusOr<std::string> DecodeByteaHex(absl::string_view text);
// Encodes bytes as a bytea hex literal ("\x0a1b...") for a text-format parameter.
std::string EncodeByteaHex(absl::string_view bytes);

}  // namespace audit::pg

#endif  // SERVICES_COMMON_PG_H_
