// audit-bench: each measurement beside its baseline, in the same run, on the same machine,
// against the same table and indexes (docs/PERFORMANCE.md).
//
//   bazel run -c opt //tools/bench:audit-bench                    # everything, full size
//   bazel run -c opt //tools/bench:audit-bench -- --only=ingest --runs=7
//   bazel run //tools/bench:audit-bench -- --smoke               # seconds; what CI runs
//
// It starts a private PostgreSQL 15 (fsync and synchronous_commit as shipped: on) and the
// Kafka-protocol mock cluster, generates traffic with the order simulator, and prints a table
// of medians and ratios (and JSON with --json_out). No result is asserted: this is a
// measuring instrument; the targets are in docs/PERFORMANCE.md.
#include <google/protobuf/arena.h>
#include <grpcpp/grpcpp.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "audit/canonical.h"
#include "audit/json.h"
#include "audit/record.h"
#include "audit/signing.h"
#include "audit/v1/audit_service.grpc.pb.h"
#include "services/common/copy_binary.h"
#include "services/common/event_rows.h"
#include "services/common/log.h"
#include "services/common/pg.h"
#include "services/ingestor/checkpointer.h"
#include "services/ingestor/decoder.h"
#include "services/ingestor/ingestor.h"
#include "services/ingestor/kafka_source.h"
#include "services/ingestor/leaf_feed.h"
#include "services/ingestor/pg_event_store.h"
#include "services/query/query_server.h"
#include "tests/fixtures/postgres_server.h"
#include "tools/devbroker/mock_cluster.h"
#include "tools/simulator/order_simulator.h"

ABSL_FLAG(int64_t, events, 200000, "Events for the ingest and replay measurements.");
ABSL_FLAG(int64_t, history_events, 10000000, "Events stored for the query measurements.");
ABSL_FLAG(int, runs, 5, "Runs of each measurement (medians are reported).");
ABSL_FLAG(int, samples, 2000, "Calls per latency measurement.");
ABSL_FLAG(bool, smoke, false, "A tiny run (seconds): checks that every measurement works.");
ABSL_FLAG(std::string, only, "",
          "Comma-separated: ingest, replay, history, pagination; consumer (the consumer alone).");
ABSL_FLAG(std::string, json_out, "", "Also write the results as JSON here.");

namespace audit::bench {
namespace {

constexpr int kBatch = 2000;  // the ingestor's default batch_max_records

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// The median of the runs' own ratios a[i] / b[i]: each pair was measured minutes apart, so a
// machine that drifts between runs (these are shared) moves both sides of a pair alike.
double PairedRatio(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> r;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (b[i] > 0) r.push_back(a[i] / b[i]);
  }
  return Median(r);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// One line of the results: a measurement, its baseline, and their ratio.
struct Line {
  std::string name;
  std::string value;
  std::string baseline;
  std::string ratio;
  std::string target;
};

class Results {
 public:
  void Add(Line l) { lines_.push_back(std::move(l)); }
  void Print() const {
    std::printf("\n%-46s %16s %16s %8s  %s\n", "MEASUREMENT", "VALUE", "BASELINE", "RATIO",
                "TARGET");
    for (const Line& l : lines_) {
      std::printf("%-46s %16s %16s %8s  %s\n", l.name.c_str(), l.value.c_str(), l.baseline.c_str(),
                  l.ratio.c_str(), l.target.c_str());
    }
  }
  std::string Json() const {
    std::string out = "[";
    for (size_t i = 0; i < lines_.size(); ++i) {
      const Line& l = lines_[i];
      absl::StrAppend(&out, i ? "," : "", "{\"name\":");
      AppendJsonString(l.name, &out);
      for (const auto& [k, v] : {std::pair{"value", &l.value}, std::pair{"baseline", &l.baseline},
                                 std::pair{"ratio", &l.ratio}, std::pair{"target", &l.target}}) {
        absl::StrAppend(&out, ",\"", k, "\":");
        AppendJsonString(*v, &out);
      }
      out.push_back('}');
    }
    return out + "]";
  }

