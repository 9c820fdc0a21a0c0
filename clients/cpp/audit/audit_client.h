// AuditClient: typed access to the audit trail's query server.
//
//   AuditClient client(MakeAuditConnection({.target = "127.0.0.1:50051"}));
//   absl::StatusOr<std::vector<v1::StoredEvent>> history = client.SubjectHistory("order-42");
//
//   v1::ReplayEventsRequest from_start;
//   from_start.set_follow(true);
//   ReplayStream replay = client.Replay(from_start);
//   while (true) {
//     absl::StatusOr<std::optional<v1::StoredEvent>> e = replay.Next();
//     if (!e.ok()) break;        // a failure resuming could not overcome
//     if (!e->has_value()) break;  // complete (not following)
//     Apply(**e);                  // each event exactly once, in order
//   }
//
// Proven reads trust nothing the server says without proof: they check signatures against the
// keys a LogAnchor pins and proofs against the checkpoint it trusts (and advance it):
//
//   LogAnchor anchor({PublicKeyFromPemFile("audit-signing.pub").value()});
//   absl::StatusOr<v1::StoredEvent> e = client.GetProvenEvent(42, &anchor);
//   ReplayStream proven = client.Replay(request, {.verify_with = &anchor});
//
// AuditClient is a cheap value type (copy it freely) over a shared AuditConnection; errors are
// absl::Status with the server's code (INVALID_ARGUMENT naming the field, NOT_FOUND, ...);
// DATA_LOSS means a proof failed: the server's log is not the one the anchor trusts.
#ifndef CLIENTS_CPP_AUDIT_AUDIT_CLIENT_H_
#define CLIENTS_CPP_AUDIT_AUDIT_CLIENT_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/audit_connection.h"
#include "audit/v1/audit_service.pb.h"
#include "audit/verify.h"

namespace audit {

struct ReplayOptions {
  // Consecutive failed attempts to (re)open the stream before Next() reports the error;
  // 0 = keep trying forever (for long-lived followers).
  int max_reconnect_attempts = 10;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(10);
  // Prove the replay (with_proofs is then set on the request): every frame is checked against
  // the checkpoint it comes with, which must be signed by a pinned key and extend the anchor's
  // checkpoint (the anchor advances to it); the events must be contiguous, and the replay must
  // reach the checkpoint's tree size. A failure is DATA_LOSS, before the frame's events are
  // delivered. Must outlive the stream. Incompatible with follow and filters.
  LogAnchor* verify_with = nullptr;
};

// Events of a replay, one at a time, each exactly once and in position order. After a
// disconnect it reopens the stream after the last position it received (with backoff), so
// the caller sees neither a gap nor a duplicate; with ReplayOptions::verify_with it proves
// that too. Not thread-safe, except Cancel().
class ReplayStream {
 public:
  ReplayStream(std::shared_ptr<AuditConnection> connection, v1::ReplayEventsRequest request,
               ReplayOptions options);

  // The next event; nullopt when a non-following replay is complete; an error that resuming
  // could not overcome (or a non-retryable one, e.g. INVALID_ARGUMENT, or CANCELLED after
  // Cancel()).
  absl::StatusOr<std::optional<v1::StoredEvent>> Next();

  // Every position up to this one has been considered: where a new replay would resume.
  int64_t last_position() const { return last_position_; }
  // The position of the last event Next() returned (0 if none).
  int64_t last_delivered() const { return last_delivered_; }
  // Whether the stream has caught up with the head of the log at least once.
  bool caught_up() const { return caught_up_; }
  // How many times the stream was reopened after a failure.
  int reconnects() const { return reconnects_; }

  // Stops the replay from another thread; the pending or next Next() returns CANCELLED.
  void Cancel();

  // With verify_with: the checkpoint the delivered events are proven against.
  const std::optional<v1::Checkpoint>& proven_against() const { return checkpoint_; }

 private:
  absl::Status Reopen();
  // Checks a frame before its events are buffered (verify_with only).
  absl::Status VerifyFrame(const v1::ReplayEventsResponse& frame);
  absl::Status VerifyComplete() const;

  std::shared_ptr<AuditConnection> connection_;
  v1::ReplayEventsRequest request_;
  ReplayOptions options_;
  std::unique_ptr<ReplayFrameReader> reader_;
  std::deque<v1::StoredEvent> buffer_;
  int64_t last_position_ = -1;  // -1 until the first frame: the request's own start applies
  int64_t last_delivered_ = 0;
  bool caught_up_ = false;
  bool done_ = false;
  int reconnects_ = 0;
  std::optional<v1::Checkpoint> checkpoint_;  // of the current stream, when verifying
  int64_t next_expected_ = 0;                 // when verifying: the next position due (0: any)
  std::atomic<bool> cancelled_{false};
  absl::Mutex reader_mu_;  // guards reader_ against Cancel()
};

class AuditClient {
 public:
  explicit AuditClient(std::shared_ptr<AuditConnection> connection)
      : connection_(std::move(connection)) {}

  absl::StatusOr<v1::StoredEvent> GetEvent(int64_t position) const;
  absl::StatusOr<v1::StoredEvent> GetEvent(const std::string& source, const std::string& id) const;

  // One page (see ListEventsRequest), or every page up to `max_events`.
  absl::StatusOr<v1::ListEventsResponse> ListEvents(const v1::ListEventsRequest& request) const;
  absl::StatusOr<std::vector<v1::StoredEvent>> ListAllEvents(v1::ListEventsRequest request,
                                                             size_t max_events = 100'000) const;

  // Every event of `subject` in order; with `as_of`, as the store knew it then.
  absl::StatusOr<std::vector<v1::StoredEvent>> SubjectHistory(
      const std::string& subject, std::optional<absl::Time> as_of = std::nullopt) const;

  absl::StatusOr<v1::GetStatisticsResponse> GetStatistics(
      const v1::GetStatisticsRequest& request = {}) const;
  absl::StatusOr<v1::ListDeadLettersResponse> ListDeadLetters(
      const v1::ListDeadLettersRequest& request = {}) const;

  ReplayStream Replay(v1::ReplayEventsRequest request, ReplayOptions options = {}) const;

  // The newest checkpoint as the server reports it (unverified).
  absl::StatusOr<v1::Checkpoint> LatestCheckpoint() const;
  // Every checkpoint-log entry (for export; verify with LogVerifier).
  absl::StatusOr<std::vector<v1::Checkpoint>> ListAllCheckpoints() const;
  // Fetches the newest checkpoint and advances `anchor` to it (signature, consistency with
  // what the anchor trusted); returns it.
  absl::StatusOr<v1::Checkpoint> VerifyLatestCheckpoint(LogAnchor* anchor) const;
  // The event at `position`, proven to be in the log the anchor trusts (after advancing it to
  // the newest checkpoint). NOT_FOUND / INVALID_ARGUMENT if the position is not yet signed.
  absl::StatusOr<v1::StoredEvent> GetProvenEvent(int64_t position, LogAnchor* anchor) const;
  // The same, with the verified proof (its checkpoint field set to the anchor's checkpoint).
  absl::StatusOr<v1::GetInclusionProofResponse> ProveEvent(int64_t position,
                                                           LogAnchor* anchor) const;
  // Asks the server to recompute a range (ProofService.VerifyRange): for operators; auditors
  // verify on their side (LogVerifier, `auditctl verify`).
  absl::StatusOr<v1::VerifyRangeResponse> VerifyRangeOnServer(int64_t first_position = 0,
                                                              int64_t last_position = 0) const;

 private:
  std::shared_ptr<AuditConnection> connection_;
};

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_AUDIT_CLIENT_H_
