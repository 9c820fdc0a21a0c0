// Tracks the head of the log and wakes live replays when it moves.
//
// A dedicated thread holds a connection that LISTENs on `audit_events` (the store NOTIFYs on
// every commit, with the new head) and re-reads audit.append_head every poll interval, so a
// missed notification delays a wake-up by one interval at most. It reconnects by itself; while
// the database is unreachable, healthy() is false. Thread-safe.
#ifndef SERVICES_QUERY_HEAD_WATCHER_H_
#define SERVICES_QUERY_HEAD_WATCHER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace audit::query {

class HeadWatcher {
 public:
  struct Options {
    std::string url;  // a role in audit_reader
    absl::Duration poll_interval = absl::Seconds(1);
  };
  using WaiterId = uint64_t;

  explicit HeadWatcher(Options options);
  ~HeadWatcher();

  HeadWatcher(const HeadWatcher&) = delete;
  HeadWatcher& operator=(const HeadWatcher&) = delete;

  // Calls `wake` once, from the watcher's thread, as soon as the head is beyond `position`
  // (possibly right away). `wake` must not block. Returns an id for Cancel().
  WaiterId WaitBeyond(int64_t position, std::function<void()> wake);
  // Forgets a waiter that has not been woken yet; returns whether it was still waiting.
  bool Cancel(WaiterId id);

  int64_t head() const { return head_.load(); }
  bool healthy() const { return healthy_.load(); }

 private:
  void Run();
  void Advance(int64_t head);

  Options options_;
  std::atomic<int64_t> head_{-1};
  std::atomic<bool> healthy_{false};
  absl::Mutex mu_;
  struct Waiter {
    int64_t position;
    std::function<void()> wake;
  };
  std::map<WaiterId, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  WaiterId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace audit::query

#endif  // SERVICES_QUERY_HEAD_WATCHER_H_
