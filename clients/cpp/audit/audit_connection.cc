#include "audit/audit_connection.h"

#include <random>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "audit/v1/audit_service.grpc.pb.h"
#include "audit/v1/proof_service.grpc.pb.h"

namespace audit {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

std::chrono::system_clock::time_point Deadline(absl::Duration timeout) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout));
}

class GrpcReplayReader final : public ReplayFrameReader {
 public:
  GrpcReplayReader(v1::AuditService::Stub* stub, const v1::ReplayEventsRequest& r) {
    reader_ = stub->ReplayEvents(&ctx_, r);
  }
  ~GrpcReplayReader() override {
    if (!finished_) {
      ctx_.TryCancel();
      v1::ReplayEventsResponse drain;
      while (reader_->Read(&drain)) {
      }
      reader_->Finish();
    }
  }

  absl::StatusOr<std::optional<v1::ReplayEventsResponse>> Next() override {
    if (finished_) return final_;
    v1::ReplayEventsResponse frame;
    if (reader_->Read(&frame)) return std::optional<v1::ReplayEventsResponse>(std::move(frame));
    finished_ = true;
    absl::Status s = FromGrpc(reader_->Finish());
    final_ = s.ok() ? absl::StatusOr<std::optional<v1::ReplayEventsResponse>>(std::nullopt)
                    : absl::StatusOr<std::optional<v1::ReplayEventsResponse>>(s);
    return final_;
  }

  void Cancel() override { ctx_.TryCancel(); }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<v1::ReplayEventsResponse>> reader_;
  bool finished_ = false;
  absl::StatusOr<std::optional<v1::ReplayEventsResponse>> final_;
};

class GrpcAuditConnection final : public AuditConnection {
 public:
  explicit GrpcAuditConnection(ConnectionOptions options)
      : options_(std::move(options)),
        stub_(v1::AuditService::NewStub(options_.channel)),
        proofs_(v1::ProofService::NewStub(options_.channel)),
        rng_(std::random_device{}()) {}

  absl::StatusOr<v1::GetEventResponse> GetEvent(const v1::GetEventRequest& r) override {
    return Retry<v1::GetEventResponse>(r, &v1::AuditService::Stub::GetEvent);
  }
  absl::StatusOr<v1::ListEventsResponse> ListEvents(const v1::ListEventsRequest& r) override {
    return Retry<v1::ListEventsResponse>(r, &v1::AuditService::Stub::ListEvents);
  }
  absl::StatusOr<v1::GetSubjectHistoryResponse> GetSubjectHistory(
      const v1::GetSubjectHistoryRequest& r) override {
    return Retry<v1::GetSubjectHistoryResponse>(r, &v1::AuditService::Stub::GetSubjectHistory);
  }
  absl::StatusOr<v1::GetStatisticsResponse> GetStatistics(
      const v1::GetStatisticsRequest& r) override {
    return Retry<v1::GetStatisticsResponse>(r, &v1::AuditService::Stub::GetStatistics);
  }
  absl::StatusOr<v1::ListDeadLettersResponse> ListDeadLetters(
      const v1::ListDeadLettersRequest& r) override {
    return Retry<v1::ListDeadLettersResponse>(r, &v1::AuditService::Stub::ListDeadLetters);
  }
  std::unique_ptr<ReplayFrameReader> ReplayEvents(const v1::ReplayEventsRequest& r) override {
    return std::make_unique<GrpcReplayReader>(stub_.get(), r);
  }
  absl::StatusOr<v1::GetLatestCheckpointResponse> GetLatestCheckpoint(
      const v1::GetLatestCheckpointRequest& r) override {
    return Retry<v1::GetLatestCheckpointResponse>(proofs_.get(), r,
                                                  &v1::ProofService::Stub::GetLatestCheckpoint);
  }
  absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints(
      const v1::ListCheckpointsRequest& r) override {
    return Retry<v1::ListCheckpointsResponse>(proofs_.get(), r,
                                              &v1::ProofService::Stub::ListCheckpoints);
  }
  absl::StatusOr<v1::GetInclusionProofResponse> GetInclusionProof(
      const v1::GetInclusionProofRequest& r) override {
    return Retry<v1::GetInclusionProofResponse>(proofs_.get(), r,
                                                &v1::ProofService::Stub::GetInclusionProof);
  }
  absl::StatusOr<v1::GetConsistencyProofResponse> GetConsistencyProof(
      const v1::GetConsistencyProofRequest& r) override {
    return Retry<v1::GetConsistencyProofResponse>(proofs_.get(), r,
                                                  &v1::ProofService::Stub::GetConsistencyProof);
  }
  absl::StatusOr<v1::VerifyRangeResponse> VerifyRange(const v1::VerifyRangeRequest& r) override {
    return Retry<v1::VerifyRangeResponse>(proofs_.get(), r, &v1::ProofService::Stub::VerifyRange);
  }

 private:
  template <typename Response, typename Request, typename Method>
  absl::StatusOr<Response> Retry(const Request& request, Method method) {
    return Retry<Response>(stub_.get(), request, method);
  }

  template <typename Response, typename Stub, typename Request, typename Method>
  absl::StatusOr<Response> Retry(Stub* stub, const Request& request, Method method) {
    absl::Duration backoff = options_.retry.initial_backoff;
    absl::Status last;
    for (int attempt = 1; attempt <= std::max(1, options_.retry.max_attempts); ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(Deadline(options_.timeout));
      Response response;
      last = FromGrpc((stub->*method)(&ctx, request, &response));
      if (last.ok()) return response;
      if (!IsRetryable(last.code()) || attempt == options_.retry.max_attempts) break;
      absl::SleepFor(Jitter(backoff));  // backoff between attempts of an idempotent call
      backoff = std::min(backoff * 2, options_.retry.max_backoff);
    }
    return last;
  }

  absl::Duration Jitter(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    return d * std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
  }

  ConnectionOptions options_;
  std::unique_ptr<v1::AuditService::Stub> stub_;
  std::unique_ptr<v1::ProofService::Stub> proofs_;
  absl::Mutex mu_;
  std::mt19937 rng_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

bool IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kResourceExhausted ||
         code == absl::StatusCode::kAborted;
}

std::shared_ptr<AuditConnection> MakeAuditConnection(ConnectionOptions options) {
  if (options.channel == nullptr) {
    if (options.credentials == nullptr) options.credentials = grpc::InsecureChannelCredentials();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    options.channel = grpc::CreateCustomChannel(options.target, options.credentials, args);
  }
  return std::make_shared<GrpcAuditConnection>(std::move(options));
}

}  // namespace audit
