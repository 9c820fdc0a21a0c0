#include "services/query/db_executor.h"

#include "absl/strings/str_cat.h"

namespace audit::query {

CancelToken::~CancelToken() { Detach(); }

void CancelToken::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (pg_cancel_ != nullptr) {
    char err[256];
    PQcancel(pg_cancel_, err, sizeof err);  // best effort; the statement may have finished
  }
}

bool CancelToken::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

void CancelToken::Attach(PGconn* conn) {
  absl::MutexLock lock(&mu_);
  if (pg_cancel_ == nullptr && conn != nullptr) pg_cancel_ = PQgetCancel(conn);
}

void CancelToken::Detach() {
  absl::MutexLock lock(&mu_);
  if (pg_cancel_ != nullptr) {
    PQfreeCancel(pg_cancel_);
    pg_cancel_ = nullptr;
  }
}

DbExecutor::DbExecutor(Options options) : options_(std::move(options)) {
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    workers_.emplace_back([this] { Work(); });
  }
}

DbExecutor::~DbExecutor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : workers_) t.join();
}

absl::Status DbExecutor::Submit(Task task, std::shared_ptr<CancelToken> cancel) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("server shutting down");
  if (queue_.size() >= options_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat("server busy: ", queue_.size(), " requests queued; retry later"));
  }
  queue_.push_back({std::move(task), std::move(cancel)});
  return absl::OkStatus();
}

void DbExecutor::Work() {
  pg::ConnPtr conn;
  while (true) {
    Item item;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](DbExecutor* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
            return self->stopping_ || !self->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping, nothing left
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    if (conn != nullptr && PQstatus(conn.get()) != CONNECTION_OK) conn.reset();
    absl::Status connect_error;
    if (conn == nullptr) {
      absl::StatusOr<pg::ConnPtr> c = pg::Connect(options_.url, options_.connect);
      if (c.ok()) {
        conn = *std::move(c);
      } else {
        connect_error = c.status();
      }
    }
    if (conn == nullptr) {
      item.task(connect_error);
      continue;
    }
    if (item.cancel != nullptr) item.cancel->Attach(conn.get());
    item.task(conn.get());
    if (item.cancel != nullptr) item.cancel->Detach();
    // A task that failed mid-transaction leaves the connection unusable for the next one.
    if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE) conn.reset();
  }
}

}  // namespace audit::query
