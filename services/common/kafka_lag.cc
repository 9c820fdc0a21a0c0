#include "services/common/kafka_lag.h"

#include <librdkafka/rdkafka.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace audit {

absl::StatusOr<std::vector<PartitionLag>> GroupLag(const std::string& brokers,
                                                   const std::string& group,
                                                   const std::vector<std::string>& topics) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", brokers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "group.id", group.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> rk(
      rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err), &rd_kafka_destroy);
  if (rk == nullptr) return absl::InternalError(err);
  std::unique_ptr<rd_kafka_topic_partition_list_t, void (*)(rd_kafka_topic_partition_list_t*)> list(
      rd_kafka_topic_partition_list_new(16), &rd_kafka_topic_partition_list_destroy);
  for (const std::string& topic : topics) {
    rd_kafka_topic_t* t = rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk.get(), 0, t, &md, 5000);
    rd_kafka_topic_destroy(t);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err) {
      const rd_kafka_resp_err_t why = e ? e : (md ? md->topics[0].err : e);
      if (md != nullptr) rd_kafka_metadata_destroy(md);
      return absl::UnavailableError(
          absl::StrCat("metadata for ", topic, ": ", rd_kafka_err2str(why)));
    }
    for (int p = 0; p < md->topics[0].partition_cnt; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), md->topics[0].partitions[p].id);
    }
    rd_kafka_metadata_destroy(md);
  }
  if (rd_kafka_resp_err_t e = rd_kafka_committed(rk.get(), list.get(), 5000);
      e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("committed offsets: ", rd_kafka_err2str(e)));
  }
  std::vector<PartitionLag> out;
  for (int i = 0; i < list->cnt; ++i) {
    PartitionLag p;
    p.topic = list->elems[i].topic;
    p.partition = list->elems[i].partition;
    p.committed = list->elems[i].offset >= 0 ? list->elems[i].offset : -1;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk.get(), p.topic.c_str(), p.partition,
                                                             &p.low, &p.high, 5000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("watermarks: ", rd_kafka_err2str(e)));
    }
    out.push_back(p);
  }
  return out;
}

absl::StatusOr<int64_t> ConsumerLag(const std::string& brokers, const std::string& group,
                                    const std::vector<std::string>& topics) {
  absl::StatusOr<std::vector<PartitionLag>> lags = GroupLag(brokers, group, topics);
  if (!lags.ok()) return lags.status();
  int64_t total = 0;
  for (const PartitionLag& p : *lags) total += p.lag();
  return total;
}

}  // namespace audit
