#include "services/ingestor/kafka_source.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "audit/kafka_conf.h"
#include "services/common/log.h"

namespace audit::ingestor {
namespace {

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

void LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
  LogLine line(level <= 3   ? LogLevel::kError
               : level == 4 ? LogLevel::kWarning
               : level <= 6 ? LogLevel::kInfo
                            : LogLevel::kDebug,
               "librdkafka");
  line.With("facility", fac).With("detail", buf);
}

void ErrorCallback(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  // Most are transient (broker down, connection refused) and librdkafka retries by itself.
  const bool fatal = err == RD_KAFKA_RESP_ERR__FATAL;
  LogLine(fatal ? LogLevel::kError : LogLevel::kWarning, "kafka client error")
      .With("error", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err)))
      .With("detail", reason);
}

// Offsets are committed asynchronously (Commit returns at once); a commit that fails is
// reported here, on the polling thread. Harmless: the messages are delivered again and the
// store absorbs them.
void OffsetCommitCallback(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t*,
                          void*) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__NO_OFFSET) return;
  LogWarning("offset commit failed; messages will be redelivered and absorbed")
      .With("error", rd_kafka_err2name(err));
}

void DestroyMessage(const void* m) {
  rd_kafka_message_destroy(
      const_cast<rd_kafka_message_t*>(static_cast<const rd_kafka_message_t*>(m)));
}

// Views into `m`, which the batch keeps alive.
KafkaRecord ToRecord(const rd_kafka_message_t* m) {
  KafkaRecord r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  rd_kafka_timestamp_type_t type;
  const int64_t ts = rd_kafka_message_timestamp(m, &type);
  if (type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0) r.timestamp_ms = ts;
  if (m->key != nullptr) {
    r.key = absl::string_view(static_cast<const char*>(m->key), m->key_len);
  }
  if (m->payload != nullptr) {
    r.value = absl::string_view(static_cast<const char*>(m->payload), m->len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR && headers != nullptr) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      HeaderView h{name, std::nullopt};
      if (value != nullptr) h.value = absl::string_view(static_cast<const char*>(value), size);
      r.headers.push_back(h);
    }
  }
  return r;
}

int64_t ToMillis(absl::Duration d) { return std::max<int64_t>(0, absl::ToInt64Milliseconds(d)); }

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaSource>> KafkaSource::Create(const Options& options) {
  if (options.brokers.empty()) return absl::InvalidArgumentError("Kafka brokers are required");
  if (options.topics.empty()) return absl::InvalidArgumentError("no topics to subscribe to");
  std::unique_ptr<KafkaSource> source(new KafkaSource());
  const std::pair<std::string, std::string> settings[] = {
      {"bootstrap.servers", options.brokers},
      {"group.id", options.group_id},
      {"client.id", options.client_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"enable.partition.eof", "false"},
      {"isolation.level", "read_committed"},
      {"partition.assignment.strategy", options.assignment_strategy},
      {"topic.metadata.refresh.interval.ms", absl::StrCat(ToMillis(options.metadata_refresh))},
      {"session.timeout.ms", absl::StrCat(ToMillis(options.session_timeout))},
      {"heartbeat.interval.ms",
       absl::StrCat(std::min<int64_t>(3000, ToMillis(options.session_timeout) / 3))},
      // Bounded prefetch (what a paused consumer may still hold), but more than a second of
      // the consumer's top speed: librdkafka 2.0 stops fetching for a whole second once either
      // threshold is reached (librdkafka#2879; 2.1 made that fetch.queue.backoff.ms), which
      // starved a consumer draining the old 64 MB in 0.6 s (docs/DECISIONS.md, 2026-11-26).
      {"queued.max.messages.kbytes", "262144"},
      {"queued.min.messages", "1000000"},
  };
  absl::StatusOr<internal::KafkaConfPtr> conf =
      internal::NewKafkaConf(settings, options.extra_config);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_log_cb(conf->get(), &LogCallback);
  rd_kafka_conf_set_error_cb(conf->get(), &ErrorCallback);
  rd_kafka_conf_set_rebalance_cb(conf->get(), &RebalanceCallback);
  rd_kafka_conf_set_offset_commit_cb(conf->get(), &OffsetCommitCallback);
  rd_kafka_conf_set_opaque(conf->get(), source.get());
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err, sizeof err);
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create Kafka consumer: ", err));
  }
  conf->release();  // owned by the consumer now
  source->rk_.reset(rk);
  rd_kafka_poll_set_consumer(rk);
  PartitionListPtr topics(
      rd_kafka_topic_partition_list_new(static_cast<int>(options.topics.size())));
  for (const std::string& t : options.topics) {
    rd_kafka_topic_partition_list_add(topics.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics.get());
      e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat("subscribe: ", rd_kafka_err2str(e)));
  }
  return source;
}

