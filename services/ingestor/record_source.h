// Where the ingestor reads Kafka messages from: a consumer-group member.
#ifndef SERVICES_INGESTOR_RECORD_SOURCE_H_
#define SERVICES_INGESTOR_RECORD_SOURCE_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/ingestor/kafka_record.h"

namespace audit::ingestor {

// Records plus whatever keeps the bytes they point into alive.
struct RecordBatch {
  std::vector<KafkaRecord> records;
  std::vector<std::shared_ptr<const void>> owners;

  bool empty() const { return records.empty(); }
  void Append(RecordBatch&& other) {
    records.insert(records.end(), other.records.begin(), other.records.end());
    owners.insert(owners.end(), other.owners.begin(), other.owners.end());
    other.records.clear();
    other.owners.clear();
  }
};

// Used by one thread at a time (not necessarily the same one).
class RecordSource {
 public:
  virtual ~RecordSource() = default;

  // Waits up to `max_wait` for records and returns up to `max_records` (possibly none).
  // Also serves group membership (rebalances, liveness), so it must be called regularly,
  // even while paused. Per partition, records come in offset order.
  virtual absl::StatusOr<RecordBatch> Poll(size_t max_records, absl::Duration max_wait) = 0;

  // Commits, for each partition in `batch`, the offset after its last record. Call only once
  // every record of the batch is durably stored. A failed commit (e.g. after losing the
  // partition in a rebalance) is safe: the messages are delivered again.
  virtual absl::Status Commit(const RecordBatch& batch) = 0;

  // Stops (and restarts) fetching for every assigned partition, including ones assigned while
  // paused; Poll keeps serving the group.
  virtual void Pause() = 0;
  virtual void Resume() = 0;
};

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_RECORD_SOURCE_H_
