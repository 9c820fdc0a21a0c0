#include "services/ingestor/ingestor.h"

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/log.h"

namespace audit::ingestor {
namespace {

// Splits `batch` into two halves, preserving order, and returns them.
std::pair<AppendBatch, AppendBatch> Halve(const AppendBatch& batch) {
  std::pair<AppendBatch, AppendBatch> halves;
  const size_t total = batch.events.size() + batch.dead_letters.size();
  size_t i = 0;
  for (const EventEntry& e : batch.events) {
    (i++ < total / 2 ? halves.first : halves.second).events.push_back(e);
  }
  for (const DeadLetterEntry& d : batch.dead_letters) {
    (i++ < total / 2 ? halves.first : halves.second).dead_letters.push_back(d);
  }
  return halves;
}

}  // namespace

Ingestor::Ingestor(RecordSource& source, EventSink& sink, IngestorOptions options)
    : source_(source), sink_(sink), options_(std::move(options)) {}

// A polled batch, decoded: what the store needs. `append` points into `records` and
// `decoded`, whose buffers stay put when the struct moves.
struct Ingestor::Prepared {
  RecordBatch records;
  std::vector<Decoded> decoded;
  AppendBatch append;
};

std::unique_ptr<Ingestor::Prepared> Ingestor::Prepare(RecordBatch batch,
                                                      std::unique_ptr<Prepared> reuse,
                                                      size_t max_threads) {
  std::unique_ptr<Prepared> p = std::move(reuse);
  if (p != nullptr) {
    const absl::Time release_start = absl::Now();
    Release(*p);
    stats_.release_nanos += absl::ToInt64Nanoseconds(absl::Now() - release_start);
  } else {
    p = std::make_unique<Prepared>();
  }
  p->records = std::move(batch);
  p->append.events.clear();
  p->append.dead_letters.clear();
  const size_t n = p->records.records.size();
  p->decoded.resize(n);
  p->append.events.reserve(n);
  // Decoding is pure: large batches are split across threads.
  if (max_threads == 0) max_threads = options_.decode_threads;
  const size_t threads = n < 512 ? 1 : std::max<size_t>(1, std::min<size_t>(max_threads, n / 256));
  const auto decode_range = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      DecodeInto(p->records.records[i], options_.decoder, &p->decoded[i]);
    }
  };
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t) {
    helpers.emplace_back(decode_range, n * t / threads, n * (t + 1) / threads);
  }
  decode_range(0, n / threads);
  for (std::thread& h : helpers) h.join();
  for (size_t i = 0; i < p->records.records.size(); ++i) {
    const KafkaRecord& r = p->records.records[i];
    const Decoded& d = p->decoded[i];
    if (d.status.ok()) {
      p->append.events.push_back({&r, &d.event, d.content_hash});
    } else {
      p->append.dead_letters.push_back({&r, ErrorClassOf(d.status), std::string(d.status.message()),
                                        d.event.source(), d.event.id()});
    }
  }
  return p;
}

void Ingestor::Release(Prepared& p) {
  p.append.events.clear();
  p.append.dead_letters.clear();
  p.records.records.clear();
  p.records.owners.clear();
}