KafkaSource::~KafkaSource() { (void)Close(); }

void KafkaSource::RebalanceCallback(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<KafkaSource*>(opaque)->OnRebalance(err, partitions);
}

void KafkaSource::OnRebalance(rd_kafka_resp_err_t err,
                              rd_kafka_topic_partition_list_t* partitions) {
  rd_kafka_t* rk = rk_.get();
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  std::string names;
  for (int i = 0; i < partitions->cnt; ++i) {
    absl::StrAppend(&names, i ? "," : "", partitions->elems[i].topic, "/",
                    partitions->elems[i].partition);
  }
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    rd_kafka_error_t* error = nullptr;
    if (cooperative) {
      error = rd_kafka_incremental_assign(rk, partitions);
    } else {
      rd_kafka_assign(rk, partitions);
    }
    if (error != nullptr) {
      LogError("incremental assign failed").With("error", rd_kafka_error_string(error));
      rd_kafka_error_destroy(error);
    }
    // Partitions assigned while paused stay paused until Resume().
    if (paused_) rd_kafka_pause_partitions(rk, partitions);
    if (cooperative) {
      assigned_ += partitions->cnt;
    } else {
      assigned_ = partitions->cnt;
    }
    LogInfo("partitions assigned")
        .With("partitions", names)
        .With("protocol", cooperative ? "cooperative" : "eager");
  } else {
    // Revoked. Nothing to flush: offsets are committed only after a batch is stored, and a
    // batch still in flight is safe to finish (the store is idempotent; its commit may fail).
    if (cooperative) {
      rd_kafka_error_t* error = rd_kafka_incremental_unassign(rk, partitions);
      if (error != nullptr) rd_kafka_error_destroy(error);
      assigned_ -= partitions->cnt;
    } else {
      rd_kafka_assign(rk, nullptr);
      assigned_ = 0;
    }
    LogInfo("partitions revoked")
        .With("partitions", names)
        .With("lost", rd_kafka_assignment_lost(rk) != 0);
  }
}

absl::StatusOr<RecordBatch> KafkaSource::Poll(size_t max_records, absl::Duration max_wait) {
  RecordBatch batch;
  if (closed_) return absl::FailedPreconditionError("consumer closed");
  const absl::Time deadline = absl::Now() + max_wait;
  // Wait for the first record, then take what is already there without waiting again.
  absl::Duration wait = max_wait;
  while (batch.records.size() < max_records) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), static_cast<int>(ToMillis(wait)));
    if (m == nullptr) {
      if (!batch.empty() || absl::Now() >= deadline) break;
      wait = deadline - absl::Now();
      continue;
    }
    std::shared_ptr<const void> owner(m, &DestroyMessage);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Consumer errors (unknown topic, broker transport) are reported and retried by
      // librdkafka; they never carry a message to store.
      LogWarning("kafka consume error")
          .With("error", rd_kafka_err2name(m->err))
          .With("detail", rd_kafka_message_errstr(m));
      if (absl::Now() >= deadline) break;
      wait = batch.empty() ? deadline - absl::Now() : absl::ZeroDuration();
      continue;
    }
    batch.records.push_back(ToRecord(m));
    batch.owners.push_back(std::move(owner));
    wait = absl::ZeroDuration();
  }
  return batch;
}

absl::Status KafkaSource::Commit(const RecordBatch& batch) {
  if (batch.empty()) return absl::OkStatus();
  std::map<std::pair<std::string, int32_t>, int64_t> next;
  for (const KafkaRecord& r : batch.records) {
    int64_t& n = next[{std::string(r.topic), r.partition}];
    n = std::max(n, r.offset + 1);
  }
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(next.size())));
  for (const auto& [tp, offset] : next) {
    rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset = offset;
  }
  // Asynchronous: the next batch need not wait for the broker's answer (OffsetCommitCallback).
  const rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), list.get(), /*async=*/1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("offset commit failed: ", rd_kafka_err2name(err)));
  }
  return absl::OkStatus();
}

void KafkaSource::Pause() {
  paused_ = true;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_.get(), &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_pause_partitions(rk_.get(), assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
  }
}

void KafkaSource::Resume() {
  paused_ = false;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_.get(), &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_resume_partitions(rk_.get(), assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
  }
}

absl::Status KafkaSource::Close() {
  if (closed_ || rk_ == nullptr) return absl::OkStatus();
  closed_ = true;
  const rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_.get());
  rk_.reset();
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(absl::StrCat("consumer close: ", rd_kafka_err2name(err)));
  }
  return absl::OkStatus();
}

}  // namespace audit::ingestor
