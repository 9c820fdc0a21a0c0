#include "services/query/health_service.h"

#include <grpcpp/alarm.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace audit::query {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

bool HealthServiceImpl::Known(const std::string& service) {
  return service.empty() || service == "audit.v1.AuditService";
}

HealthCheckResponse::ServingStatus HealthServiceImpl::Status() const {
  return watcher_->healthy() ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

grpc::ServerUnaryReactor* HealthServiceImpl::Check(grpc::CallbackServerContext* ctx,
                                                   const HealthCheckRequest* request,
                                                   HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (!Known(request->service())) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service " + request->service()));
  } else {
    response->set_status(Status());
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

namespace {

// Writes the status, then re-checks it every second (grpc::Alarm, no thread) and writes it
// again when it changes; ends when the client cancels.
class WatchReactor final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  WatchReactor(const HealthServiceImpl* health, const std::string& service)
      : health_(health), known_(HealthServiceImpl::Known(service)) {
    {
      absl::MutexLock lock(&mu_);
      response_.set_status(Current());
      writing_ = true;
    }
    StartWrite(&response_);
  }

  // gRPC methods (StartWrite, Finish, Alarm::Set/Cancel) are always called without holding
  // mu_: a reaction may run inline.
  void OnWriteDone(bool ok) override {
    bool finish = false, arm = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok || cancelled_) {
        finish = TryFinishLocked();
      } else {
        ++pending_;
        arm = true;
      }
    }
    if (arm) Arm();
    if (finish) Finish(grpc::Status::OK);
  }

  void OnCancel() override {
    bool finish;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      finish = TryFinishLocked();
    }
    alarm_.Cancel();  // a pending alarm then fires with ok=false and finishes
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  HealthCheckResponse::ServingStatus Current() const {
    return known_ ? health_->Status() : HealthCheckResponse::SERVICE_UNKNOWN;
  }

  void Arm() {
    alarm_.Set(std::chrono::system_clock::now() + std::chrono::seconds(1),
               [this](bool fired) { OnAlarm(fired); });
  }

  void OnAlarm(bool fired) {
    bool write = false, arm = false, finish = false;
    {
      absl::MutexLock lock(&mu_);
      --pending_;
      if (cancelled_ || !fired) {
        finish = TryFinishLocked();
      } else if (Current() != response_.status()) {
        response_.set_status(Current());
        writing_ = true;
        write = true;
      } else {
        ++pending_;
        arm = true;
      }
    }
    if (write) StartWrite(&response_);
    if (arm) Arm();
    if (finish) Finish(grpc::Status::OK);
  }

  bool TryFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_ || pending_ > 0) return false;
    finished_ = true;
    return true;
  }

  const HealthServiceImpl* health_;
  const bool known_;
  absl::Mutex mu_;
  grpc::Alarm alarm_;
  HealthCheckResponse response_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

grpc::ServerWriteReactor<HealthCheckResponse>* HealthServiceImpl::Watch(
    grpc::CallbackServerContext* ctx, const HealthCheckRequest* request) {
  return new WatchReactor(this, request->service());
}

}  // namespace audit::query
