// audit-query: the query/replay gRPC server of the audit trail.
// Configuration: flags or environment variables (docs/ARCHITECTURE.md, "Configuration").
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "audit/signing.h"
#include "services/common/config.h"
#include "services/common/log.h"
#include "services/common/pg.h"
#include "services/common/shutdown.h"
#include "services/query/query_server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "host:port to serve on; port 0 picks one.");
ABSL_FLAG(std::string, pg_url, "",
          "libpq URI of the store, as a role in audit_reader (passwords in a PGPASSFILE).");
ABSL_FLAG(int, threads, 8, "Database workers (one connection each).");
ABSL_FLAG(int, max_queue, 1000, "Calls queued for a worker before RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_streams, 100, "Open replay streams before RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::string, page_token_secret_file, "",
          "File with the HMAC key for page tokens (share it between replicas); random per "
          "process if unset.");
ABSL_FLAG(std::vector<std::string>, trusted_key_files, {},
          "Comma-separated Ed25519 public keys (PEM) that ProofService.VerifyRange trusts; "
          "without them it trusts the checkpoint log's first key on first use.");
ABSL_FLAG(std::string, ready_file, "", "Write the listening address here once serving.");
ABSL_FLAG(int, shutdown_grace_ms, 5000, "On SIGTERM, how long calls in progress may finish.");

namespace audit::query {
namespace {

int Main(int argc, char** argv) {
  std::unique_ptr<ShutdownSignals> signals = ShutdownSignals::Install();
  InitProgram(argc, argv, "query", "audit-query: the audit trail's query/replay gRPC server",
              {{"listen", "AUDIT_SERVER_LISTEN"},
               {"pg_url", "AUDIT_SERVER_PG_URL"},
               {"threads", "AUDIT_SERVER_THREADS"},
               {"max_queue", "AUDIT_SERVER_MAX_QUEUE"},
               {"max_streams", "AUDIT_SERVER_MAX_STREAMS"},
               {"page_token_secret_file", "AUDIT_SERVER_PAGE_TOKEN_SECRET_FILE"},
               {"trusted_key_files", "AUDIT_SERVER_TRUSTED_KEY_FILES"},
               {"ready_file", "AUDIT_SERVER_READY_FILE"},
               {"shutdown_grace_ms", "AUDIT_SERVER_SHUTDOWN_GRACE_MS"}});
  QueryServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.pg_url = absl::GetFlag(FLAGS_pg_url);
  options.threads = absl::GetFlag(FLAGS_threads);
  options.max_queue = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_max_queue)));
  options.max_streams = absl::GetFlag(FLAGS_max_streams);
  if (options.pg_url.empty()) {
    std::fprintf(stderr, "--pg_url (AUDIT_SERVER_PG_URL) is required\n");
    return 2;
  }
  if (const std::string path = absl::GetFlag(FLAGS_page_token_secret_file); !path.empty()) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream content;
    content << in.rdbuf();
    options.page_token_secret = std::string(absl::StripTrailingAsciiWhitespace(content.str()));
    if (!in || options.page_token_secret.size() < 16) {
      std::fprintf(stderr, "--page_token_secret_file must name a readable file of >= 16 bytes\n");
      return 2;
    }
  }
  for (const std::string& path : absl::GetFlag(FLAGS_trusted_key_files)) {
    absl::StatusOr<std::string> key = PublicKeyFromPemFile(path);
    if (!key.ok()) {
      std::fprintf(stderr, "--trusted_key_files: %s: %s\n", path.c_str(),
                   std::string(key.status().message()).c_str());
      return 2;
    }
    options.trusted_keys.push_back(*std::move(key));
  }
  LogInfo("query server starting")
      .With("listen", options.listen)
      .With("database", pg::RedactUrl(options.pg_url));
  absl::StatusOr<std::unique_ptr<QueryServer>> server = QueryServer::Start(options);
  if (!server.ok()) {
    LogError("cannot start the query server").With(server.status());
    return 1;
  }
  if (const std::string path = absl::GetFlag(FLAGS_ready_file); !path.empty()) {
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << (*server)->address() << "\n";
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      LogError("cannot write the ready file").With("path", path);
      return 1;
    }
  }
  signals->requested().WaitForNotification();
  (*server)->Shutdown(absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_grace_ms)));
  return 0;
}

}  // namespace
}  // namespace audit::query

int main(int argc, char** argv) { return audit::query::Main(argc, argv); }
