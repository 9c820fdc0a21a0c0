#include "services/ingestor/ingestor.h"

#include <algorithm>
#include <string>
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

absl::Status Ingestor::Run(const absl::Notification& stop) {
  LogInfo("ingestor running")
      .With("batch_max_records", static_cast<int64_t>(options_.batch_max_records));
  while (!stop.HasBeenNotified()) {
    RecordBatch batch;
    if (!pending_.empty()) {
      batch.Append(std::move(pending_));
    } else {
      absl::StatusOr<RecordBatch> polled =
          source_.Poll(options_.batch_max_records, options_.poll_wait);
      if (!polled.ok()) return polled.status();
      batch = *std::move(polled);
    }
    MaybeLogStats();
    if (batch.empty()) continue;
    if (absl::Status s = ProcessBatch(batch, stop); !s.ok()) {
      LogWarning("stopping with a batch not stored; it will be delivered again")
          .With("records", static_cast<int64_t>(batch.records.size()))
          .With(s);
      break;
    }
  }
  LogInfo("ingestor stopped")
      .With("events_stored", stats_.events_stored.load())
      .With("duplicates", stats_.duplicates.load())
      .With("dead_letters", stats_.dead_letters.load());
  return absl::OkStatus();
}

absl::Status Ingestor::ProcessBatch(RecordBatch& batch, const absl::Notification& stop) {
  stats_.records += static_cast<int64_t>(batch.records.size());
  std::vector<Decoded> decoded;
  decoded.reserve(batch.records.size());
  AppendBatch append;
  append.events.reserve(batch.records.size());
  for (const KafkaRecord& r : batch.records) {
    decoded.push_back(Decode(r, options_.decoder));
    const Decoded& d = decoded.back();
    if (d.status.ok()) {
      append.events.push_back({&r, &d.event, d.content_hash});
    } else {
      append.dead_letters.push_back({&r, ErrorClassOf(d.status), std::string(d.status.message()),
                                     d.event.source(), d.event.id()});
    }
  }
  if (absl::Status s = StoreWithRetry(append, stop); !s.ok()) return s;
  stats_.batches++;
  if (absl::Status s = source_.Commit(batch); !s.ok()) {
    // Stored but not committed: a later delivery of these messages is absorbed.
    stats_.commit_failures++;
    LogWarning("offset commit failed; messages will be redelivered and absorbed").With(s);
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
        source_.Resume();
        LogInfo("store available again; resuming");
      }
      Count(*r);
      return absl::OkStatus();
    }
    if (r.status().code() == absl::StatusCode::kInvalidArgument) {
      if (paused) source_.Resume();
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

void Ingestor::WaitServingSource(absl::Duration delay) {
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
