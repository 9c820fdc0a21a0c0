#include "services/ingestor/ingestor.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "audit/cloudevents.h"
#include "audit/envelope.h"
#include "audit/test_events.h"
#include "gtest/gtest.h"

namespace audit::ingestor {
namespace {

using ::audit::testing::MakeValidEvent;

// Messages owned by shared buffers, the way KafkaSource keeps librdkafka messages alive.
struct OwnedMessage {
  std::string topic = "orders.events";
  int64_t offset = 0;
  Headers headers;
  std::string value;
};

RecordBatch MakeBatch(std::vector<OwnedMessage> messages) {
  auto owned = std::make_shared<std::vector<OwnedMessage>>(std::move(messages));
  RecordBatch batch;
  for (const OwnedMessage& m : *owned) {
    KafkaRecord r;
    r.topic = m.topic;
    r.partition = 0;
    r.offset = m.offset;
    for (const auto& [k, v] : m.headers) r.headers.push_back({k, v});
    r.value = m.value;
    batch.records.push_back(r);
  }
  batch.owners.push_back(owned);
  return batch;
}

OwnedMessage Good(const std::string& id, int64_t offset) {
  OwnedMessage m;
  m.offset = offset;
  v1::Event e = MakeValidEvent(id);
  EXPECT_TRUE(NormalizeEvent(&e).ok());
  ToBinaryMode(e, &m.headers, &m.value);
  return m;
}

OwnedMessage Poison(int64_t offset) {
  OwnedMessage m;
  m.offset = offset;
  m.value = "\x0a\x10not-a-protobuf";
  return m;
}

class FakeSource : public RecordSource {
 public:
  absl::StatusOr<RecordBatch> Poll(size_t max_records, absl::Duration max_wait) override {
    ++polls;
    if (queue.empty()) {
      if (on_empty) on_empty();
      return RecordBatch();
    }
    RecordBatch b = std::move(queue.front());
    queue.pop_front();
    return b;
  }
  absl::Status Commit(const RecordBatch& batch) override {
    std::vector<int64_t> offsets;
    for (const KafkaRecord& r : batch.records) offsets.push_back(r.offset);
    commits.push_back(offsets);
    return absl::OkStatus();
  }
  void Pause() override { ++pauses; }
  void Resume() override { ++resumes; }

  std::deque<RecordBatch> queue;
  std::function<void()> on_empty;
  std::vector<std::vector<int64_t>> commits;
  int polls = 0, pauses = 0, resumes = 0;
};

// Records what was appended; `behavior` may fail an attempt.
class FakeSink : public EventSink {
 public:
  absl::StatusOr<AppendResult> Append(const AppendBatch& batch) override {
    ++attempts;
    if (behavior) {
      if (absl::Status s = behavior(batch); !s.ok()) return s;
    }
    AppendResult r;
    for (const EventEntry& e : batch.events) stored.push_back(e.event->id());
    for (const DeadLetterEntry& d : batch.dead_letters) {
      dead.push_back(absl::StrCat(d.record->offset, ":", ErrorClassName(d.error_class)));
      reasons.push_back(d.reason);
    }
    r.appended = static_cast<int64_t>(batch.events.size());
    r.dead_letters_written = static_cast<int64_t>(batch.dead_letters.size());
    return r;
  }