 private:
  std::vector<Line> lines_;
};

std::string Rate(double per_second) { return absl::StrFormat("%.0f ev/s", per_second); }
std::string Ms(double ms) { return absl::StrFormat("%.3f ms", ms); }
std::string Ratio(double r) { return absl::StrFormat("%.2f", r); }

void Say(const std::string& what) { std::fprintf(stderr, "[bench] %s\n", what.c_str()); }

// ---------------------------------------------------------------------------------------------
// Traffic: simulated events, normalised, as the ingestor would store them.

struct Traffic {
  std::vector<simulator::SimulatedEvent> events;
  std::vector<std::string> values;  // protobuf envelopes (the publisher's default encoding)
};

Traffic MakeTraffic(int64_t n, uint64_t seed) {
  simulator::SimulatorOptions o;
  o.seed = seed;
  o.redelivery_rate = 0;  // every message a new event: the COPY baseline writes the same rows
  simulator::OrderSimulator sim(o);
  Traffic t;
  t.events = sim.Generate(static_cast<size_t>(n));
  t.events.resize(static_cast<size_t>(n));
  for (auto& e : t.events) {
    NormalizeEvent(&e.event).IgnoreError();
    t.values.push_back(e.event.SerializeAsString());
  }
  return t;
}

absl::Status Produce(const std::string& brokers, const Traffic& t) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (const auto& [k, v] :
       std::vector<std::pair<std::string, std::string>>{{"bootstrap.servers", brokers},
                                                        {"linger.ms", "20"},
                                                        {"acks", "all"},
                                                        {"enable.idempotence", "true"},
                                                        {"batch.num.messages", "10000"}}) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(err);
    }
  }
  rd_kafka_t* p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (p == nullptr) return absl::UnavailableError(err);
  static const char kContentType[] = "application/protobuf";
  for (size_t i = 0; i < t.events.size(); ++i) {
    const std::string& key = t.events[i].event.subject();
    while (true) {
      const rd_kafka_resp_err_t e = rd_kafka_producev(
          p, RD_KAFKA_V_TOPIC(t.events[i].topic.c_str()),
          RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(t.values[i].data()), t.values[i].size()),
          RD_KAFKA_V_HEADER("content-type", kContentType, sizeof kContentType - 1),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_destroy(p);
        return absl::InternalError(rd_kafka_err2str(e));
      }
      rd_kafka_poll(p, 50);
    }
  }
  const rd_kafka_resp_err_t flushed = rd_kafka_flush(p, 120000);
  rd_kafka_destroy(p);
  return flushed == RD_KAFKA_RESP_ERR_NO_ERROR ? absl::OkStatus()
                                               : absl::DeadlineExceededError("flush");
}

// ---------------------------------------------------------------------------------------------
// Ingest: end to end versus raw COPY of the same rows; the consumer alone; hashing's share.

// Where one event went: its index in the traffic and the Kafka message it came from.
struct Placement {
  size_t event;
  int32_t partition;
  int64_t offset;
};

// The traffic in the order it was generated, with made-up provenance.
std::vector<Placement> GeneratedOrder(const Traffic& t) {
  std::vector<Placement> order;
  for (size_t i = 0; i < t.events.size(); ++i) {
    order.push_back({i, static_cast<int32_t>(i % 6), static_cast<int64_t>(i)});
  }
  return order;
}

// The order (and provenance) in which an ingest run stored the traffic into `db`: the raw COPY
// baseline then writes the same rows at the same positions. (Kafka delivers a backlog
// partition by partition, which interleaves the time-ordered ids of the unique index
// differently from the generated order, and PostgreSQL's index maintenance notices.)
absl::StatusOr<std::vector<Placement>> StoredOrder(testing::PostgresServer& pg,
                                                   const std::string& db, const Traffic& t) {
  absl::StatusOr<std::vector<std::string>> rows =
      pg.Query(db,
               "SELECT event_id || ' ' || kafka_partition || ' ' || kafka_offset"
               " FROM audit.events ORDER BY position");
  if (!rows.ok()) return rows.status();
  absl::flat_hash_map<absl::string_view, size_t> index;
  for (size_t i = 0; i < t.events.size(); ++i) index[t.events[i].event.id()] = i;
  std::vector<Placement> order;
  for (const std::string& row : *rows) {
    const std::vector<absl::string_view> f = absl::StrSplit(row, ' ');
    Placement p;
    auto it = f.empty() ? index.end() : index.find(f[0]);
    if (f.size() != 3 || it == index.end() || !absl::SimpleAtoi(f[1], &p.partition) ||
        !absl::SimpleAtoi(f[2], &p.offset)) {
      return absl::InternalError(absl::StrCat("unexpected stored row ", row));
    }
    p.event = it->second;
    order.push_back(p);
  }
  if (order.size() != t.events.size()) {
    return absl::InternalError(absl::StrCat("stored ", order.size(), " of ", t.events.size()));
  }
  return order;
}

// The entries the store would be given for `order`, with their records.
struct Entries {
  std::vector<ingestor::KafkaRecord> records;
  std::vector<ingestor::EventEntry> entries;
};

Entries MakeEntries(const Traffic& t, const std::vector<Placement>& order) {
  Entries e;
  e.records.resize(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const simulator::SimulatedEvent& s = t.events[order[i].event];
    e.records[i].topic = s.topic;
    e.records[i].partition = order[i].partition;
    e.records[i].offset = order[i].offset;
    e.entries.push_back({&e.records[i], &s.event, ContentHash(s.event)});
  }
  return e;
}

// The COPY payloads of exactly the rows the ingestor writes for `order` (same positions,
// provenance and hashes), in batches of kBatch.
std::vector<std::string> CopyPayloads(const Traffic& t, const std::vector<Placement>& order) {
  const Entries e = MakeEntries(t, order);
  std::vector<std::string> payloads;
  Sha256Digest chain{};
  const int64_t now = absl::ToUnixMicros(absl::Now());
  pg::BinaryCopyWriter w;
  for (size_t i = 0; i < e.entries.size(); ++i) {
    const ingestor::EventEntry& entry = e.entries[i];
    const int64_t position = static_cast<int64_t>(i) + 1;
    const Sha256Digest leaf =
        RecordLeafHash(position, now, entry.record->topic, entry.record->partition,
                       entry.record->offset, entry.content_hash);
    chain = ChainHash(chain, leaf);
    ingestor::AppendEventCopyRow(entry, position, now, leaf, chain, &w);
    if (w.rows() == kBatch || i + 1 == e.entries.size()) {
      payloads.push_back(w.Finish());
      w = pg::BinaryCopyWriter();
    }
  }
  return payloads;
}

