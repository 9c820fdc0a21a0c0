#include "services/query/audit_service.h"

#include <cassert>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/grpc_status.h"
#include "services/common/log.h"
#include "services/query/request_validation.h"
#include "services/query/unary_reactor.h"

namespace audit::query {
// One replay stream. References: one for gRPC (released in OnDone), one per scheduled task or
// registered head waiter; the last release deletes the reactor.
class ReplayReactor final : public grpc::ServerWriteReactor<v1::ReplayEventsResponse> {
 public:
  ReplayReactor(AuditServiceImpl* service, grpc::CallbackServerContext* ctx,
                const v1::ReplayEventsRequest* request)
      : service_(service), deadline_(ctx->deadline()), request_(*request) {
    if (absl::Status s = Validate(request_); !s.ok()) {
      FinishOnce(ToGrpcStatus(s));
      return;
    }
    if (!service_->Register(this)) {
      FinishOnce(grpc::Status(
          grpc::StatusCode::RESOURCE_EXHAUSTED,
          absl::StrCat("too many open replays (limit ", service_->limits_.max_streams, ")")));
      return;
    }
    registered_ = true;
    {
      absl::MutexLock lock(&mu_);
      fetching_ = true;
    }
    Schedule();
  }

  // A write finished: write the frame read meanwhile, if any (and read the one after it), or
  // decide what comes next.
  void OnWriteDone(bool ok) override {
    bool finish_now = false, write = false, fetch = false, wait = false;
    grpc::Status status;
    const v1::ReplayEventsResponse* to_write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok) delivered_ = frame_->last_position();
      if (pending_finish_.has_value()) {
        finish_now = true;
        // A shutdown that waited for this write names the position after it.
        status = stopping_ ? ShutdownStatus(delivered_) : *pending_finish_;
      } else if (!ok) {
        finish_now = true;
        status = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
      } else {
        if (ready_ != nullptr) {
          spare_ = std::move(frame_);  // its allocations are reused by the next read
          frame_ = std::move(ready_);
          to_write = frame_.get();
          writing_ = true;
          write = true;
          fetch = ShouldReadAheadLocked();
        } else if (fetching_) {
          // The read in progress writes its frame when it completes.
        } else if (frame_->caught_up() && !plan_.follow) {
          finish_now = true;
          status = grpc::Status::OK;
        } else if (frame_->caught_up()) {
          wait = true;
          spare_.reset();  // an idle follower keeps no more than the frame it last wrote
        } else {
          fetching_ = fetch = true;
        }
      }
    }
    if (finish_now) {
      FinishOnce(status);
    } else if (write) {
      // The next read first: the database works on it while this thread serialises the frame.
      if (fetch) Schedule();
      StartWrite(to_write);
    } else if (wait) {
      WaitForHead();
    } else if (fetch) {
      Schedule();
    }
  }

  void OnCancel() override {
    FinishOnce(Cancelled(deadline_));
    token_->Cancel();
    CancelWaiter();
  }

  void OnDone() override {
    if (registered_) service_->Unregister(this);
    Release();
  }

  // From AuditServiceImpl::StopStreams.
  void Stop() {
    int64_t resume;
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
      resume = delivered_;
    }
    // The status first: the read this cancels then finds the stream already finishing. With a
    // write in flight, OnWriteDone finishes instead, naming the position after that write.
    FinishOnce(ShutdownStatus(resume));
    token_->Cancel();
    CancelWaiter();
  }

 private:
  friend class AuditServiceImpl;

  void Acquire() {
    absl::MutexLock lock(&mu_);
    ++refs_;
  }

  void Release() {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
  }

  void FinishOnce(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (writing_) {
        // Finish after the write in flight completes (OnWriteDone).
        if (!pending_finish_.has_value()) pending_finish_ = status;
        return;
      }
      finished_ = true;
    }
    Finish(status);
  }

  static grpc::Status ShutdownStatus(int64_t resume) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("server shutting down; resume with after_position ", resume));
  }

  bool finished() {
    absl::MutexLock lock(&mu_);
    return finished_ || pending_finish_.has_value();
  }

  // Whether to read the next frame while the one just handed to StartWrite is being written:
  // not after the last frame, nor after a caught-up one (a follower then waits for the head).
  // Sets fetching_ when it answers yes.
  bool ShouldReadAheadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (fetching_ || frame_->caught_up()) return false;
    fetching_ = true;
    return true;
  }

  // Runs one Fetch on the executor; the caller has set fetching_.
  void Schedule() {
    Acquire();
    absl::Status s = service_->executor_->Submit(
        [this](absl::StatusOr<PGconn*> conn) {
          Fetch(conn);
          Release();
        },
        token_);
    if (!s.ok()) {
      FinishOnce(ToGrpcStatus(s));
      Release();
    }
  }

  void WaitForHead() {
    int64_t after;
    {
      absl::MutexLock lock(&mu_);
      after = after_;
      ++refs_;  // held by the waiter
    }
    const HeadWatcher::WaiterId id = service_->watcher_->WaitBeyond(after, [this] {
      bool fetch = false;
      {
        absl::MutexLock lock(&mu_);
        waiter_ = 0;
        if (!finished_ && !pending_finish_.has_value() && !fetching_) fetching_ = fetch = true;
      }
      if (fetch) Schedule();
      Release();
    });
    absl::MutexLock lock(&mu_);
    if (id != 0 && refs_ > 0) waiter_ = id;
  }

  void CancelWaiter() {
    HeadWatcher::WaiterId id;
    {
      absl::MutexLock lock(&mu_);
      id = waiter_;
      waiter_ = 0;
    }
    if (id != 0 && service_->watcher_->Cancel(id)) Release();
  }

  // On an executor thread; at most one at a time (fetching_).
  void Fetch(absl::StatusOr<PGconn*> conn) {
    // Until the frame is handled below, every way out clears fetching_.
    struct ClearFetching {
      ReplayReactor* r;
      bool armed = true;
      ~ClearFetching() {
        if (!armed) return;
        absl::MutexLock lock(&r->mu_);
        r->fetching_ = false;
      }
    } clear_fetching{this};
    if (finished()) return;
    if (!conn.ok()) {
      FinishOnce(ToGrpcStatus(conn.status()));
      return;
    }
    if (!planned_) {
      absl::StatusOr<ReplayPlan> plan = service_->queries_->PlanReplay(*conn, request_);
      if (!plan.ok()) {
        FinishOnce(token_->cancelled() ? Cancelled(deadline_) : ToGrpcStatus(plan.status()));
        return;
      }
      absl::MutexLock lock(&mu_);
      plan_ = *std::move(plan);
      after_ = plan_.start_after;
      planned_ = true;
    }
    int64_t after;
    std::unique_ptr<v1::ReplayEventsResponse> frame;
    {
      absl::MutexLock lock(&mu_);
      after = after_;
      frame = std::move(spare_);
    }
    if (frame == nullptr) frame = std::make_unique<v1::ReplayEventsResponse>();
    if (absl::Status s = service_->queries_->ReadReplayFrame(*conn, &plan_, after, frame.get());
        !s.ok()) {
      FinishOnce(token_->cancelled() ? Cancelled(deadline_) : ToGrpcStatus(s));
      return;
    }
    clear_fetching.armed = false;  // cleared below instead, under the lock that decides
    bool write = false, wait = false, fetch = false;
    const v1::ReplayEventsResponse* to_write = nullptr;
    {
      absl::MutexLock lock(&mu_);
      fetching_ = false;
      if (finished_ || pending_finish_.has_value()) return;
      const bool progressed = frame->last_position() > after_;
      after_ = frame->last_position();
      const bool announce = frame->caught_up() && !announced_caught_up_;
      if (!frame->events().empty() || progressed || announce || !plan_.follow) {
        announced_caught_up_ |= frame->caught_up();
        if (writing_) {
          assert(ready_ == nullptr);  // one Fetch at a time, and only one frame ahead
          ready_ = std::move(frame);  // written when the write in flight completes
        } else {
          if (frame_ != nullptr) spare_ = std::move(frame_);
          frame_ = std::move(frame);
          to_write = frame_.get();
          writing_ = true;
          write = true;
          fetch = ShouldReadAheadLocked();
        }
      } else {
        wait = true;  // live and nothing new: wait for the head to move
      }
    }
    if (write) {
      if (fetch) Schedule();  // first, as in OnWriteDone
      StartWrite(to_write);
    } else if (wait) {
      WaitForHead();
    }
  }

  AuditServiceImpl* service_;
  // The call's deadline, captured at the start: the context itself may be freed once the call
  // is done, while a queued task of this reactor still runs.
  const std::chrono::system_clock::time_point deadline_;
  const v1::ReplayEventsRequest request_;
  const std::shared_ptr<CancelToken> token_ = std::make_shared<CancelToken>();
  bool registered_ = false;

  absl::Mutex mu_;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> pending_finish_ ABSL_GUARDED_BY(mu_);
  bool planned_ = false;  // written and read only by Fetch, one at a time
  ReplayPlan plan_;
  int64_t after_ ABSL_GUARDED_BY(mu_) = 0;
  bool announced_caught_up_ ABSL_GUARDED_BY(mu_) = false;
  bool fetching_ ABSL_GUARDED_BY(mu_) = false;  // a Fetch is scheduled or running
  int64_t delivered_ ABSL_GUARDED_BY(mu_) = 0;  // last_position of the last frame written
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // Stop() was called
  HeadWatcher::WaiterId waiter_ ABSL_GUARDED_BY(mu_) = 0;
  // The frame being written, and the next one, read meanwhile: at most two per stream, plus
  // the last one written, kept so that reading the next reuses its messages and strings.
  std::unique_ptr<v1::ReplayEventsResponse> frame_;
  std::unique_ptr<v1::ReplayEventsResponse> ready_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<v1::ReplayEventsResponse> spare_ ABSL_GUARDED_BY(mu_);
};

