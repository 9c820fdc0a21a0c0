// ProofService over gRPC's callback API: a thin adapter over ProofQueries, each call a task on
// the DbExecutor (no database work on gRPC threads). Thread-safe.
#ifndef SERVICES_QUERY_PROOF_SERVICE_H_
#define SERVICES_QUERY_PROOF_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "audit/v1/proof_service.grpc.pb.h"
#include "services/query/db_executor.h"
#include "services/query/proof_queries.h"

namespace audit::query {

class ProofServiceImpl final : public v1::ProofService::CallbackService {
 public:
  // Both must outlive the service.
  ProofServiceImpl(DbExecutor* executor, const ProofQueries* queries)
      : executor_(executor), queries_(queries) {}

  grpc::ServerUnaryReactor* GetLatestCheckpoint(grpc::CallbackServerContext* ctx,
                                                const v1::GetLatestCheckpointRequest* request,
                                                v1::GetLatestCheckpointResponse* response) override;
  grpc::ServerUnaryReactor* ListCheckpoints(grpc::CallbackServerContext* ctx,
                                            const v1::ListCheckpointsRequest* request,
                                            v1::ListCheckpointsResponse* response) override;
  grpc::ServerUnaryReactor* GetInclusionProof(grpc::CallbackServerContext* ctx,
                                              const v1::GetInclusionProofRequest* request,
                                              v1::GetInclusionProofResponse* response) override;
  grpc::ServerUnaryReactor* GetConsistencyProof(grpc::CallbackServerContext* ctx,
                                                const v1::GetConsistencyProofRequest* request,
                                                v1::GetConsistencyProofResponse* response) override;
  grpc::ServerUnaryReactor* VerifyRange(grpc::CallbackServerContext* ctx,
                                        const v1::VerifyRangeRequest* request,
                                        v1::VerifyRangeResponse* response) override;

 private:
  DbExecutor* executor_;
  const ProofQueries* queries_;
};

}  // namespace audit::query

#endif  // SERVICES_QUERY_PROOF_SERVICE_H_
