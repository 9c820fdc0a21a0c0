// The core of ProofService: checkpoints and proofs from the store, over one PostgreSQL
// connection of a role in audit_reader. No gRPC here; proof_service.cc adapts it.
//
// Proofs are built from the stored subtree hashes (services/common/merkle_store.h) and are
// only as good as the store: clients check them against checkpoints signed by keys they pin
// (audit/verify.h). VerifyRange is the exception, a server-side recomputation for operators.
//
// Errors: INVALID_ARGUMENT naming the field; NOT_FOUND for a missing event or before the first
// checkpoint; OUT_OF_RANGE for a tree larger than the log; UNAVAILABLE / DEADLINE_EXCEEDED from
// the database. Thread safety: const methods, one connection per concurrent call.
#ifndef SERVICES_QUERY_PROOF_QUERIES_H_
#define SERVICES_QUERY_PROOF_QUERIES_H_

#include <libpq-fe.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/v1/audit_service.pb.h"
#include "audit/v1/proof_service.pb.h"
#include "services/query/page_token.h"

namespace audit::query {

class ProofQueries {
 public:
  // `trusted_keys`: raw Ed25519 public keys VerifyRange pins (empty: trust on first use).
  ProofQueries(const PageTokenCodec* tokens, std::vector<std::string> trusted_keys)
      : tokens_(tokens), trusted_keys_(std::move(trusted_keys)) {}

  absl::StatusOr<v1::GetLatestCheckpointResponse> GetLatestCheckpoint(
      PGconn* conn, const v1::GetLatestCheckpointRequest& r) const;
  absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints(
      PGconn* conn, const v1::ListCheckpointsRequest& r) const;
  absl::StatusOr<v1::GetInclusionProofResponse> GetInclusionProof(
      PGconn* conn, const v1::GetInclusionProofRequest& r) const;
  absl::StatusOr<v1::GetConsistencyProofResponse> GetConsistencyProof(
      PGconn* conn, const v1::GetConsistencyProofRequest& r) const;
  absl::StatusOr<v1::VerifyRangeResponse> VerifyRange(PGconn* conn,
                                                      const v1::VerifyRangeRequest& r) const;

 private:
  const PageTokenCodec* tokens_;
  std::vector<std::string> trusted_keys_;
};

}  // namespace audit::query

#endif  // SERVICES_QUERY_PROOF_QUERIES_H_
