// The schema migrations compiled into this binary (schema/migrations/NNNN_name.sql).
#ifndef SCHEMA_MIGRATIONS_H_
#define SCHEMA_MIGRATIONS_H_

#include <vector>

#include "absl/strings/string_view.h"

namespace audit::schema {

struct Migration {
  int version;             // NNNN from the file name; strictly increasing from 1
  absl::string_view name;  // the rest of the file name, e.g. "event_store"
  absl::string_view sql;   // the file's text
};

// In version order.
const std::vector<Migration>& EmbeddedMigrations();

}  // namespace audit::schema

#endif  // SCHEMA_MIGRATIONS_H_
