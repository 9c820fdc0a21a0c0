// The audit-ingestor program as a function, so that a test build can add fault-injection
// hooks (tests/torture) to exactly the production code path. Flags are defined here.
#ifndef SERVICES_INGESTOR_INGESTOR_MAIN_H_
#define SERVICES_INGESTOR_INGESTOR_MAIN_H_

#include <functional>

#include "services/ingestor/pg_event_store.h"

namespace audit::ingestor {

struct IngestorHooks {
  // Called at each stage of every append transaction.
  std::function<void(PgEventStore::Stage)> store_stage;
  // Called after a batch is stored, before its offsets are committed.
  std::function<void()> before_offset_commit;
};

// Parses flags and the environment, runs until SIGINT/SIGTERM; returns the exit status.
int IngestorMain(int argc, char** argv, const IngestorHooks& hooks);

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_INGESTOR_MAIN_H_
