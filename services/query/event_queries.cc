#include "services/query/event_queries.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "audit/json.h"
#include "audit/merkle.h"
#include "audit/rfc3339.h"
#include "services/common/checkpoint_rows.h"
#include "services/common/event_rows.h"
#include "services/common/merkle_store.h"
#include "services/common/pg.h"
#include "services/query/request_validation.h"

namespace audit::query {
namespace {

// Accumulates WHERE conditions and their $n parameters.
class Sql {
 public:
  std::string Param(std::string value) {
    params_.emplace_back(std::move(value));
    return absl::StrCat("$", params_.size());
  }
  void Where(std::string condition) { conditions_.push_back(std::move(condition)); }
  std::string WhereClause() const {
    return conditions_.empty() ? "" : absl::StrCat(" WHERE ", absl::StrJoin(conditions_, " AND "));
  }
  const std::vector<std::optional<std::string>>& params() const { return params_; }
  bool empty() const { return conditions_.empty(); }

 private:
  std::vector<std::string> conditions_;
  std::vector<std::optional<std::string>> params_;
};

std::string Time(const google::protobuf::Timestamp& t) { return FormatRfc3339(t); }

void AddTimeRange(const v1::TimeRange& range, const char* column, Sql* sql) {
  if (range.has_start()) {
    sql->Where(absl::StrCat(column, " >= ", sql->Param(Time(range.start())), "::timestamptz"));
  }
  if (range.has_end()) {
    sql->Where(absl::StrCat(column, " < ", sql->Param(Time(range.end())), "::timestamptz"));
  }
}

// The first position recorded at or after the timestamp in parameter `param` (the head + 1 if
// none; NULL if the log has a hole): recorded_at never decreases along positions, so a binary
// search over the primary key finds it with ~log2(n) index probes, in one statement.
std::string FirstPositionRecordedFrom(const std::string& param) {
  return absl::StrCat(
      "(WITH RECURSIVE s(lo, hi) AS ("
      "SELECT 1::bigint, h.position + 1 FROM audit.append_head h "
      "UNION ALL "
      "SELECT CASE WHEN e.recorded_at >= ",
      param,
      "::timestamptz THEN s.lo "
      "ELSE (s.lo + s.hi) / 2 + 1 END, "
      "CASE WHEN e.recorded_at >= ",
      param,
      "::timestamptz THEN (s.lo + s.hi) / 2 ELSE s.hi END "
      "FROM s JOIN audit.events e ON e.position = (s.lo + s.hi) / 2 WHERE s.lo < s.hi) "
      "SELECT min(lo) FROM s WHERE lo >= hi)");
}

// A recorded-time range as conditions on recorded_at and, equivalently but cheap to scan, on
// position (the bounds fall back to no bound if the log has a hole).
void AddRecordedRange(const v1::TimeRange& range, Sql* sql) {
  if (range.has_start()) {
    const std::string p = sql->Param(Time(range.start()));
    sql->Where(absl::StrCat("recorded_at >= ", p, "::timestamptz"));
    sql->Where(absl::StrCat("position >= coalesce(", FirstPositionRecordedFrom(p), ", 0)"));
  }
  if (range.has_end()) {
    const std::string p = sql->Param(Time(range.end()));
    sql->Where(absl::StrCat("recorded_at < ", p, "::timestamptz"));
    sql->Where(absl::StrCat("position < coalesce(", FirstPositionRecordedFrom(p),
                            ", 9223372036854775807)"));
  }
}

void AddFilter(const v1::EventFilter& f, Sql* sql) {
  if (!f.subject().empty()) sql->Where(absl::StrCat("subject = ", sql->Param(f.subject())));
  if (!f.types().empty()) {
    sql->Where(
        absl::StrCat("type = ANY(", sql->Param(pg::TextArrayLiteral(f.types())), "::text[])"));
  }
  if (!f.sources().empty()) {
    sql->Where(
        absl::StrCat("source = ANY(", sql->Param(pg::TextArrayLiteral(f.sources())), "::text[])"));
  }
  AddTimeRange(f.occurred(), "occurred_at", sql);
  AddRecordedRange(f.recorded(), sql);
  if (!f.correlation_id().empty()) {
    sql->Where(absl::StrCat("correlation_id = ", sql->Param(f.correlation_id())));
  }
  if (!f.actor().empty()) sql->Where(absl::StrCat("actor = ", sql->Param(f.actor())));
  if (!f.tenant().empty()) sql->Where(absl::StrCat("tenant = ", sql->Param(f.tenant())));
  if (!f.data_contains().empty()) {
    sql->Where(absl::StrCat("data @> ", sql->Param(f.data_contains()), "::jsonb"));
  }
}

absl::StatusOr<pg::ResultPtr> Run(PGconn* conn, const std::string& query, const Sql& sql) {
  return pg::ExecParams(conn, query.c_str(), sql.params());
}

// For statements that select kStoredEventColumns (binary result format). `prepared` for the
// fixed query shapes of the hot paths (a handful per connection; see pg::ExecPrepared).
absl::StatusOr<pg::ResultPtr> RunForEvents(PGconn* conn, const std::string& query, const Sql& sql,
                                           bool prepared = false) {
  if (prepared) return pg::ExecPrepared(conn, query, sql.params(), pg::ResultFormat::kBinary);
  return pg::ExecParams(conn, query.c_str(), sql.params(), pg::ResultFormat::kBinary);
}

// What one AppendEvents call saw.
struct AppendedEvents {
  int rows = 0;         // rows that hold an event (an outer join's row of NULLs does not)
  int64_t largest = 0;  // bytes of the largest event read, the one left out included
  bool cut = false;     // stopped before an event that would go past the budget
};

// Reads up to `limit` rows of kStoredEventColumns (from `first_col`) into `out` after its first
// `*used` elements, whose events' sizes add up to `*bytes`; both are advanced. Elements are
// overwritten in place, keeping their allocations (RepeatedPtrField::Clear would free their
// sub-messages). Stops before the event that would take `*bytes` past `budget`, unless it is
// the first (*used == 0). Elements from `*used` on may hold leftovers: the caller deletes them.
absl::StatusOr<AppendedEvents> AppendEvents(
    const PGresult* r, int first_col, int limit, int64_t budget,
    google::protobuf::RepeatedPtrField<v1::StoredEvent>* out, int* used, int64_t* bytes) {
  AppendedEvents seen;
  const int n = std::min(PQntuples(r), limit);
  for (int i = 0; i < n; ++i) {
    if (pg::IsNull(r, i, first_col)) continue;
    ++seen.rows;
    v1::StoredEvent* e = *used < out->size() ? out->Mutable(*used) : out->Add();
    int64_t size = 0;
    if (absl::Status s = ReadStoredEventRow(r, i, first_col, e, &size); !s.ok()) return s;
    seen.largest = std::max(seen.largest, size);
    if (*used > 0 && *bytes + size > budget) {
      seen.cut = true;  // the element just read is left for the caller to delete
      break;
    }
    ++*used;
    *bytes += size;
  }
  return seen;
}

// Replaces `out` with a page of the rows of kStoredEventColumns (fetched with LIMIT page + 1):
// at most `page`, and no more than EventQueries::kPageBytes of events beyond the first,
// reusing its elements. Returns the position the next page continues after, if there is one
// (more rows than the page, or the byte budget ended it).
absl::StatusOr<std::optional<int64_t>> ReadPage(
    const PGresult* r, int page, google::protobuf::RepeatedPtrField<v1::StoredEvent>* out) {
  int used = 0;
  int64_t bytes = 0;
  absl::StatusOr<AppendedEvents> seen =
      AppendEvents(r, 0, page, EventQueries::kPageBytes, out, &used, &bytes);
  if (!seen.ok()) return seen.status();
  if (used < out->size()) out->DeleteSubrange(used, out->size() - used);
  if (PQntuples(r) > page || seen->cut) return out->Get(used - 1).position();
  return std::nullopt;
}

v1::ErrorClass ErrorClassFromName(absl::string_view name) {
  v1::ErrorClass c = v1::ERROR_CLASS_UNSPECIFIED;
  v1::ErrorClass_Parse(absl::StrCat("ERROR_CLASS_", absl::AsciiStrToUpper(name)), &c);
  return c;
}

std::string ErrorClassColumnValue(v1::ErrorClass c) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::ErrorClass_Name(c), "ERROR_CLASS_"));
}

