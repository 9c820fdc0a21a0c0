// Verifying the log, offline: events and checkpoint-log entries in, the first problem out.
//
//   LogVerifier v({.trusted_keys = {public_key}});
//   for (const auto& c : checkpoints) v.AddCheckpoint(c);  // all of them, in seq order
//   for (const auto& e : events) v.AddEvent(e);            // in position order, from 1
//   VerifyReport r = v.Finish();
//   if (!r.ok) ... r.first_bad_position, r.problem
//
// For every event: its position continues the log; its content hash, leaf hash (over position,
// recorded time, provenance and content) and chain hash are recomputed and compared. For every
// entry: seq continues, it signs the previous entry's signature hash, its signature verifies and
// its key is trusted (pinned, or endorsed by a trusted key in a rotation); when the events reach
// its tree size, the recomputed Merkle root and chain hash must equal the signed ones.
//
// first_bad_position is the first position that cannot be proven intact: the exact position
// for a missing, reordered or altered event whose hashes were not recomputed; for a rewrite
// that recomputed every hash, the first position after the last checkpoint that still matches
// (signatures are the only evidence left); for a problem with the checkpoint log itself, the
// first position it no longer covers. Not thread-safe.
#ifndef CLIENTS_CPP_AUDIT_VERIFY_H_
#define CLIENTS_CPP_AUDIT_VERIFY_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "audit/merkle.h"
#include "audit/v1/audit_service.pb.h"
#include "audit/v1/proof.pb.h"
#include "audit/v1/proof_service.pb.h"

namespace audit {

struct VerifyReport {
  bool ok = true;
  int64_t events_checked = 0;
  int64_t checkpoints_checked = 0;
  int64_t first_bad_position = 0;  // 0 when ok
  std::string problem;
  // Every position up to this one is covered by a valid, trusted, matching checkpoint.
  int64_t verified_through = 0;
  // The last position seen.
  int64_t last_position = 0;
  // Whether signatures were checked against pinned keys (false: trust on first use).
  bool keys_pinned = false;
};

class LogVerifier {
 public:
  struct Options {
    // Raw Ed25519 public keys whose signatures are trusted. Empty: the first entry's key is
    // trusted on first use (and the report says so).
    std::vector<std::string> trusted_keys;
    // Verify from this position on, given the log's state just before it (from a trusted
    // source); the default is the whole log from position 1.
    int64_t first_position = 1;
    Sha256Digest chain_before = {};
    merkle::Frontier frontier_before;
  };

  explicit LogVerifier(Options options);

  void AddCheckpoint(const v1::Checkpoint& c);
  void AddEvent(const v1::StoredEvent& e);
  VerifyReport Finish();

  bool failed() const { return !report_.ok; }

 private:
  void Fail(int64_t position, std::string problem);
  // A problem of the checkpoint log itself: reported unless the events fail earlier.
  void FailLog(int64_t position, std::string problem);
  void CheckDueCheckpoints();

  Options options_;
  VerifyReport report_;
  std::optional<std::pair<int64_t, std::string>> log_problem_;
  std::set<std::string> trusted_;
  std::optional<v1::Checkpoint> last_entry_;
  std::deque<v1::Checkpoint> due_;  // valid entries waiting for the events to reach them
  int64_t next_position_;
  Sha256Digest chain_;
  merkle::Frontier frontier_;
};

// What a client trusts about the log: the public keys it pins and, once it has seen one, the
// newest checkpoint it verified. Everything the server sends is checked against it:
//
//   LogAnchor anchor({public_key});                  // or with a checkpoint kept from before
//   absl::Status s = anchor.Advance(latest, consistency_proof_hashes);
//   s = anchor.VerifyInclusion(inclusion_response);  // against anchor.checkpoint()
//
// Persist checkpoint() between runs (e.g. SerializeAsString) and restore it with the keys: a
// server that later shows a log that does not extend it is caught. Not thread-safe.
class LogAnchor {
 public:
  explicit LogAnchor(std::vector<std::string> trusted_keys,
                     std::optional<v1::Checkpoint> trusted = std::nullopt);

  // Accepts `next` iff it is signed by a pinned key (checkpoints signed with a new key are
  // accepted after an endorsed rotation entry was accepted) and, when a checkpoint is already
  // trusted, `consistency_proof` (from GetConsistencyProof) proves `next` extends it; an equal
  // tree size needs an equal root and chain hash. A smaller tree size is accepted only if
  // it was proven before: it is refused (FAILED_PRECONDITION) rather than ignored. Errors are
  // DATA_LOSS (the server or its log is lying) or INVALID_ARGUMENT (malformed input).
  absl::Status Advance(const v1::Checkpoint& next, absl::Span<const std::string> consistency_proof);

  // OK iff `r` proves its event (leaf recomputed from the event's fields) is in the tree of
  // the trusted checkpoint: r.tree_size must be the trusted checkpoint's.
  absl::Status VerifyInclusion(const v1::GetInclusionProofResponse& r) const;

  const std::optional<v1::Checkpoint>& checkpoint() const { return trusted_; }
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  std::vector<std::string> keys_;
  std::optional<v1::Checkpoint> trusted_;
};

// OK iff `frame`'s events are exactly leaves [first - 1, last) of `checkpoint`'s tree: their
// hashes recomputed from their fields, and `frame.proof` leads to the checkpoint's root. The
// caller checks the checkpoint's signature and that frames follow each other without gaps.
absl::Status VerifyReplayFrame(const v1::ReplayEventsResponse& frame,
                               const v1::Checkpoint& checkpoint);

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_VERIFY_H_
