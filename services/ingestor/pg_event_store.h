// EventSink over PostgreSQL (schema audit, role audit_writer).
//
// One transaction per batch:
//   1. SELECT * FROM audit.begin_append()    -- waits for the append lock; head + clock
//   2. look up the batch's (source, id) pairs -- one statement, under the lock
//   3. look up already dead-lettered messages -- only if the batch has dead letters
//   4. COPY dead letters, COPY events (binary) with positions head+1.., one recorded_at, and
//      their leaf and chain hashes; COPY the Merkle subtrees of >= 256 leaves they complete
//   5. COMMIT                                 -- the trigger checks continuity and the chain,
//                                                moves the head, NOTIFYs
// The Merkle frontier (one hash per set bit of the log's size) is cached between batches and
// rebuilt from audit.merkle_nodes whenever another writer moved the head.
// Because every writer holds the lock from step 1 to the commit, positions are gapless and
// commit in order, and the duplicate check cannot race another ingestor.
//
// The connection is opened lazily and re-opened after a failure, so a database that went
// away and came back needs nothing from the caller but a retry.
#ifndef SERVICES_INGESTOR_PG_EVENT_STORE_H_
#define SERVICES_INGESTOR_PG_EVENT_STORE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "audit/merkle.h"
#include "services/common/copy_binary.h"
#include "services/common/pg.h"
#include "services/ingestor/event_sink.h"

namespace audit::ingestor {

class PgEventStore : public EventSink {
 public:
  // Points of the append transaction, for fault-injection tests (tests/torture).
  enum class Stage {
    kBeforeInsert,  // the append lock is held, nothing written yet
    kBeforeCommit,  // everything written, not committed
  };

  struct Options {
    std::string url;  // libpq URI of a role in audit_writer
    pg::ConnectOptions connect;
    // Called at each Stage of every append; unset in production.
    std::function<void(Stage)> stage_hook;
  };

  // Does not connect; the first Append (or Ping) does.
  explicit PgEventStore(Options options);

  absl::StatusOr<AppendResult> Append(const AppendBatch& batch) override;

  // Connects if needed and checks the schema version. UNAVAILABLE if the database cannot be
  // reached, FAILED_PRECONDITION if it is not migrated.
  absl::Status Ping();

  // Time spent computing leaf and chain hashes and Merkle subtrees, since construction.
  absl::Duration hashing_time() const { return absl::Nanoseconds(hashing_nanos_.load()); }

 private:
  absl::StatusOr<AppendResult> AppendInTransaction(const AppendBatch& batch);
  absl::Status EnsureConnected();

  Options options_;
  pg::ConnPtr conn_;
  std::optional<merkle::Frontier> frontier_;  // at the head we last committed
  std::atomic<int64_t> hashing_nanos_{0};
};

// The binary COPY of audit.events the store runs, and one row of it: exposed for the
// benchmarks' raw-COPY baseline (tools/bench), which must write exactly the same rows.
extern const char kCopyEventsSql[];
void AppendEventCopyRow(const EventEntry& entry, int64_t position, int64_t recorded_micros,
                        const Sha256Digest& leaf, const Sha256Digest& chain,
                        pg::BinaryCopyWriter* w);

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_PG_EVENT_STORE_H_
