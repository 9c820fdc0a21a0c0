// Running gRPC callback calls on the DbExecutor: the reactor glue shared by the services.
//
//   return RunUnary(executor_, ctx, request, response,
//                   [](PGconn* c, const Req& r) -> absl::StatusOr<Resp> { ... });
//
// The function runs on an executor thread with that worker's connection; its status becomes
// the call's (ToGrpcStatus). Cancellation and deadlines cancel the running statement.
#ifndef SERVICES_QUERY_UNARY_REACTOR_H_
#define SERVICES_QUERY_UNARY_REACTOR_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "services/common/grpc_status.h"
#include "services/query/db_executor.h"

namespace audit::query {

// The status for a call that stopped early. Takes the call's deadline, captured while the call
// was live: a ServerContext must not be touched after the call is done.
inline grpc::Status Cancelled(std::chrono::system_clock::time_point deadline) {
  if (deadline <= std::chrono::system_clock::now()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded");
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client");
}

// A unary call run on the executor. The reactor lives until gRPC calls OnDone, which happens
// only after Finish; the task calls Finish exactly once.
template <typename Request, typename Response, typename Fn>
grpc::ServerUnaryReactor* RunUnary(DbExecutor* executor, grpc::CallbackServerContext* ctx,
                                   const Request* request, Response* response, Fn fn) {
  class Reactor : public grpc::ServerUnaryReactor {
   public:
    void OnCancel() override { token->Cancel(); }
    void OnDone() override { delete this; }
    std::shared_ptr<CancelToken> token = std::make_shared<CancelToken>();
  };
  auto* reactor = new Reactor();
  std::shared_ptr<CancelToken> token = reactor->token;
  const auto deadline = ctx->deadline();
  absl::Status submitted = executor->Submit(
      [reactor, token, deadline, request, response, fn](absl::StatusOr<PGconn*> conn) {
        if (token->cancelled()) {
          reactor->Finish(Cancelled(deadline));
          return;
        }
        absl::StatusOr<Response> result =
            conn.ok() ? fn(*conn, *request) : absl::StatusOr<Response>(conn.status());
        if (token->cancelled()) {
          reactor->Finish(Cancelled(deadline));
        } else if (result.ok()) {
          *response = *std::move(result);
          reactor->Finish(grpc::Status::OK);
        } else {
          reactor->Finish(ToGrpcStatus(result.status()));
        }
      },
      token);
  if (!submitted.ok()) reactor->Finish(ToGrpcStatus(submitted));
  return reactor;
}

}  // namespace audit::query

#endif  // SERVICES_QUERY_UNARY_REACTOR_H_