absl::Status Ingestor::Run(const absl::Notification& stop) {
  LogInfo("ingestor running")
      .With("batch_max_records", static_cast<int64_t>(options_.batch_max_records));
  // The next batch, polled (without waiting) and decoded on a helper thread while the current
  // one is being stored: decoding overlaps the database's work.
  std::unique_ptr<Prepared> ahead;
  // The last stored batch: the next Prepare (on the helper thread) frees its messages and
  // decodes into its events.
  std::unique_ptr<Prepared> spare;
  // Whether the loop last had to wait for decoding: only then is the next batch decoded on
  // several threads. Otherwise one is enough to finish before the store does, and leaves a
  // core to PostgreSQL, which is the bottleneck.
  bool decode_was_waited_for = true;
  while (!stop.HasBeenNotified()) {
    std::unique_ptr<Prepared> current = std::move(ahead);
    if (current == nullptr) {
      RecordBatch batch;
      if (!pending_.empty()) {
        batch.Append(std::move(pending_));
      } else {
        const absl::Time poll_start = absl::Now();
        absl::StatusOr<RecordBatch> polled =
            source_.Poll(options_.batch_max_records, options_.poll_wait);
        stats_.poll_nanos += absl::ToInt64Nanoseconds(absl::Now() - poll_start);
        if (!polled.ok()) return polled.status();
        batch = *std::move(polled);
      }
      MaybeLogStats();
      if (batch.empty()) continue;
      const absl::Time t = absl::Now();
      current = Prepare(std::move(batch), std::move(spare));
      stats_.decode_nanos += absl::ToInt64Nanoseconds(absl::Now() - t);
    }
    // The next batch, taken and decoded on a helper thread while this one is stored: the
    // records kept while retrying, or what the source has ready (without waiting). The helper
    // has the source to itself until it notifies `source_free` (AwaitSource).
    absl::Notification source_free;
    absl::Status poll_ahead;
    std::unique_ptr<Prepared> unused_spare;
    std::thread helper;
    if (options_.decode_ahead) {
      const size_t threads = decode_was_waited_for ? options_.decode_threads : 1;
      helper = std::thread([this, &source_free, &poll_ahead, &unused_spare, &ahead, threads,
                            next = std::exchange(pending_, RecordBatch()),
                            reuse = std::move(spare)]() mutable {
        if (next.empty()) {
          const absl::Time poll_start = absl::Now();
          absl::StatusOr<RecordBatch> polled =
              source_.Poll(options_.batch_max_records, absl::ZeroDuration());
          stats_.poll_ahead_nanos += absl::ToInt64Nanoseconds(absl::Now() - poll_start);
          if (polled.ok()) {
            next = *std::move(polled);
          } else {
            poll_ahead = polled.status();
          }
        }
        source_free.Notify();
        if (next.empty()) {
          unused_spare = std::move(reuse);
        } else {
          ahead = Prepare(std::move(next), std::move(reuse), threads);
        }
      });
      source_free_ = &source_free;
    }
    absl::Status stored = StoreAndCommit(*current, stop);
    if (helper.joinable()) {
      const absl::Time wait_start = absl::Now();
      helper.join();
      const absl::Duration waited = absl::Now() - wait_start;
      stats_.decode_wait_nanos += absl::ToInt64Nanoseconds(waited);
      decode_was_waited_for = waited > absl::Microseconds(200);
      source_free_ = nullptr;
      if (unused_spare != nullptr) spare = std::move(unused_spare);
    }
    MaybeLogStats();
    if (!stored.ok()) {
      LogWarning("stopping with a batch not stored; it will be delivered again")
          .With("records", static_cast<int64_t>(current->records.records.size()))
          .With(stored);
      break;
    }
    if (!poll_ahead.ok()) return poll_ahead;
    spare = std::move(current);
  }
  LogInfo("ingestor stopped")
      .With("events_stored", stats_.events_stored.load())
      .With("duplicates", stats_.duplicates.load())
      .With("dead_letters", stats_.dead_letters.load());
  return absl::OkStatus();
}

absl::Status Ingestor::ProcessBatch(RecordBatch& batch, const absl::Notification& stop) {
  const absl::Time t = absl::Now();
  std::unique_ptr<Prepared> p = Prepare(std::move(batch));
  stats_.decode_nanos += absl::ToInt64Nanoseconds(absl::Now() - t);
  absl::Status s = StoreAndCommit(*p, stop);
  batch = std::move(p->records);
  return s;
}

absl::Status Ingestor::StoreAndCommit(Prepared& p, const absl::Notification& stop) {
  stats_.records += static_cast<int64_t>(p.records.records.size());
  absl::Time t = absl::Now();
  if (absl::Status s = StoreWithRetry(p.append, stop); !s.ok()) return s;
  stats_.store_nanos += absl::ToInt64Nanoseconds(absl::Now() - t);
  stats_.batches++;
  AwaitSource();
  t = absl::Now();
  absl::Status committed = source_.Commit(p.records);
  stats_.offset_commit_nanos += absl::ToInt64Nanoseconds(absl::Now() - t);
  if (!committed.ok()) {
    // Stored but not committed: a later delivery of these messages is absorbed.
    stats_.commit_failures++;
    LogWarning("offset commit failed; messages will be redelivered and absorbed").With(committed);
  }
  return absl::OkStatus();
}

