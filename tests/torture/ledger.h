// The torture suite's producer: publishes to Kafka (raw librdkafka, idempotent, acks=all) and
// keeps a ledger of every message it had acknowledged, so that a scenario can compare the
// store with exactly what was sent (Jepsen's set comparison).
//
// Valid events have ids "<run>-p<producer>-<seq>" with seq = 1, 2, ... per producer (also in
// the event's `sequence` attribute), in all three encodings. With poison_fraction, poison
// messages from tests/fixtures/poison (each kind with the dead-letter class it must get, a
// unique key); with conflict_fraction, a redelivery of an already acknowledged id with other
// content, on the same partition after the original (it must be dead-lettered as `conflict`).
// Produce() is for one thread; the counters are readable from any.
#ifndef TESTS_TORTURE_LEDGER_H_
#define TESTS_TORTURE_LEDGER_H_

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audit/envelope.h"

namespace audit::torture {

struct PoisonSent {
  std::string key;
  std::string kind;
  ErrorClass expected;
};

struct ConflictSent {
  std::string source;
  std::string id;  // of the original, which must stay stored
};

struct Ledger {
  std::string run;
  std::vector<int64_t> sent;  // per producer: events 1..sent[p] acknowledged
  std::vector<PoisonSent> poison;
  std::vector<ConflictSent> conflicts;

  int64_t valid() const;
  int64_t total() const { return valid() + static_cast<int64_t>(poison.size() + conflicts.size()); }
};

class LedgerProducer {
 public:
  struct Options {
    std::string brokers;
    std::string run = "run";
    int producers = 3;
    std::vector<std::string> topics = {"orders.events", "payments.events", "inventory.events",
                                       "shipping.events"};
    double poison_fraction = 0;
    double conflict_fraction = 0;
    // Messages per second over all producers; 0 = as fast as the client goes.
    double rate = 0;
    uint64_t seed = 1;
    size_t oversize_bytes = 1200 * 1024;  // beyond the ingestor's default 1 MiB
  };

  static absl::StatusOr<std::unique_ptr<LedgerProducer>> Create(Options options);
  ~LedgerProducer();

  // Sends `count` messages, then waits until every one is acknowledged. Stops early (still
  // waiting for acknowledgements) when `stop` becomes true. A message the cluster never
  // acknowledges fails the call: the ledger must be exact.
  absl::Status Produce(int64_t count, const std::atomic<bool>* stop = nullptr);

  // The ledger of acknowledged messages (after Produce returned).
  const Ledger& ledger() const { return ledger_; }
  int64_t acknowledged() const { return acknowledged_.load(); }

 private:
  explicit LedgerProducer(Options options) : options_(std::move(options)) {}
  absl::Status Send(const std::string& topic, const std::string& key,
                    const std::vector<std::pair<std::string, std::string>>& headers,
                    const std::optional<std::string>& value);
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);

  Options options_;
  rd_kafka_t* producer_ = nullptr;
  std::mt19937_64 rng_;
  Ledger ledger_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> acknowledged_{0};
  std::atomic<int64_t> failed_{0};
  absl::Mutex mu_;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace audit::torture

#endif  // TESTS_TORTURE_LEDGER_H_
