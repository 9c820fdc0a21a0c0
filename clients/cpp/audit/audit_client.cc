#include "audit/audit_client.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace audit {

ReplayStream::ReplayStream(std::shared_ptr<AuditConnection> connection,
                           v1::ReplayEventsRequest request, ReplayOptions options)
    : connection_(std::move(connection)), request_(std::move(request)), options_(options) {
  if (options_.verify_with != nullptr) {
    request_.set_with_proofs(true);
    if (request_.start_case() == v1::ReplayEventsRequest::kAfterPosition) {
      next_expected_ = request_.after_position() + 1;
    } else if (request_.start_case() == v1::ReplayEventsRequest::START_NOT_SET) {
      next_expected_ = 1;
    }
  }
}

absl::Status ReplayStream::VerifyFrame(const v1::ReplayEventsResponse& frame) {
  LogAnchor& anchor = *options_.verify_with;
  if (frame.has_checkpoint()) {
    // A (re)opened stream: its checkpoint must extend what the anchor trusts.
    std::vector<std::string> proof;
    const std::optional<v1::Checkpoint>& trusted = anchor.checkpoint();
    if (trusted.has_value() && trusted->tree_size() > 0 &&
        frame.checkpoint().tree_size() > trusted->tree_size()) {
      v1::GetConsistencyProofRequest r;
      r.set_first_tree_size(trusted->tree_size());
      r.set_second_tree_size(frame.checkpoint().tree_size());
      absl::StatusOr<v1::GetConsistencyProofResponse> p = connection_->GetConsistencyProof(r);
      if (!p.ok()) return p.status();
      proof.assign(p->hashes().begin(), p->hashes().end());
    }
    if (absl::Status s = anchor.Advance(frame.checkpoint(), proof); !s.ok()) {
      return absl::DataLossError(absl::StrCat("replay not proven: ", s.message()));
    }
    checkpoint_ = frame.checkpoint();
  }
  if (!checkpoint_.has_value()) {
    return absl::DataLossError("replay not proven: the server sent no checkpoint");
  }
  if (frame.events().empty()) return absl::OkStatus();
  const int64_t first = frame.events(0).position();
  if (next_expected_ == 0) next_expected_ = first;  // from_recorded_time: proven from here
  // Positions already delivered may come again after a resume; anything beyond the next due
  // position is a gap.
  if (next_expected_ != 0 && first > next_expected_) {
    return absl::DataLossError(absl::StrCat("replay not proven: positions ", next_expected_, "..",
                                            first - 1, " were skipped"));
  }
  if (absl::Status s = VerifyReplayFrame(frame, *checkpoint_); !s.ok()) {
    return absl::DataLossError(absl::StrCat("replay not proven: ", s.message()));
  }
  next_expected_ = std::max(next_expected_, frame.events(frame.events_size() - 1).position() + 1);
  return absl::OkStatus();
}

absl::Status ReplayStream::VerifyComplete() const {
  if (!checkpoint_.has_value()) {
    return absl::DataLossError("replay not proven: the server sent no checkpoint");
  }
  if (next_expected_ != 0 && next_expected_ <= checkpoint_->tree_size()) {
    return absl::DataLossError(absl::StrCat(
        "replay not proven complete: it ended before position ", next_expected_,
        " but checkpoint seq ", checkpoint_->seq(), " covers ", checkpoint_->tree_size()));
  }
  return absl::OkStatus();
}

void ReplayStream::Cancel() {
  cancelled_ = true;
  absl::MutexLock lock(&reader_mu_);
  if (reader_ != nullptr) reader_->Cancel();
}

