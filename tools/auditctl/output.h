// How auditctl prints events: NDJSON for machines, aligned tables for people.
#ifndef TOOLS_AUDITCTL_OUTPUT_H_
#define TOOLS_AUDITCTL_OUTPUT_H_

#include <string>
#include <vector>

#include "audit/v1/audit_service.pb.h"

namespace audit::cli {

// One JSON object (one line, no newline): the store's fields and the event as a CloudEvents
// JSON document:
//   {"position":1,"recorded_time":"...Z","topic":"orders.events","partition":0,"offset":5,
//    "content_hash":"<hex>","event":{"specversion":"1.0",...}}
std::string EventJson(const v1::StoredEvent& e);

// A dead letter as one JSON object; raw bytes are base64 ("raw_value_base64", ...).
std::string DeadLetterJson(const v1::DeadLetter& d);

// A plain-text table: a header row and rows, columns padded to the widest cell (cells longer
// than `max_width` are cut with "…").
std::string Table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& rows, size_t max_width = 48);

// Every field of one event, one per line ("name  value"), for people.
std::string EventDetails(const v1::StoredEvent& e);

// The table columns for events: POSITION, OCCURRED, TYPE, SUBJECT, SOURCE, ID.
std::vector<std::string> EventHeader();
std::vector<std::string> EventRow(const v1::StoredEvent& e);

}  // namespace audit::cli

#endif  // TOOLS_AUDITCTL_OUTPUT_H_
