#include "services/common/pg.h"

#include <libpq-events.h>

#include <limits>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/common/log.h"

namespace audit::pg {
namespace {

constexpr char kSqlStatePayload[] = "type.googleapis.com/audit.SqlState";
constexpr size_t kCopyChunk = 1 << 20;

absl::Status WithSqlState(absl::StatusCode code, absl::string_view sqlstate,
                          absl::string_view message) {
  absl::Status s(code, message);
  if (!sqlstate.empty()) s.SetPayload(kSqlStatePayload, absl::Cord(sqlstate));
  return s;
}

std::string TrimmedError(PGconn* conn) {
  return std::string(absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn)));
}

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// Server NOTICEs and WARNINGs go to the structured log instead of raw stderr.
void NoticeProcessor(void* arg, const char* message) {
  LogDebug("postgres notice").With("detail", absl::StripTrailingAsciiWhitespace(message));
}

}  // namespace

absl::StatusCode CodeForSqlState(absl::string_view s) {
  if (s.size() != 5) return absl::StatusCode::kUnavailable;
  const absl::string_view cls = s.substr(0, 2);
  if (cls == "08" || cls == "53" || cls == "58" || s == "57P01" || s == "57P02" || s == "57P03") {
    return absl::StatusCode::kUnavailable;
  }
  if (s == "40001" || s == "40P01" || s == "55P03") return absl::StatusCode::kAborted;
  if (s == "57014") return absl::StatusCode::kDeadlineExceeded;
  if (cls == "22") return absl::StatusCode::kInvalidArgument;
  if (cls == "54") return absl::StatusCode::kResourceExhausted;
  if (s == "23505") return absl::StatusCode::kAlreadyExists;
  if (s == "42501") return absl::StatusCode::kPermissionDenied;
  if (cls == "23" || cls == "42") return absl::StatusCode::kFailedPrecondition;
  // Raised by the audit schema's own triggers (schema/migrations/0001_event_store.sql).
  if (s == "AU001") return absl::StatusCode::kAborted;           // raced the log head: retry
  if (s == "AU002") return absl::StatusCode::kPermissionDenied;  // append-only violation
  return absl::StatusCode::kInternal;
}

absl::StatusOr<ConnPtr> Connect(absl::string_view url, const ConnectOptions& options) {
  std::string pg_options;
  if (options.statement_timeout > absl::ZeroDuration()) {
    absl::StrAppend(&pg_options, "-c statement_timeout=", Millis(options.statement_timeout));
  }
  if (!options.jit) absl::StrAppend(&pg_options, " -c jit=off");
  if (options.idle_in_transaction_timeout > absl::ZeroDuration()) {
    absl::StrAppend(&pg_options, " -c idle_in_transaction_session_timeout=",
                    Millis(options.idle_in_transaction_timeout));
  }
  const std::string timeout =
      absl::StrCat(std::max<int64_t>(1, absl::ToInt64Seconds(options.connect_timeout)));
  const std::string dbname(url);
  // Later keywords override earlier ones; `dbname` (the URL, expanded) comes last so that
  // anything the URL sets wins over these defaults.
  const char* keywords[] = {"connect_timeout",
                            "keepalives",
                            "keepalives_idle",
                            "keepalives_interval",
                            "keepalives_count",
                            "application_name",
                            "options",
                            "dbname",
                            nullptr};
  const char* values[] = {
      timeout.c_str(), "1",    "10", "5", "3", options.application_name.c_str(), pg_options.c_str(),
      dbname.c_str(),  nullptr};
  ConnPtr conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq could not allocate");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL at ", RedactUrl(url),
                                               ": ", TrimmedError(conn.get())));
  }
  PQsetNoticeProcessor(conn.get(), &NoticeProcessor, nullptr);
  return conn;
}