// Keyset pagination helper: adds the cursor condition from `token`, if any.
template <typename Request>
absl::Status AddCursor(const PageTokenCodec& tokens, const Request& r, const char* column,
                       bool descending, Sql* sql) {
  if (r.page_token().empty()) return absl::OkStatus();
  absl::StatusOr<int64_t> cursor = tokens.Decode(r, r.page_token());
  if (!cursor.ok()) return cursor.status();
  sql->Where(absl::StrCat(column, descending ? " < " : " > ", sql->Param(absl::StrCat(*cursor))));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> EventQueries::Head(PGconn* conn) {
  absl::StatusOr<pg::ResultPtr> r = pg::Exec(conn, "SELECT position FROM audit.append_head");
  if (!r.ok()) return r.status();
  return pg::Int64Value(r->get(), 0, 0);
}

absl::StatusOr<v1::GetEventResponse> EventQueries::GetEvent(PGconn* conn,
                                                            const v1::GetEventRequest& r) const {
  if (absl::Status s = Validate(r); !s.ok()) return s;
  Sql sql;
  if (r.lookup_case() == v1::GetEventRequest::kPosition) {
    sql.Where(absl::StrCat("position = ", sql.Param(absl::StrCat(r.position()))));
  } else {
    sql.Where(absl::StrCat("source = ", sql.Param(r.key().source())));
    sql.Where(absl::StrCat("event_id = ", sql.Param(r.key().id())));
  }
  absl::StatusOr<pg::ResultPtr> rows = RunForEvents(
      conn, absl::StrCat("SELECT ", kStoredEventColumns, " FROM audit.events", sql.WhereClause()),
      sql, /*prepared=*/true);
  if (!rows.ok()) return rows.status();
  if (PQntuples(rows->get()) == 0) {
    return absl::NotFoundError(
        r.lookup_case() == v1::GetEventRequest::kPosition
            ? absl::StrCat("no event at position ", r.position())
            : absl::StrCat("no event with source ", r.key().source(), " and id ", r.key().id()));
  }
  absl::StatusOr<v1::StoredEvent> e = StoredEventFromRow(rows->get(), 0);
  if (!e.ok()) return e.status();
  v1::GetEventResponse out;
  *out.mutable_event() = *std::move(e);
  return out;
}

absl::StatusOr<v1::ListEventsResponse> EventQueries::ListEvents(
    PGconn* conn, const v1::ListEventsRequest& r) const {
  if (absl::Status s = Validate(r); !s.ok()) return s;
  const int page = *PageSize(r.page_size(), kDefaultPageSize, "page_size");
  const bool desc = r.order() == v1::ORDER_NEWEST_FIRST;
  Sql sql;
  AddFilter(r.filter(), &sql);
  if (absl::Status s = AddCursor(*tokens_, r, "position", desc, &sql); !s.ok()) return s;
  absl::StatusOr<pg::ResultPtr> rows = RunForEvents(
      conn,
      absl::StrCat("SELECT ", kStoredEventColumns, " FROM audit.events", sql.WhereClause(),
                   " ORDER BY position ", desc ? "DESC" : "ASC", " LIMIT ", page + 1),
      sql);
  if (!rows.ok()) return rows.status();
  v1::ListEventsResponse out;
  absl::StatusOr<std::optional<int64_t>> next = ReadPage(rows->get(), page, out.mutable_events());
  if (!next.ok()) return next.status();
  if (next->has_value()) out.set_next_page_token(tokens_->Encode(r, **next));
  return out;
}

absl::StatusOr<v1::GetSubjectHistoryResponse> EventQueries::GetSubjectHistory(
    PGconn* conn, const v1::GetSubjectHistoryRequest& r) const {
  if (absl::Status s = Validate(r); !s.ok()) return s;
  const int page = *PageSize(r.page_size(), kMaxPageSize, "page_size");
  Sql sql;
  sql.Where(absl::StrCat("subject = ", sql.Param(r.subject())));
  if (r.has_as_of()) {
    sql.Where(absl::StrCat("recorded_at < ", sql.Param(Time(r.as_of())), "::timestamptz"));
  }
  if (absl::Status s = AddCursor(*tokens_, r, "position", false, &sql); !s.ok()) return s;
  const std::string limit = sql.Param(absl::StrCat(page + 1));
  absl::StatusOr<pg::ResultPtr> rows =
      RunForEvents(conn,
                   absl::StrCat("SELECT ", kStoredEventColumns, " FROM audit.events",
                                sql.WhereClause(), " ORDER BY position LIMIT ", limit),
                   sql, /*prepared=*/true);
  if (!rows.ok()) return rows.status();
  v1::GetSubjectHistoryResponse out;
  absl::StatusOr<std::optional<int64_t>> next = ReadPage(rows->get(), page, out.mutable_events());
  if (!next.ok()) return next.status();
  if (next->has_value()) out.set_next_page_token(tokens_->Encode(r, **next));
  return out;
}

absl::StatusOr<v1::GetStatisticsResponse> EventQueries::GetStatistics(
    PGconn* conn, const v1::GetStatisticsRequest& r) const {
  if (absl::Status s = Validate(r); !s.ok()) return s;
  Sql sql;
  AddTimeRange(r.occurred(), "occurred_at", &sql);
  AddRecordedRange(r.recorded(), &sql);
  const auto grouped = [&](const char* column) {
    return absl::StrCat("SELECT ", column, ", count(*), sum(count(*)) OVER () FROM audit.events",
                        sql.WhereClause(), " GROUP BY ", column, " ORDER BY 2 DESC, 1 LIMIT 1000");
  };
  v1::GetStatisticsResponse out;
  // One snapshot for every count.
  if (absl::StatusOr<pg::ResultPtr> b =
          pg::Exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL jit = on");
      !b.ok()) {
    return b.status();
  }
  absl::Status status = [&]() -> absl::Status {
    absl::StatusOr<pg::ResultPtr> types = Run(conn, grouped("type"), sql);
    if (!types.ok()) return types.status();
    for (int i = 0; i < PQntuples(types->get()); ++i) {
      v1::Count* c = out.add_by_type();
      c->set_key(std::string(pg::Value(types->get(), i, 0)));
      c->set_count(pg::Int64Value(types->get(), i, 1));
      out.set_event_count(pg::Int64Value(types->get(), i, 2));
    }
    absl::StatusOr<pg::ResultPtr> sources = Run(conn, grouped("source"), sql);
    if (!sources.ok()) return sources.status();
    for (int i = 0; i < PQntuples(sources->get()); ++i) {
      v1::Count* c = out.add_by_source();
      c->set_key(std::string(pg::Value(sources->get(), i, 0)));
      c->set_count(pg::Int64Value(sources->get(), i, 1));
    }
    absl::StatusOr<pg::ResultPtr> head =
        pg::Exec(conn,
                 "SELECT position, CASE WHEN position > 0 THEN (extract(epoch FROM recorded_at) * "
                 "1000000)::bigint END FROM audit.append_head");
    if (!head.ok()) return head.status();
    out.set_newest_position(pg::Int64Value(head->get(), 0, 0));
    if (!pg::IsNull(head->get(), 0, 1)) {
      *out.mutable_newest_recorded_time() = FromUnixMicros(pg::Int64Value(head->get(), 0, 1));
    }
    absl::StatusOr<pg::ResultPtr> dead = pg::Exec(
        conn, "SELECT error_class, count(*) FROM audit.dead_letters GROUP BY 1 ORDER BY 2 DESC, 1");
    if (!dead.ok()) return dead.status();
    for (int i = 0; i < PQntuples(dead->get()); ++i) {
      v1::Count* c = out.add_dead_letters_by_class();
      c->set_key(std::string(pg::Value(dead->get(), i, 0)));
      c->set_count(pg::Int64Value(dead->get(), i, 1));
      out.set_dead_letter_count(out.dead_letter_count() + c->count());
    }
    return absl::OkStatus();
  }();
  (void)pg::Exec(conn, status.ok() ? "COMMIT" : "ROLLBACK");
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<v1::ListDeadLettersResponse> EventQueries::ListDeadLetters(
    PGconn* conn, const v1::ListDeadLettersRequest& r) const {
  if (absl::Status s = Validate(r); !s.ok()) return s;
  const int page = *PageSize(r.page_size(), kDefaultPageSize, "page_size");
  Sql sql;
  if (r.error_class() != v1::ERROR_CLASS_UNSPECIFIED) {
    sql.Where(absl::StrCat("error_class = ", sql.Param(ErrorClassColumnValue(r.error_class()))));
  }
  AddTimeRange(r.received(), "received_at", &sql);
  if (absl::Status s = AddCursor(*tokens_, r, "id", true, &sql); !s.ok()) return s;
  absl::StatusOr<pg::ResultPtr> rows = Run(
      conn,
      absl::StrCat(
          "SELECT id, kafka_topic, kafka_partition, kafka_offset,"
          " (extract(epoch FROM kafka_timestamp) * 1000000)::bigint, encode(raw_key, 'base64'),"
          " (SELECT coalesce(json_agg(json_build_array(encode(k, 'base64'), encode(v, 'base64'))"
          "  ORDER BY ord), '[]')"
          "  FROM unnest(raw_header_keys, raw_header_values) WITH ORDINALITY AS h(k, v, "
          "ord))::text,"
          " encode(raw_value, 'base64'), error_class, reason, event_source, event_id,"
          " conflicting_position, (extract(epoch FROM received_at) * 1000000)::bigint"
          " FROM audit.dead_letters",
          sql.WhereClause(), " ORDER BY id DESC LIMIT ", page + 1),
      sql);
  if (!rows.ok()) return rows.status();
  const PGresult* res = rows->get();
  v1::ListDeadLettersResponse out;
  const auto unbase64 = [](absl::string_view b64) {
    std::string raw;
    // PostgreSQL wraps base64 output every 76 characters.
    std::string compact(b64);
    compact.erase(std::remove(compact.begin(), compact.end(), '\n'), compact.end());
    absl::Base64Unescape(compact, &raw);
    return raw;
  };
  const int n = std::min(PQntuples(res), page);
  int64_t bytes = 0;
  bool cut = false;  // the page ended at kPageBytes
  for (int i = 0; i < n; ++i) {
    v1::DeadLetter* d = out.add_dead_letters();
    d->set_id(pg::Int64Value(res, i, 0));
    d->mutable_provenance()->set_topic(std::string(pg::Value(res, i, 1)));
    d->mutable_provenance()->set_partition(static_cast<int32_t>(pg::Int64Value(res, i, 2)));
    d->mutable_provenance()->set_offset(pg::Int64Value(res, i, 3));
    if (!pg::IsNull(res, i, 4))
      *d->mutable_kafka_time() = FromUnixMicros(pg::Int64Value(res, i, 4));
    if (!pg::IsNull(res, i, 5)) d->set_raw_key(unbase64(pg::Value(res, i, 5)));
    absl::StatusOr<JsonValue> headers = ParseJson(pg::Value(res, i, 6));
    if (!headers.ok()) return absl::InternalError("dead letter headers do not decode");
    for (const JsonValue& h : headers->elements) {
      if (h.elements.size() != 2) return absl::InternalError("dead letter header shape");
      v1::KafkaHeader* kh = d->add_raw_headers();
      kh->set_key(unbase64(h.elements[0].scalar));
      if (h.elements[1].type != JsonValue::Type::kNull)
        kh->set_value(unbase64(h.elements[1].scalar));
    }
    if (!pg::IsNull(res, i, 7)) d->set_raw_value(unbase64(pg::Value(res, i, 7)));
    d->set_error_class(ErrorClassFromName(pg::Value(res, i, 8)));
    d->set_reason(std::string(pg::Value(res, i, 9)));
    d->set_event_source(std::string(pg::Value(res, i, 10)));
    d->set_event_id(std::string(pg::Value(res, i, 11)));
    if (!pg::IsNull(res, i, 12)) d->set_conflicting_position(pg::Int64Value(res, i, 12));
    *d->mutable_received_time() = FromUnixMicros(pg::Int64Value(res, i, 13));
    const int64_t size = static_cast<int64_t>(d->ByteSizeLong());
    if (i > 0 && bytes + size > kPageBytes) {
      out.mutable_dead_letters()->RemoveLast();
      cut = true;
      break;
    }
    bytes += size;
  }
  if (PQntuples(res) > page || cut) {
    out.set_next_page_token(tokens_->Encode(r, out.dead_letters(out.dead_letters_size() - 1).id()));
  }
  return out;
}

absl::StatusOr<ReplayPlan> EventQueries::PlanReplay(PGconn* conn,
                                                    const v1::ReplayEventsRequest& r) const {
  if (absl::Status s = Validate(r); !s.ok()) return s;
  ReplayPlan plan;
  plan.filter = r.filter();
  plan.follow = r.follow();
  plan.frame_events =
      r.max_events_per_frame() == 0 ? kDefaultFrameEvents : r.max_events_per_frame();
  if (r.start_case() == v1::ReplayEventsRequest::kAfterPosition) {
    plan.start_after = r.after_position();
  } else if (r.start_case() == v1::ReplayEventsRequest::kFromRecordedTime) {
    // recorded_at never decreases along positions: the first position recorded at or after
    // the time, minus one, is where to start (a scan if the log has a hole).
    const std::optional<std::string> params[] = {Time(r.from_recorded_time())};
    absl::StatusOr<pg::ResultPtr> start =
        pg::ExecParams(conn,
                       absl::StrCat("SELECT coalesce(", FirstPositionRecordedFrom("$1"), " - 1, ",
                                    "(SELECT coalesce(min(position) - 1, (SELECT position FROM "
                                    "audit.append_head)) FROM audit.events WHERE recorded_at >= "
                                    "$1::timestamptz))")
                           .c_str(),
                       params);
    if (!start.ok()) return start.status();
    plan.start_after = pg::Int64Value(start->get(), 0, 0);
  }
  if (!plan.follow) {
    absl::StatusOr<int64_t> head = Head(conn);
    if (!head.ok()) return head.status();
    plan.stop_at = *head;
  }
  if (r.with_proofs()) {
    absl::StatusOr<v1::Checkpoint> c = RequireLatestCheckpoint(conn);
    if (!c.ok()) return c.status();
    plan.stop_at = c->tree_size();
    plan.checkpoint = *std::move(c);
  }
  return plan;
}

absl::Status EventQueries::ReadReplayFrame(PGconn* conn, ReplayPlan* plan_in, int64_t after,
                                           v1::ReplayEventsResponse* out) const {
  ReplayPlan& plan = *plan_in;
  // Not Clear(): the events' allocations are reused (as in ReadPage).
  out->clear_proof();
  out->clear_checkpoint();
  v1::ReplayEventsResponse& frame = *out;
  const auto plus = [](int64_t a, int64_t b) {
    return a > std::numeric_limits<int64_t>::max() - b ? std::numeric_limits<int64_t>::max()
                                                       : a + b;
  };
  google::protobuf::RepeatedPtrField<v1::StoredEvent>& events = *frame.mutable_events();
  int used = 0;
  int64_t bytes = 0;
  int64_t last = after;  // every position up to here is in the frame or passed over
  bool caught_up = false;
  // One statement, which asks for as many rows as the rest of the budget holds judged by the
  // largest event of the statement before; the frame ends with it. The replay's first
  // statement asks for a few rows only, and a second one continues the frame.
  while (true) {
    const int left = plan.frame_events - used;
    const bool probe = plan.largest_event_bytes == 0;
    const int want = probe ? std::min(left, kFirstReadRows)
                           : static_cast<int>(std::clamp<int64_t>(
                                 (kReplayFrameBytes - bytes) / plan.largest_event_bytes, 1, left));
    Sql sql;
    AddFilter(plan.filter, &sql);
    const bool unfiltered = sql.empty();
    // Unfiltered, positions are gapless: the statement covers exactly the next `want`
    // positions, so the range itself bounds the work whatever plan the database picks (with
    // only a LIMIT, a table whose statistics are stale can be sorted window-wide before the
    // limit applies).
    const int64_t window_end =
        std::min(plan.stop_at, plus(last, unfiltered ? static_cast<int64_t>(want) : kReplayWindow));
    const std::string after_param = sql.Param(absl::StrCat(last));
    const std::string end_param = sql.Param(absl::StrCat(window_end));
    sql.Where(absl::StrCat("position > ", after_param));
    sql.Where(absl::StrCat("position <= least(h.position, ", end_param, ")"));
    const std::string limit = sql.Param(absl::StrCat(want));
    // The head and the events come from one snapshot: every position up to the head is
    // committed and visible (positions commit in order), so nothing below it can appear later.
    absl::StatusOr<pg::ResultPtr> rows = RunForEvents(
        conn,
        absl::StrCat("SELECT h.position, e.* FROM audit.append_head h LEFT JOIN LATERAL "
                     "(SELECT ",
                     kStoredEventColumns, " FROM audit.events", sql.WhereClause(),
                     " ORDER BY position LIMIT ", limit, ") e ON true"),
        sql, /*prepared=*/unfiltered);
    if (!rows.ok()) return rows.status();
    const PGresult* res = rows->get();
    const std::optional<int64_t> head_or = pg::BinaryInt64(res, 0, 0);
    if (!head_or.has_value()) return absl::InternalError("the append head does not decode");
    absl::StatusOr<AppendedEvents> seen =
        AppendEvents(res, 1, want, kReplayFrameBytes, &events, &used, &bytes);
    if (!seen.ok()) return seen.status();
    if (used > 0) last = events.Get(used - 1).position();
    if (seen->largest > 0) plan.largest_event_bytes = seen->largest;
    if (seen->cut) break;  // more events follow `last`
    if (seen->rows == want) {
      // The frame ends at `last` unless the statement was the first few rows only.
      if (used == plan.frame_events || !probe || bytes + seen->largest > kReplayFrameBytes) {
        caught_up = last >= std::min(*head_or, plan.stop_at);
        break;
      }
      continue;  // full statement, frame not yet full: the next rows
    }
    // Fewer rows than asked for: the window or the head ends the frame.
    last = std::max(last, std::min(*head_or, window_end));
    caught_up = last >= std::min(*head_or, plan.stop_at);
    break;
  }
  if (used < events.size()) events.DeleteSubrange(used, events.size() - used);
  frame.set_last_position(last);
  frame.set_caught_up(caught_up);
  if (plan.checkpoint.has_value()) {
    if (after == plan.start_after) *frame.mutable_checkpoint() = *plan.checkpoint;
    if (!frame.events().empty()) {
      const uint64_t first = static_cast<uint64_t>(frame.events(0).position());
      const uint64_t end = static_cast<uint64_t>(frame.events(frame.events_size() - 1).position());
      PgSubtrees subtrees(conn);
      absl::StatusOr<std::vector<Sha256Digest>> proof = merkle::RangeProof(
          first - 1, end, static_cast<uint64_t>(plan.checkpoint->tree_size()), subtrees.AsFn());
      if (!proof.ok()) {
        return absl::DataLossError(absl::StrCat("the store cannot prove positions ", first, "..",
                                                end, ": ", proof.status().message()));
      }
      v1::RangeProof* p = frame.mutable_proof();
      p->set_tree_size(plan.checkpoint->tree_size());
      for (const Sha256Digest& h : *proof) p->add_hashes(std::string(DigestBytes(h)));
    }
  }
  return absl::OkStatus();
}

}  // namespace audit::query
