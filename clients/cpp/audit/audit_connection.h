// The SDK's connection to the query server: one virtual method per RPC (AuditService and
// ProofService), so that users can
// substitute a mock in their own tests (audit/mocks/mock_audit_connection.h) and AuditClient
// stays a cheap value type over a shared connection.
//
//   std::shared_ptr<AuditConnection> conn =
//       MakeAuditConnection({.target = "audit-query:50051"});
//   AuditClient client(conn);
//
// The gRPC implementation applies a deadline to every call and retries the calls (all of
// which are read-only and idempotent) on UNAVAILABLE, RESOURCE_EXHAUSTED and ABORTED with
// exponential backoff and jitter. Thread-safe.
#ifndef CLIENTS_CPP_AUDIT_AUDIT_CONNECTION_H_
#define CLIENTS_CPP_AUDIT_AUDIT_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audit/v1/audit_service.pb.h"
#include "audit/v1/proof_service.pb.h"

namespace audit {

struct RetryPolicy {
  int max_attempts = 5;  // including the first
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
};

// True for the codes worth retrying an idempotent call on.
bool IsRetryable(absl::StatusCode code);

// Frames of one replay stream, as the server sends them.
class ReplayFrameReader {
 public:
  virtual ~ReplayFrameReader() = default;
  // The next frame; nullopt when the stream ended normally; an error when it failed.
  virtual absl::StatusOr<std::optional<v1::ReplayEventsResponse>> Next() = 0;
  // Ends the stream early (from any thread); Next then reports CANCELLED.
  virtual void Cancel() = 0;
};

class AuditConnection {
 public:
  virtual ~AuditConnection() = default;

  virtual absl::StatusOr<v1::GetEventResponse> GetEvent(const v1::GetEventRequest& r) = 0;
  virtual absl::StatusOr<v1::ListEventsResponse> ListEvents(const v1::ListEventsRequest& r) = 0;
  virtual absl::StatusOr<v1::GetSubjectHistoryResponse> GetSubjectHistory(
      const v1::GetSubjectHistoryRequest& r) = 0;
  virtual absl::StatusOr<v1::GetStatisticsResponse> GetStatistics(
      const v1::GetStatisticsRequest& r) = 0;
  virtual absl::StatusOr<v1::ListDeadLettersResponse> ListDeadLetters(
      const v1::ListDeadLettersRequest& r) = 0;
  // Opens a replay stream (no retries: ReplayStream resumes by itself).
  virtual std::unique_ptr<ReplayFrameReader> ReplayEvents(const v1::ReplayEventsRequest& r) = 0;

  // ProofService. Responses are claims of the server: check them (audit/verify.h).
  virtual absl::StatusOr<v1::GetLatestCheckpointResponse> GetLatestCheckpoint(
      const v1::GetLatestCheckpointRequest& r) = 0;
  virtual absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints(
      const v1::ListCheckpointsRequest& r) = 0;
  virtual absl::StatusOr<v1::GetInclusionProofResponse> GetInclusionProof(
      const v1::GetInclusionProofRequest& r) = 0;
  virtual absl::StatusOr<v1::GetConsistencyProofResponse> GetConsistencyProof(
      const v1::GetConsistencyProofRequest& r) = 0;
  virtual absl::StatusOr<v1::VerifyRangeResponse> VerifyRange(const v1::VerifyRangeRequest& r) = 0;
};

struct ConnectionOptions {
  std::string target;                                     // host:port of the query server
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // insecure when unset
  absl::Duration timeout = absl::Seconds(30);             // per unary call
  RetryPolicy retry;
  // Use this channel instead of creating one from target (e.g. an in-process channel).
  std::shared_ptr<grpc::Channel> channel;
};

std::shared_ptr<AuditConnection> MakeAuditConnection(ConnectionOptions options);

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_AUDIT_CONNECTION_H_
