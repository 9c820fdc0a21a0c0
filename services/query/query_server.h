// The query/replay server: AuditService, ProofService, the standard health service and server
// reflection
// (so grpcurl can list, describe and call everything without proto files).
//
//   auto server = QueryServer::Start({.listen = "127.0.0.1:0", .pg_url = url});
//   int port = (*server)->port();                 // the port actually bound
//   auto channel = (*server)->InProcessChannel();  // for in-process tests
//   (*server)->Shutdown(absl::Seconds(5));
//
// Starts even when the database is down (health says NOT_SERVING, calls answer UNAVAILABLE);
// refuses to start against a database whose schema is older than this build.
#ifndef SERVICES_QUERY_QUERY_SERVER_H_
#define SERVICES_QUERY_QUERY_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/query/audit_service.h"
#include "services/query/db_executor.h"
#include "services/query/event_queries.h"
#include "services/query/head_watcher.h"
#include "services/query/health_service.h"
#include "services/query/page_token.h"
#include "services/query/proof_queries.h"
#include "services/query/proof_service.h"

namespace audit::query {

struct QueryServerOptions {
  std::string listen = "127.0.0.1:50051";  // port 0 picks a free one
  std::string pg_url;                      // a role in audit_reader
  int threads = 8;                         // database workers (and connections)
  size_t max_queue = 1000;                 // queued calls before RESOURCE_EXHAUSTED
  int max_streams = 100;                   // open replays before RESOURCE_EXHAUSTED
  // HMAC key for page tokens; empty means random per process (tokens then do not survive a
  // restart or move between replicas).
  std::string page_token_secret;
  absl::Duration head_poll = absl::Seconds(1);
  // Raw Ed25519 public keys ProofService.VerifyRange pins (empty: trust on first use).
  std::vector<std::string> trusted_keys;
};

class QueryServer {
 public:
  static absl::StatusOr<std::unique_ptr<QueryServer>> Start(QueryServerOptions options);
  ~QueryServer();

  int port() const { return port_; }
  std::string address() const;
  std::shared_ptr<grpc::Channel> InProcessChannel();
  const AuditServiceImpl& audit_service() const { return *audit_; }

  // Ends open replays (UNAVAILABLE, resumable), stops accepting calls, waits up to `grace`
  // for calls in progress, then cancels the rest. Idempotent.
  void Shutdown(absl::Duration grace);
  // Blocks until Shutdown.
  void Wait();

 private:
  QueryServer() = default;

  QueryServerOptions options_;
  std::unique_ptr<HeadWatcher> watcher_;
  std::unique_ptr<DbExecutor> executor_;
  std::unique_ptr<PageTokenCodec> tokens_;
  std::unique_ptr<EventQueries> queries_;
  std::unique_ptr<AuditServiceImpl> audit_;
  std::unique_ptr<ProofQueries> proof_queries_;
  std::unique_ptr<ProofServiceImpl> proofs_;
  std::unique_ptr<HealthServiceImpl> health_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace audit::query

#endif  // SERVICES_QUERY_QUERY_SERVER_H_