  std::function<absl::Status(const AppendBatch&)> behavior;
  std::vector<std::string> stored, dead, reasons;
  int attempts = 0;
};

IngestorOptions FastOptions() {
  IngestorOptions o;
  o.retry_initial_backoff = absl::Milliseconds(1);
  o.retry_max_backoff = absl::Milliseconds(4);
  o.poll_wait = absl::Milliseconds(1);
  return o;
}

TEST(IngestorTest, StoresValidEventsDeadLettersPoisonThenCommits) {
  FakeSource source;
  FakeSink sink;
  Ingestor ingestor(source, sink, FastOptions());
  absl::Notification stop;
  RecordBatch batch = MakeBatch({Good("a", 0), Poison(1), Good("b", 2)});
  ASSERT_TRUE(ingestor.ProcessBatch(batch, stop).ok());
  EXPECT_EQ(sink.stored, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(sink.dead, (std::vector<std::string>{"1:undecodable"}));
  ASSERT_EQ(source.commits.size(), 1u);
  EXPECT_EQ(source.commits[0], (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(ingestor.stats().events_stored.load(), 2);
  EXPECT_EQ(ingestor.stats().dead_letters.load(), 1);
}

TEST(IngestorTest, TransientFailuresPauseRetryAndResumeWithoutDeadLetters) {
  FakeSource source;
  FakeSink sink;
  int failures_left = 3;
  sink.behavior = [&](const AppendBatch&) {
    if (failures_left-- > 0) return absl::UnavailableError("database down");
    return absl::OkStatus();
  };
  // A record fetched before the pause still arrives while waiting: it must be kept.
  source.queue.push_back(MakeBatch({Good("late", 5)}));
  Ingestor ingestor(source, sink, FastOptions());
  absl::Notification stop;
  RecordBatch batch = MakeBatch({Good("a", 3), Good("b", 4)});
  ASSERT_TRUE(ingestor.ProcessBatch(batch, stop).ok());
  EXPECT_EQ(sink.attempts, 4);
  EXPECT_EQ(source.pauses, 1);
  EXPECT_EQ(source.resumes, 1);
  EXPECT_TRUE(sink.dead.empty());
  EXPECT_EQ(sink.stored, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(source.commits.size(), 1u);
  EXPECT_EQ(ingestor.stats().transient_failures.load(), 3);

  // The stray record is processed by the loop next, not lost.
  source.on_empty = [&] { stop.Notify(); };
  ASSERT_TRUE(ingestor.Run(stop).ok());
  EXPECT_EQ(sink.stored.back(), "late");
  EXPECT_EQ(source.commits.back(), (std::vector<int64_t>{5}));
}

TEST(IngestorTest, RefusedContentIsIsolatedByBisection) {
  FakeSource source;
  FakeSink sink;
  sink.behavior = [](const AppendBatch& b) {
    for (const EventEntry& e : b.events) {
      if (e.event->id() == "bad") return absl::InvalidArgumentError("22P02: invalid input");
    }
    return absl::OkStatus();
  };
  Ingestor ingestor(source, sink, FastOptions());
  absl::Notification stop;
  std::vector<OwnedMessage> messages;
  for (int i = 0; i < 16; ++i) messages.push_back(Good(i == 11 ? "bad" : absl::StrCat("e", i), i));
  RecordBatch batch = MakeBatch(std::move(messages));
  ASSERT_TRUE(ingestor.ProcessBatch(batch, stop).ok());
  EXPECT_EQ(sink.stored.size(), 15u);
  EXPECT_EQ(sink.dead, (std::vector<std::string>{"11:rejected_by_store"}));
  EXPECT_NE(sink.reasons[0].find("22P02: invalid input"), std::string::npos) << sink.reasons[0];
  // Order is preserved around the isolated event.
  EXPECT_EQ(sink.stored[10], "e10");
  EXPECT_EQ(sink.stored[11], "e12");
  EXPECT_EQ(source.commits.size(), 1u);
  EXPECT_GT(ingestor.stats().isolations.load(), 0);
}

TEST(IngestorTest, ShutdownDuringAnOutageCommitsNothing) {
  FakeSource source;
  FakeSink sink;
  sink.behavior = [](const AppendBatch&) { return absl::UnavailableError("database down"); };
  IngestorOptions options = FastOptions();
  options.shutdown_grace = absl::ZeroDuration();
  Ingestor ingestor(source, sink, options);
  absl::Notification stop;
  stop.Notify();
  RecordBatch batch = MakeBatch({Good("a", 0)});
  absl::Status s = ingestor.ProcessBatch(batch, stop);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(source.commits.empty());
  EXPECT_TRUE(sink.dead.empty());
}

TEST(IngestorTest, RunStopsWhenAsked) {
  FakeSource source;
  FakeSink sink;
  source.queue.push_back(MakeBatch({Good("a", 0)}));
  source.queue.push_back(MakeBatch({Good("b", 1)}));
  absl::Notification stop;
  source.on_empty = [&] { stop.Notify(); };
  Ingestor ingestor(source, sink, FastOptions());
  ASSERT_TRUE(ingestor.Run(stop).ok());
  EXPECT_EQ(sink.stored, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(source.commits.size(), 2u);
}

// Counts calls that overlap. A poll without waiting (the decode-ahead helper's) holds the
// source up to 20 ms, as a slow poll would, so that a loop using the source meanwhile is
// caught; it returns as soon as one did.
class OneAtATimeSource : public FakeSource {
 public:
  absl::StatusOr<RecordBatch> Poll(size_t max_records, absl::Duration max_wait) override {
    Enter();
    if (max_wait == absl::ZeroDuration()) {
      absl::MutexLock lock(&mu_);
      polling_ahead_ = true;
      mu_.AwaitWithTimeout(absl::Condition(
                               +[](int* overlaps) { return *overlaps > 0; }, &overlaps_),
                           absl::Milliseconds(20));
      polling_ahead_ = false;
    }
    absl::StatusOr<RecordBatch> b = FakeSource::Poll(max_records, max_wait);
    Exit();
    return b;
  }
  // Waits (up to 20 ms) until a poll without waiting is under way: the store returns no
  // sooner than a real one, which the helper's poll has time to start within.
  void AwaitPollAhead() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&polling_ahead_), absl::Milliseconds(20));
  }
  absl::Status Commit(const RecordBatch& batch) override {
    Enter();
    absl::Status s = FakeSource::Commit(batch);
    Exit();
    return s;
  }
  void Pause() override {
    Enter();
    FakeSource::Pause();
    Exit();
  }
  void Resume() override {
    Enter();
    FakeSource::Resume();
    Exit();
  }

  int overlaps() {
    absl::MutexLock lock(&mu_);
    return overlaps_;
  }

 private:
  void Enter() {
    absl::MutexLock lock(&mu_);
    if (active_++ > 0) ++overlaps_;
  }
  void Exit() {
    absl::MutexLock lock(&mu_);
    --active_;
  }

  absl::Mutex mu_;
  bool polling_ahead_ ABSL_GUARDED_BY(mu_) = false;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  int overlaps_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(IngestorTest, TheSourceIsUsedByOneThreadAtATimeWhileTheHelperPollsAhead) {
  OneAtATimeSource source;
  FakeSink sink;
  // The batches holding e3 and e12 find the database down once: pause, wait, resume.
  std::set<std::string> fail_once = {"e3", "e12"};
  std::atomic<size_t> events_stored{0};
  sink.behavior = [&](const AppendBatch& batch) {
    source.AwaitPollAhead();
    for (const EventEntry& e : batch.events) {
      if (fail_once.erase(e.event->id()) > 0) return absl::UnavailableError("down");
    }
    events_stored += batch.events.size();
    return absl::OkStatus();
  };
  std::vector<std::string> expected;
  for (int b = 0; b < 6; ++b) {
    std::vector<OwnedMessage> messages;
    for (int i = 0; i < 3; ++i) {
      const int offset = 3 * b + i;
      expected.push_back(absl::StrCat("e", offset));
      messages.push_back(Good(expected.back(), offset));
    }
    source.queue.push_back(MakeBatch(std::move(messages)));
  }
  absl::Notification stop;
  // Records taken while waiting to retry are stored later (batches may merge): stop only
  // once every one is.
  source.on_empty = [&] {
    if (events_stored == expected.size() && !stop.HasBeenNotified()) stop.Notify();
  };
  Ingestor ingestor(source, sink, FastOptions());
  ASSERT_TRUE(ingestor.Run(stop).ok());
  EXPECT_EQ(source.overlaps(), 0);
  EXPECT_EQ(sink.stored, expected);
  std::vector<int64_t> committed;
  for (const std::vector<int64_t>& c : source.commits) {
    committed.insert(committed.end(), c.begin(), c.end());
  }
  EXPECT_EQ(committed.size(), expected.size());
  EXPECT_TRUE(std::is_sorted(committed.begin(), committed.end()));
  EXPECT_EQ(source.pauses, 2);
  EXPECT_EQ(source.resumes, 2);
}

}  // namespace
}  // namespace audit::ingestor
