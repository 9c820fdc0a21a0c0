#include "audit/publisher.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "audit/envelope.h"
#include "audit/kafka_conf.h"

namespace audit {
absl::StatusOr<std::unique_ptr<Publisher>> Publisher::Create(const Options& options) {
  if (options.brokers.empty()) return absl::InvalidArgumentError("brokers are required");
  std::unique_ptr<Publisher> p(new Publisher());
  p->encoding_ = options.encoding;
  const std::pair<std::string, std::string> settings[] = {
      {"bootstrap.servers", options.brokers},
      {"client.id", options.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"delivery.timeout.ms", absl::StrCat(absl::ToInt64Milliseconds(options.delivery_timeout))},
      {"linger.ms", "5"},
  };
  absl::StatusOr<internal::KafkaConfPtr> conf =
      internal::NewKafkaConf(settings, options.extra_config);
  if (!conf.ok()) return conf.status();
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &DeliveryCallback);
  rd_kafka_conf_set_opaque(conf->get(), p.get());
  char err[512];
  p->rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), err, sizeof err);
  if (p->rk_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create Kafka producer: ", err));
  }
  conf->release();  // owned by the producer now
  return p;
}

Publisher::~Publisher() {
  if (rk_ != nullptr) {
    rd_kafka_flush(rk_, 10000);
    rd_kafka_destroy(rk_);
  }
}

void Publisher::DeliveryCallback(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque) {
  Publisher* self = static_cast<Publisher*>(opaque);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->delivered_++;
    return;
  }
  self->failed_++;
  absl::MutexLock lock(&self->mu_);
  if (self->first_error_.ok()) {
    self->first_error_ = absl::UnavailableError(absl::StrCat(
        "delivery to ", rd_kafka_topic_name(m->rkt), " failed: ", rd_kafka_err2str(m->err)));
  }
}

void Publisher::Encode(const v1::Event& event, WireEncoding encoding, Headers* headers,
                       std::string* value) {
  headers->clear();
  switch (encoding) {
    case WireEncoding::kProtobuf:
      headers->emplace_back("content-type", std::string(kProtobufContentType));
      *value = event.SerializeAsString();
      return;
    case WireEncoding::kStructuredJson:
      headers->emplace_back("content-type", std::string(kStructuredJsonContentType));
      *value = ToStructuredJson(event);
      return;
    case WireEncoding::kBinaryMode:
      ToBinaryMode(event, headers, value);
      return;
  }
}

absl::Status Publisher::Publish(absl::string_view topic, v1::Event event,
                                absl::Duration queue_wait) {
  if (absl::Status s = NormalizeEvent(&event); !s.ok()) return s;
  Headers headers;
  std::string value;
  Encode(event, encoding_, &headers, &value);
  return PublishRaw(topic, event.subject(), headers, value, std::nullopt, queue_wait);
}

absl::Status Publisher::PublishRaw(absl::string_view topic, std::optional<absl::string_view> key,
                                   const Headers& headers, std::optional<absl::string_view> value,
                                   std::optional<int32_t> partition, absl::Duration queue_wait) {
  const std::string topic_name(topic);
  const absl::Time deadline = absl::Now() + queue_wait;
  // librdkafka's varargs macros cast their arguments without parentheses: plain variables only.
  const void* key_ptr = key ? key->data() : nullptr;
  const size_t key_len = key ? key->size() : 0;
  void* value_ptr = value ? const_cast<char*>(value->data()) : nullptr;
  const size_t value_len = value ? value->size() : 0;
  const int32_t part = partition.value_or(RD_KAFKA_PARTITION_UA);
  while (true) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& [k, v] : headers) {
      rd_kafka_header_add(hdrs, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                          static_cast<ssize_t>(v.size()));
    }
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        rk_, RD_KAFKA_V_TOPIC(topic_name.c_str()), RD_KAFKA_V_PARTITION(part),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key_ptr, key_len),
        RD_KAFKA_V_VALUE(value_ptr, value_len), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      rd_kafka_poll(rk_, 0);  // serve delivery reports
      return absl::OkStatus();
    }
    rd_kafka_headers_destroy(hdrs);  // not taken over on failure
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      return absl::InvalidArgumentError(
          absl::StrCat("produce to ", topic, ": ", rd_kafka_err2str(err)));
    }
    if (absl::Now() >= deadline) {
      return absl::ResourceExhaustedError("local producer queue full");
    }
    rd_kafka_poll(rk_, 100);  // backpressure: wait for deliveries to make room
  }
}

absl::Status Publisher::Flush(absl::Duration timeout) {
  const rd_kafka_resp_err_t err =
      rd_kafka_flush(rk_, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  absl::MutexLock lock(&mu_);
  absl::Status first = first_error_;
  first_error_ = absl::OkStatus();
  if (!first.ok()) return first;
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    return absl::DeadlineExceededError(
        absl::StrCat(rd_kafka_outq_len(rk_), " messages still in flight"));
  }
  return absl::OkStatus();
}

}  // namespace audit
