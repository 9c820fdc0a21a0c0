// End to end through the ingestor: simulated order traffic in all three encodings, published
// over the Kafka protocol to the mock cluster, consumed by a real ingestor into a private
// PostgreSQL, then checked row by row.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/canonical.h"
#include "audit/envelope.h"
#include "audit/publisher.h"
#include "audit/test_events.h"
#include "gtest/gtest.h"
#include "services/common/event_rows.h"
#include "services/common/kafka_lag.h"
#include "services/common/pg.h"
#include "tests/fixtures/ingestor_runner.h"
#include "tests/fixtures/poison.h"
#include "tests/fixtures/postgres_test.h"
#include "tests/fixtures/wait.h"
#include "tools/devbroker/mock_cluster.h"
#include "tools/simulator/order_simulator.h"

namespace audit {
namespace {

using ::audit::devbroker::MockKafkaCluster;
using ::audit::simulator::OrderSimulator;
using ::audit::simulator::SimulatedEvent;
using ::audit::simulator::SimulatorOptions;
using ::audit::simulator::SimulatorTopics;
using ::audit::testing::IngestorRunner;
using ::audit::testing::IngestorRunnerOptions;
using ::audit::testing::PoisonCatalog;
using ::audit::testing::PoisonMessage;
using ::audit::testing::PostgresServer;
using ::audit::testing::WaitFor;

constexpr size_t kMaxMessageBytes = 64 * 1024;
constexpr WireEncoding kEncodings[] = {WireEncoding::kProtobuf, WireEncoding::kStructuredJson,
                                       WireEncoding::kBinaryMode};

// What was published, to compare the store against.
struct Ledger {
  std::map<std::pair<std::string, std::string>, v1::Event> events;       // normalised, by key
  std::map<std::pair<std::string, std::string>, size_t> first_emission;  // publish index
  std::map<std::pair<std::string, std::string>, std::string> topic_of;
  int64_t redeliveries = 0;
  std::vector<PoisonMessage> poison;
  std::set<std::pair<std::string, std::string>> conflicts;  // (source, id) re-sent changed
  size_t published = 0;
};

class IngestIntegrationTest : public testing::PostgresTest<> {
 protected:
  void SetUp() override {
    testing::PostgresTest<>::SetUp();
    absl::StatusOr<std::unique_ptr<MockKafkaCluster>> c = MockKafkaCluster::Start({.brokers = 3});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = *std::move(c);
    for (const std::string& t : SimulatorTopics()) ASSERT_TRUE(cluster_->CreateTopic(t, 6).ok());
    absl::StatusOr<std::unique_ptr<Publisher>> p =
        Publisher::Create({.brokers = cluster_->bootstrap_servers()});
    ASSERT_TRUE(p.ok()) << p.status();
    publisher_ = *std::move(p);
  }

  IngestorRunnerOptions RunnerOptions(PostgresServer* server = nullptr) {
    IngestorRunnerOptions o;
    o.brokers = cluster_->bootstrap_servers();
    o.pg_url = (server ? server : server_)->Url(db_, "ingestor");
    o.ingestor.decoder.max_message_bytes = kMaxMessageBytes;
    o.ingestor.batch_max_records = 500;
    o.ingestor.retry_initial_backoff = absl::Milliseconds(50);
    o.ingestor.retry_max_backoff = absl::Milliseconds(500);
    if (const char* s = std::getenv("TEST_ASSIGNMENT_STRATEGY")) o.assignment_strategy = s;
    return o;
  }

  // Publishes simulated events, rotating encodings, through one idempotent producer (so each
  // partition keeps publish order).
  void PublishEvents(const std::vector<SimulatedEvent>& events, Ledger* ledger) {
    for (const SimulatedEvent& s : events) {
      v1::Event e = s.event;
      ASSERT_TRUE(NormalizeEvent(&e).ok());
      const auto key = std::make_pair(e.source(), e.id());
      if (s.redelivery) {
        ++ledger->redeliveries;
      } else {
        ledger->first_emission[key] = ledger->published;
        ledger->topic_of[key] = s.topic;
        ledger->events[key] = e;
      }
      Headers headers;
      std::string value;
      Publisher::Encode(e, kEncodings[ledger->published % 3], &headers, &value);
      ASSERT_TRUE(publisher_->PublishRaw(s.topic, e.subject(), headers, value).ok());
      ++ledger->published;
    }
  }

  void PublishPoison(const std::string& marker, Ledger* ledger) {
    const std::vector<std::string> topics = SimulatorTopics();
    for (PoisonMessage& m : PoisonCatalog(marker, kMaxMessageBytes + 1)) {
      const std::string& topic = topics[ledger->poison.size() % topics.size()];
      ASSERT_TRUE(publisher_->PublishRaw(topic, m.key, m.headers, m.value).ok());
      ledger->poison.push_back(std::move(m));
    }
  }

