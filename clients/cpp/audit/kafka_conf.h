// librdkafka configuration building shared by the publisher and the ingestor's consumer.
#ifndef CLIENTS_CPP_AUDIT_KAFKA_CONF_H_
#define CLIENTS_CPP_AUDIT_KAFKA_CONF_H_

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace audit::internal {

struct KafkaConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
// Release() it into rd_kafka_new, which takes ownership on success.
using KafkaConfPtr = std::unique_ptr<rd_kafka_conf_t, KafkaConfDeleter>;

// A configuration with `settings` applied, then `extra` (so callers' extra properties win).
// INVALID_ARGUMENT names a bad property but never echoes its value, which may be a secret.
absl::StatusOr<KafkaConfPtr> NewKafkaConf(
    absl::Span<const std::pair<std::string, std::string>> settings,
    const std::map<std::string, std::string>& extra);

}  // namespace audit::internal

#endif  // CLIENTS_CPP_AUDIT_KAFKA_CONF_H_