absl::Status Ingestor::StoreWithRetry(const AppendBatch& batch, const absl::Notification& stop) {
  absl::Duration backoff = options_.retry_initial_backoff;
  bool paused = false;
  while (true) {
    absl::StatusOr<AppendResult> r = sink_.Append(batch);
    if (r.ok()) {
      if (paused) {
        AwaitSource();
        source_.Resume();
        LogInfo("store available again; resuming");
      }
      Count(*r);
      return absl::OkStatus();
    }
    if (r.status().code() == absl::StatusCode::kInvalidArgument) {
      if (paused) {
        AwaitSource();
        source_.Resume();
      }
      return Isolate(batch, r.status(), stop);
    }
    stats_.transient_failures++;
    if (stop.HasBeenNotified()) {
      if (stop_seen_ == absl::InfiniteFuture()) stop_seen_ = absl::Now();
      if (absl::Now() - stop_seen_ > options_.shutdown_grace) {
        return absl::UnavailableError(
            absl::StrCat("store still failing at shutdown: ", r.status().message()));
      }
    }
    if (!paused) {
      AwaitSource();
      source_.Pause();
      paused = true;
    }
    LogWarning("store failed; pausing consumption and retrying")
        .With(r.status())
        .With("retry_in", backoff);
    WaitServingSource(backoff);
    backoff = std::min(backoff * 2, options_.retry_max_backoff);
  }
}

absl::Status Ingestor::Isolate(const AppendBatch& batch, const absl::Status& refusal,
                               const absl::Notification& stop) {
  stats_.isolations++;
  if (batch.events.size() + batch.dead_letters.size() > 1) {
    auto [first, second] = Halve(batch);
    if (absl::Status s = StoreWithRetry(first, stop); !s.ok()) return s;
    return StoreWithRetry(second, stop);
  }
  // A single entry the database refuses: dead-letter it on its own, raw, with the reason.
  AppendBatch single;
  if (!batch.events.empty()) {
    const EventEntry& e = batch.events[0];
    single.dead_letters.push_back(
        {e.record, ErrorClass::kRejectedByStore,
         absl::StrCat("the database refused this event: ", refusal.message()), e.event->source(),
         e.event->id()});
  } else {
    DeadLetterEntry d = batch.dead_letters[0];
    if (d.error_class == ErrorClass::kRejectedByStore) {
      // Even the raw dead letter was refused. Never expected (raw columns are bytea); report
      // it as a failure rather than lose the message: it stays uncommitted.
      return absl::InternalError(absl::StrCat("dead letter refused at ", d.record->topic, "/",
                                              d.record->partition, "@", d.record->offset, ": ",
                                              refusal.message()));
    }
    d.error_class = ErrorClass::kRejectedByStore;
    d.reason =
        absl::StrCat("the database refused this dead letter (", d.reason, "): ", refusal.message());
    single.dead_letters.push_back(d);
  }
  LogWarning("message refused by the database; dead-lettering it")
      .With("topic", single.dead_letters[0].record->topic)
      .With("partition", single.dead_letters[0].record->partition)
      .With("offset", single.dead_letters[0].record->offset)
      .With("reason", single.dead_letters[0].reason);
  return StoreWithRetry(single, stop);
}

void Ingestor::AwaitSource() {
  if (source_free_ != nullptr) source_free_->WaitForNotification();
}

void Ingestor::WaitServingSource(absl::Duration delay) {
  AwaitSource();
  const absl::Time until = absl::Now() + delay;
  while (absl::Now() < until) {
    absl::StatusOr<RecordBatch> strays =
        source_.Poll(options_.batch_max_records, std::min(until - absl::Now(), absl::Seconds(1)));
    if (strays.ok() && !strays->empty()) pending_.Append(std::move(*strays));
  }
}

void Ingestor::Count(const AppendResult& r) {
  stats_.events_stored += r.appended;
  stats_.duplicates += r.duplicates;
  stats_.conflicts += r.conflicts;
  stats_.dead_letters += r.dead_letters_written;
  stats_.dead_letters_existing += r.dead_letters_existing;
  if (r.last_position > 0) stats_.last_position = r.last_position;
  // One line per stored batch at debug level: the torture suite sums these to report how many
  // redeliveries the store absorbed.
  LogDebug("batch stored")
      .With("appended", r.appended)
      .With("duplicates", r.duplicates)
      .With("conflicts", r.conflicts)
      .With("dead_letters_written", r.dead_letters_written)
      .With("dead_letters_existing", r.dead_letters_existing);
  if (r.dead_letters_written > 0) {
    LogInfo("dead letters written")
        .With("count", r.dead_letters_written)
        .With("conflicts", r.conflicts);
  }
}

void Ingestor::MaybeLogStats() {
  const absl::Time now = absl::Now();
  if (now < next_stats_) return;
  next_stats_ = now + options_.stats_interval;
  LogInfo("ingestor progress")
      .With("records", stats_.records.load())
      .With("events_stored", stats_.events_stored.load())
      .With("duplicates", stats_.duplicates.load())
      .With("dead_letters", stats_.dead_letters.load())
      .With("transient_failures", stats_.transient_failures.load())
      .With("last_position", stats_.last_position.load());
}

}  // namespace audit::ingestor
