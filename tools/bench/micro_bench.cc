// Micro-benchmarks of the per-event hot path: decoding (each encoding), the content hash,
// tamper-evidence hashing, and the binary COPY encoding. Events come from the simulator, so
// sizes and shapes are realistic (~460-byte JSON data).
//
//   bazel run -c opt //tools/bench:micro_bench
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "audit/canonical.h"
#include "audit/cloudevents.h"
#include "audit/envelope.h"
#include "audit/json.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "services/common/copy_binary.h"
#include "services/ingestor/decoder.h"
#include "services/ingestor/pg_event_store.h"
#include "tools/simulator/order_simulator.h"

namespace audit {
namespace {

// A few hundred simulated events and their three encodings.
struct Corpus {
  std::vector<v1::Event> events;
  std::vector<std::string> protobuf, json;
  std::vector<std::pair<Headers, std::string>> binary;

  Corpus() {
    simulator::SimulatorOptions o;
    o.redelivery_rate = 0;
    simulator::OrderSimulator sim(o);
    for (auto& s : sim.Generate(512)) {
      NormalizeEvent(&s.event).IgnoreError();
      events.push_back(s.event);
      protobuf.push_back(s.event.SerializeAsString());
      json.push_back(ToStructuredJson(s.event));
      Headers h;
      std::string v;
      ToBinaryMode(s.event, &h, &v);
      binary.emplace_back(std::move(h), std::move(v));
    }
  }
};

const Corpus& TheCorpus() {
  static const Corpus* c = new Corpus();
  return *c;
}

ingestor::Decoded DecodeOne(absl::string_view content_type, const std::string& value,
                            const Headers* headers) {
  ingestor::KafkaRecord r;
  r.topic = "orders.events";
  std::vector<std::string> storage = {"content-type", std::string(content_type)};
  if (headers != nullptr) {
    for (const auto& [k, v] : *headers) r.headers.push_back({k, v});
  } else {
    r.headers.push_back({storage[0], storage[1]});
  }
  r.value = value;
  return ingestor::Decode(r, {});
}

void BM_DecodeProtobuf(benchmark::State& state) {
  const Corpus& c = TheCorpus();
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& v = c.protobuf[i++ % c.protobuf.size()];
    benchmark::DoNotOptimize(DecodeOne("application/protobuf", v, nullptr));
    bytes += v.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_DecodeProtobuf);

// What the ingestor does: records decoded into a recycled Decoded (the event's buffers are
// reused), without building the record for each call.
void BM_DecodeProtobufReused(benchmark::State& state) {
  const Corpus& c = TheCorpus();
  static const std::string kKey = "content-type", kType = "application/protobuf";
  std::vector<ingestor::KafkaRecord> records(c.protobuf.size());
  for (size_t k = 0; k < records.size(); ++k) {
    records[k].topic = "orders.events";
    records[k].headers.push_back({kKey, kType});
    records[k].value = c.protobuf[k];
  }
  ingestor::Decoded out;
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const ingestor::KafkaRecord& r = records[i++ % records.size()];
    ingestor::DecodeInto(r, {}, &out);
    benchmark::DoNotOptimize(out.content_hash);
    bytes += r.value->size();
  }
  if (!out.status.ok()) state.SkipWithError(out.status.ToString().c_str());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_DecodeProtobufReused);

void BM_DecodeStructuredJson(benchmark::State& state) {
  const Corpus& c = TheCorpus();
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& v = c.json[i++ % c.json.size()];
    benchmark::DoNotOptimize(DecodeOne(kStructuredJsonContentType, v, nullptr));
    bytes += v.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_DecodeStructuredJson);

void BM_DecodeBinaryMode(benchmark::State& state) {
  const Corpus& c = TheCorpus();
  size_t i = 0;
  for (auto _ : state) {
    const auto& [h, v] = c.binary[i++ % c.binary.size()];
    benchmark::DoNotOptimize(DecodeOne("", v, &h));
  }
}
BENCHMARK(BM_DecodeBinaryMode);

void BM_ContentHash(benchmark::State& state) {
  const Corpus& c = TheCorpus();
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(ContentHash(c.events[i++ % c.events.size()]));
}
BENCHMARK(BM_ContentHash);

void BM_CanonicalJson(benchmark::State& state) {
  const Corpus& c = TheCorpus();
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(CanonicalizeJson(c.events[i++ % c.events.size()].text_data()));
  }
}
BENCHMARK(BM_CanonicalJson);

// Tamper evidence per event: the leaf over the record, the chain, the Merkle frontier.
void BM_LeafChainAndFrontier(benchmark::State& state) {
  const Corpus& c = TheCorpus();
  std::vector<Sha256Digest> content;
  for (const auto& e : c.events) content.push_back(ContentHash(e));
  Sha256Digest chain{};
  merkle::Frontier frontier;
  std::vector<merkle::Frontier::Node> completed;
  int64_t position = 0;
  for (auto _ : state) {
    ++position;
    const Sha256Digest leaf = RecordLeafHash(position, 1767225600000000 + position, "orders.events",
                                             3, position, content[position % content.size()]);
    chain = ChainHash(chain, leaf);
    frontier.Append(leaf, 8, &completed);
    if (completed.size() > 1024) completed.clear();
  }
  benchmark::DoNotOptimize(chain);
}
BENCHMARK(BM_LeafChainAndFrontier);

// One event row of the store's binary COPY.
void BM_CopyRow(benchmark::State& state) {
  const Corpus& c = TheCorpus();
  std::vector<ingestor::KafkaRecord> records(c.events.size());
  std::vector<ingestor::EventEntry> entries;
  for (size_t i = 0; i < c.events.size(); ++i) {
    records[i].topic = "orders.events";
    records[i].offset = static_cast<int64_t>(i);
    entries.push_back({&records[i], &c.events[i], ContentHash(c.events[i])});
  }
  const Sha256Digest h{};
  size_t i = 0;
  pg::BinaryCopyWriter w;
  for (auto _ : state) {
    ingestor::AppendEventCopyRow(entries[i % entries.size()], static_cast<int64_t>(i) + 1,
                                 1767225600000000, h, h, &w);
    if (++i % 2000 == 0) {
      benchmark::DoNotOptimize(w.Finish());
      w = pg::BinaryCopyWriter();
    }
  }
}
BENCHMARK(BM_CopyRow);

}  // namespace
}  // namespace audit

BENCHMARK_MAIN();