// Raw COPY, one transaction per batch, as the superuser with the append triggers off: what
// PostgreSQL itself can do with these rows, table and indexes.
absl::StatusOr<double> RawCopy(testing::PostgresServer& pg, const std::string& db,
                               const std::vector<std::string>& payloads, int64_t rows,
                               bool triggers = false) {
  absl::StatusOr<pg::ConnPtr> c = pg::Connect(pg.Url(db));
  if (!c.ok()) return c.status();
  if (auto r = pg::Exec(c->get(), "ALTER TABLE audit.events DISABLE TRIGGER USER");
      !triggers && !r.ok()) {
    return r.status();
  }
  if (triggers) {
    if (auto r = pg::Exec(c->get(), "ALTER TABLE audit.events ENABLE TRIGGER USER"); !r.ok()) {
      return r.status();
    }
  }
  const absl::Time start = absl::Now();
  for (const std::string& p : payloads) {
    if (auto r = pg::Exec(c->get(), "BEGIN"); !r.ok()) return r.status();
    if (absl::Status s = pg::CopyIn(c->get(), ingestor::kCopyEventsSql, p); !s.ok()) return s;
    if (auto r = pg::Exec(c->get(), "COMMIT"); !r.ok()) return r.status();
  }
  return static_cast<double>(rows) / absl::ToDoubleSeconds(absl::Now() - start);
}

// Where the store's time went, in microseconds per event.
std::string StorePhases(const ingestor::PgEventStore& store, size_t events) {
  using P = ingestor::PgEventStore::Phase;
  const auto us = [&](P p) {
    return absl::StrFormat(
        "%.1f", absl::ToDoubleMicroseconds(store.phase_time(p)) / static_cast<double>(events));
  };
  return absl::StrCat("lock ", us(P::kLock), ", lookup ", us(P::kLookup), ", hashing ",
                      us(P::kHashing), ", encode ", us(P::kEncode), ", copy ", us(P::kCopy),
                      ", commit ", us(P::kCommit));
}

// The store alone: PgEventStore::Append over already decoded batches of kBatch, with no
// Kafka and no decoding competing for the cores (between raw COPY and end to end: what the
// store's own work costs, hashing included).
absl::StatusOr<double> StoreAlone(testing::PostgresServer& pg, const std::string& db,
                                  const Traffic& t, const std::vector<Placement>& order) {
  const Entries e = MakeEntries(t, order);
  std::vector<ingestor::AppendBatch> batches;
  for (size_t i = 0; i < e.entries.size(); ++i) {
    if (i % kBatch == 0) batches.emplace_back();
    batches.back().events.push_back(e.entries[i]);
  }
  ingestor::PgEventStore store({.url = pg.Url(db, "ingestor")});
  if (absl::Status s = store.Ping(); !s.ok()) return s;
  const absl::Time start = absl::Now();
  for (const ingestor::AppendBatch& b : batches) {
    absl::StatusOr<ingestor::AppendResult> r = store.Append(b);
    if (!r.ok()) return r.status();
  }
  const double rate =
      static_cast<double>(e.entries.size()) / absl::ToDoubleSeconds(absl::Now() - start);
  Say(absl::StrCat("store alone, us/event: ", StorePhases(store, e.entries.size())));
  return rate;
}

// Swallows batches: the consumer side alone.
class NullSink final : public ingestor::EventSink {
 public:
  absl::StatusOr<ingestor::AppendResult> Append(const ingestor::AppendBatch& b) override {
    ingestor::AppendResult r;
    r.appended = static_cast<int64_t>(b.events.size());
    return r;
  }
};

struct IngestRun {
  double rate = 0;           // events/s from the first stored batch to the last
  double hashing_share = 0;  // of that time
  std::string breakdown;     // microseconds per event, by phase
};

