#include "tests/torture/scenarios.h"

#include <grpcpp/grpcpp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "audit/audit_client.h"
#include "audit/v1/audit_service.grpc.pb.h"

namespace audit::torture {
namespace {

constexpr absl::Duration kDrainTimeout = absl::Minutes(4);
// Scenarios that must land their faults during active ingest start the producer with this
// many times their nominal event count and stop it once the faults are done.
constexpr int64_t kOpenEnded = 50;

// Produces in the background; the ledger is final once done() and joined.
class BackgroundProducer {
 public:
  BackgroundProducer(const World& world, LedgerProducer::Options options, int64_t count) {
    options.brokers = world.brokers();
    absl::StatusOr<std::unique_ptr<LedgerProducer>> p = LedgerProducer::Create(options);
    if (!p.ok()) {
      status_ = p.status();
      done_ = true;
      return;
    }
    producer_ = *std::move(p);
    thread_ = std::thread([this, count] {
      status_ = producer_->Produce(count, &stop_);
      done_ = true;
    });
  }
  ~BackgroundProducer() { Join(); }
  bool done() const { return done_.load(); }
  absl::Status Join() {
    if (thread_.joinable()) thread_.join();
    return status_;
  }
  const Ledger& ledger() const { return producer_->ledger(); }
  int64_t acknowledged() const { return producer_ ? producer_->acknowledged() : 0; }
  // For producers started open-ended (a large count): lets at least `n` messages be
  // acknowledged, then stops producing. Scenarios whose faults must land during active ingest
  // produce until their faults are done rather than racing a fixed-size run.
  void StopOnceAcknowledged(int64_t n) {
    (void)WaitUntil([&] { return done() || acknowledged() >= n; }, absl::Minutes(5),
                    absl::Milliseconds(10));
    stop_ = true;
  }

