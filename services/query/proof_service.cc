#include "services/query/proof_service.h"

#include "services/query/unary_reactor.h"

namespace audit::query {

#define AUDIT_PROOF_METHOD(Method)                                                            \
  grpc::ServerUnaryReactor* ProofServiceImpl::Method(grpc::CallbackServerContext* ctx,        \
                                                     const v1::Method##Request* request,      \
                                                     v1::Method##Response* response) {        \
    return RunUnary(                                                                          \
        executor_, ctx, request, response,                                                    \
        [q = queries_](PGconn* c, const v1::Method##Request& r) { return q->Method(c, r); }); \
  }

AUDIT_PROOF_METHOD(GetLatestCheckpoint)
AUDIT_PROOF_METHOD(ListCheckpoints)
AUDIT_PROOF_METHOD(GetInclusionProof)
AUDIT_PROOF_METHOD(GetConsistencyProof)
AUDIT_PROOF_METHOD(VerifyRange)

#undef AUDIT_PROOF_METHOD

}  // namespace audit::query
