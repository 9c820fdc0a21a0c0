// End to end through every part: SDK publisher -> Kafka protocol (mock cluster) -> ingestor ->
// PostgreSQL -> query server (real TCP) -> SDK client and replay.
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "audit/audit_client.h"
#include "audit/envelope.h"
#include "audit/publisher.h"
#include "audit/rfc3339.h"
#include "gtest/gtest.h"
#include "services/query/query_server.h"
#include "tests/fixtures/ingestor_runner.h"
#include "tests/fixtures/postgres_test.h"
#include "tests/fixtures/wait.h"
#include "tools/devbroker/mock_cluster.h"
#include "tools/simulator/order_simulator.h"

namespace audit {
namespace {

using ::audit::devbroker::MockKafkaCluster;
using ::audit::query::QueryServer;
using ::audit::simulator::OrderSimulator;
using ::audit::simulator::SimulatedEvent;
using ::audit::simulator::SimulatorTopics;
using ::audit::testing::IngestorRunner;
using ::audit::testing::WaitFor;

class EndToEndTest : public testing::PostgresTest<> {
 protected:
  void SetUp() override {
    testing::PostgresTest<>::SetUp();
    absl::StatusOr<std::unique_ptr<MockKafkaCluster>> c = MockKafkaCluster::Start({.brokers = 3});
    ASSERT_TRUE(c.ok());
    cluster_ = *std::move(c);
    for (const std::string& t : SimulatorTopics()) ASSERT_TRUE(cluster_->CreateTopic(t, 6).ok());
    absl::StatusOr<std::unique_ptr<Publisher>> p =
        Publisher::Create({.brokers = cluster_->bootstrap_servers(), .client_id = "e2e"});
    ASSERT_TRUE(p.ok());
    publisher_ = *std::move(p);
    absl::StatusOr<std::unique_ptr<IngestorRunner>> ingestor = IngestorRunner::Start(
        {.brokers = cluster_->bootstrap_servers(), .pg_url = server_->Url(db_, "ingestor")});
    ASSERT_TRUE(ingestor.ok());
    ingestor_ = *std::move(ingestor);
    StartQueryServer("127.0.0.1:0");
    client_ = std::make_unique<AuditClient>(MakeAuditConnection({.target = address_}));
  }

  void TearDown() override {
    query_.reset();
    if (ingestor_) {
      ASSERT_TRUE(ingestor_->Stop().ok());
    }
  }

  void StartQueryServer(const std::string& listen) {
    absl::StatusOr<std::unique_ptr<QueryServer>> q =
        QueryServer::Start({.listen = listen, .pg_url = server_->Url(db_, "reader"), .threads = 4});
    ASSERT_TRUE(q.ok()) << q.status();
    query_ = *std::move(q);
    address_ = query_->address();
  }

  // Publishes through the SDK; returns the normalised events by (source, id), first emission
  // index by key, and each (topic, subject)'s emission order.
  void Publish(const std::vector<SimulatedEvent>& events) {
    for (const SimulatedEvent& s : events) {
      ASSERT_TRUE(publisher_->Publish(s.topic, s.event).ok());
      v1::Event e = s.event;
      ASSERT_TRUE(NormalizeEvent(&e).ok());
      const auto key = std::make_pair(e.source(), e.id());
      if (!published_.count(key)) {
        published_[key] = e;
        order_[{s.topic, e.subject()}].push_back(key);
        topic_of_[key] = s.topic;
      }
    }
    ASSERT_TRUE(publisher_->Flush(absl::Seconds(30)).ok());
  }

  bool AllStored() {
    absl::StatusOr<v1::GetStatisticsResponse> s = client_->GetStatistics();
    return s.ok() && s->event_count() == static_cast<int64_t>(published_.size());
  }