 private:
  std::unique_ptr<LedgerProducer> producer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  absl::Status status_;
};

int64_t StoredCount(const World& world) {
  absl::StatusOr<int64_t> n = world.Count(
      "SELECT (SELECT count(*) FROM audit.events) + (SELECT count(*) FROM audit.dead_letters)");
  return n.ok() ? *n : -1;
}

// Waits until the store grew past what it held when called (ingest is making progress), or
// until the producer is done and everything is in. False on timeout.
bool WaitForProgress(const World& world, const BackgroundProducer& producer,
                     absl::Duration timeout = absl::Seconds(90)) {
  const int64_t before = StoredCount(world);
  return WaitUntil(
      [&] {
        const int64_t now = StoredCount(world);
        return now > before || (producer.done() && now >= producer.acknowledged());
      },
      timeout, absl::Milliseconds(20));
}

absl::Duration RandomDelay(std::mt19937_64& rng, absl::Duration max) {
  return absl::Microseconds(static_cast<int64_t>(rng() % (absl::ToInt64Microseconds(max) + 1)));
}

// Drains, stops the ingestors cleanly, and checks everything against the ledger.
void Finish(World& world, BackgroundProducer& producer,
            std::vector<std::unique_ptr<Process>>& ingestors, Report* report) {
  if (!report->Require(producer.Join(), "producer")) return;
  if (!WaitForLedger(world, producer.ledger(), kDrainTimeout)) {
    report->Fail(absl::StrCat("not everything arrived within ", absl::FormatDuration(kDrainTimeout),
                              ": ", StoredCount(world), " of ", producer.ledger().total()));
  }
  for (auto& p : ingestors) {
    if (p == nullptr) continue;
    const int exit = p->Stop(absl::Seconds(30));
    if (exit != 0) report->Fail(absl::StrCat("an ingestor exited with ", exit, " on SIGTERM"));
  }
  CheckAgainstLedger(world, producer.ledger(), report);
}

std::unique_ptr<Process> MustStart(absl::StatusOr<std::unique_ptr<Process>> p, Report* report) {
  if (!p.ok()) {
    report->Fail(absl::StrCat("start: ", p.status().ToString()));
    return nullptr;
  }
  return *std::move(p);
}

LedgerProducer::Options Producing(const std::string& run, double rate, uint64_t seed) {
  LedgerProducer::Options o;
  o.run = run;
  o.rate = rate;
  o.seed = seed;
  return o;
}

// Runs one ingestor and kills it with SIGKILL `kills` times at random moments of active ingest
// (each after the store grew since the last restart, plus a random delay), restarting it each
// time; then lets at least `events` be acknowledged, stops the (open-ended) producer and
// checks everything against the ledger.
void KillIngestorRepeatedly(World& world, BackgroundProducer& producer, int kills, int64_t events,
                            uint64_t seed, Report* report) {
  std::vector<std::unique_ptr<Process>> ingestors;
  ingestors.push_back(MustStart(world.StartIngestor("ingestor"), report));
  std::mt19937_64 rng(seed);
  int done = 0;
  while (done < kills && ingestors[0] != nullptr) {
    if (!WaitForProgress(world, producer)) {
      report->Fail("no progress after a restart");
      break;
    }
    if (producer.done() && StoredCount(world) >= producer.acknowledged()) break;
    absl::SleepFor(RandomDelay(rng, absl::Milliseconds(800)));  // a random moment to crash
    ingestors[0]->Signal(SIGKILL);
    (void)ingestors[0]->Wait(absl::Seconds(10));
    ++done;
    ingestors[0] = MustStart(world.StartIngestor("ingestor"), report);
  }
  report->Figure("kill -9", done);
  if (done < kills) report->Fail(absl::StrCat("only ", done, " kills before the run ended"));
  producer.StopOnceAcknowledged(events);
  Finish(world, producer, ingestors, report);
}

// 1. kill -9 at random moments of active ingest.
Report KillNine(World& world, const Scale& scale) {
  Report report;
  const int64_t events = scale.long_run ? 100'000 : 6'000;
  const int kills = scale.long_run ? 36 : 3;
  const double rate = scale.long_run ? 500 : 800;
  if (!report.Require(world.StartBroker(), "broker")) return report;
  BackgroundProducer producer(world, Producing("k9", rate, scale.seed), kOpenEnded * events);
  KillIngestorRepeatedly(world, producer, kills, events, scale.seed, &report);
  return report;
}

// 2. Deterministic crash points.
Report CrashPoints(World& world, const Scale& scale) {
  Report report;
  if (!report.Require(world.StartBroker(), "broker")) return report;
  absl::StatusOr<std::unique_ptr<LedgerProducer>> producer = LedgerProducer::Create([&] {
    LedgerProducer::Options o = Producing("cp", 0, scale.seed);
    o.brokers = world.brokers();
    return o;
  }());
  if (!report.Require(producer.status(), "producer")) return report;
  const int64_t per_phase = scale.long_run ? 20'000 : 2'000;
  const std::vector<std::pair<std::string, std::string>> small_batches = {
      {"AUDIT_INGESTOR_BATCH_MAX_RECORDS", "200"}};
  for (const char* stage : {"before_insert", "before_commit", "before_offset_commit"}) {
    if (!report.Require((*producer)->Produce(per_phase), "produce")) return report;
    const int64_t logs_before = static_cast<int64_t>(world.ingestor_logs().size());
    absl::StatusOr<std::unique_ptr<Process>> crashing = world.StartIngestor(
        absl::StrCat("crash-", stage), small_batches, absl::StrCat(stage, ":3"));
    if (!report.Require(crashing.status(), "start")) return report;
    absl::StatusOr<int> exit = (*crashing)->Wait(absl::Seconds(90));
    if (!exit.ok() || *exit != -SIGKILL) {
      report.Fail(absl::StrCat("the ingestor did not crash at ", stage));
      continue;
    }
    const int64_t at_crash = StoredCount(world);
    std::vector<std::unique_ptr<Process>> ingestors;
    ingestors.push_back(MustStart(world.StartIngestor("after-crash", small_batches), &report));
    if (!WaitForLedger(world, (*producer)->ledger(), kDrainTimeout)) {
      report.Fail(absl::StrCat("after the crash at ", stage, " not everything arrived"));
    }
    for (auto& p : ingestors) {
      if (p != nullptr && p->Stop(absl::Seconds(30)) != 0) report.Fail("unclean stop");
    }
    const std::vector<std::string> phase_logs(world.ingestor_logs().begin() + logs_before,
                                              world.ingestor_logs().end());
    const int64_t absorbed = RedeliveriesAbsorbed(phase_logs);
    report.Figure(absl::StrCat("crash ", stage, ": stored at the crash"), at_crash);
    report.Figure(absl::StrCat("crash ", stage, ": redeliveries absorbed"), absorbed);
    // Only a crash after the commit leaves stored messages to be redelivered.
    const bool after_commit = std::string(stage) == "before_offset_commit";
    if (after_commit && absorbed == 0) {
      report.Fail("a crash after the commit should have redelivered stored messages");
    }
    if (!after_commit && absorbed != 0) {
      report.Fail(
          absl::StrCat("a crash ", stage, " left something stored (", absorbed, " absorbed)"));
    }
  }
  CheckAgainstLedger(world, (*producer)->ledger(), &report);
  return report;
}

// 3. PostgreSQL stopped in immediate mode (a crash) and restarted during ingest.
Report PostgresCrash(World& world, const Scale& scale) {
  Report report;
  const int outages = scale.long_run ? 8 : 2;
  if (!report.Require(world.StartBroker(), "broker")) return report;
  BackgroundProducer producer(world, Producing("pg", 800, scale.seed),
                              scale.long_run ? 30'000 : 4'000);
  std::vector<std::unique_ptr<Process>> ingestors;
  ingestors.push_back(MustStart(world.StartIngestor("ingestor"), &report));
  std::mt19937_64 rng(scale.seed);
  int done = 0;
  for (; done < outages; ++done) {
    if (!WaitForProgress(world, producer)) {
      report.Fail("no progress after an outage");
      break;
    }
    absl::SleepFor(RandomDelay(rng, absl::Milliseconds(500)));
    if (!report.Require(world.postgres().Stop(/*immediate=*/true), "stop postgres")) break;
    absl::SleepFor(absl::Milliseconds(500) + RandomDelay(rng, absl::Seconds(2)));  // the outage
    if (!report.Require(world.postgres().Restart(), "restart postgres")) break;
  }
  report.Figure("immediate stops of PostgreSQL", done);
  if (ingestors[0] != nullptr && !ingestors[0]->running()) {
    report.Fail("the ingestor exited during the outages");
  }
  Finish(world, producer, ingestors, &report);
  report.Figure("store failures retried (logged)",
                CountLogLines(world.ingestor_logs(), "store failed; pausing"));
  report.Figure("checkpoint rounds failed (logged)",
                CountLogLines(world.ingestor_logs(), "checkpoint round failed"));
  return report;
}

// 4. Brokers down and back; injected request errors.
Report BrokerFaults(World& world, const Scale& scale) {
  Report report;
  if (!report.Require(world.StartBroker(), "broker")) return report;
  BackgroundProducer producer(world, Producing("bf", 800, scale.seed),
                              scale.long_run ? 30'000 : 5'000);
  std::vector<std::unique_ptr<Process>> ingestors;
  ingestors.push_back(MustStart(world.StartIngestor("ingestor"), &report));
  int faults = 0;
  const int rounds = scale.long_run ? 3 : 1;
  for (int round = 0; round < rounds; ++round) {
    const int broker = 1 + round % 3;
    if (!WaitForProgress(world, producer)) report.Fail("no progress");
    if (!report.Require(world.Broker(absl::StrCat("down ", broker)), "down")) break;
    absl::SleepFor(absl::Seconds(3));  // the outage
    if (!report.Require(world.Broker(absl::StrCat("up ", broker)), "up")) break;
    ++faults;
    if (!WaitForProgress(world, producer)) report.Fail("no progress after a broker came back");
    // Fetch: not leader; OffsetCommit: not coordinator; Heartbeat: rebalance in progress.
    for (const char* errors : {"errors 1 20 6", "errors 8 10 16", "errors 12 5 27"}) {
      if (report.Require(world.Broker(errors), errors)) ++faults;
    }
    if (!WaitForProgress(world, producer)) report.Fail("no progress after request errors");
    // JoinGroup: coordinator loading, met by a restarted ingestor.
    if (report.Require(world.Broker("errors 11 3 14"), "errors JoinGroup")) ++faults;
    if (ingestors[0] != nullptr) ingestors[0]->Stop(absl::Seconds(30));
    ingestors[0] = MustStart(world.StartIngestor("ingestor"), &report);
  }
  report.Figure("faults injected", faults);
  Finish(world, producer, ingestors, &report);
  report.Figure("offset commits failed (logged)",
                CountLogLines(world.ingestor_logs(), "offset commit failed"));
  return report;
}

// 5. Rebalance storm: three ingestors in one group, restarted in turn.
Report RebalanceStorm(World& world, const Scale& scale) {
  Report report;
  if (!report.Require(world.StartBroker(), "broker")) return report;
  BackgroundProducer producer(world, Producing("rb", 800, scale.seed),
                              scale.long_run ? 40'000 : 6'000);
  std::vector<std::unique_ptr<Process>> ingestors;
  for (int i = 0; i < 3; ++i) {
    ingestors.push_back(MustStart(world.StartIngestor(absl::StrCat("ingestor", i)), &report));
  }
  const int rounds = scale.long_run ? 4 : 1;
  int restarts = 0;
  for (int round = 0; round < rounds; ++round) {
    for (int i = 0; i < 3; ++i) {
      if (!WaitForProgress(world, producer)) report.Fail("no progress");
      if (ingestors[i] == nullptr) continue;
      // Alternate clean stops and crashes.
      if ((round + i) % 2 == 0) {
        ingestors[i]->Stop(absl::Seconds(30));
      } else {
        ingestors[i]->Signal(SIGKILL);
        (void)ingestors[i]->Wait(absl::Seconds(10));
      }
      ingestors[i] = MustStart(world.StartIngestor(absl::StrCat("ingestor", i)), &report);
      ++restarts;
    }
  }
  report.Figure("ingestor restarts", restarts);
  Finish(world, producer, ingestors, &report);
  return report;
}

// 6. Poison (~1%) and conflicting redeliveries, combined with kills.
Report PoisonWithKills(World& world, const Scale& scale) {
  Report report;
  if (!report.Require(world.StartBroker(), "broker")) return report;
  LedgerProducer::Options o = Producing("px", 800, scale.seed);
  o.poison_fraction = 0.01;
  o.conflict_fraction = 0.003;
  const int64_t events = scale.long_run ? 40'000 : 6'000;
  BackgroundProducer producer(world, o, kOpenEnded * events);
  KillIngestorRepeatedly(world, producer, scale.long_run ? 10 : 2, events, scale.seed, &report);
  return report;
}

// 7. A client replaying while ingest runs, the query server killed mid-stream.
Report ReplayContinuity(World& world, const Scale& scale) {
  Report report;
  if (!report.Require(world.StartBroker(), "broker")) return report;
  const int64_t events = scale.long_run ? 30'000 : 5'000;
  BackgroundProducer producer(world, Producing("rp", 800, scale.seed), kOpenEnded * events);
  std::vector<std::unique_ptr<Process>> ingestors;
  ingestors.push_back(MustStart(world.StartIngestor("ingestor"), &report));
  std::unique_ptr<Process> query = MustStart(world.StartQuery(), &report);
  if (query == nullptr) return report;
  const std::string address = world.query_address();
  const int port = std::stoi(address.substr(address.rfind(':') + 1));

  std::mutex mu;
  std::vector<int64_t> delivered;
  std::atomic<int64_t> count{0};
  std::atomic<int64_t> stop_at{-1};
  absl::Status client_end;
  int reconnects = 0;
  ReplayOptions options;
  options.max_reconnect_attempts = 0;  // a follower keeps trying
  options.max_backoff = absl::Milliseconds(500);
  v1::ReplayEventsRequest request;
  request.set_follow(true);
  request.set_max_events_per_frame(200);
  ReplayStream replay =
      AuditClient(MakeAuditConnection({.target = address})).Replay(request, options);
  std::thread client([&] {
    while (true) {
      absl::StatusOr<std::optional<v1::StoredEvent>> e = replay.Next();
      if (!e.ok()) {
        client_end = e.status();
        break;
      }
      if (!e->has_value()) break;
      {
        std::lock_guard<std::mutex> lock(mu);
        delivered.push_back((*e)->position());
      }
      const int64_t n = ++count;
      if (stop_at.load() >= 0 && n >= stop_at.load()) break;
    }
    reconnects = replay.reconnects();
  });

  const int kills = scale.long_run ? 10 : 3;
  std::mt19937_64 rng(scale.seed);
  int done = 0;
  for (; done < kills; ++done) {
    const int64_t before = count.load();
    if (!WaitUntil([&] { return count.load() > before; }, absl::Seconds(60))) {
      report.Fail("the replay made no progress");
      break;
    }
    absl::SleepFor(RandomDelay(rng, absl::Milliseconds(500)));
    query->Signal(SIGKILL);
    (void)query->Wait(absl::Seconds(10));
    query = MustStart(world.StartQuery(port), &report);
    if (query == nullptr) break;
  }
  report.Figure("query server kill -9", done);
  producer.StopOnceAcknowledged(events);
  Finish(world, producer, ingestors, &report);
  const int64_t head = world.Count("SELECT count(*) FROM audit.events").value_or(-1);
  stop_at = head;
  if (!WaitUntil([&] { return count.load() >= head; }, absl::Seconds(90))) {
    report.Fail(absl::StrCat("the replay delivered ", count.load(), " of ", head));
  }
  replay.Cancel();
  client.join();
  int64_t out_of_order = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (size_t i = 0; i < delivered.size(); ++i) {
      if (delivered[i] != static_cast<int64_t>(i) + 1) ++out_of_order;
    }
  }
  report.Figure("events replayed", count.load());
  report.Figure("client reconnects", reconnects);
  report.Figure("positions repeated or skipped", out_of_order);
  if (out_of_order > 0) report.Fail("the replay was not contiguous");
  if (reconnects < done) report.Fail("the client did not reconnect after every kill");
  return report;
}

// 8. Resource limits.
Report ResourceLimits(World& world, const Scale& scale) {
  Report report;
  if (!report.Require(world.StartBroker(), "broker")) return report;
  const int64_t events = scale.long_run ? 50'000 : 10'000;
  BackgroundProducer producer(world, Producing("rl", 0, scale.seed), events);
  std::vector<std::unique_ptr<Process>> ingestors;
  ingestors.push_back(MustStart(world.StartIngestor("ingestor"), &report));
  Finish(world, producer, ingestors, &report);
  constexpr int kMaxStreams = 8;
  std::unique_ptr<Process> query = MustStart(
      world.StartQuery(0, {absl::StrCat("--max_streams=", kMaxStreams), "--max_queue=16"}),
      &report);
  if (query == nullptr) return report;
  auto channel = grpc::CreateChannel(world.query_address(), grpc::InsecureChannelCredentials());
  auto stub = v1::AuditService::NewStub(channel);
  const auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(30); };
  // Oversized requests.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    v1::ListEventsRequest r;
    r.mutable_filter()->set_data_contains(
        absl::StrCat("{\"k\": \"", std::string(70 * 1024, 'x'), "\"}"));
    v1::ListEventsResponse out;
    const grpc::Status s = stub->ListEvents(&ctx, r, &out);
    report.Figure("70 KiB data_contains",
                  absl::StrCat(s.error_code(), " ", s.error_message().substr(0, 40)));
    if (s.error_code() != grpc::StatusCode::INVALID_ARGUMENT) report.Fail("70 KiB filter accepted");
  }
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    v1::ListEventsRequest r;
    r.mutable_filter()->set_subject(std::string(5 << 20, 's'));
    v1::ListEventsResponse out;
    const grpc::Status s = stub->ListEvents(&ctx, r, &out);
    report.Figure("5 MiB request", absl::StrCat(s.error_code()));
    if (s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED)
      report.Fail("5 MiB request accepted");
  }
  const int64_t rss_idle = query->PeakRssKib();
  // Streams over the limit.
  {
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::vector<std::unique_ptr<grpc::ClientReader<v1::ReplayEventsResponse>>> readers;
    v1::ReplayEventsRequest live;
    live.set_follow(true);
    live.set_after_position(events);
    for (int i = 0; i < kMaxStreams; ++i) {
      contexts.push_back(std::make_unique<grpc::ClientContext>());
      readers.push_back(stub->ReplayEvents(contexts.back().get(), live));
      v1::ReplayEventsResponse frame;
      if (!readers.back()->Read(&frame)) report.Fail("a stream within the limit failed");
    }
    grpc::ClientContext ctx;
    auto extra = stub->ReplayEvents(&ctx, live);
    v1::ReplayEventsResponse frame;
    while (extra->Read(&frame)) {
    }
    const grpc::Status s = extra->Finish();
    report.Figure("stream over the limit", absl::StrCat(s.error_code()));
    if (s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED)
      report.Fail("stream limit not enforced");
    for (size_t i = 0; i < readers.size(); ++i) {
      contexts[i]->TryCancel();
      while (readers[i]->Read(&frame)) {
      }
      readers[i]->Finish();
    }
  }
  // Slow readers of full replays: the server holds at most two frames per stream, not the log.
  {
    std::atomic<bool> stop{false};
    std::vector<std::thread> slow;
    std::atomic<int64_t> frames{0};
    for (int i = 0; i < kMaxStreams - 2; ++i) {
      slow.emplace_back([&] {
        grpc::ClientContext ctx;
        v1::ReplayEventsRequest r;
        r.set_max_events_per_frame(100);
        auto reader = stub->ReplayEvents(&ctx, r);
        v1::ReplayEventsResponse frame;
        while (!stop.load() && reader->Read(&frame)) {
          ++frames;
          absl::SleepFor(absl::Milliseconds(300));  // a very slow consumer
        }
        ctx.TryCancel();
        while (reader->Read(&frame)) {
        }
        reader->Finish();
      });
    }
    WaitUntil([&] { return frames.load() >= 3 * (kMaxStreams - 2); }, absl::Seconds(60));
    absl::SleepFor(absl::Seconds(2));  // let buffers fill if anything buffers without bound
    const int64_t rss_slow = query->PeakRssKib();
    stop = true;
    for (auto& t : slow) t.join();
    absl::StatusOr<std::vector<std::string>> size =
        world.Query("SELECT sum(pg_column_size(e.*)) FROM audit.events e");
    const int64_t log_kib = size.ok() && !size->empty() ? std::stoll((*size)[0]) / 1024 : 0;
    report.Figure("query server peak RSS idle (KiB)", rss_idle);
    report.Figure("query server peak RSS with slow readers (KiB)", rss_slow);
    report.Figure("log size (KiB) x slow readers", log_kib * (kMaxStreams - 2));
    // Unbounded buffering would hold every slow reader's whole replay.
    if (rss_slow - rss_idle > log_kib * (kMaxStreams - 2) / 2) {
      report.Fail("server memory grew with what slow readers had not read");
    }
  }
  // A flood of unary calls over the queue limit.
  {
    grpc::CompletionQueue cq;
    constexpr int kCalls = 300;
    std::vector<std::unique_ptr<grpc::ClientContext>> ctxs(kCalls);
    std::vector<v1::GetStatisticsResponse> responses(kCalls);
    std::vector<grpc::Status> statuses(kCalls);
    std::vector<std::unique_ptr<grpc::ClientAsyncResponseReader<v1::GetStatisticsResponse>>> calls;
    for (int i = 0; i < kCalls; ++i) {
      ctxs[i] = std::make_unique<grpc::ClientContext>();
      ctxs[i]->set_deadline(deadline());
      calls.push_back(stub->AsyncGetStatistics(ctxs[i].get(), v1::GetStatisticsRequest(), &cq));
      calls.back()->Finish(&responses[i], &statuses[i],
                           reinterpret_cast<void*>(static_cast<intptr_t>(i)));
    }
    int ok = 0, exhausted = 0, other = 0;
    for (int i = 0; i < kCalls; ++i) {
      void* tag;
      bool success;
      cq.Next(&tag, &success);
      const grpc::Status& s = statuses[reinterpret_cast<intptr_t>(tag)];
      if (s.ok()) {
        ++ok;
      } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++exhausted;
      } else {
        ++other;
      }
    }
    report.Figure("300 concurrent calls: OK", ok);
    report.Figure("300 concurrent calls: RESOURCE_EXHAUSTED", exhausted);
    if (other > 0) report.Fail(absl::StrCat(other, " calls failed otherwise"));
    if (exhausted == 0) report.Fail("the queue limit was never reached");
  }
  query->Stop(absl::Seconds(10));
  return report;
}

