#include "audit/kafka_conf.h"

#include "absl/strings/str_cat.h"

namespace audit::internal {
namespace {

absl::Status Set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    return absl::InvalidArgumentError(absl::StrCat("Kafka property ", key, ": ", err));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KafkaConfPtr> NewKafkaConf(
    absl::Span<const std::pair<std::string, std::string>> settings,
    const std::map<std::string, std::string>& extra) {
  KafkaConfPtr conf(rd_kafka_conf_new());
  for (const auto& [k, v] : settings) {
    if (absl::Status s = Set(conf.get(), k, v); !s.ok()) return s;
  }
  for (const auto& [k, v] : extra) {
    if (absl::Status s = Set(conf.get(), k, v); !s.ok()) return s;
  }
  return conf;
}

}  // namespace audit::internal