  // Re-sends an already published event with changed data under the same (source, id).
  void PublishConflict(const v1::Event& original, const std::string& topic, Ledger* ledger) {
    v1::Event changed = original;
    changed.set_text_data(R"({"tampered": true})");
    Headers headers;
    std::string value;
    Publisher::Encode(changed, WireEncoding::kStructuredJson, &headers, &value);
    ASSERT_TRUE(publisher_->PublishRaw(topic, changed.subject(), headers, value).ok());
    ledger->conflicts.insert({changed.source(), changed.id()});
  }

  bool AllIn(const Ledger& ledger) {
    return Count("audit.events") == static_cast<int64_t>(ledger.events.size()) &&
           Count("audit.dead_letters") ==
               static_cast<int64_t>(ledger.poison.size() + ledger.conflicts.size());
  }

  int64_t Lag(const std::string& group) {
    absl::StatusOr<int64_t> lag =
        ConsumerLag(cluster_->bootstrap_servers(), group, SimulatorTopics());
    return lag.ok() ? *lag : -1;
  }

  // Checks the store against the ledger: every event once, every column right, per-partition
  // order kept, positions gapless; every poison message and conflict dead-lettered once.
  void VerifyStore(const Ledger& ledger) {
    pg::ConnPtr conn = Connect("reader");
    ASSERT_NE(conn, nullptr);
    const std::string sql =
        absl::StrCat("SELECT ", kStoredEventColumns, " FROM audit.events ORDER BY position");
    absl::StatusOr<pg::ResultPtr> rows = pg::ExecBinary(conn.get(), sql.c_str());
    ASSERT_TRUE(rows.ok()) << rows.status();
    const int n = PQntuples(rows->get());
    ASSERT_EQ(n, static_cast<int>(ledger.events.size()));
    std::set<std::pair<std::string, std::string>> seen;
    // (topic, subject) -> publish index of the last stored event, to check order.
    std::map<std::pair<std::string, std::string>, size_t> last_index;
    int mismatches = 0;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<v1::StoredEvent> stored = StoredEventFromRow(rows->get(), i);
      ASSERT_TRUE(stored.ok()) << stored.status();
      ASSERT_EQ(stored->position(), i + 1) << "positions must be gapless";
      const auto key = std::make_pair(stored->event().source(), stored->event().id());
      ASSERT_TRUE(seen.insert(key).second) << "stored twice: " << key.second;
      auto it = ledger.events.find(key);
      ASSERT_NE(it, ledger.events.end()) << "stored but never published: " << key.second;
      // The columns hold exactly what was published: same bytes, same content hash.
      const Sha256Digest expected = ContentHash(it->second);
      if (stored->event().SerializeAsString() != it->second.SerializeAsString() ||
          stored->content_hash() != std::string(DigestBytes(expected)) ||
          ContentHash(stored->event()) != expected) {
        if (++mismatches < 5) {
          ADD_FAILURE() << "stored " << stored->event().ShortDebugString() << "\n published "
                        << it->second.ShortDebugString();
        }
      }
      EXPECT_EQ(stored->provenance().topic(), ledger.topic_of.at(key));
      const auto order_key = std::make_pair(ledger.topic_of.at(key), stored->event().subject());
      const size_t index = ledger.first_emission.at(key);
      auto last = last_index.find(order_key);
      if (last != last_index.end()) {
        EXPECT_GT(index, last->second) << "reordered within a partition: " << key.second;
      }
      last_index[order_key] = index;
    }
    EXPECT_EQ(mismatches, 0);

    for (const PoisonMessage& m : ledger.poison) {
      const std::string q = absl::StrCat(
          "SELECT concat_ws('|', error_class, count(*) OVER (), coalesce(encode(raw_value, "
          "'hex'), 'null'), cardinality(raw_header_keys), length(reason) > 10) FROM "
          "audit.dead_letters WHERE raw_key = convert_to('",
          m.key, "', 'UTF8')");
      absl::StatusOr<std::vector<std::string>> r = server_->Query(db_, q);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->size(), 1u) << m.kind << " dead-lettered " << r->size() << " times";
      std::string hex = "null";
      if (m.value.has_value()) hex = pg::EncodeByteaHex(*m.value).substr(2);
      EXPECT_EQ((*r)[0],
                absl::StrCat(ErrorClassName(m.expected), "|1|", hex, "|", m.headers.size(), "|t"))
          << m.kind;
    }
    for (const auto& [source, id] : ledger.conflicts) {
      absl::StatusOr<std::vector<std::string>> r = server_->Query(
          db_, absl::StrCat("SELECT error_class || '|' || (conflicting_position > 0) FROM "
                            "audit.dead_letters WHERE event_source = '",
                            source, "' AND event_id = '", id, "'"));
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->size(), 1u) << "conflict " << id;
      EXPECT_EQ((*r)[0], "conflict|true");
    }
  }

  std::unique_ptr<MockKafkaCluster> cluster_;
  std::unique_ptr<Publisher> publisher_;
};