// Consumes the whole topic set in a new consumer group into `sink`, the real ingest loop.
absl::StatusOr<IngestRun> Consume(const std::string& brokers, const std::string& group, int64_t n,
                                  ingestor::EventSink& sink, const ingestor::PgEventStore* store) {
  ingestor::KafkaSource::Options so;
  so.brokers = brokers;
  so.group_id = group;
  so.session_timeout = absl::Seconds(6);
  absl::StatusOr<std::unique_ptr<ingestor::KafkaSource>> source = ingestor::KafkaSource::Create(so);
  if (!source.ok()) return source.status();
  ingestor::IngestorOptions io;
  io.stats_interval = absl::Hours(1);
  ingestor::Ingestor ingestor(**source, sink, io);
  absl::Notification stop;
  std::thread loop([&] { (void)ingestor.Run(stop); });
  absl::Time first = absl::InfinitePast();
  int64_t at_first = 0;
  const absl::Time give_up = absl::Now() + absl::Minutes(10);
  while (absl::Now() < give_up) {
    const int64_t stored = ingestor.stats().events_stored.load();
    if (stored > 0 && first == absl::InfinitePast()) {
      first = absl::Now();
      at_first = stored;
    }
    if (stored >= n) break;
    absl::SleepFor(absl::Milliseconds(2));  // sampling a counter, not waiting for it
  }
  const absl::Time last = absl::Now();
  const int64_t stored = ingestor.stats().events_stored.load();
  stop.Notify();
  loop.join();
  (void)(*source)->Close();
  if (stored < n) return absl::DeadlineExceededError(absl::StrCat("stored ", stored, " of ", n));
  IngestRun r;
  r.rate = static_cast<double>(n - at_first) / absl::ToDoubleSeconds(last - first);
  const double events = static_cast<double>(n);
  const auto us = [&](double nanos) { return absl::StrFormat("%.1f", nanos / 1000 / events); };
  const ingestor::IngestorStats& st = ingestor.stats();
  r.breakdown = absl::StrCat(
      st.batches.load(), " batches; poll ", us(st.poll_nanos.load()), ", decode ",
      us(st.decode_nanos.load()), ", store ", us(st.store_nanos.load()), ", offsets ",
      us(st.offset_commit_nanos.load()), ", poll ahead ", us(st.poll_ahead_nanos.load()),
      ", decode wait ", us(st.decode_wait_nanos.load()), ", release ", us(st.release_nanos.load()));
  if (store != nullptr) {
    r.hashing_share =
        absl::ToDoubleSeconds(store->hashing_time()) / absl::ToDoubleSeconds(last - first);
    absl::StrAppend(&r.breakdown, " (", StorePhases(*store, static_cast<size_t>(n)), ")");
  }
  return r;
}