  std::unique_ptr<MockKafkaCluster> cluster_;
  std::unique_ptr<Publisher> publisher_;
  std::unique_ptr<IngestorRunner> ingestor_;
  std::unique_ptr<QueryServer> query_;
  std::string address_;
  std::unique_ptr<AuditClient> client_;
  std::map<std::pair<std::string, std::string>, v1::Event> published_;
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<std::string, std::string>>>
      order_;
  std::map<std::pair<std::string, std::string>, std::string> topic_of_;
};

TEST_F(EndToEndTest, WhatTheSdkPublishesIsWhatTheSdkReplays) {
  simulator::SimulatorOptions sim;
  sim.seed = 2026;
  Publish(OrderSimulator(sim).Generate(3000));
  ASSERT_TRUE(WaitFor([&] { return AllStored(); }, absl::Seconds(90)));

  ReplayStream replay = client_->Replay({});
  std::vector<v1::StoredEvent> replayed;
  while (true) {
    absl::StatusOr<std::optional<v1::StoredEvent>> e = replay.Next();
    ASSERT_TRUE(e.ok()) << e.status();
    if (!e->has_value()) break;
    replayed.push_back(**e);
  }
  ASSERT_EQ(replayed.size(), published_.size());
  std::map<std::pair<std::string, std::string>, int64_t> position_of;
  for (size_t i = 0; i < replayed.size(); ++i) {
    const v1::StoredEvent& s = replayed[i];
    ASSERT_EQ(s.position(), static_cast<int64_t>(i) + 1) << "gap or duplicate";
    const auto key = std::make_pair(s.event().source(), s.event().id());
    auto it = published_.find(key);
    ASSERT_NE(it, published_.end()) << key.second;
    EXPECT_EQ(s.event().SerializeAsString(), it->second.SerializeAsString()) << key.second;
    EXPECT_EQ(s.provenance().topic(), topic_of_[key]);
    position_of[key] = s.position();
  }
  // Each entity's events on each topic come back in the order they were published.
  for (const auto& [topic_subject, keys] : order_) {
    for (size_t i = 1; i < keys.size(); ++i) {
      EXPECT_LT(position_of[keys[i - 1]], position_of[keys[i]]) << topic_subject.second;
    }
  }
}

TEST_F(EndToEndTest, LiveReplayDeliversANewlyIngestedEventWithinASecond) {
  absl::Mutex mu;
  std::deque<std::pair<v1::StoredEvent, absl::Time>> received;
  v1::ReplayEventsRequest follow;
  follow.set_follow(true);
  ReplayStream replay = client_->Replay(follow);
  std::thread reader([&] {
    while (true) {
      absl::StatusOr<std::optional<v1::StoredEvent>> e = replay.Next();
      if (!e.ok() || !e->has_value()) return;
      absl::MutexLock lock(&mu);
      received.emplace_back(**e, absl::Now());
    }
  });
  ASSERT_TRUE(
      WaitFor([&] { return query_->audit_service().open_streams() == 1; }, absl::Seconds(10)));
  v1::Event e;
  e.set_id("live-1");
  e.set_source("/e2e");
  e.set_type("com.acme.order.created");
  e.set_spec_version("1.0");
  e.set_subject("order-live");
  *e.mutable_time() = FromUnixMicros(absl::ToUnixMicros(absl::Now()));
  ASSERT_TRUE(publisher_->Publish("orders.events", e).ok());
  ASSERT_TRUE(publisher_->Flush(absl::Seconds(10)).ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::MutexLock lock(&mu);
        return !received.empty();
      },
      absl::Seconds(30)));
  replay.Cancel();
  reader.join();
  absl::MutexLock lock(&mu);
  ASSERT_EQ(received.front().first.event().id(), "live-1");
  // From the store's commit stamp to the follower having it.
  const absl::Duration latency =
      received.front().second -
      absl::FromUnixMicros(ToUnixMicros(received.front().first.recorded_time()));
  EXPECT_LT(latency, absl::Seconds(1));
  RecordProperty("live_latency_ms", static_cast<int>(absl::ToInt64Milliseconds(latency)));
}

TEST_F(EndToEndTest, ReplayInterruptedByAServerRestartResumesWithoutGapOrDuplicate) {
  simulator::SimulatorOptions sim;
  sim.seed = 7;
  Publish(OrderSimulator(sim).Generate(4000));
  ASSERT_TRUE(WaitFor([&] { return AllStored(); }, absl::Seconds(90)));
  const int64_t total = static_cast<int64_t>(published_.size());

  v1::ReplayEventsRequest r;
  r.set_max_events_per_frame(50);
  ReplayOptions options;
  options.initial_backoff = absl::Milliseconds(50);
  ReplayStream replay = client_->Replay(r, options);
  std::vector<int64_t> positions;
  const auto read = [&](int64_t n) {
    while (static_cast<int64_t>(positions.size()) < n) {
      absl::StatusOr<std::optional<v1::StoredEvent>> e = replay.Next();
      ASSERT_TRUE(e.ok()) << e.status();
      if (!e->has_value()) return;
      positions.push_back((*e)->position());
    }
  };
  read(1000);
  // Kill the server mid-stream, start another on the same address.
  const std::string listen = address_;
  query_->Shutdown(absl::ZeroDuration());
  query_.reset();
  StartQueryServer(listen);
  read(total + 1);
  ASSERT_EQ(static_cast<int64_t>(positions.size()), total);
  for (int64_t i = 0; i < total; ++i) ASSERT_EQ(positions[i], i + 1) << "gap or duplicate";
  EXPECT_GE(replay.reconnects(), 1);

  // Resuming by hand from what a client remembers works the same way.
  v1::ReplayEventsRequest resume;
  resume.set_after_position(1234);
  ReplayStream rest = client_->Replay(resume);
  absl::StatusOr<std::optional<v1::StoredEvent>> first = rest.Next();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->position(), 1235);
}

TEST_F(EndToEndTest, TheExampleProgramPublishesAndReadsBack) {
  const std::string binary =
      absl::StrCat(std::getenv("TEST_SRCDIR"), "/audit_trail/clients/cpp/examples/order_history");
  const std::string command = absl::StrCat(
      binary, " --server=", address_,
      " --subject=order-example --kafka_brokers=", cluster_->bootstrap_servers(), " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("com.acme.order.noted /examples/order-history note-"), std::string::npos)
      << output;
}

}  // namespace
}  // namespace audit
