// The checkpointer: signs the log's Merkle root at intervals (docs/VERIFICATION.md).
//
// Each round, in one transaction holding an advisory lock (so several ingestors sign one at a
// time and never fork the checkpoint log):
//   1. reads the newest checkpoint-log entry (size T1, root R1) and the head (size T, chain);
//   2. rebuilds the Merkle frontier at T1 from the stored subtrees and checks that its root is
//      R1 — and that the newest entry's signature verifies — before anything else; then folds
//      in the leaf hashes T1+1..T and checks that the stored subtrees those leaves complete are
//      the ones they hash to, and that the head's chain hash is the chain of those leaves. The
//      leaves come from the `leaf_feed` where it holds them (what this process's store wrote
//      and committed), otherwise from the database, checking that each row's chain hash
//      continues the chain;
//   3. appends, each signing the SHA-256 of the previous entry's signature:
//        - a KEY_ROTATION entry if the newest entry was signed by another key (endorsed when
//          that key is `previous_key`);
//        - a GAP entry if an event waited longer than `gap_after` for a checkpoint (signing
//          was off or failing);
//        - otherwise a CHECKPOINT entry if the log grew.
// If step 2 finds anything that does not add up, the round signs nothing and returns
// DATA_LOSS naming what it found: a signer must never vouch for a log it cannot reconcile with
// what it signed before. Events since T1 that the feed holds are signed as written; the others
// as stored, and what a database administrator changes in those before the round is caught
// only by verifiers (see the threat model).
//
// A checkpointer whose key is no longer the newest entry's, and was seen before in the log,
// stays passive (another ingestor has been given a newer key: a rolling rotation).
// Not thread-safe; Run() owns the object.
#ifndef SERVICES_INGESTOR_CHECKPOINTER_H_
#define SERVICES_INGESTOR_CHECKPOINTER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "audit/signing.h"
#include "audit/v1/proof.pb.h"
#include "services/common/pg.h"
#include "services/ingestor/leaf_feed.h"

namespace audit::ingestor {

class Checkpointer {
 public:
  struct Options {
    std::string url;  // libpq URI of a role in audit_writer
    pg::ConnectOptions connect;
    SigningKey key;
    // The key the log was signed with before `key`, to endorse the rotation.
    std::optional<SigningKey> previous_key;
    absl::Duration interval = absl::Seconds(10);
    // An event that waited longer than this for a checkpoint makes a GAP entry.
    absl::Duration gap_after = absl::Minutes(1);
    // Most leaf hashes read per query while catching up.
    int64_t read_chunk = 100000;
    // The leaves this process's store committed (not owned; outlives the checkpointer).
    // Optional: without it every leaf is read from the database.
    LeafFeed* leaf_feed = nullptr;
    std::function<absl::Time()> clock = [] { return absl::Now(); };
  };

  struct Round {
    std::vector<v1::Checkpoint> appended;
    // The newest entry is signed by a newer key than ours.
    bool passive = false;
  };

  explicit Checkpointer(Options options);

  // One round. UNAVAILABLE if the database is, DATA_LOSS if the log does not reconcile with
  // the checkpoint log, ABORTED if another signer won a race for the next seq.
  absl::StatusOr<Round> RunOnce();

  // Time spent in rounds since construction (for the benchmarks).
  absl::Duration busy() const { return absl::Nanoseconds(busy_nanos_.load()); }
  // Leaves folded in since construction: read from the database, taken from the feed.
  int64_t leaves_read() const { return leaves_read_.load(); }
  int64_t leaves_fed() const { return leaves_fed_.load(); }

  // Rounds every `interval` until `stop` is notified, then one last round (so that a clean
  // shutdown leaves everything stored signed); logs failures and keeps going.
  void Run(const absl::Notification& stop);

 private:
  absl::StatusOr<Round> RunOnceUntimed();
  absl::StatusOr<Round> RoundInTransaction(PGconn* conn);

  Options options_;
  pg::ConnPtr conn_;
  std::atomic<int64_t> busy_nanos_{0};
  std::atomic<int64_t> leaves_read_{0};
  std::atomic<int64_t> leaves_fed_{0};
};

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_CHECKPOINTER_H_