absl::Status ReplayStream::Reopen() {
  v1::ReplayEventsRequest r = request_;
  if (last_position_ >= 0) r.set_after_position(last_position_);  // resume, not restart
  std::unique_ptr<ReplayFrameReader> reader = connection_->ReplayEvents(r);
  absl::MutexLock lock(&reader_mu_);
  reader_ = std::move(reader);
  if (cancelled_) reader_->Cancel();
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::StoredEvent>> ReplayStream::Next() {
  std::mt19937 rng(std::random_device{}());
  absl::Duration backoff = options_.initial_backoff;
  int failures = 0;
  while (true) {
    if (cancelled_) return absl::CancelledError("replay cancelled");
    if (!buffer_.empty()) {
      v1::StoredEvent e = std::move(buffer_.front());
      buffer_.pop_front();
      last_delivered_ = e.position();
      return std::optional<v1::StoredEvent>(std::move(e));
    }
    if (done_) return std::optional<v1::StoredEvent>();
    if (reader_ == nullptr) Reopen().IgnoreError();
    absl::StatusOr<std::optional<v1::ReplayEventsResponse>> frame = reader_->Next();
    if (frame.ok() && frame->has_value() && options_.verify_with != nullptr) {
      if (absl::Status s = VerifyFrame(**frame); !s.ok()) {
        done_ = true;  // nothing more from this server is delivered
        buffer_.clear();
        return s;
      }
    }
    if (frame.ok() && frame->has_value()) {
      failures = 0;
      backoff = options_.initial_backoff;
      for (v1::StoredEvent& e : *(*frame)->mutable_events()) {
        // Exactly once: never hand out a position twice, even across a resume.
        if (e.position() > last_delivered_ &&
            (buffer_.empty() || e.position() > buffer_.back().position())) {
          buffer_.push_back(std::move(e));
        }
      }
      last_position_ = std::max(last_position_, (*frame)->last_position());
      caught_up_ |= (*frame)->caught_up();
      continue;
    }
    if (frame.ok()) {  // the server ended the stream normally
      if (!request_.follow()) {
        if (options_.verify_with != nullptr) {
          if (absl::Status s = VerifyComplete(); !s.ok()) {
            done_ = true;
            return s;
          }
        }
        done_ = true;
        continue;
      }
      frame = absl::UnavailableError("live replay ended by the server");
    }
    const absl::Status error = frame.status();
    if (cancelled_) return absl::CancelledError("replay cancelled");
    if (!IsRetryable(error.code()) && error.code() != absl::StatusCode::kInternal &&
        error.code() != absl::StatusCode::kUnknown &&
        error.code() != absl::StatusCode::kDeadlineExceeded) {
      return error;  // e.g. INVALID_ARGUMENT: retrying cannot help
    }
    ++failures;
    if (options_.max_reconnect_attempts > 0 && failures >= options_.max_reconnect_attempts) {
      return error;
    }
    absl::SleepFor(backoff * std::uniform_real_distribution<double>(0.5, 1.0)(rng));
    backoff = std::min(backoff * 2, options_.max_backoff);
    ++reconnects_;
    Reopen().IgnoreError();
  }
}

absl::StatusOr<v1::Checkpoint> AuditClient::LatestCheckpoint() const {
  absl::StatusOr<v1::GetLatestCheckpointResponse> r =
      connection_->GetLatestCheckpoint(v1::GetLatestCheckpointRequest());
  if (!r.ok()) return r.status();
  return std::move(*r->mutable_checkpoint());
}

absl::StatusOr<std::vector<v1::Checkpoint>> AuditClient::ListAllCheckpoints() const {
  std::vector<v1::Checkpoint> out;
  v1::ListCheckpointsRequest r;
  r.set_page_size(1000);
  do {
    absl::StatusOr<v1::ListCheckpointsResponse> page = connection_->ListCheckpoints(r);
    if (!page.ok()) return page.status();
    for (v1::Checkpoint& c : *page->mutable_checkpoints()) out.push_back(std::move(c));
    r.set_page_token(page->next_page_token());
  } while (!r.page_token().empty());
  return out;
}

absl::StatusOr<v1::Checkpoint> AuditClient::VerifyLatestCheckpoint(LogAnchor* anchor) const {
  absl::StatusOr<v1::Checkpoint> latest = LatestCheckpoint();
  if (!latest.ok()) return latest.status();
  std::vector<std::string> proof;
  const std::optional<v1::Checkpoint>& trusted = anchor->checkpoint();
  if (trusted.has_value() && trusted->tree_size() > 0 &&
      latest->tree_size() > trusted->tree_size()) {
    v1::GetConsistencyProofRequest r;
    r.set_first_tree_size(trusted->tree_size());
    r.set_second_tree_size(latest->tree_size());
    absl::StatusOr<v1::GetConsistencyProofResponse> p = connection_->GetConsistencyProof(r);
    if (!p.ok()) return p.status();
    proof.assign(p->hashes().begin(), p->hashes().end());
  }
  if (absl::Status s = anchor->Advance(*latest, proof); !s.ok()) return s;
  return latest;
}

absl::StatusOr<v1::StoredEvent> AuditClient::GetProvenEvent(int64_t position,
                                                            LogAnchor* anchor) const {
  absl::StatusOr<v1::GetInclusionProofResponse> proof = ProveEvent(position, anchor);
  if (!proof.ok()) return proof.status();
  return std::move(*proof->mutable_event());
}

absl::StatusOr<v1::GetInclusionProofResponse> AuditClient::ProveEvent(int64_t position,
                                                                      LogAnchor* anchor) const {
  absl::StatusOr<v1::Checkpoint> latest = VerifyLatestCheckpoint(anchor);
  if (!latest.ok()) return latest.status();
  v1::GetInclusionProofRequest r;
  r.set_position(position);
  r.set_tree_size(latest->tree_size());
  absl::StatusOr<v1::GetInclusionProofResponse> proof = connection_->GetInclusionProof(r);
  if (!proof.ok()) return proof.status();
  if (absl::Status s = anchor->VerifyInclusion(*proof); !s.ok()) return s;
  if (proof->event().position() != position) {
    return absl::DataLossError(
        absl::StrCat("asked for position ", position, ", got ", proof->event().position()));
  }
  *proof->mutable_checkpoint() = *anchor->checkpoint();
  return proof;
}

absl::StatusOr<v1::VerifyRangeResponse> AuditClient::VerifyRangeOnServer(
    int64_t first_position, int64_t last_position) const {
  v1::VerifyRangeRequest r;
  r.set_first_position(first_position);
  r.set_last_position(last_position);
  return connection_->VerifyRange(r);
}

absl::StatusOr<v1::StoredEvent> AuditClient::GetEvent(int64_t position) const {
  v1::GetEventRequest r;
  r.set_position(position);
  absl::StatusOr<v1::GetEventResponse> out = connection_->GetEvent(r);
  if (!out.ok()) return out.status();
  return std::move(*out->mutable_event());
}

absl::StatusOr<v1::StoredEvent> AuditClient::GetEvent(const std::string& source,
                                                      const std::string& id) const {
  v1::GetEventRequest r;
  r.mutable_key()->set_source(source);
  r.mutable_key()->set_id(id);
  absl::StatusOr<v1::GetEventResponse> out = connection_->GetEvent(r);
  if (!out.ok()) return out.status();
  return std::move(*out->mutable_event());
}

absl::StatusOr<v1::ListEventsResponse> AuditClient::ListEvents(
    const v1::ListEventsRequest& request) const {
  return connection_->ListEvents(request);
}

absl::StatusOr<std::vector<v1::StoredEvent>> AuditClient::ListAllEvents(
    v1::ListEventsRequest request, size_t max_events) const {
  std::vector<v1::StoredEvent> out;
  do {
    absl::StatusOr<v1::ListEventsResponse> page = connection_->ListEvents(request);
    if (!page.ok()) return page.status();
    for (v1::StoredEvent& e : *page->mutable_events()) {
      if (out.size() >= max_events) return out;
      out.push_back(std::move(e));
    }
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  return out;
}

absl::StatusOr<std::vector<v1::StoredEvent>> AuditClient::SubjectHistory(
    const std::string& subject, std::optional<absl::Time> as_of) const {
  v1::GetSubjectHistoryRequest r;
  r.set_subject(subject);
  if (as_of.has_value()) {
    const int64_t micros = absl::ToUnixMicros(*as_of);
    r.mutable_as_of()->set_seconds(micros / 1000000);
    r.mutable_as_of()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  }
  std::vector<v1::StoredEvent> out;
  do {
    absl::StatusOr<v1::GetSubjectHistoryResponse> page = connection_->GetSubjectHistory(r);
    if (!page.ok()) return page.status();
    for (v1::StoredEvent& e : *page->mutable_events()) out.push_back(std::move(e));
    r.set_page_token(page->next_page_token());
  } while (!r.page_token().empty());
  return out;
}

absl::StatusOr<v1::GetStatisticsResponse> AuditClient::GetStatistics(
    const v1::GetStatisticsRequest& request) const {
  return connection_->GetStatistics(request);
}

absl::StatusOr<v1::ListDeadLettersResponse> AuditClient::ListDeadLetters(
    const v1::ListDeadLettersRequest& request) const {
  return connection_->ListDeadLetters(request);
}

ReplayStream AuditClient::Replay(v1::ReplayEventsRequest request, ReplayOptions options) const {
  return ReplayStream(connection_, std::move(request), options);
}

}  // namespace audit
