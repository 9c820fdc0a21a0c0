// Consumer-group lag, the way an operator checks it: committed offsets against the partitions'
// high watermarks, per partition. Works against any Kafka-protocol cluster (the dev mock too,
// which has no admin tooling of its own).
#ifndef SERVICES_COMMON_KAFKA_LAG_H_
#define SERVICES_COMMON_KAFKA_LAG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace audit {

struct PartitionLag {
  std::string topic;
  int32_t partition = 0;
  int64_t committed = -1;  // -1: the group has committed nothing for this partition
  int64_t low = 0;         // oldest offset still in the log
  int64_t high = 0;        // offset the next message will get
  // Messages not yet committed by the group: high - committed (or high - low if none).
  int64_t lag() const { return high - (committed >= 0 ? committed : low); }
};

// Lag of `group` on every partition of `topics`. UNAVAILABLE if the cluster does not answer
// within a few seconds. Does not join the group.
absl::StatusOr<std::vector<PartitionLag>> GroupLag(const std::string& brokers,
                                                   const std::string& group,
                                                   const std::vector<std::string>& topics);

// The total over GroupLag's partitions.
absl::StatusOr<int64_t> ConsumerLag(const std::string& brokers, const std::string& group,
                                    const std::vector<std::string>& topics);

}  // namespace audit

#endif  // SERVICES_COMMON_KAFKA_LAG_H_
