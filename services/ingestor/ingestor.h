// The ingest loop: poll a batch, decode it (the next one is polled and decoded already, on a
// helper thread, while this one is stored), append it, commit its offsets; repeat.
//
// Guarantees (docs/ARCHITECTURE.md, "Delivery guarantees"):
//  - offsets are committed only after the batch's database transaction committed, so a crash
//    at any point leads to redelivery, never loss;
//  - redelivery stores nothing twice: the sink absorbs identical (source, id) events and
//    dead letters already written for the same Kafka message;
//  - a transient store failure (database down, timeout) never dead-letters anything: the
//    source is paused, the same batch retried with exponential backoff, then resumed;
//  - content the database refuses is isolated by bisecting the batch and dead-lettered alone
//    (class rejected_by_store), so one bad message cannot block a partition.
//
// Thread safety: Run() on one thread; stats() from any thread.
#ifndef SERVICES_INGESTOR_INGESTOR_H_
#define SERVICES_INGESTOR_INGESTOR_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "services/ingestor/decoder.h"
#include "services/ingestor/event_sink.h"
#include "services/ingestor/record_source.h"

namespace audit::ingestor {

struct IngestorOptions {
  size_t batch_max_records = 2000;
  // How long Poll waits for a first record when idle.
  absl::Duration poll_wait = absl::Milliseconds(200);
  DecoderOptions decoder;
  absl::Duration retry_initial_backoff = absl::Milliseconds(100);
  absl::Duration retry_max_backoff = absl::Seconds(10);
  // After a stop request, how long a batch stuck on an unavailable database may keep
  // retrying before the ingestor exits without committing it (it is redelivered later).
  absl::Duration shutdown_grace = absl::Seconds(30);
  absl::Duration stats_interval = absl::Seconds(10);
  // Poll (without waiting) and decode the next batch on a helper thread while the current one
  // is stored. Never delays a batch: at low traffic there is nothing to look ahead at.
  bool decode_ahead = true;
  // Threads decoding a large batch (decoding is pure; the database is the bottleneck, but the
  // consumer alone must be far faster than it).
  size_t decode_threads = 2;
};

// Counters since start. Readable from any thread.
struct IngestorStats {
  std::atomic<int64_t> records{0};
  std::atomic<int64_t> batches{0};
  std::atomic<int64_t> events_stored{0};
  std::atomic<int64_t> duplicates{0};
  std::atomic<int64_t> conflicts{0};              // same (source, id), other content
  std::atomic<int64_t> dead_letters{0};           // written (conflicts included)
  std::atomic<int64_t> dead_letters_existing{0};  // redelivered, already written
  std::atomic<int64_t> transient_failures{0};
  std::atomic<int64_t> isolations{0};  // batches split to find refused content
  std::atomic<int64_t> commit_failures{0};
  std::atomic<int64_t> last_position{0};
  // Where the loop's time went (nanoseconds), on the loop's own thread: waiting for records
  // when none were polled ahead (including the wait for the group's first assignment),
  // decoding a batch that was not decoded ahead, storing (with retries), committing offsets,
  // and waiting for the helper to take and decode the next batch after the store returned.
  std::atomic<int64_t> poll_nanos{0};
  std::atomic<int64_t> decode_nanos{0};
  std::atomic<int64_t> store_nanos{0};
  std::atomic<int64_t> offset_commit_nanos{0};
  std::atomic<int64_t> decode_wait_nanos{0};
  // On the helper thread while a batch is stored (decode-ahead): taking the next batch from
  // the source without waiting, and freeing a stored batch (its Kafka messages) before its
  // decoded events are reused.
  std::atomic<int64_t> poll_ahead_nanos{0};
  std::atomic<int64_t> release_nanos{0};
};

class Ingestor {
 public:
  // `source` and `sink` must outlive the Ingestor.
  Ingestor(RecordSource& source, EventSink& sink, IngestorOptions options);

  // Runs until `stop` is notified, then finishes the batch in flight (within
  // shutdown_grace) and returns. Errors only for a failure of the source itself.
  absl::Status Run(const absl::Notification& stop);

  // Decodes, stores and commits one batch, retrying transient failures until stored or until
  // `stop` has been notified for longer than shutdown_grace (then UNAVAILABLE: not committed).
  absl::Status ProcessBatch(RecordBatch& batch, const absl::Notification& stop);

  const IngestorStats& stats() const { return stats_; }

 private:
  struct Prepared;
  // Decodes `batch`, into `reuse` if given (a stored batch: released here, its events keep
  // their buffers). Decodes on up to `threads` threads (options_.decode_threads if 0).
  std::unique_ptr<Prepared> Prepare(RecordBatch batch, std::unique_ptr<Prepared> reuse = nullptr,
                                    size_t threads = 0);
  // Frees what a stored batch holds of Kafka's (its messages) and keeps its decoded events
  // for the next Prepare.
  static void Release(Prepared& p);
  // Waits until the helper thread is done with the source (no-op without one): the source is
  // used by one thread at a time.
  void AwaitSource();
  absl::Status StoreAndCommit(Prepared& p, const absl::Notification& stop);
  // Appends with retries; bisects on INVALID_ARGUMENT.
  absl::Status StoreWithRetry(const AppendBatch& batch, const absl::Notification& stop);
  absl::Status Isolate(const AppendBatch& batch, const absl::Status& refusal,
                       const absl::Notification& stop);
  // Waits `delay` while keeping the source's group membership alive; records that still
  // arrive (fetched before the pause) are kept for later, never dropped.
  void WaitServingSource(absl::Duration delay);
  void Count(const AppendResult& r);
  void MaybeLogStats();

  RecordSource& source_;
  EventSink& sink_;
  IngestorOptions options_;
  IngestorStats stats_;
  RecordBatch pending_;  // records polled while waiting to retry
  // Notified once the decode-ahead helper no longer uses the source; null when none runs.
  absl::Notification* source_free_ = nullptr;
  absl::Time next_stats_ = absl::InfinitePast();
  absl::Time stop_seen_ = absl::InfiniteFuture();
};

}  // namespace audit::ingestor

#endif  // SERVICES_INGESTOR_INGESTOR_H_