TEST_F(IngestIntegrationTest, TenThousandMixedMessagesEachStoredOrDeadLetteredExactlyOnce) {
  Ledger ledger;
  SimulatorOptions sim;
  sim.seed = 42;
  PublishEvents(OrderSimulator(sim).Generate(10000), &ledger);
  for (int i = 0; i < 7; ++i) PublishPoison(absl::StrCat("p", i), &ledger);
  int conflicts = 0;
  for (const auto& [key, event] : ledger.events) {
    if (conflicts++ == 25) break;
    PublishConflict(event, ledger.topic_of.at(key), &ledger);
  }
  ASSERT_TRUE(publisher_->Flush(absl::Seconds(30)).ok());

  absl::StatusOr<std::unique_ptr<IngestorRunner>> runner = IngestorRunner::Start(RunnerOptions());
  ASSERT_TRUE(runner.ok()) << runner.status();
  ASSERT_TRUE(WaitFor([&] { return AllIn(ledger); }, absl::Seconds(120)))
      << Count("audit.events") << " events, " << Count("audit.dead_letters")
      << " dead letters; want " << ledger.events.size() << " and "
      << ledger.poison.size() + ledger.conflicts.size();
  // Offsets are committed after the store: lag drains to zero.
  EXPECT_TRUE(WaitFor([&] { return Lag("audit-ingestor-test") == 0; }, absl::Seconds(30)));
  ASSERT_TRUE((*runner)->Stop().ok());

  VerifyStore(ledger);
  const ingestor::IngestorStats& stats = (*runner)->stats();
  EXPECT_EQ(stats.duplicates.load(), ledger.redeliveries) << "every redelivery absorbed";
  EXPECT_EQ(stats.conflicts.load(), static_cast<int64_t>(ledger.conflicts.size()));
  EXPECT_EQ(stats.records.load(), static_cast<int64_t>(ledger.published + ledger.poison.size() +
                                                       ledger.conflicts.size()));
  EXPECT_GT(ledger.redeliveries, 100);
}

// Fails every offset commit after the first `ok_commits`: the ingestor then dies with stored
// batches whose offsets were never committed, as after a crash between the two.
class CommitDroppingSource : public ingestor::RecordSource {
 public:
  CommitDroppingSource(ingestor::RecordSource* inner, int ok_commits)
      : inner_(inner), left_(ok_commits) {}
  absl::StatusOr<ingestor::RecordBatch> Poll(size_t n, absl::Duration d) override {
    return inner_->Poll(n, d);
  }
  absl::Status Commit(const ingestor::RecordBatch& b) override {
    if (left_-- > 0) return inner_->Commit(b);
    return absl::UnavailableError("crashed before the offset commit");
  }
  void Pause() override { inner_->Pause(); }
  void Resume() override { inner_->Resume(); }

 private:
  ingestor::RecordSource* inner_;
  int left_;
};

TEST_F(IngestIntegrationTest, RestartMidStreamLosesAndDuplicatesNothing) {
  Ledger ledger;
  SimulatorOptions sim;
  sim.seed = 7;
  PublishEvents(OrderSimulator(sim).Generate(6000), &ledger);
  PublishPoison("restart", &ledger);
  ASSERT_TRUE(publisher_->Flush(absl::Seconds(30)).ok());

  // First run: stores some batches but "crashes" before committing their offsets.
  IngestorRunnerOptions first = RunnerOptions();
  first.ingestor.batch_max_records = 200;
  first.wrap_source = [](ingestor::RecordSource* inner) {
    return std::make_unique<CommitDroppingSource>(inner, /*ok_commits=*/3);
  };
  absl::StatusOr<std::unique_ptr<IngestorRunner>> a = IngestorRunner::Start(first);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(WaitFor([&] { return Count("audit.events") >= 2000; }, absl::Seconds(60)));
  ASSERT_TRUE((*a)->Stop().ok());
  const int64_t stored_by_a = (*a)->stats().events_stored.load();
  EXPECT_GT((*a)->stats().commit_failures.load(), 0);
  EXPECT_GT(Lag("audit-ingestor-test"), 0);

  // Second run, same group: redelivered messages are absorbed, the rest stored.
  absl::StatusOr<std::unique_ptr<IngestorRunner>> b = IngestorRunner::Start(RunnerOptions());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(WaitFor([&] { return AllIn(ledger); }, absl::Seconds(120)))
      << Count("audit.events") << " of " << ledger.events.size();
  EXPECT_TRUE(WaitFor([&] { return Lag("audit-ingestor-test") == 0; }, absl::Seconds(30)));
  ASSERT_TRUE((*b)->Stop().ok());
  VerifyStore(ledger);
  EXPECT_EQ(stored_by_a + (*b)->stats().events_stored.load(),
            static_cast<int64_t>(ledger.events.size()));
  // B saw again what A stored without committing: absorbed, not stored twice.
  EXPECT_GT((*b)->stats().duplicates.load(), ledger.redeliveries / 2);
  EXPECT_GT((*b)->stats().dead_letters_existing.load() + (*b)->stats().duplicates.load(), 0);
}

