// RecordSource over a librdkafka high-level consumer in a consumer group.
//
// Offsets are never committed automatically (enable.auto.commit=false), only by Commit()
// after the batch is stored. Commit() is asynchronous: it returns at once, a failure is logged
// when the broker answers (the messages then come again and are absorbed), and Close() waits
// for commits in flight. A new group starts at the earliest offset, because an audit trail
// wants every event ever published. Subscriptions accept topic names and regular expressions
// (entries starting with '^'); a matching topic created later is picked up at the next
// metadata refresh (Options::metadata_refresh, seconds rather than librdkafka's 5 minutes).
//
// Thread safety: Poll/Commit/Pause/Resume/Close from one thread at a time (the ingestor's
// decode-ahead helper polls while the loop stores, and the loop waits for it before it
// commits, pauses or polls).
#ifndef SERVICES_INGESTOR_KAFKA_SOURCE_H_
#define SERVICES_INGESTOR_KAFKA_SOURCE_H_

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/ingestor/record_source.h"

namespace audit::ingestor {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafkaPtr = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;

class KafkaSource : public RecordSource {
 public:
  struct Options {
    std::string brokers;
    std::string group_id = "audit-ingestor";
    std::string client_id = "audit-ingestor";
    // Topic names or '^'-prefixed regular expressions.
    std::vector<std::string> topics = {"^.*\\.events$"};
    absl::Duration metadata_refresh = absl::Seconds(5);
    std::string assignment_strategy = "cooperative-sticky";
    // How soon the group notices a dead member (and reassigns its partitions). Note: the dev
    // mock cluster holds every rebalance for session_timeout - 1 s; real brokers do not.
    absl::Duration session_timeout = absl::Seconds(10);
    // Further librdkafka properties (security.protocol, sasl.*, ...), applied last.
    std::map<std::string, std::string> extra_config;
  };

  // Creates the consumer and subscribes. INVALID_ARGUMENT for a bad configuration property.
  static absl::StatusOr<std::unique_ptr<KafkaSource>> Create(const Options& options);
  ~KafkaSource() override;

  absl::StatusOr<RecordBatch> Poll(size_t max_records, absl::Duration max_wait) override;
  absl::Status Commit(const RecordBatch& batch) override;
  void Pause() override;
  void Resume() override;

  // Leaves the group cleanly (no offsets are committed here). Idempotent.
  absl::Status Close();

  // Partitions currently assigned (for logs and tests).
  int assigned_partitions() const { return assigned_.load(); }

 private:
  KafkaSource() = default;
  static void RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions, void* opaque);
  void OnRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);

  RdKafkaPtr rk_;
  bool paused_ = false;
  bool closed_ = false;
  std::atomic<int> assigned_{0};
};

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_KAFKA_SOURCE_H_
