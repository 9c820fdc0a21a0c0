// Publishes audit events to Kafka the way the ingestor expects them.
//
// Every event is checked and normalised by the envelope rules (audit/envelope.h) before it is
// sent, so a bad event fails here, at its source, with INVALID_ARGUMENT naming the attribute,
// instead of reaching the dead-letter store. The Kafka key is the event's subject, so one
// entity's events stay in one partition, in order. The producer is librdkafka's idempotent
// producer (acks=all): retries never duplicate or reorder within a partition.
//
//   auto publisher = Publisher::Create({.brokers = "kafka:9092"});
//   absl::Status s = (*publisher)->Publish("orders.events", event);
//   s = (*publisher)->Flush(absl::Seconds(10));  // delivery errors surface here
//
// Thread safety: Publish, PublishRaw and Flush may be called from several threads.
#ifndef CLIENTS_CPP_AUDIT_PUBLISHER_H_
#define CLIENTS_CPP_AUDIT_PUBLISHER_H_

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/cloudevents.h"
#include "audit/v1/event.pb.h"

namespace audit {

// How an event is written into the Kafka message (all three are accepted by the ingestor).
enum class WireEncoding {
  kProtobuf,        // value = serialised audit.v1.Event, content-type: application/protobuf
  kStructuredJson,  // value = CloudEvents JSON, content-type: application/cloudevents+json
  kBinaryMode,      // ce_* headers, value = data, content-type = datacontenttype
};

class Publisher {
 public:
  struct Options {
    std::string brokers;
    std::string client_id = "audit-publisher";
    WireEncoding encoding = WireEncoding::kProtobuf;
    // How long librdkafka keeps retrying one message before reporting it failed.
    absl::Duration delivery_timeout = absl::Seconds(60);
    // Further librdkafka properties (security.protocol, sasl.*, linger.ms, ...).
    std::map<std::string, std::string> extra_config;
  };

  static absl::StatusOr<std::unique_ptr<Publisher>> Create(const Options& options);
  ~Publisher();

  // Validates and normalises `event`, encodes it and queues it for `topic` with key = subject.
  // INVALID_ARGUMENT (naming the attribute) for an invalid event; RESOURCE_EXHAUSTED if the
  // local queue stays full for `queue_wait`. Delivery happens in the background.
  absl::Status Publish(absl::string_view topic, v1::Event event,
                       absl::Duration queue_wait = absl::Seconds(30));

  // Queues a message as given, without any check (tests and tools that must send arbitrary
  // bytes). `partition` nullopt lets the partitioner choose from the key.
  absl::Status PublishRaw(absl::string_view topic, std::optional<absl::string_view> key,
                          const Headers& headers, std::optional<absl::string_view> value,
                          std::optional<int32_t> partition = std::nullopt,
                          absl::Duration queue_wait = absl::Seconds(30));

  // Waits until every queued message is delivered or has failed. Returns the first delivery
  // error since the previous Flush (UNAVAILABLE), or DEADLINE_EXCEEDED if messages are still
  // in flight at `timeout`.
  absl::Status Flush(absl::Duration timeout);

  int64_t delivered() const { return delivered_.load(); }
  int64_t failed() const { return failed_.load(); }

  // Builds the Kafka message for `event` (already normalised) in `encoding`.
  static void Encode(const v1::Event& event, WireEncoding encoding, Headers* headers,
                     std::string* value);

 private:
  Publisher() = default;
  static void DeliveryCallback(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);

  rd_kafka_t* rk_ = nullptr;
  WireEncoding encoding_ = WireEncoding::kProtobuf;
  std::atomic<int64_t> delivered_{0};
  std::atomic<int64_t> failed_{0};
  absl::Mutex mu_;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace audit

#endif  // CLIENTS_CPP_AUDIT_PUBLISHER_H_
