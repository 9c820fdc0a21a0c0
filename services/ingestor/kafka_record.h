// A Kafka message as the ingestor sees it: views into memory owned by the record source.
#ifndef SERVICES_INGESTOR_KAFKA_RECORD_H_
#define SERVICES_INGESTOR_KAFKA_RECORD_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/string_view.h"
#include "audit/cloudevents.h"

namespace audit::ingestor {

struct KafkaRecord {
  absl::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<int64_t> timestamp_ms;     // the message's CreateTime/LogAppendTime, if any
  std::optional<absl::string_view> key;    // nullopt = null key
  std::vector<HeaderView> headers;         // in message order
  std::optional<absl::string_view> value;  // nullopt = null value (tombstone)
};

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_KAFKA_RECORD_H_
