#include "services/query/head_watcher.h"

#include <poll.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "services/common/log.h"
#include "services/common/pg.h"

namespace audit::query {

HeadWatcher::HeadWatcher(Options options) : options_(std::move(options)) {
  if (pipe(stop_pipe_) != 0) stop_pipe_[0] = stop_pipe_[1] = -1;
  thread_ = std::thread([this] { Run(); });
}

HeadWatcher::~HeadWatcher() {
  if (stop_pipe_[1] >= 0) {
    const char b = 1;
    (void)!write(stop_pipe_[1], &b, 1);
  }
  thread_.join();
  for (int fd : stop_pipe_) {
    if (fd >= 0) close(fd);
  }
}

HeadWatcher::WaiterId HeadWatcher::WaitBeyond(int64_t position, std::function<void()> wake) {
  if (head_.load() > position) {
    wake();
    return 0;
  }
  WaiterId id;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
    waiters_[id] = Waiter{position, std::move(wake)};
  }
  // The head may have moved between the first check and the insertion.
  if (head_.load() > position) Advance(head_.load());
  return id;
}

bool HeadWatcher::Cancel(WaiterId id) {
  absl::MutexLock lock(&mu_);
  return waiters_.erase(id) > 0;
}

void HeadWatcher::Advance(int64_t head) {
  int64_t previous = head_.load();
  while (head > previous && !head_.compare_exchange_weak(previous, head)) {
  }
  const int64_t now = head_.load();
  std::vector<std::function<void()>> ready;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (now > it->second.position) {
        ready.push_back(std::move(it->second.wake));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& wake : ready) wake();
}

void HeadWatcher::Run() {
  pg::ConnPtr conn;
  absl::Duration backoff = absl::Milliseconds(100);
  const int poll_ms = static_cast<int>(absl::ToInt64Milliseconds(options_.poll_interval));
  while (true) {
    int wait_ms = poll_ms;
    if (conn == nullptr) {
      pg::ConnectOptions o;
      o.application_name = "audit-query-listener";
      absl::StatusOr<pg::ConnPtr> c = pg::Connect(options_.url, o);
      if (c.ok() && pg::Exec(c->get(), "LISTEN audit_events").ok()) {
        conn = *std::move(c);
        backoff = absl::Milliseconds(100);
        if (!healthy_.exchange(true)) LogInfo("database reachable");
      } else {
        if (healthy_.exchange(false)) {
          LogWarning("database unreachable").With(c.ok() ? absl::OkStatus() : c.status());
        }
        wait_ms = static_cast<int>(absl::ToInt64Milliseconds(backoff));
        backoff = std::min(backoff * 2, absl::Seconds(5));
      }
    }
    if (conn != nullptr) {
      absl::StatusOr<pg::ResultPtr> r =
          pg::Exec(conn.get(), "SELECT position FROM audit.append_head");
      if (r.ok()) {
        Advance(pg::Int64Value(r->get(), 0, 0));
      } else {
        conn.reset();
        healthy_ = false;
        LogWarning("lost the database").With(r.status());
        continue;
      }
    }
    pollfd fds[2] = {{stop_pipe_[0], POLLIN, 0}, {conn ? PQsocket(conn.get()) : -1, POLLIN, 0}};
    const int n = poll(fds, conn ? 2 : 1, wait_ms);
    if (n > 0 && (fds[0].revents & POLLIN)) return;  // stopping
    if (conn != nullptr && n > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (PQconsumeInput(conn.get()) == 0) {
        conn.reset();
        healthy_ = false;
        continue;
      }
      int64_t newest = -1;
      while (PGnotify* note = PQnotifies(conn.get())) {
        int64_t p = 0;
        if (absl::SimpleAtoi(note->extra, &p)) newest = std::max(newest, p);
        PQfreemem(note);
      }
      if (newest >= 0) Advance(newest);
    }
  }
}

}  // namespace audit::query
