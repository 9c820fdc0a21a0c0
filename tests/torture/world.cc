#include "tests/torture/world.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "audit/signing.h"

namespace audit::torture {
namespace {

bool Exists(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

}  // namespace

absl::StatusOr<Binaries> FindBinaries(const char* argv0) {
  std::vector<std::string> roots;
  for (const char* var : {"TEST_SRCDIR", "RUNFILES_DIR"}) {
    if (const char* v = std::getenv(var)) roots.push_back(absl::StrCat(v, "/audit_trail/"));
  }
  roots.push_back(absl::StrCat(argv0, ".runfiles/audit_trail/"));
  for (const std::string& root : roots) {
    Binaries b{root + "services/ingestor/audit-ingestor", root + "tests/torture/crashing-ingestor",
               root + "services/query/audit-query", root + "tools/devbroker/audit-devbroker"};
    if (Exists(b.ingestor) && Exists(b.crashing_ingestor) && Exists(b.query) &&
        Exists(b.devbroker)) {
      // Resolved once: a later build may repoint bazel-bin while the suite runs.
      for (std::string* path : {&b.ingestor, &b.crashing_ingestor, &b.query, &b.devbroker}) {
        if (char* real = realpath(path->c_str(), nullptr)) {
          *path = real;
          free(real);
        }
      }
      return b;
    }
  }
  return absl::NotFoundError("cannot find the binaries in the runfiles (run with bazel run)");
}

absl::StatusOr<std::unique_ptr<World>> World::Create(Binaries binaries, std::string work_dir) {
  std::unique_ptr<World> w(new World());
  w->binaries_ = std::move(binaries);
  w->work_dir_ = std::move(work_dir);
  mkdir(w->work_dir_.c_str(), 0755);
  chmod(w->work_dir_.c_str(), 0755);  // the postgres user reaches the tablespace directory
  // The checkpoint signing key: the checkpointer runs (and is tortured) too.
  const SigningKey key = SigningKey::Generate();
  w->key_file_ = w->work_dir_ + "/checkpoint.key";
  std::ofstream(w->key_file_) << key.PrivatePem();
  chmod(w->key_file_.c_str(), 0600);
  w->public_key_ = key.public_key();
  testing::PostgresServerOptions options;
  // Durability as shipped: a crashed server must recover what it acknowledged.
  options.fsync = true;
  absl::StatusOr<std::unique_ptr<testing::PostgresServer>> pg =
      testing::PostgresServer::Start(options);
  if (!pg.ok()) return pg.status();
  w->postgres_ = *std::move(pg);
  return w;
}

World::~World() { broker_.reset(); }

absl::Status World::BeginScenario(const std::string& name) {
  broker_.reset();
  ingestor_logs_.clear();
  query_address_.clear();
  if (!postgres_->running()) {
    if (absl::Status s = postgres_->Restart(); !s.ok()) return s;
  }
  database_ = name;
  scenario_dir_ = absl::StrCat(work_dir_, "/", name);
  mkdir(scenario_dir_.c_str(), 0755);
  absl::StatusOr<std::string> db = postgres_->CreateDatabase(name);
  return db.status();
}

absl::StatusOr<std::vector<std::string>> World::Query(const std::string& sql) const {
  return postgres_->Query(database_, sql);
}

absl::StatusOr<int64_t> World::Count(const std::string& sql) const {
  absl::StatusOr<std::vector<std::string>> r = Query(sql);
  if (!r.ok()) return r.status();
  int64_t n = 0;
  if (r->empty() || !absl::SimpleAtoi((*r)[0], &n)) {
    return absl::InternalError(absl::StrCat("not a count: ", sql));
  }
  return n;
}

std::string World::NextLog(const std::string& name) {
  return absl::StrCat(scenario_dir_, "/", name, "-", ++log_counter_, ".log");
}

absl::Status World::StartBroker() {
  absl::StatusOr<std::unique_ptr<Process>> p =
      Process::Spawn({.path = binaries_.devbroker,
                      .args = {"--control_stdin", "--brokers=3"},
                      .log_path = NextLog("devbroker"),
                      .pipe_stdio = true});
  if (!p.ok()) return p.status();
  broker_ = *std::move(p);
  absl::StatusOr<std::string> line = broker_->ReadLine(absl::Seconds(30));
  if (!line.ok()) {
    absl::StatusOr<int> exit = broker_->Wait(absl::Seconds(5));
    return absl::UnavailableError(absl::StrCat("the Kafka cluster did not start (",
                                               line.status().message(), ", exit ",
                                               exit.ok() ? absl::StrCat(*exit) : "?", ")"));
  }
  absl::string_view v = *line;
  if (!absl::ConsumePrefix(&v, "bootstrap=")) {
    return absl::InternalError(absl::StrCat("devbroker said ", *line));
  }
  bootstrap_ = std::string(v);
  return absl::OkStatus();
}

absl::Status World::Broker(const std::string& command) {
  if (absl::Status s = broker_->WriteLine(command); !s.ok()) return s;
  absl::StatusOr<std::string> reply = broker_->ReadLine(absl::Seconds(10));
  if (!reply.ok()) return reply.status();
  if (*reply != "ok") return absl::InternalError(absl::StrCat(command, ": ", *reply));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Process>> World::StartIngestor(
    const std::string& name, std::vector<std::pair<std::string, std::string>> extra_env,
    const std::string& crash_at) {
  std::vector<std::pair<std::string, std::string>> env = {
      {"AUDIT_KAFKA_BROKERS", bootstrap_},
      {"AUDIT_INGESTOR_PG_URL", Url("ingestor")},
      {"AUDIT_INGESTOR_GROUP_ID", "torture"},
      {"AUDIT_INGESTOR_SESSION_TIMEOUT_MS", "3000"},
      {"AUDIT_INGESTOR_METADATA_REFRESH_MS", "1000"},
      {"AUDIT_INGESTOR_STATS_INTERVAL_MS", "5000"},
      {"AUDIT_INGESTOR_SHUTDOWN_GRACE_MS", "5000"},
      {"AUDIT_CHECKPOINT_KEY_FILE", key_file_},
      {"AUDIT_CHECKPOINT_INTERVAL_MS", "500"},
      {"AUDIT_LOG_LEVEL", "debug"},
  };
  if (!crash_at.empty()) env.emplace_back("AUDIT_TORTURE_CRASH_AT", crash_at);
  const std::string log = NextLog(name);
  const std::string ready = log + ".ready";
  env.emplace_back("AUDIT_INGESTOR_READY_FILE", ready);
  for (auto& kv : extra_env) env.push_back(std::move(kv));
  ingestor_logs_.push_back(log);
  absl::StatusOr<std::unique_ptr<Process>> p =
      Process::Spawn({.path = crash_at.empty() ? binaries_.ingestor : binaries_.crashing_ingestor,
                      .env = std::move(env),
                      .log_path = log});
  if (!p.ok()) return p;
  // Ready: signal handling installed, the database answered, the consumer subscribed.
  if (!WaitUntil([&] { return access(ready.c_str(), F_OK) == 0 || !(*p)->running(); },
                 absl::Seconds(60))) {
    return absl::UnavailableError(absl::StrCat(name, " did not become ready; see ", log));
  }
  return p;
}

absl::StatusOr<std::unique_ptr<Process>> World::StartQuery(int port,
                                                           std::vector<std::string> extra_args) {
  const std::string ready = absl::StrCat(scenario_dir_, "/query.ready");
  unlink(ready.c_str());
  std::vector<std::string> args = {absl::StrCat("--listen=127.0.0.1:", port),
                                   absl::StrCat("--ready_file=", ready), "--threads=2"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  absl::StatusOr<std::unique_ptr<Process>> p =
      Process::Spawn({.path = binaries_.query,
                      .args = std::move(args),
                      .env = {{"AUDIT_SERVER_PG_URL", Url("reader")}},
                      .log_path = NextLog("query")});
  if (!p.ok()) return p;
  std::string address;
  const bool ready_ok = WaitUntil(
      [&] {
        std::ifstream in(ready);
        return std::getline(in, address) && !address.empty();
      },
      absl::Seconds(30));
  if (!ready_ok) return absl::UnavailableError("the query server did not become ready");
  query_address_ = address;
  return p;
}

}  // namespace audit::torture
