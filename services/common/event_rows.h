// Reading audit.events rows back into audit.v1.StoredEvent.
//
//   std::string sql = absl::StrCat("SELECT ", kStoredEventColumns,
//                                  " FROM audit.events WHERE position = $1");
//   ... pg::ExecParams(conn, sql.c_str(), params, pg::ResultFormat::kBinary) ...
//   ... StoredEventFromRow(result, row) ...
//
// Rows are read in binary format: integers, timestamps and hashes then cross the wire as
// their bytes, with no text rendering on the server nor parsing here.
//
// The rebuilt event is exactly the normalised event the ingestor stored: re-hashing it with
// ContentHash() gives the row's content_hash (which is how tests and verifiers check that the
// columns hold what was received).
#ifndef SERVICES_COMMON_EVENT_ROWS_H_
#define SERVICES_COMMON_EVENT_ROWS_H_

#include <libpq-fe.h>

#include "absl/status/statusor.h"
#include "audit/v1/event.pb.h"

namespace audit {

// The select list StoredEventFromRow expects, in this order (binary result format).
extern const char kStoredEventColumns[];

// Decodes row `row` of a result whose columns are kStoredEventColumns (starting at `first_col`).
// INTERNAL if the result is not in binary format or a column does not decode (never expected
// for rows the ingestor wrote).
absl::StatusOr<v1::StoredEvent> StoredEventFromRow(const PGresult* result, int row,
                                                   int first_col = 0);

// The same, into `*out`, replacing what it held but reusing its strings and sub-messages
// (every field is overwritten; `*out` must hold nothing but a StoredEvent's own fields).
// With `bytes`, sets it to about the event's encoded size: its values' bytes plus generous
// room for the fixed-size fields, tags and lengths.
absl::Status ReadStoredEventRow(const PGresult* result, int row, int first_col,
                                v1::StoredEvent* out, int64_t* bytes = nullptr);

}  // namespace audit

#endif  // SERVICES_COMMON_EVENT_ROWS_H_
