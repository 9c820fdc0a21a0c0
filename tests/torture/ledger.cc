#include "tests/torture/ledger.h"

#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "audit/cloudevents.h"
#include "audit/rfc3339.h"
#include "tests/fixtures/poison.h"

namespace audit::torture {

int64_t Ledger::valid() const { return std::accumulate(sent.begin(), sent.end(), int64_t{0}); }

absl::StatusOr<std::unique_ptr<LedgerProducer>> LedgerProducer::Create(Options options) {
  std::unique_ptr<LedgerProducer> p(new LedgerProducer(std::move(options)));
  p->rng_.seed(p->options_.seed);
  p->ledger_.run = p->options_.run;
  p->ledger_.sent.assign(p->options_.producers, 0);
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::pair<const char*, std::string> settings[] = {
      {"bootstrap.servers", p->options_.brokers},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"message.timeout.ms", "0"},  // never give up: the ledger must be exact
      {"linger.ms", "5"},
      {"message.max.bytes", "4000000"},
      {"client.id", "audit-torture-producer"},
      {"log_level", "2"},  // broker outages are the point here, not news
  };
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(absl::StrCat(k, ": ", err));
    }
  }
  rd_kafka_conf_set_dr_msg_cb(conf, &LedgerProducer::OnDelivery);
  rd_kafka_conf_set_opaque(conf, p.get());
  p->producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (p->producer_ == nullptr) return absl::UnavailableError(err);
  return p;
}

LedgerProducer::~LedgerProducer() {
  if (producer_ != nullptr) {
    rd_kafka_flush(producer_, 10000);
    rd_kafka_destroy(producer_);
  }
}

void LedgerProducer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<LedgerProducer*>(opaque);
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->failed_++;
    absl::MutexLock lock(&self->mu_);
    if (self->first_error_.empty()) self->first_error_ = rd_kafka_err2str(m->err);
  } else {
    self->acknowledged_++;
  }
  self->in_flight_--;
}

absl::Status LedgerProducer::Send(const std::string& topic, const std::string& key,
                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                  const std::optional<std::string>& value) {
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
  for (const auto& [k, v] : headers) {
    rd_kafka_header_add(hdrs, k.data(), static_cast<ssize_t>(k.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  }
  while (true) {
    in_flight_++;
    const rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic.c_str()),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(value.has_value() ? const_cast<char*>(value->data()) : nullptr,
                         value.has_value() ? value->size() : 0),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();  // headers now owned
    in_flight_--;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_headers_destroy(hdrs);
      return absl::InternalError(absl::StrCat("produce: ", rd_kafka_err2str(err)));
    }
    rd_kafka_poll(producer_, 100);  // the local queue is full: let deliveries drain
  }
}

absl::Status LedgerProducer::Produce(int64_t count, const std::atomic<bool>* stop) {
  std::uniform_real_distribution<double> coin(0, 1);
  const absl::Time start = absl::Now();
  std::vector<testing::PoisonMessage> catalog;
  size_t next_poison = 0;
  std::vector<std::pair<int, int64_t>> conflict_candidates;  // (producer, seq) not yet used
  for (int64_t i = 0; i < count; ++i) {
    if (stop != nullptr && stop->load()) break;
    if (options_.rate > 0) {
      const absl::Time due = start + absl::Seconds(static_cast<double>(i) / options_.rate);
      if (absl::Now() < due) absl::SleepFor(due - absl::Now());  // pacing, not waiting on state
    }
    rd_kafka_poll(producer_, 0);
    const double roll = coin(rng_);
    if (roll < options_.poison_fraction) {
      if (next_poison == catalog.size()) {
        catalog = testing::PoisonCatalog(absl::StrCat(options_.run, "-poison-", i),
                                         options_.oversize_bytes);
        next_poison = 0;
      }
      const testing::PoisonMessage& m = catalog[next_poison++];
      if (absl::Status s =
              Send(options_.topics[i % options_.topics.size()], m.key, m.headers, m.value);
          !s.ok()) {
        return s;
      }
      ledger_.poison.push_back({m.key, m.kind, m.expected});
      continue;
    }
    const int p = static_cast<int>(rng_() % options_.producers);
    const bool conflict = roll < options_.poison_fraction + options_.conflict_fraction &&
                          !conflict_candidates.empty();
    int64_t seq;
    int producer = p;
    if (conflict) {
      // A different event under an id already sent (and acknowledged: same partition, after).
      const size_t pick = rng_() % conflict_candidates.size();
      std::tie(producer, seq) = conflict_candidates[pick];
      conflict_candidates.erase(conflict_candidates.begin() + static_cast<long>(pick));
    } else {
      seq = ++ledger_.sent[p];
      if (seq % 10 == 0) conflict_candidates.emplace_back(p, seq);
    }
    v1::Event e;
    e.set_id(absl::StrCat(options_.run, "-p", producer, "-", seq));
    e.set_source(absl::StrCat("/torture/p", producer));
    e.set_type("com.acme.torture.tick");
    e.set_spec_version("1.0");
    e.set_subject(absl::StrCat("order-", producer, "-", seq % 97));
    *e.mutable_time() = FromUnixMicros(absl::ToUnixMicros(absl::Now()));
    e.set_data_content_type("application/json");
    e.set_text_data(absl::StrCat(
        R"({"n": )", seq, R"(, "variant": ")", conflict ? "conflict" : "original",
        R"(", "lines": [{"sku": "SKU-)", seq % 1000,
        R"(", "qty": 2, "price": 19.99}], "note": "torture run )", options_.run, R"("})"));
    e.set_correlation_id(absl::StrCat("corr-", producer, "-", seq / 10));
    e.set_sequence(static_cast<uint64_t>(seq));
    const std::string topic = options_.topics[static_cast<size_t>(seq) % options_.topics.size()];
    std::vector<std::pair<std::string, std::string>> headers;
    std::string value;
    switch (seq % 3) {
      case 0:
        headers = {{"content-type", std::string(kProtobufContentType)}};
        value = e.SerializeAsString();
        break;
      case 1:
        headers = {{"content-type", std::string(kStructuredJsonContentType)}};
        value = ToStructuredJson(e);
        break;
      default:
        ToBinaryMode(e, &headers, &value);
        break;
    }
    if (conflict) {
      // Wait for the original's acknowledgement: ordering on the partition is then certain.
      rd_kafka_flush(producer_, 60000);
      ledger_.conflicts.push_back({e.source(), e.id()});
    }
    if (absl::Status s = Send(topic, e.subject(), headers, value); !s.ok()) return s;
  }
  while (in_flight_.load() > 0) rd_kafka_poll(producer_, 100);
  if (failed_.load() > 0) {
    absl::MutexLock lock(&mu_);
    return absl::DataLossError(
        absl::StrCat(failed_.load(), " messages were not acknowledged: ", first_error_));
  }
  return absl::OkStatus();
}

}  // namespace audit::torture
