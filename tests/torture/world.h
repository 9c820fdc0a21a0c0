// The system under torture: one private PostgreSQL server (a fresh database per scenario),
// and real processes for the Kafka-protocol cluster (audit-devbroker, so its state survives
// the ingestor's death), the ingestors and the query server. Every process logs to its own
// file under the scenario's directory. Spawn only from the main thread (see process.h).
#ifndef TESTS_TORTURE_WORLD_H_
#define TESTS_TORTURE_WORLD_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/fixtures/postgres_server.h"
#include "tests/torture/process.h"

namespace audit::torture {

struct Binaries {
  std::string ingestor;
  std::string crashing_ingestor;  // the ingestor with fault-injection hooks
  std::string query;
  std::string devbroker;
};

// Finds the binaries in the runfiles of `argv0` (bazel run / bazel test).
absl::StatusOr<Binaries> FindBinaries(const char* argv0);

class World {
 public:
  static absl::StatusOr<std::unique_ptr<World>> Create(Binaries binaries, std::string work_dir);
  ~World();

  // A fresh database and log directory for scenario `name`; ends any previous scenario's
  // processes first.
  absl::Status BeginScenario(const std::string& name);

  testing::PostgresServer& postgres() { return *postgres_; }
  const std::string& database() const { return database_; }
  std::string Url(const std::string& user) const { return postgres_->Url(database_, user); }
  // SQL as the superuser on the scenario's database; the first column of each row.
  absl::StatusOr<std::vector<std::string>> Query(const std::string& sql) const;
  absl::StatusOr<int64_t> Count(const std::string& sql) const;

  // The Kafka cluster (3 brokers, the four *.events topics with 6 partitions).
  absl::Status StartBroker();
  // A fault-injection command for the cluster ("down 1", "errors 1 5 7", ...).
  absl::Status Broker(const std::string& command);
  const std::string& brokers() const { return bootstrap_; }

  // An ingestor process in consumer group "torture" signing checkpoints every 500 ms;
  // `extra_env` overrides or adds settings; `crash_at` ("stage:batch") uses the crashing build.
  absl::StatusOr<std::unique_ptr<Process>> StartIngestor(
      const std::string& name, std::vector<std::pair<std::string, std::string>> extra_env = {},
      const std::string& crash_at = "");
  // The query server on 127.0.0.1:`port` (0: any); its address is in address().
  absl::StatusOr<std::unique_ptr<Process>> StartQuery(int port = 0,
                                                      std::vector<std::string> extra_args = {});
  const std::string& query_address() const { return query_address_; }

  // Every ingestor log of this scenario, for the redelivery figures.
  const std::vector<std::string>& ingestor_logs() const { return ingestor_logs_; }
  const std::string& public_key() const { return public_key_; }
  const std::string& scenario_dir() const { return scenario_dir_; }

 private:
  World() = default;
  std::string NextLog(const std::string& name);

  Binaries binaries_;
  std::string work_dir_;
  std::string key_file_;
  std::string public_key_;
  std::unique_ptr<testing::PostgresServer> postgres_;
  std::string database_;
  std::string scenario_dir_;
  std::unique_ptr<Process> broker_;
  std::string bootstrap_;
  std::string query_address_;
  std::vector<std::string> ingestor_logs_;
  int log_counter_ = 0;
};

}  // namespace audit::torture

#endif  // TESTS_TORTURE_WORLD_H_