absl::Status ResultStatus(PGconn* conn, const PGresult* result) {
  if (result == nullptr) {
    return absl::UnavailableError(absl::StrCat("PostgreSQL: ", TrimmedError(conn)));
  }
  switch (PQresultStatus(result)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_COPY_IN:
    case PGRES_COPY_OUT:
    case PGRES_SINGLE_TUPLE:
    case PGRES_PIPELINE_SYNC:
      return absl::OkStatus();
    default:
      break;
  }
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
  if (state == nullptr) {
    // No SQLSTATE: the connection failed underneath the statement.
    std::string msg = primary != nullptr ? primary : PQresultErrorMessage(result);
    if (msg.empty()) msg = TrimmedError(conn);
    return absl::UnavailableError(
        absl::StrCat("PostgreSQL: ", absl::StripTrailingAsciiWhitespace(msg)));
  }
  std::string message = absl::StrCat(state, ": ", primary != nullptr ? primary : "");
  if (detail != nullptr) absl::StrAppend(&message, " (", detail, ")");
  return WithSqlState(CodeForSqlState(state), state, message);
}

std::string SqlStateOf(const absl::Status& status) {
  const absl::optional<absl::Cord> p = status.GetPayload(kSqlStatePayload);
  return p.has_value() ? std::string(*p) : std::string();
}

absl::StatusOr<ResultPtr> Exec(PGconn* conn, const char* sql) {
  ResultPtr r(PQexec(conn, sql));
  if (absl::Status s = ResultStatus(conn, r.get()); !s.ok()) return s;
  return r;
}

namespace {

// libpq's view of text parameters: nullptr is SQL NULL.
std::vector<const char*> ParamValues(absl::Span<const std::optional<std::string>> params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.has_value() ? p->c_str() : nullptr);
  return values;
}

}  // namespace

absl::StatusOr<ResultPtr> ExecParams(PGconn* conn, const char* sql,
                                     absl::Span<const std::optional<std::string>> params,
                                     ResultFormat format) {
  const std::vector<const char*> values = ParamValues(params);
  ResultPtr r(PQexecParams(conn, sql, static_cast<int>(params.size()), nullptr, values.data(),
                           nullptr, nullptr, static_cast<int>(format)));
  if (absl::Status s = ResultStatus(conn, r.get()); !s.ok()) return s;
  return r;
}

namespace {

// The statements ExecPrepared prepared on a connection (libpq instance data: created when
// first needed, forgotten on reset, freed with the connection).
struct PreparedStatements {
  absl::flat_hash_map<std::string, std::string> name_by_sql;
  int64_t last_id = 0;  // names are never reused on a connection
};

int PreparedStatementsEvents(PGEventId id, void* info, void* /*pass_through*/) {
  switch (id) {
    case PGEVT_REGISTER: {
      PGconn* conn = static_cast<PGEventRegister*>(info)->conn;
      return PQsetInstanceData(conn, PreparedStatementsEvents, new PreparedStatements());
    }
    case PGEVT_CONNRESET: {
      PGconn* conn = static_cast<PGEventConnReset*>(info)->conn;
      auto* p = static_cast<PreparedStatements*>(PQinstanceData(conn, PreparedStatementsEvents));
      if (p != nullptr) p->name_by_sql.clear();
      return 1;
    }
    case PGEVT_CONNDESTROY: {
      PGconn* conn = static_cast<PGEventConnDestroy*>(info)->conn;
      delete static_cast<PreparedStatements*>(PQinstanceData(conn, PreparedStatementsEvents));
      return 1;
    }
    default:
      return 1;
  }
}

PreparedStatements* PreparedOf(PGconn* conn) {
  auto* p = static_cast<PreparedStatements*>(PQinstanceData(conn, PreparedStatementsEvents));
  if (p != nullptr) return p;
  if (PQregisterEventProc(conn, PreparedStatementsEvents, "audit-prepared-statements", nullptr) !=
      1) {
    return nullptr;
  }
  return static_cast<PreparedStatements*>(PQinstanceData(conn, PreparedStatementsEvents));
}

}  // namespace

