// Where the ingestor appends a batch: events and dead letters, atomically.
#ifndef SERVICES_INGESTOR_EVENT_SINK_H_
#define SERVICES_INGESTOR_EVENT_SINK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/canonical.h"
#include "audit/envelope.h"
#include "audit/v1/event.pb.h"
#include "services/ingestor/kafka_record.h"

namespace audit::ingestor {

// A decoded, normalised event and the message it came from.
struct EventEntry {
  const KafkaRecord* record;
  const v1::Event* event;
  Sha256Digest content_hash;
};

// A message that cannot be stored as an event.
struct DeadLetterEntry {
  const KafkaRecord* record;
  ErrorClass error_class;
  std::string reason;
  std::string event_source;  // when the message got that far; valid UTF-8 without NUL
  std::string event_id;
};

struct AppendBatch {
  std::vector<EventEntry> events;  // in Kafka order within each partition
  std::vector<DeadLetterEntry> dead_letters;
};

struct AppendResult {
  int64_t appended = 0;               // new events stored
  int64_t duplicates = 0;             // identical redeliveries absorbed (not stored again)
  int64_t conflicts = 0;              // same (source, id), other content: dead-lettered
  int64_t dead_letters_written = 0;   // includes conflicts
  int64_t dead_letters_existing = 0;  // redelivered dead letters already stored
  int64_t first_position = 0;         // of the appended events; 0 if none
  int64_t last_position = 0;
};

class EventSink {
 public:
  virtual ~EventSink() = default;

  // Appends `batch` in one transaction: all of it or nothing.
  //  - An event whose (source, id) is stored with the same content hash, or appears earlier in
  //    the batch with it, is a duplicate: counted, not stored again.
  //  - With a different content hash it is a conflict: dead-lettered (class "conflict").
  //  - A dead letter whose Kafka message (topic, partition, offset) is already dead-lettered
  //    is not written twice.
  // Errors: INVALID_ARGUMENT means the store refused something in this batch's content (the
  // caller isolates it); any other code is transient (database down, timeout, lost race):
  // retry the same batch later. Not thread-safe.
  virtual absl::StatusOr<AppendResult> Append(const AppendBatch& batch) = 0;
};

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_EVENT_SINK_H_