// 9. The database runs out of disk space, and space is freed again.
Report DiskFull(World& world, const Scale& scale) {
  Report report;
  const std::string dir = world.scenario_dir() + "/small-disk";
  mkdir(dir.c_str(), 0755);
  const std::string size = scale.long_run ? "size=24m" : "size=12m";
  if (geteuid() != 0 || mount("tmpfs", dir.c_str(), "tmpfs", 0, size.c_str()) != 0) {
    report.Figure("skipped", "needs root to mount a small filesystem");
    return report;
  }
  // Unmounted on every way out (lazily: PostgreSQL may still hold files until it restarts).
  struct Unmount {
    std::string dir;
    ~Unmount() { umount2(dir.c_str(), MNT_DETACH); }
  } unmount{dir};
  const std::string ts = dir + "/ts";
  mkdir(ts.c_str(), 0700);
  if (const passwd* pw = getpwnam("postgres")) (void)chown(ts.c_str(), pw->pw_uid, pw->pw_gid);
  absl::StatusOr<std::vector<std::string>> created =
      world.Query(absl::StrCat("CREATE TABLESPACE small_disk LOCATION '", ts, "'"));
  if (!report.Require(created.status(), "create a tablespace on the small disk")) return report;
  absl::StatusOr<std::vector<std::string>> moved = world.Query(absl::StrCat(
      "ALTER TABLE audit.events SET TABLESPACE small_disk; ",
      "DO $$ DECLARE i record; BEGIN FOR i IN SELECT indexname FROM pg_indexes WHERE "
      "schemaname = 'audit' AND tablename = 'events' LOOP EXECUTE format('ALTER INDEX audit.%I "
      "SET TABLESPACE small_disk', i.indexname); END LOOP; END $$; SELECT 1"));
  if (!report.Require(moved.status(), "move the events to the small disk")) return report;
  if (!report.Require(world.StartBroker(), "broker")) return report;
  BackgroundProducer producer(world, Producing("df", 0, scale.seed),
                              scale.long_run ? 60'000 : 25'000);
  std::vector<std::unique_ptr<Process>> ingestors;
  ingestors.push_back(MustStart(world.StartIngestor("ingestor"), &report));
  const bool full =
      WaitUntil([&] { return CountLogLines(world.ingestor_logs(), "No space left on device") > 0; },
                absl::Minutes(3), absl::Milliseconds(100));
  const absl::Time full_at = absl::Now();
  if (!full) report.Fail("the disk never filled up");
  const int64_t at_full = StoredCount(world);
  absl::SleepFor(absl::Seconds(3));  // the ingestor keeps retrying while the disk is full
  const int64_t after_wait = StoredCount(world);
  const int64_t dead_while_full =
      world.Count("SELECT count(*) FROM audit.dead_letters").value_or(-1);
  report.Figure("stored when the disk filled", at_full);
  report.Figure("dead letters while full", dead_while_full);
  if (dead_while_full != 0) report.Fail("something was dead-lettered because the disk was full");
  if (after_wait != at_full) report.Fail("the store grew while the disk was full");
  if (ingestors[0] == nullptr || !ingestors[0]->running()) report.Fail("the ingestor exited");
  // Free space: the ingestor resumes by itself.
  if (mount("tmpfs", dir.c_str(), "tmpfs", MS_REMOUNT, "size=1g") != 0) {
    report.Fail("cannot grow the filesystem");
  }
  if (!WaitForProgress(world, producer, absl::Minutes(2))) {
    report.Fail("no progress after space was freed");
  }
  report.Figure("stalled while full until resumed (ms)",
                absl::ToInt64Milliseconds(absl::Now() - full_at));
  Finish(world, producer, ingestors, &report);
  report.Figure("store failures retried (logged)",
                CountLogLines(world.ingestor_logs(), "store failed; pausing"));
  (void)world.Query(
      "DO $$ DECLARE i record; BEGIN FOR i IN SELECT indexname FROM pg_indexes WHERE "
      "schemaname = 'audit' AND tablename = 'events' LOOP EXECUTE format('ALTER INDEX audit.%I "
      "SET TABLESPACE pg_default', i.indexname); END LOOP; END $$; "
      "ALTER TABLE audit.events SET TABLESPACE pg_default; SELECT 1");
  (void)world.Query("DROP TABLESPACE small_disk");
  return report;
}

}  // namespace

const std::vector<Scenario>& AllScenarios() {
  static const auto* scenarios = new std::vector<Scenario>{
      {"kill9", "kill -9 the ingestor at random moments of active ingest", &KillNine},
      {"crash_points", "crash before the insert, before the commit, before the offset commit",
       &CrashPoints},
      {"postgres_crash", "PostgreSQL stopped in immediate mode and restarted during ingest",
       &PostgresCrash},
      {"broker_faults", "brokers down and back; Fetch, OffsetCommit, Heartbeat, JoinGroup errors",
       &BrokerFaults},
      {"rebalance_storm", "three ingestors in one group, restarted in turn", &RebalanceStorm},
      {"poison_kills", "~1% poison and conflicting redeliveries, with kills", &PoisonWithKills},
      {"replay_continuity", "a live replay while the query server is killed", &ReplayContinuity},
      {"resource_limits", "oversized requests, stream and queue limits, slow readers' memory",
       &ResourceLimits},
      {"disk_full", "the database's disk fills up, then space is freed", &DiskFull},
  };
  return *scenarios;
}

}  // namespace audit::torture