TEST_F(IngestIntegrationTest, DatabaseOutageIsWaitedOutNotDeadLettered) {
  // A server of its own: this test stops it.
  absl::StatusOr<std::unique_ptr<PostgresServer>> own = PostgresServer::Start();
  ASSERT_TRUE(own.ok());
  ASSERT_TRUE((*own)->CreateDatabase(db_).ok());
  Ledger ledger;
  SimulatorOptions sim;
  sim.seed = 9;
  PublishEvents(OrderSimulator(sim).Generate(4000), &ledger);
  ASSERT_TRUE(publisher_->Flush(absl::Seconds(30)).ok());
  IngestorRunnerOptions o = RunnerOptions(own->get());
  o.ingestor.batch_max_records = 100;
  absl::StatusOr<std::unique_ptr<IngestorRunner>> runner = IngestorRunner::Start(o);
  ASSERT_TRUE(runner.ok());
  const auto count = [&](const char* table) {
    absl::StatusOr<std::vector<std::string>> r =
        (*own)->Query(db_, absl::StrCat("SELECT count(*) FROM ", table));
    return r.ok() ? std::stoll((*r)[0]) : -1;
  };
  ASSERT_TRUE(WaitFor([&] { return count("audit.events") >= 500; }, absl::Seconds(60)));
  ASSERT_TRUE((*own)->Stop(/*immediate=*/true).ok());
  ASSERT_TRUE(WaitFor([&] { return (*runner)->stats().transient_failures.load() >= 2; },
                      absl::Seconds(30)));
  ASSERT_TRUE((*own)->Restart().ok());
  ASSERT_TRUE(
      WaitFor([&] { return count("audit.events") == static_cast<int64_t>(ledger.events.size()); },
              absl::Seconds(120)));
  ASSERT_TRUE((*runner)->Stop().ok());
  EXPECT_EQ(count("audit.dead_letters"), 0);
  EXPECT_EQ(count("audit.events"), static_cast<int64_t>(ledger.events.size()));
  absl::StatusOr<std::vector<std::string>> contiguous =
      (*own)->Query(db_, "SELECT count(*) = max(position) FROM audit.events");
  ASSERT_TRUE(contiguous.ok());
  EXPECT_EQ((*contiguous)[0], "t");
}

TEST_F(IngestIntegrationTest, NewMatchingTopicIsConsumedWithinSeconds) {
  absl::StatusOr<std::unique_ptr<IngestorRunner>> runner = IngestorRunner::Start(RunnerOptions());
  ASSERT_TRUE(runner.ok());
  ASSERT_TRUE(
      WaitFor([&] { return (*runner)->source().assigned_partitions() > 0; }, absl::Seconds(30)));
  ASSERT_TRUE(cluster_->CreateTopic("returns.events", 2).ok());
  ASSERT_TRUE(cluster_->CreateTopic("returns.commands", 2).ok());  // does not match
  v1::Event e = testing::MakeValidEvent("ret-1", "order-77");
  ASSERT_TRUE(publisher_->Publish("returns.events", e).ok());
  e.set_id("cmd-1");
  ASSERT_TRUE(publisher_->Publish("returns.commands", e).ok());
  ASSERT_TRUE(publisher_->Flush(absl::Seconds(10)).ok());
  const absl::Time published = absl::Now();
  // metadata_refresh is 1 s in tests (5 s by default): picked up within seconds.
  ASSERT_TRUE(WaitFor([&] { return Count("audit.events") == 1; }, absl::Seconds(20)));
  const absl::Duration took = absl::Now() - published;
  ASSERT_TRUE((*runner)->Stop().ok());
  RecordProperty("pickup_ms", static_cast<int>(absl::ToInt64Milliseconds(took)));
  absl::StatusOr<std::vector<std::string>> r =
      server_->Query(db_, "SELECT event_id || '@' || kafka_topic FROM audit.events");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0], "ret-1@returns.events");
}

}  // namespace
}  // namespace audit
