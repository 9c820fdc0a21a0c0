// EventSink over PostgreSQL (schema audit, role audit_writer).
//
// One transaction per batch:
//   1. SELECT * FROM audit.begin_append()    -- waits for the append lock; head + clock
//   2. look up the batch's (source, id) pairs -- one statement, under the lock; skipped while
//      batches hold nothing already stored: the unique index on (source, id) refuses a
//      duplicate (23505), and the batch is redone with the lookup (as are the next 16)
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

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/merkle.h"
#include "services/common/copy_binary.h"
#include "services/common/pg.h"
#include "services/ingestor/event_sink.h"
#include "services/ingestor/leaf_feed.h"

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
    // Given the leaf hashes of every committed append, for this process's checkpointer
    // (not owned; outlives the store). Optional.
    LeafFeed* leaf_feed = nullptr;
  };

  // Does not connect; the first Append (or Ping) does.
  explicit PgEventStore(Options options);

  absl::StatusOr<AppendResult> Append(const AppendBatch& batch) override;

  // Connects if needed and checks the schema version. UNAVAILABLE if the database cannot be
  // reached, FAILED_PRECONDITION if it is not migrated.
  absl::Status Ping();

  // Where append time went, cumulative since construction (read from any thread):
  //   lock     begin_append() (waiting for the append lock), rebuilding the Merkle frontier
  //   lookup   finding already stored (source, id) pairs
  //   hashing  leaf and chain hashes, Merkle subtrees
  //   encode   the binary COPY rows
  //   copy     dead letters (looked up and written), COPY of events and subtrees, the
  //            continuity trigger
  //   commit   COMMIT (the WAL flush)
  enum class Phase { kLock, kLookup, kHashing, kEncode, kCopy, kCommit, kCount };
  absl::Duration phase_time(Phase p) const {
    return absl::Nanoseconds(phase_nanos_[static_cast<int>(p)].load());
  }
  absl::Duration hashing_time() const { return phase_time(Phase::kHashing); }
  // Optimistic appends that met an already stored event and were redone with the lookup.
  int64_t optimistic_misses() const { return optimistic_misses_.load(); }
  // Appends made as one query (AppendScripted).
  int64_t scripted_appends() const { return scripted_appends_.load(); }

 private:
  // Batches appended with the (source, id) lookup after an optimistic attempt hit a duplicate.
  static constexpr int kLookupRun = 16;

  class PhaseClock;

  absl::StatusOr<AppendResult> AppendOnce(const AppendBatch& batch, bool lookup);
  absl::StatusOr<AppendResult> AppendInTransaction(const AppendBatch& batch, bool lookup);
  // The optimistic append as one query (pg::Script): lock, events, subtrees, commit. nullopt
  // (nothing written) when the batch needs AppendOnce: a conflict within the batch, or a head
  // moved by another writer since our last commit (the frontier must be rebuilt).
  absl::StatusOr<std::optional<AppendResult>> AppendScripted(const AppendBatch& batch);
  // Hashes, encodes and streams `fresh` (positions head+1..) into `copy`; the leaf hashes go
  // to `leaves` unless it is null.
  void StreamEvents(const std::vector<const EventEntry*>& fresh, int64_t head, int64_t now_micros,
                    Sha256Digest* chain, merkle::Frontier* frontier,
                    std::vector<merkle::Frontier::Node>* completed,
                    std::vector<Sha256Digest>* leaves, pg::CopyStream* copy, PhaseClock* clock);
  // `leaves` if there is a feed to hand them to, else null (nothing collected).
  std::vector<Sha256Digest>* LeavesFor(std::vector<Sha256Digest>* leaves) const {
    return options_.leaf_feed != nullptr ? leaves : nullptr;
  }
  // After a COMMIT succeeded: the frontier at the new head, the leaves to the feed.
  void Committed(merkle::Frontier frontier, int64_t head, int64_t now_micros,
                 std::vector<Sha256Digest> leaves);
  // After a failed transaction: rolls back (or drops the connection) and forgets the frontier;
  // returns `why` classified for the caller (23505 left as is, for Append).
  absl::Status AbandonTransaction(absl::Status why);
  absl::Status EnsureConnected();

  Options options_;
  pg::ConnPtr conn_;
  std::optional<merkle::Frontier> frontier_;  // at the head we last committed
  std::array<std::atomic<int64_t>, static_cast<int>(Phase::kCount)> phase_nanos_{};
  int lookups_ahead_ = 0;
  std::atomic<int64_t> optimistic_misses_{0};
  std::atomic<int64_t> scripted_appends_{0};
};

// The binary COPY of audit.events the store runs, and one row of it: exposed for the
// benchmarks' raw-COPY baseline (tools/bench), which must write exactly the same rows.
extern const char kCopyEventsSql[];
void AppendEventCopyRow(const EventEntry& entry, int64_t position, int64_t recorded_micros,
                        const Sha256Digest& leaf, const Sha256Digest& chain,
                        pg::BinaryCopyWriter* w);

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_PG_EVENT_STORE_H_