AuditServiceImpl::AuditServiceImpl(DbExecutor* executor, HeadWatcher* watcher,
                                   const EventQueries* queries, Limits limits)
    : executor_(executor), watcher_(watcher), queries_(queries), limits_(limits) {}

grpc::ServerUnaryReactor* AuditServiceImpl::GetEvent(grpc::CallbackServerContext* ctx,
                                                     const v1::GetEventRequest* request,
                                                     v1::GetEventResponse* response) {
  return RunUnary(
      executor_, ctx, request, response,
      [q = queries_](PGconn* c, const v1::GetEventRequest& r) { return q->GetEvent(c, r); });
}

grpc::ServerUnaryReactor* AuditServiceImpl::ListEvents(grpc::CallbackServerContext* ctx,
                                                       const v1::ListEventsRequest* request,
                                                       v1::ListEventsResponse* response) {
  return RunUnary(
      executor_, ctx, request, response,
      [q = queries_](PGconn* c, const v1::ListEventsRequest& r) { return q->ListEvents(c, r); });
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetSubjectHistory(
    grpc::CallbackServerContext* ctx, const v1::GetSubjectHistoryRequest* request,
    v1::GetSubjectHistoryResponse* response) {
  return RunUnary(executor_, ctx, request, response,
                  [q = queries_](PGconn* c, const v1::GetSubjectHistoryRequest& r) {
                    return q->GetSubjectHistory(c, r);
                  });
}

grpc::ServerUnaryReactor* AuditServiceImpl::GetStatistics(grpc::CallbackServerContext* ctx,
                                                          const v1::GetStatisticsRequest* request,
                                                          v1::GetStatisticsResponse* response) {
  return RunUnary(executor_, ctx, request, response,
                  [q = queries_](PGconn* c, const v1::GetStatisticsRequest& r) {
                    return q->GetStatistics(c, r);
                  });
}

grpc::ServerUnaryReactor* AuditServiceImpl::ListDeadLetters(
    grpc::CallbackServerContext* ctx, const v1::ListDeadLettersRequest* request,
    v1::ListDeadLettersResponse* response) {
  return RunUnary(executor_, ctx, request, response,
                  [q = queries_](PGconn* c, const v1::ListDeadLettersRequest& r) {
                    return q->ListDeadLetters(c, r);
                  });
}

grpc::ServerWriteReactor<v1::ReplayEventsResponse>* AuditServiceImpl::ReplayEvents(
    grpc::CallbackServerContext* ctx, const v1::ReplayEventsRequest* request) {
  return new ReplayReactor(this, ctx, request);
}

bool AuditServiceImpl::Register(ReplayReactor* r) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || static_cast<int>(streams_.size()) >= limits_.max_streams) return false;
  streams_.insert(r);
  return true;
}

void AuditServiceImpl::Unregister(ReplayReactor* r) {
  absl::MutexLock lock(&mu_);
  streams_.erase(r);
}

int AuditServiceImpl::open_streams() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

void AuditServiceImpl::StopStreams() {
  std::set<ReplayReactor*> streams;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    streams = streams_;
    // Registered reactors are alive (OnDone unregisters under this lock); pin each with a
    // reference so none is freed while being stopped.
    for (ReplayReactor* r : streams) r->Acquire();
  }
  for (ReplayReactor* r : streams) {
    r->Stop();
    r->Release();
  }
}

bool AuditServiceImpl::AwaitStreamsEnded(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  const auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.empty(); };
  return mu_.AwaitWithDeadline(absl::Condition(&ended), deadline);
}

}  // namespace audit::query
