#include "services/query/query_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <openssl/rand.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "schema/migrations.h"
#include "schema/migrator.h"
#include "services/common/log.h"
#include "services/common/pg.h"

namespace audit::query {

absl::StatusOr<std::unique_ptr<QueryServer>> QueryServer::Start(QueryServerOptions options) {
  if (options.pg_url.empty()) return absl::InvalidArgumentError("pg_url is required");
  std::unique_ptr<QueryServer> s(new QueryServer());
  s->options_ = options;

  // A reachable database must have the schema this build reads; an unreachable one is waited
  // for (health reports it).
  {
    pg::ConnectOptions probe;
    probe.application_name = "audit-query";
    absl::StatusOr<pg::ConnPtr> conn = pg::Connect(options.pg_url, probe);
    if (conn.ok()) {
      absl::Status v =
          schema::CheckVersion(conn->get(), static_cast<int>(schema::EmbeddedMigrations().size()));
      if (v.code() == absl::StatusCode::kFailedPrecondition) return v;
    } else {
      LogWarning("database not reachable at start-up; serving NOT_SERVING until it is")
          .With(conn.status());
    }
  }

  std::string secret = options.page_token_secret;
  if (secret.empty()) {
    secret.resize(32);
    RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), static_cast<int>(secret.size()));
  }
  s->tokens_ = std::make_unique<PageTokenCodec>(secret);
  s->queries_ = std::make_unique<EventQueries>(s->tokens_.get());
  s->watcher_ = std::make_unique<HeadWatcher>(
      HeadWatcher::Options{.url = options.pg_url, .poll_interval = options.head_poll});
  DbExecutor::Options eo;
  eo.url = options.pg_url;
  eo.threads = options.threads;
  eo.max_queue = options.max_queue;
  eo.connect.application_name = "audit-query";
  eo.connect.statement_timeout = absl::Seconds(30);
  s->executor_ = std::make_unique<DbExecutor>(eo);
  s->audit_ = std::make_unique<AuditServiceImpl>(
      s->executor_.get(), s->watcher_.get(), s->queries_.get(),
      AuditServiceImpl::Limits{.max_streams = options.max_streams});
  s->proof_queries_ = std::make_unique<ProofQueries>(s->tokens_.get(), options.trusted_keys);
  s->proofs_ = std::make_unique<ProofServiceImpl>(s->executor_.get(), s->proof_queries_.get());
  s->health_ = std::make_unique<HealthServiceImpl>(s->watcher_.get());

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &s->port_);
  builder.RegisterService(s->audit_.get());
  builder.RegisterService(s->proofs_.get());
  builder.RegisterService(s->health_.get());
  // Notice dead peers of long replays; let clients keep idle connections alive.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  LogInfo("query server listening").With("address", s->address());
  return s;
}

QueryServer::~QueryServer() { Shutdown(absl::ZeroDuration()); }

std::string QueryServer::address() const {
  absl::string_view host = options_.listen;
  const size_t colon = host.rfind(':');
  if (colon != absl::string_view::npos) host = host.substr(0, colon);
  return absl::StrCat(host, ":", port_);
}

std::shared_ptr<grpc::Channel> QueryServer::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void QueryServer::Shutdown(absl::Duration grace) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  const absl::Time deadline = absl::Now() + grace;
  audit_->StopStreams();
  audit_->AwaitStreamsEnded(deadline);
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
  executor_.reset();  // runs what is queued (their calls are already finished), joins
  watcher_.reset();
  LogInfo("query server stopped");
}

void QueryServer::Wait() { server_->Wait(); }

}  // namespace audit::query
