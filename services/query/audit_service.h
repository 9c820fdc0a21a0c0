// AuditService over gRPC's callback API: a thin adapter over EventQueries.
//
// No database work ever runs on a gRPC thread: each call is a task on the DbExecutor, which
// finishes the call when done. Cancellation and deadlines cancel the running statement. A
// replay stream keeps at most one frame in flight: the next frame is read only after the
// previous one was written (the client's pace is the server's pace), and a live replay waits
// on the HeadWatcher, not on a thread.
//
// Limits: RESOURCE_EXHAUSTED when the executor's queue is full or more than max_streams
// replays are open. Thread-safe.
#ifndef SERVICES_QUERY_AUDIT_SERVICE_H_
#define SERVICES_QUERY_AUDIT_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/v1/audit_service.grpc.pb.h"
#include "services/query/db_executor.h"
#include "services/query/event_queries.h"
#include "services/query/head_watcher.h"

namespace audit::query {

class ReplayReactor;

class AuditServiceImpl final : public v1::AuditService::CallbackService {
 public:
  struct Limits {
    int max_streams = 100;
  };

  // All three must outlive the service.
  AuditServiceImpl(DbExecutor* executor, HeadWatcher* watcher, const EventQueries* queries,
                   Limits limits);

  grpc::ServerUnaryReactor* GetEvent(grpc::CallbackServerContext* ctx,
                                     const v1::GetEventRequest* request,
                                     v1::GetEventResponse* response) override;
  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* ctx,
                                       const v1::ListEventsRequest* request,
                                       v1::ListEventsResponse* response) override;
  grpc::ServerUnaryReactor* GetSubjectHistory(grpc::CallbackServerContext* ctx,
                                              const v1::GetSubjectHistoryRequest* request,
                                              v1::GetSubjectHistoryResponse* response) override;
  grpc::ServerUnaryReactor* GetStatistics(grpc::CallbackServerContext* ctx,
                                          const v1::GetStatisticsRequest* request,
                                          v1::GetStatisticsResponse* response) override;
  grpc::ServerUnaryReactor* ListDeadLetters(grpc::CallbackServerContext* ctx,
                                            const v1::ListDeadLettersRequest* request,
                                            v1::ListDeadLettersResponse* response) override;
  grpc::ServerWriteReactor<v1::ReplayEventsResponse>* ReplayEvents(
      grpc::CallbackServerContext* ctx, const v1::ReplayEventsRequest* request) override;

  // Ends every open replay with UNAVAILABLE (clients resume elsewhere or later) and refuses
  // new ones. For graceful shutdown, before grpc::Server::Shutdown.
  void StopStreams();

  // Waits until every replay has ended (its status sent, OnDone run) or the deadline passes;
  // whether they all ended. After StopStreams, before grpc::Server::Shutdown: the server then
  // closes no connection while a stream's status is still on its way.
  bool AwaitStreamsEnded(absl::Time deadline);

  int open_streams() const;

 private:
  friend class ReplayReactor;
  bool Register(ReplayReactor* r);
  void Unregister(ReplayReactor* r);

  DbExecutor* executor_;
  HeadWatcher* watcher_;
  const EventQueries* queries_;
  Limits limits_;
  mutable absl::Mutex mu_;
  std::set<ReplayReactor*> streams_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace audit::query

#endif  // SERVICES_QUERY_AUDIT_SERVICE_H_