absl::StatusOr<ResultPtr> ExecPrepared(PGconn* conn, const std::string& sql,
                                       absl::Span<const std::optional<std::string>> params,
                                       ResultFormat format) {
  PreparedStatements* prepared = PreparedOf(conn);
  if (prepared == nullptr) return ExecParams(conn, sql.c_str(), params, format);
  const std::vector<const char*> values = ParamValues(params);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto it = prepared->name_by_sql.find(sql);
    if (it == prepared->name_by_sql.end()) {
      std::string name = absl::StrCat("audit_", ++prepared->last_id);
      ResultPtr prep(PQprepare(conn, name.c_str(), sql.c_str(), 0, nullptr));
      if (absl::Status s = ResultStatus(conn, prep.get()); !s.ok()) return s;
      it = prepared->name_by_sql.emplace(sql, std::move(name)).first;
    }
    ResultPtr r(PQexecPrepared(conn, it->second.c_str(), static_cast<int>(params.size()),
                               values.data(), nullptr, nullptr, static_cast<int>(format)));
    absl::Status s = ResultStatus(conn, r.get());
    if (s.ok()) return r;
    if (SqlStateOf(s) != "26000") return s;  // 26000: the server no longer has it
    prepared->name_by_sql.erase(it);
  }
  return ExecParams(conn, sql.c_str(), params, format);
}

absl::Status CopyStream::Start(PGconn* conn, const char* copy_sql) {
  conn_ = conn;
  ResultPtr start(PQexec(conn, copy_sql));
  if (start == nullptr || PQresultStatus(start.get()) != PGRES_COPY_IN) {
    absl::Status s = ResultStatus(conn, start.get());
    error_ = s.ok() ? absl::InternalError("COPY did not start") : s;
    conn_ = nullptr;
  }
  return error_;
}

void CopyStream::Put(absl::string_view data) {
  if (conn_ == nullptr || !error_.ok()) return;
  for (size_t off = 0; off < data.size(); off += kCopyChunk) {
    const absl::string_view chunk = data.substr(off, kCopyChunk);
    if (PQputCopyData(conn_, chunk.data(), static_cast<int>(chunk.size())) != 1) {
      error_ = absl::UnavailableError(absl::StrCat("COPY: ", TrimmedError(conn_)));
      return;
    }
  }
}

void CopyStream::Attach(PGconn* conn) {
  conn_ = conn;
  error_ = absl::OkStatus();
}

absl::Status CopyStream::End() {
  if (conn_ == nullptr) return error_;
  PGconn* conn = conn_;
  conn_ = nullptr;
  // A failed Put aborts the COPY (the server then reports why, if it can).
  const char* abort = error_.ok() ? nullptr : "client error";
  if (PQputCopyEnd(conn, abort) != 1) {
    return absl::UnavailableError(absl::StrCat("COPY: ", TrimmedError(conn)));
  }
  absl::Status result = error_;
  ResultPtr r(PQgetResult(conn));
  if (absl::Status s = ResultStatus(conn, r.get()); !s.ok() && result.ok()) result = s;
  if (result.ok() && PQstatus(conn) != CONNECTION_OK) {
    return absl::UnavailableError(absl::StrCat("COPY: ", TrimmedError(conn)));
  }
  return result;
}

namespace {

// Reads every remaining result of the query in progress; returns the first error among them.
// A COPY FROM STDIN nobody serves is refused, which fails the rest of the query.
absl::Status DrainResults(PGconn* conn) {
  absl::Status result;
  while (PGresult* r = PQgetResult(conn)) {
    ResultPtr owned(r);
    if (PQresultStatus(r) == PGRES_COPY_IN) {
      (void)PQputCopyEnd(conn, "not sent");
      if (result.ok()) result = absl::InternalError("a COPY of the query was not served");
      continue;
    }
    if (absl::Status s = ResultStatus(conn, r); !s.ok() && result.ok()) result = s;
  }
  return result;
}

}  // namespace

absl::Status CopyStream::Finish() {
  PGconn* conn = conn_;
  absl::Status result = End();
  if (conn == nullptr) return result;
  absl::Status drained = DrainResults(conn);
  return result.ok() ? drained : result;
}

absl::Status Script::Send(PGconn* conn, const char* sql) {
  conn_ = nullptr;
  if (PQsendQuery(conn, sql) != 1) {
    return absl::UnavailableError(absl::StrCat("PostgreSQL: ", TrimmedError(conn)));
  }
  conn_ = conn;
  return absl::OkStatus();
}

