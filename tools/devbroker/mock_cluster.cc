#include "tools/devbroker/mock_cluster.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace audit::devbroker {
namespace {

absl::Status FromKafka(rd_kafka_resp_err_t err, absl::string_view what) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", rd_kafka_err2str(err)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<MockKafkaCluster>> MockKafkaCluster::Start(const Options& options) {
  if (options.brokers < 1) return absl::InvalidArgumentError("brokers must be at least 1");
  std::unique_ptr<MockKafkaCluster> c(new MockKafkaCluster());
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  // Quiet: the host handle itself never connects anywhere.
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  c->host_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (c->host_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("rd_kafka_new: ", err));
  }
  c->cluster_ = rd_kafka_mock_cluster_new(c->host_, options.brokers);
  if (c->cluster_ == nullptr) return absl::InternalError("rd_kafka_mock_cluster_new failed");
  return c;
}

MockKafkaCluster::~MockKafkaCluster() {
  if (cluster_ != nullptr) rd_kafka_mock_cluster_destroy(cluster_);
  if (host_ != nullptr) rd_kafka_destroy(host_);
}

std::string MockKafkaCluster::bootstrap_servers() const {
  return rd_kafka_mock_cluster_bootstraps(cluster_);
}

absl::Status MockKafkaCluster::CreateTopic(absl::string_view name, int partitions,
                                           int replication) {
  const std::string topic(name);
  return FromKafka(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, replication),
                   absl::StrCat("create topic ", name));
}

absl::Status MockKafkaCluster::SetBrokerDown(int32_t broker_id) {
  return FromKafka(rd_kafka_mock_broker_set_down(cluster_, broker_id), "broker down");
}

absl::Status MockKafkaCluster::SetBrokerUp(int32_t broker_id) {
  return FromKafka(rd_kafka_mock_broker_set_up(cluster_, broker_id), "broker up");
}

absl::Status MockKafkaCluster::SetBrokerRtt(int32_t broker_id, int rtt_ms) {
  return FromKafka(rd_kafka_mock_broker_set_rtt(cluster_, broker_id, rtt_ms), "broker rtt");
}

void MockKafkaCluster::PushRequestErrors(int16_t api_key, size_t count, rd_kafka_resp_err_t error) {
  std::vector<rd_kafka_resp_err_t> errors(count, error);
  rd_kafka_mock_push_request_errors_array(cluster_, api_key, count, errors.data());
}

}  // namespace audit::devbroker
