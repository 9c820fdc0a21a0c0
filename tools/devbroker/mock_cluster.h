// Hosts librdkafka's built-in mock Kafka cluster: real Kafka protocol over TCP on 127.0.0.1,
// in memory, in this process. Development and test stand-in for a real cluster (production
// uses a real one; nothing may depend on the mock's quirks). Its state lives and dies with
// this object, so crash tests host it in a process of its own (audit-devbroker).
//
//   auto cluster = MockKafkaCluster::Start({.brokers = 3});
//   (*cluster)->CreateTopic("orders.events", 6);
//   std::string bootstrap = (*cluster)->bootstrap_servers();
#ifndef TOOLS_DEVBROKER_MOCK_CLUSTER_H_
#define TOOLS_DEVBROKER_MOCK_CLUSTER_H_

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace audit::devbroker {

class MockKafkaCluster {
 public:
  struct Options {
    int brokers = 3;
  };

  static absl::StatusOr<std::unique_ptr<MockKafkaCluster>> Start(const Options& options);
  ~MockKafkaCluster();

  MockKafkaCluster(const MockKafkaCluster&) = delete;
  MockKafkaCluster& operator=(const MockKafkaCluster&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers.
  std::string bootstrap_servers() const;

  // The mock does not support the CreateTopics request; topics are created here.
  absl::Status CreateTopic(absl::string_view name, int partitions, int replication = 1);

  // Fault injection.
  absl::Status SetBrokerDown(int32_t broker_id);
  absl::Status SetBrokerUp(int32_t broker_id);
  absl::Status SetBrokerRtt(int32_t broker_id, int rtt_ms);
  // The next `count` requests of Kafka API `api_key` (e.g. 1 = Fetch, 8 = OffsetCommit,
  // 11 = JoinGroup, 12 = Heartbeat) fail with `error`.
  void PushRequestErrors(int16_t api_key, size_t count, rd_kafka_resp_err_t error);

 private:
  MockKafkaCluster() = default;
  rd_kafka_t* host_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

}  // namespace audit::devbroker

#endif  // TOOLS_DEVBROKER_MOCK_CLUSTER_H_