absl::StatusOr<ResultPtr> Script::Next() {
  if (conn_ == nullptr) return absl::FailedPreconditionError("no query in progress");
  ResultPtr r(PQgetResult(conn_));
  if (r == nullptr) {
    conn_ = nullptr;
    return absl::FailedPreconditionError("the query has no more results");
  }
  if (absl::Status s = ResultStatus(conn_, r.get()); !s.ok()) return s;
  return r;
}

absl::Status Script::Finish() {
  if (conn_ == nullptr) return absl::OkStatus();
  absl::Status result = DrainResults(conn_);
  if (result.ok() && PQstatus(conn_) != CONNECTION_OK) {
    result = absl::UnavailableError(absl::StrCat("PostgreSQL: ", TrimmedError(conn_)));
  }
  conn_ = nullptr;
  return result;
}

absl::Status CopyIn(PGconn* conn, const char* copy_sql, absl::string_view data) {
  CopyStream copy;
  if (absl::Status s = copy.Start(conn, copy_sql); !s.ok()) return s;
  copy.Put(data);
  return copy.Finish();
}

std::string RedactUrl(absl::string_view url) {
  // postgresql://user:secret@host/db -> postgresql://user:***@host/db
  const size_t scheme = url.find("://");
  if (scheme != absl::string_view::npos) {
    const size_t start = scheme + 3;
    const size_t at = url.find('@', start);
    const size_t slash = url.find('/', start);
    if (at != absl::string_view::npos && (slash == absl::string_view::npos || at < slash)) {
      const size_t colon = url.find(':', start);
      if (colon != absl::string_view::npos && colon < at) {
        return absl::StrCat(url.substr(0, colon + 1), "***", url.substr(at));
      }
    }
  }
  // key=value form: blank out password=...
  std::string out(url);
  const size_t p = out.find("password=");
  if (p != std::string::npos) {
    size_t end = out.find(' ', p);
    if (end == std::string::npos) end = out.size();
    out.replace(p, end - p, "password=***");
  }
  // URI query parameter password=... (after '?' or '&') was handled above too.
  return out;
}

int64_t Int64Value(const PGresult* r, int row, int col) {
  int64_t v = 0;
  (void)absl::SimpleAtoi(Value(r, row, col), &v);
  return v;
}

namespace {

template <typename T>
std::optional<T> BigEndian(const PGresult* r, int row, int col) {
  if (PQfformat(r, col) != 1 || PQgetlength(r, row, col) != static_cast<int>(sizeof(T))) {
    return std::nullopt;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(r, row, col));
  uint64_t v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = (v << 8) | p[i];
  return static_cast<T>(v);
}

}  // namespace

std::optional<int64_t> BinaryInt64(const PGresult* r, int row, int col) {
  return BigEndian<int64_t>(r, row, col);
}

std::optional<int32_t> BinaryInt32(const PGresult* r, int row, int col) {
  return BigEndian<int32_t>(r, row, col);
}

std::optional<int64_t> BinaryTimestampUnixMicros(const PGresult* r, int row, int col) {
  constexpr int64_t kPostgresEpochUnixMicros = 946'684'800'000'000;  // 2000-01-01T00:00:00Z
  std::optional<int64_t> v = BigEndian<int64_t>(r, row, col);
  // 'infinity' (INT64_MAX) has no Unix-microsecond value.
  if (!v.has_value() || *v > std::numeric_limits<int64_t>::max() - kPostgresEpochUnixMicros) {
    return std::nullopt;
  }
  return *v + kPostgresEpochUnixMicros;
}

absl::StatusOr<std::string> DecodeByteaHex(absl::string_view text) {
  if (!absl::ConsumePrefix(&text, "\\x") || text.size() % 2 != 0) {
    return absl::InvalidArgumentError("not a hex bytea");
  }
  std::string out;
  out.reserve(text.size() / 2);
  const auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < text.size(); i += 2) {
    const int hi = nibble(text[i]), lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("not a hex bytea");
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::string EncodeByteaHex(absl::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
  }
  return out;
}

}  // namespace audit::pg
