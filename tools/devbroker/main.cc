// audit-devbroker: a Kafka-protocol cluster for development and tests (librdkafka's mock
// cluster), with topics created up front. Runs until SIGINT/SIGTERM.
//
// When ready it prints "bootstrap=<servers>" on stdout and, with --bootstrap_file, writes the
// servers to that file (atomically). With --control_stdin it accepts one command per line and
// answers "ok" or "error <why>":
//   topic <name> <partitions>          down <broker>        up <broker>
//   rtt <broker> <ms>                  errors <api_key> <count> <error_code>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "services/common/config.h"
#include "services/common/log.h"
#include "services/common/shutdown.h"
#include "tools/devbroker/mock_cluster.h"

ABSL_FLAG(int, brokers, 3, "Number of brokers.");
ABSL_FLAG(std::string, topics,
          "orders.events:6,payments.events:6,inventory.events:6,shipping.events:6",
          "Topics to create up front, name:partitions, comma-separated.");
ABSL_FLAG(std::string, bootstrap_file, "", "Write the bootstrap servers here when ready.");
ABSL_FLAG(bool, control_stdin, false, "Accept fault-injection commands on stdin.");

namespace audit::devbroker {
namespace {

std::string Execute(MockKafkaCluster& cluster, const std::string& line) {
  std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipWhitespace());
  if (w.empty()) return "error empty command";
  int a = 0, b = 0, c = 0;
  absl::Status s;
  if (w[0] == "topic" && w.size() == 3 && absl::SimpleAtoi(w[2], &a)) {
    s = cluster.CreateTopic(w[1], a);
  } else if (w[0] == "down" && w.size() == 2 && absl::SimpleAtoi(w[1], &a)) {
    s = cluster.SetBrokerDown(a);
  } else if (w[0] == "up" && w.size() == 2 && absl::SimpleAtoi(w[1], &a)) {
    s = cluster.SetBrokerUp(a);
  } else if (w[0] == "rtt" && w.size() == 3 && absl::SimpleAtoi(w[1], &a) &&
             absl::SimpleAtoi(w[2], &b)) {
    s = cluster.SetBrokerRtt(a, b);
  } else if (w[0] == "errors" && w.size() == 4 && absl::SimpleAtoi(w[1], &a) &&
             absl::SimpleAtoi(w[2], &b) && absl::SimpleAtoi(w[3], &c)) {
    cluster.PushRequestErrors(static_cast<int16_t>(a), static_cast<size_t>(b),
                              static_cast<rd_kafka_resp_err_t>(c));
  } else {
    return "error unknown command";
  }
  return s.ok() ? "ok" : "error " + std::string(s.message());
}

int Main(int argc, char** argv) {
  std::unique_ptr<ShutdownSignals> signals = ShutdownSignals::Install();
  InitProgram(argc, argv, "devbroker", "audit-devbroker: a mock Kafka cluster for development",
              {{"brokers", "AUDIT_DEVBROKER_BROKERS"}, {"topics", "AUDIT_DEVBROKER_TOPICS"}});
  MockKafkaCluster::Options options;
  options.brokers = absl::GetFlag(FLAGS_brokers);
  absl::StatusOr<std::unique_ptr<MockKafkaCluster>> cluster = MockKafkaCluster::Start(options);
  if (!cluster.ok()) {
    LogError("cannot start the mock cluster").With(cluster.status());
    return 1;
  }
  for (absl::string_view spec :
       absl::StrSplit(absl::GetFlag(FLAGS_topics), ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> np = absl::StrSplit(spec, absl::MaxSplits(':', 1));
    int partitions = 6;
    if (!np.second.empty() && !absl::SimpleAtoi(np.second, &partitions)) {
      std::fprintf(stderr, "bad --topics entry %s\n", std::string(spec).c_str());
      return 2;
    }
    if (absl::Status s = (*cluster)->CreateTopic(np.first, partitions); !s.ok()) {
      LogError("cannot create topic").With(s);
      return 1;
    }
  }
  const std::string bootstrap = (*cluster)->bootstrap_servers();
  if (const std::string path = absl::GetFlag(FLAGS_bootstrap_file); !path.empty()) {
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << bootstrap << "\n";
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      LogError("cannot write the bootstrap file").With("path", path);
      return 1;
    }
  }
  std::printf("bootstrap=%s\n", bootstrap.c_str());
  std::fflush(stdout);
  LogInfo("mock Kafka cluster ready")
      .With("bootstrap", bootstrap)
      .With("brokers", options.brokers)
      .With("topics", absl::GetFlag(FLAGS_topics));
  if (absl::GetFlag(FLAGS_control_stdin)) {
    std::thread([&cluster, &signals] {
      std::string line;
      while (std::getline(std::cin, line)) {
        std::printf("%s\n", Execute(**cluster, line).c_str());
        std::fflush(stdout);
      }
    }).detach();
  }
  signals->requested().WaitForNotification();
  LogInfo("mock Kafka cluster stopping");
  return 0;
}

}  // namespace
}  // namespace audit::devbroker

int main(int argc, char** argv) { return audit::devbroker::Main(argc, argv); }