// `consumer_only`: just the consumer-alone runs (for profiling the Kafka side).
absl::Status MeasureIngest(testing::PostgresServer& pg, int64_t n, int runs, bool consumer_only,
                           Results* out, std::string* replay_db) {
  Say(absl::StrCat("ingest: generating ", n, " simulated events"));
  const Traffic traffic = MakeTraffic(n, 7);
  absl::StatusOr<std::unique_ptr<devbroker::MockKafkaCluster>> cluster =
      devbroker::MockKafkaCluster::Start({.brokers = 3});
  if (!cluster.ok()) return cluster.status();
  for (const std::string& topic : simulator::SimulatorTopics()) {
    if (absl::Status s = (*cluster)->CreateTopic(topic, 6); !s.ok()) return s;
  }
  const std::string brokers = (*cluster)->bootstrap_servers();
  Say("ingest: producing into the mock cluster");
  if (absl::Status s = Produce(brokers, traffic); !s.ok()) return s;
  const std::vector<std::string> generated_payloads =
      CopyPayloads(traffic, GeneratedOrder(traffic));
  double bytes = 0;
  for (const auto& p : generated_payloads) bytes += static_cast<double>(p.size());

  const SigningKey key = SigningKey::Generate();
  std::vector<double> copy, copy_generated, copy_triggers, store_alone, e2e, e2e_signed, consumer,
      hashing;
  std::string breakdown;
  // Every measurement that writes starts right after a checkpoint, so none of them inherits
  // the previous one's dirty buffers or pays more full-page writes than another.
  const auto checkpoint = [&] { return pg.Query("postgres", "CHECKPOINT").status(); };
  // A baseline (raw COPY or the store alone) into a new database.
  const auto baseline = [&](const std::string& what, const std::string& db,
                            const std::function<absl::StatusOr<double>()>& measure,
                            std::vector<double>* into) -> absl::Status {
    if (absl::Status s = pg.CreateDatabase(db).status(); !s.ok()) return s;
    if (absl::Status s = checkpoint(); !s.ok()) return s;
    absl::StatusOr<double> rate = measure();
    (void)pg.Query("postgres", absl::StrCat("DROP DATABASE ", db));
    if (!rate.ok()) return rate.status();
    Say(absl::StrCat(what, ": ", static_cast<int64_t>(*rate), " ev/s"));
    into->push_back(*rate);
    return absl::OkStatus();
  };
  if (!consumer_only) {
    // A warm-up run, not counted: the process's first end-to-end run measured 0.59-0.85 of raw
    // COPY where the runs after it measured 0.80-0.95 (PERFORMANCE.md, "Method").
    Say("ingest: warm-up run (not counted)");
    if (absl::Status s = pg.CreateDatabase("warmup").status(); !s.ok()) return s;
    {
      ingestor::PgEventStore store({.url = pg.Url("warmup", "ingestor")});
      absl::StatusOr<IngestRun> r = Consume(brokers, "bench-warmup", n, store, &store);
      if (!r.ok()) return r.status();
    }
    (void)pg.Query("postgres", "DROP DATABASE warmup");
  }
  for (int run = 0; run < runs; ++run) {
    Say(absl::StrCat("ingest: run ", run + 1, " of ", runs));
    if (consumer_only) {
      NullSink null;
      absl::StatusOr<IngestRun> r =
          Consume(brokers, absl::StrCat("bench-null", run), n, null, nullptr);
      if (!r.ok()) return r.status();
      consumer.push_back(r->rate);
      Say(absl::StrCat("consumer alone: ", static_cast<int64_t>(r->rate),
                       " ev/s; us/event: ", r->breakdown));
      continue;
    }
    std::vector<Placement> order;
    // The two end-to-end runs alternate which goes first: the first of a round measured 3-6 %
    // slower whichever configuration it was (PERFORMANCE.md), and neither should carry that.
    const bool signed_first = run % 2 == 1;
    for (bool signing : {signed_first, !signed_first}) {
      const std::string db = absl::StrCat(signing ? "signed" : "ingest", run);
      if (absl::Status s = pg.CreateDatabase(db).status(); !s.ok()) return s;
      // Wired as in the ingestor: the store hands the checkpointer the leaves it commits.
      ingestor::LeafFeed feed;
      ingestor::PgEventStore store(
          {.url = pg.Url(db, "ingestor"), .leaf_feed = signing ? &feed : nullptr});
      absl::Notification stop_signing;
      std::thread signer;
      // The default interval is 10 s; every second is harsher (ten times the rounds).
      ingestor::Checkpointer checkpointer({.url = pg.Url(db, "ingestor"),
                                           .key = key,
                                           .interval = absl::Seconds(1),
                                           .leaf_feed = &feed});
      if (absl::Status s = checkpoint(); !s.ok()) return s;
      if (signing) signer = std::thread([&] { checkpointer.Run(stop_signing); });
      absl::StatusOr<IngestRun> r = Consume(brokers, absl::StrCat("bench-", db), n, store, &store);
      stop_signing.Notify();
      if (signer.joinable()) signer.join();
      if (!r.ok()) return r.status();
      (signing ? e2e_signed : e2e).push_back(r->rate);
      if (signing) {
        Say(absl::StrCat("ingest signed: ", static_cast<int64_t>(r->rate),
                         " ev/s; checkpointer busy ", absl::FormatDuration(checkpointer.busy()),
                         ", leaves fed ", checkpointer.leaves_fed(), ", read back ",
                         checkpointer.leaves_read()));
      } else {
        hashing.push_back(r->hashing_share);
        breakdown = r->breakdown;
        Say(absl::StrCat("ingest: ", static_cast<int64_t>(r->rate),
                         " ev/s; us/event: ", r->breakdown));
        absl::StatusOr<std::vector<Placement>> stored = StoredOrder(pg, db, traffic);
        if (!stored.ok()) return stored.status();
        order = *std::move(stored);
      }
      const bool keep = signing && run + 1 == runs;
      if (keep) {
        *replay_db = db;
      } else {
        (void)pg.Query("postgres", absl::StrCat("DROP DATABASE ", db));
      }
      if (signing) continue;
      // The baselines: the same rows at the same positions as this run stored them.
      const std::vector<std::string> payloads = CopyPayloads(traffic, order);
      const std::string base_db = absl::StrCat("copy", run);
      absl::Status s = baseline(
          "raw COPY", base_db, [&] { return RawCopy(pg, base_db, payloads, n); }, &copy);
      if (s.ok()) {
        s = baseline(
            "raw COPY with triggers", base_db,
            [&] { return RawCopy(pg, base_db, payloads, n, /*triggers=*/true); }, &copy_triggers);
      }
      if (s.ok()) {
        s = baseline(
            "store alone", base_db, [&] { return StoreAlone(pg, base_db, traffic, order); },
            &store_alone);
      }
      if (s.ok()) {
        s = baseline(
            "raw COPY in generated order", base_db,
            [&] { return RawCopy(pg, base_db, generated_payloads, n); }, &copy_generated);
      }
      if (!s.ok()) return s;
    }
    NullSink null;
    absl::StatusOr<IngestRun> r =
        Consume(brokers, absl::StrCat("bench-null", run), n, null, nullptr);
    if (!r.ok()) return r.status();
    consumer.push_back(r->rate);
  }
  if (consumer_only) {
    out->Add({"consumer alone (database stubbed)", Rate(Median(consumer)), "", "", ""});
    return absl::OkStatus();
  }
  const double copy_rate = Median(copy), e2e_rate = Median(e2e);
  out->Add({"raw COPY of the same rows (baseline)", Rate(copy_rate), "", "",
            absl::StrFormat("%.0f bytes/row", bytes / static_cast<double>(n))});
  out->Add({"raw COPY, rows in generated order", Rate(Median(copy_generated)), Rate(copy_rate),
            Ratio(PairedRatio(copy_generated, copy)), "(information)"});
  out->Add({"raw COPY with the append-only and chain triggers", Rate(Median(copy_triggers)),
            Rate(copy_rate), Ratio(PairedRatio(copy_triggers, copy)), "(information)"});
  out->Add({"the store alone (hashing, encoding, lock; no Kafka)", Rate(Median(store_alone)),
            Rate(copy_rate), Ratio(PairedRatio(store_alone, copy)), "(information)"});
  out->Add({"ingest end to end, checkpoints every 1 s", Rate(Median(e2e_signed)), Rate(copy_rate),
            Ratio(PairedRatio(e2e_signed, copy)), ">= 0.85"});
  out->Add({"ingest end to end, no checkpointer", Rate(e2e_rate), Rate(copy_rate),
            Ratio(PairedRatio(e2e, copy)), ">= 0.85"});
  out->Add({"checkpointing: signed / unsigned throughput", Rate(Median(e2e_signed)), Rate(e2e_rate),
            Ratio(PairedRatio(e2e_signed, e2e)), ">= 0.95"});
  out->Add({"hashing: share of the ingest thread's time",
            absl::StrFormat("%.2f%%", 100 * Median(hashing)), "", "",
            "<= 5% (an upper bound on its throughput cost)"});
  out->Add({"  us/event (last run): " + breakdown, "", "", "", ""});
  out->Add({"consumer alone (database stubbed)", Rate(Median(consumer)), Rate(e2e_rate),
            Ratio(PairedRatio(consumer, e2e)), ">= 4"});
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Replay: one client, global order, versus COPY (SELECT ...) TO STDOUT of the same rows.

// `binary`: the same columns in the same format the query server reads them in; otherwise
// text, COPY's default (which renders timestamps, integers and hashes as text).
absl::StatusOr<double> CopyOut(const std::string& url, bool binary, int64_t* rows) {
  absl::StatusOr<pg::ConnPtr> c = pg::Connect(url);
  if (!c.ok()) return c.status();
  const std::string sql =
      absl::StrCat("COPY (SELECT ", kStoredEventColumns, " FROM audit.events ORDER BY position)",
                   " TO STDOUT", binary ? " (FORMAT binary)" : "");
  const absl::Time start = absl::Now();
  PGresult* r = PQexec(c->get(), sql.c_str());
  if (PQresultStatus(r) != PGRES_COPY_OUT) {
    PQclear(r);
    return absl::InternalError(PQerrorMessage(c->get()));
  }
  PQclear(r);
  int64_t n = 0;
  char* buf = nullptr;
  int len;
  while ((len = PQgetCopyData(c->get(), &buf, 0)) > 0) {
    if (!binary || len != 2) ++n;  // one row per piece; 2 bytes: the binary trailer (-1)
    PQfreemem(buf);
  }
  while ((r = PQgetResult(c->get())) != nullptr) PQclear(r);
  *rows = n;
  return static_cast<double>(n) / absl::ToDoubleSeconds(absl::Now() - start);
}

absl::Status MeasureReplay(testing::PostgresServer& pg, const std::string& db, int runs,
                           Results* out) {
  absl::StatusOr<std::unique_ptr<query::QueryServer>> server = query::QueryServer::Start(
      {.listen = "127.0.0.1:0", .pg_url = pg.Url(db, "reader"), .threads = 2});
  if (!server.ok()) return server.status();
  auto stub = v1::AuditService::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  std::vector<double> copy, copy_text, replay500, replay5000;
  int64_t rows = 0;
  for (int run = 0; run < runs; ++run) {
    Say(absl::StrCat("replay: run ", run + 1, " of ", runs));
    absl::StatusOr<double> c = CopyOut(pg.Url(db, "reader"), /*binary=*/true, &rows);
    if (!c.ok()) return c.status();
    copy.push_back(*c);
    int64_t text_rows = 0;
    absl::StatusOr<double> t = CopyOut(pg.Url(db, "reader"), /*binary=*/false, &text_rows);
    if (!t.ok()) return t.status();
    copy_text.push_back(*t);
    for (int frame : {500, 5000}) {
      grpc::ClientContext ctx;
      v1::ReplayEventsRequest r;
      r.set_max_events_per_frame(frame);
      const absl::Time start = absl::Now();
      auto reader = stub->ReplayEvents(&ctx, r);
      int64_t n = 0;
      // Each frame is parsed into an arena that starts in a reused buffer, as a consumer
      // reading at full speed would (parsing into one reused message frees every event's
      // strings on each Read, which costs more than the parse).
      std::vector<char> block(4 << 20);
      while (true) {
        google::protobuf::ArenaOptions arena_options;
        arena_options.initial_block = block.data();
        arena_options.initial_block_size = block.size();
        google::protobuf::Arena arena(arena_options);
        auto* f = google::protobuf::Arena::CreateMessage<v1::ReplayEventsResponse>(&arena);
        if (!reader->Read(f)) break;
        n += f->events_size();
      }
      grpc::Status s = reader->Finish();
      if (!s.ok() || n != rows) {
        return absl::InternalError(absl::StrCat("replay: ", s.error_message(), " ", n, "/", rows));
      }
      (frame == 500 ? replay500 : replay5000)
          .push_back(static_cast<double>(n) / absl::ToDoubleSeconds(absl::Now() - start));
    }
  }
  const double base = Median(copy);
  out->Add({"COPY (SELECT ...) TO STDOUT binary (baseline)", Rate(base), "", "",
            absl::StrCat(rows, " rows")});
  // The target's baseline is `COPY (SELECT ...) TO STDOUT` as written: COPY's default (text)
  // format. Binary COPY, the format the server reads in, is reported beside it as the
  // stricter one.
  out->Add({"replay, 500 events/frame (default)", Rate(Median(replay500)), Rate(base),
            Ratio(PairedRatio(replay500, copy)), "(stricter baseline)"});
  out->Add({"replay, 5000 events/frame", Rate(Median(replay5000)), Rate(base),
            Ratio(PairedRatio(replay5000, copy)), "(stricter baseline)"});
  const double text = Median(copy_text);
  out->Add({"COPY (SELECT ...) TO STDOUT text (baseline)", Rate(text), "", "", "COPY's default"});
  out->Add({"replay, 500 events/frame, versus text COPY", Rate(Median(replay500)), Rate(text),
            Ratio(PairedRatio(replay500, copy_text)), ">= 0.70"});
  out->Add({"replay, 5000 events/frame, versus text COPY", Rate(Median(replay5000)), Rate(text),
            Ratio(PairedRatio(replay5000, copy_text)), ">= 0.70"});
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Queries over a large store: one subject's history, deep keyset pagination.

// Synthetic rows shaped like the simulator's (10 events per order, ~460-byte JSON data,
// recorded_at increasing with position), generated inside PostgreSQL: loading tens of millions
// of rows through the ingestor would take hours and measure nothing new.
absl::Status LoadHistory(testing::PostgresServer& pg, const std::string& db, int64_t n) {
  Say(absl::StrCat("history: loading ", n, " events"));
  absl::StatusOr<pg::ConnPtr> c = pg::Connect(pg.Url(db));
  if (!c.ok()) return c.status();
  pg::ConnectOptions none;
  const std::string sql = absl::StrCat(
      "SET statement_timeout = 0; ALTER TABLE audit.events DISABLE TRIGGER USER; "
      "INSERT INTO audit.events (position, event_id, source, type, spec_version, subject, "
      "occurred_at, recorded_at, data_content_type, data, correlation_id, causation_id, actor, "
      "tenant, sequence, kafka_topic, kafka_partition, kafka_offset, content_hash, leaf_hash, "
      "chain_hash) "
      "SELECT i, 'evt-' || lpad(i::text, 12, '0'), '/services/orders', "
      "(ARRAY['com.acme.order.created','com.acme.payment.authorized','com.acme.payment.captured',"
      "'com.acme.inventory.reserved','com.acme.shipment.shipped','com.acme.shipment.delivered'])"
      "[1 + i % 6], '1.0', 'order-' || lpad((i / 10)::text, 9, '0'), "
      "timestamptz '2026-01-01' + i * interval '10 ms', "
      "timestamptz '2026-01-01' + i * interval '10 ms' + interval '1 s', 'application/json', "
      "jsonb_build_object('order_id', 'order-' || (i / 10), 'customer', 'cust-' || (i % 9973), "
      "'currency', 'EUR', 'total', round((i % 100000) / 100.0, 2), 'lines', "
      "jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (i % 5000), 'qty', 1 + i % 3, "
      "'price', 19.99), jsonb_build_object('sku', 'SKU-' || (i % 777), 'qty', 2, 'price', "
      "5.49)), 'shipping', jsonb_build_object('carrier', 'DHL', 'address', 'Main Street ' || "
      "(i % 300) || ', 10115 Berlin'), 'channel', 'web'), "
      "'corr-' || (i / 10), 'evt-' || lpad((i - 1)::text, 12, '0'), 'user:' || (i % 1000), "
      "'acme', i % 10, 'orders.events', (i % 6)::int, i, sha256(i::text::bytea), "
      "sha256(('l' || i)::bytea), sha256(('c' || i)::bytea) "
      "FROM generate_series(1, ",
      n,
      ") AS i; "
      "UPDATE audit.append_head SET position = ",
      n, "; ALTER TABLE audit.events ENABLE TRIGGER USER; ");
  (void)none;
  if (auto r = pg::Exec(c->get(), sql.c_str()); !r.ok()) return r.status();
  if (auto r = pg::Exec(c->get(), "VACUUM ANALYZE audit.events"); !r.ok()) return r.status();
  return absl::OkStatus();
}

absl::Status MeasureQueries(testing::PostgresServer& pg, int64_t n, int samples, bool history,
                            bool pagination, Results* out) {
  const std::string db = "history";
  if (absl::Status s = pg.CreateDatabase(db).status(); !s.ok()) return s;
  if (absl::Status s = LoadHistory(pg, db, n); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<query::QueryServer>> server = query::QueryServer::Start(
      {.listen = "127.0.0.1:0", .pg_url = pg.Url(db, "reader"), .threads = 2});
  if (!server.ok()) return server.status();
  auto stub = v1::AuditService::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  absl::StatusOr<pg::ConnPtr> direct = pg::Connect(pg.Url(db, "reader"));
  if (!direct.ok()) return direct.status();
  std::mt19937_64 rng(11);
  const int64_t orders = n / 10;

  if (history) {
    Say("history: one subject's events, gRPC versus the prepared query through libpq");
    const std::string sql = absl::StrCat("SELECT ", kStoredEventColumns,
                                         " FROM audit.events WHERE subject = $1 ORDER BY "
                                         "position LIMIT 1001");
    PGresult* prep = PQprepare(direct->get(), "history", sql.c_str(), 1, nullptr);
    PQclear(prep);
    std::vector<double> grpc_ms, libpq_ms;
    for (int i = 0; i < samples + samples / 10; ++i) {
      const std::string subject =
          absl::StrFormat("order-%09d", static_cast<int64_t>(rng() % std::max<int64_t>(orders, 1)));
      const bool warmup = i < samples / 10;
      {
        const char* params[] = {subject.c_str()};
        const absl::Time t = absl::Now();
        PGresult* r = PQexecPrepared(direct->get(), "history", 1, params, nullptr, nullptr, 1);
        const double ms = absl::ToDoubleMilliseconds(absl::Now() - t);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0) {
          PQclear(r);
          return absl::InternalError("history query returned nothing");
        }
        PQclear(r);
        if (!warmup) libpq_ms.push_back(ms);
      }
      {
        grpc::ClientContext ctx;
        v1::GetSubjectHistoryRequest r;
        r.set_subject(subject);
        v1::GetSubjectHistoryResponse resp;
        const absl::Time t = absl::Now();
        grpc::Status s = stub->GetSubjectHistory(&ctx, r, &resp);
        const double ms = absl::ToDoubleMilliseconds(absl::Now() - t);
        if (!s.ok() || resp.events_size() == 0) return absl::InternalError(s.error_message());
        if (!warmup) grpc_ms.push_back(ms);
      }
    }
    out->Add({"history over gRPC, p50", Ms(Percentile(grpc_ms, 0.5)), Ms(Percentile(libpq_ms, 0.5)),
              absl::StrFormat("+%.3f", Percentile(grpc_ms, 0.5) - Percentile(libpq_ms, 0.5)),
              "p50 within +0.3 ms of libpq"});
    out->Add({"history over gRPC, p99", Ms(Percentile(grpc_ms, 0.99)),
              Ms(Percentile(libpq_ms, 0.99)), "", "p99 <= 5 ms"});
  }

  if (pagination) {
    Say("pagination: the first page versus a page deep into a time range");
    // The middle half of the log, by recorded time.
    v1::ListEventsRequest r;
    r.set_page_size(100);
    const int64_t from_ms = 10 * (n / 4), to_ms = 10 * (3 * n / 4);
    r.mutable_filter()->mutable_recorded()->mutable_start()->set_seconds(1767225600 + 1 +
                                                                         from_ms / 1000);
    r.mutable_filter()->mutable_recorded()->mutable_end()->set_seconds(1767225600 + 1 +
                                                                       to_ms / 1000);
    const auto call = [&](const std::string& token, v1::ListEventsResponse* resp) {
      grpc::ClientContext ctx;
      v1::ListEventsRequest page = r;
      page.set_page_token(token);
      const absl::Time t = absl::Now();
      grpc::Status s = stub->ListEvents(&ctx, page, resp);
      if (!s.ok()) Say(s.error_message());
      return absl::ToDoubleMilliseconds(absl::Now() - t);
    };
    // Walk deep: 1000 pages (100,000 events) into the range, or as far as it goes.
    std::string token;
    const int depth = static_cast<int>(std::min<int64_t>(1000, n / 2 / 100 - 1));
    for (int i = 0; i < depth; ++i) {
      v1::ListEventsResponse resp;
      call(token, &resp);
      if (resp.next_page_token().empty()) break;
      token = resp.next_page_token();
    }
    std::vector<double> first_ms, deep_ms;
    for (int i = 0; i < samples / 4 + 10; ++i) {
      v1::ListEventsResponse a, b;
      const double f = call("", &a), d = call(token, &b);
      if (i >= 10) {
        first_ms.push_back(f);
        deep_ms.push_back(d);
      }
    }
    out->Add({absl::StrCat("page ", depth + 1, " of a time range, p50"), Ms(Median(deep_ms)),
              Ms(Median(first_ms)), Ratio(Median(deep_ms) / Median(first_ms)),
              "<= 2x the first page"});
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  SetMinLogLevel(LogLevel::kWarning);
  const bool smoke = absl::GetFlag(FLAGS_smoke);
  const int64_t events = smoke ? 3000 : absl::GetFlag(FLAGS_events);
  const int64_t history_events = smoke ? 20000 : absl::GetFlag(FLAGS_history_events);
  const int runs = smoke ? 1 : absl::GetFlag(FLAGS_runs);
  const int samples = smoke ? 50 : absl::GetFlag(FLAGS_samples);
  const std::string only = absl::GetFlag(FLAGS_only);
  const auto want = [&](const char* what) {
    if (only.empty()) return true;
    for (absl::string_view w : absl::StrSplit(only, ',')) {
      if (w == what) return true;
    }
    return false;
  };
  testing::PostgresServerOptions po;
  po.fsync = true;  // durability as shipped
  po.settings = {"shared_buffers=1GB", "max_wal_size=4GB", "checkpoint_timeout=15min"};
  absl::StatusOr<std::unique_ptr<testing::PostgresServer>> pg = testing::PostgresServer::Start(po);
  if (!pg.ok()) {
    std::fprintf(stderr, "postgres: %s\n", pg.status().ToString().c_str());
    return 1;
  }
  Results results;
  std::string replay_db;
  absl::Status s;
  if (s.ok() && (want("ingest") || want("replay") || want("consumer"))) {
    s = MeasureIngest(**pg, events, runs, !want("ingest") && !want("replay"), &results, &replay_db);
  }
  if (s.ok() && want("replay")) s = MeasureReplay(**pg, replay_db, runs, &results);
  if (s.ok() && (want("history") || want("pagination"))) {
    s = MeasureQueries(**pg, history_events, samples, want("history"), want("pagination"),
                       &results);
  }
  results.Print();
  if (const std::string path = absl::GetFlag(FLAGS_json_out); !path.empty()) {
    std::ofstream(path) << results.Json() << "\n";
  }
  if (!s.ok()) {
    std::fprintf(stderr, "benchmark failed: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace audit::bench

int main(int argc, char** argv) { return audit::bench::Main(argc, argv); }
