// Runs database work off gRPC's threads: a fixed pool of workers, each with its own
// PostgreSQL connection, and a bounded queue.
//
// Submit() never blocks: when the queue is full it returns RESOURCE_EXHAUSTED at once, which
// is the server's answer to overload. A task receives its worker's connection, or the error
// that prevented connecting (the task answers UNAVAILABLE). A CancelToken attached to a task
// interrupts its running statement (PQcancel) when cancelled, so deadlines and client
// cancellations stop database work too. Thread-safe.
#ifndef SERVICES_QUERY_DB_EXECUTOR_H_
#define SERVICES_QUERY_DB_EXECUTOR_H_

#include <libpq-fe.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/common/pg.h"

namespace audit::query {

// Cancels the statement of the task it is attached to. Thread-safe; Cancel() is idempotent.
class CancelToken {
 public:
  ~CancelToken();
  void Cancel();
  bool cancelled() const;

  // Used by the executor around a task.
  void Attach(PGconn* conn);
  void Detach();

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  PGcancel* pg_cancel_ ABSL_GUARDED_BY(mu_) = nullptr;
};

class DbExecutor {
 public:
  struct Options {
    std::string url;  // a role in audit_reader
    int threads = 8;
    size_t max_queue = 1000;
    pg::ConnectOptions connect;
  };
  using Task = std::function<void(absl::StatusOr<PGconn*> conn)>;

  explicit DbExecutor(Options options);
  // Runs what is queued, then joins the workers.
  ~DbExecutor();

  DbExecutor(const DbExecutor&) = delete;
  DbExecutor& operator=(const DbExecutor&) = delete;

  absl::Status Submit(Task task, std::shared_ptr<CancelToken> cancel = nullptr);

 private:
  struct Item {
    Task task;
    std::shared_ptr<CancelToken> cancel;
  };
  void Work();

  Options options_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace audit::query

#endif  // SERVICES_QUERY_DB_EXECUTOR_H_
