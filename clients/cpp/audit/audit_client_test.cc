#include "audit/audit_client.h"

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "audit/mocks/mock_audit_connection.h"
#include "audit/record.h"
#include "audit/test_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audit {
namespace {

using ::audit::mocks::MockAuditConnection;
using ::testing::_;
using ::testing::Return;

using Step = absl::StatusOr<std::optional<v1::ReplayEventsResponse>>;

// A scripted stream: frames, then an end or an error.
class ScriptedReader : public ReplayFrameReader {
 public:
  explicit ScriptedReader(std::deque<Step> steps) : steps_(std::move(steps)) {}
  Step Next() override {
    if (steps_.empty()) return std::optional<v1::ReplayEventsResponse>();
    Step s = std::move(steps_.front());
    steps_.pop_front();
    return s;
  }
  void Cancel() override {}

 private:
  std::deque<Step> steps_;
};

v1::ReplayEventsResponse Frame(std::vector<int64_t> positions, int64_t last, bool caught_up) {
  v1::ReplayEventsResponse f;
  for (int64_t p : positions) f.add_events()->set_position(p);
  f.set_last_position(last);
  f.set_caught_up(caught_up);
  return f;
}

std::vector<int64_t> Drain(ReplayStream& stream, absl::Status* end) {
  std::vector<int64_t> out;
  while (true) {
    absl::StatusOr<std::optional<v1::StoredEvent>> e = stream.Next();
    if (!e.ok()) {
      *end = e.status();
      return out;
    }
    if (!e->has_value()) {
      *end = absl::OkStatus();
      return out;
    }
    out.push_back((*e)->position());
  }
}

ReplayOptions Fast() {
  ReplayOptions o;
  o.initial_backoff = absl::Milliseconds(1);
  o.max_backoff = absl::Milliseconds(2);
  return o;
}

TEST(ReplayStreamTest, ResumesAfterTheLastPositionWithoutGapOrDuplicate) {
  auto conn = std::make_shared<MockAuditConnection>();
  std::vector<v1::ReplayEventsRequest> requests;
  EXPECT_CALL(*conn, ReplayEvents(_))
      .WillOnce([&](const v1::ReplayEventsRequest& r) {
        requests.push_back(r);
        return std::make_unique<ScriptedReader>(std::deque<Step>{
            Frame({1, 2, 3}, 3, false), absl::UnavailableError("connection reset")});
      })
      .WillOnce([&](const v1::ReplayEventsRequest& r) {
        requests.push_back(r);
        // The server re-sends 3 (an overlap must not be delivered twice), then the rest.
        return std::make_unique<ScriptedReader>(
            std::deque<Step>{Frame({3, 4}, 4, false), Frame({5}, 7, true)});
      });
  v1::ReplayEventsRequest r;
  r.mutable_filter()->set_subject("order-1");
  ReplayStream stream = AuditClient(conn).Replay(r, Fast());
  absl::Status end;
  EXPECT_EQ(Drain(stream, &end), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(end.ok()) << end;
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_FALSE(requests[0].has_after_position());
  EXPECT_EQ(requests[1].after_position(), 3);
  EXPECT_EQ(requests[1].filter().subject(), "order-1");  // same query, resumed
  EXPECT_EQ(stream.reconnects(), 1);
  EXPECT_EQ(stream.last_position(), 7);
  EXPECT_TRUE(stream.caught_up());
}

TEST(ReplayStreamTest, NonRetryableErrorsAreReturned) {
  auto conn = std::make_shared<MockAuditConnection>();
  EXPECT_CALL(*conn, ReplayEvents(_)).WillOnce([](const v1::ReplayEventsRequest&) {
    return std::make_unique<ScriptedReader>(
        std::deque<Step>{absl::InvalidArgumentError("filter.subject: contains a NUL")});
  });
  ReplayStream stream = AuditClient(conn).Replay({}, Fast());
  absl::Status end;
  EXPECT_TRUE(Drain(stream, &end).empty());
  EXPECT_EQ(end.code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReplayStreamTest, GivesUpAfterMaxReconnectAttempts) {
  auto conn = std::make_shared<MockAuditConnection>();
  EXPECT_CALL(*conn, ReplayEvents(_)).Times(3).WillRepeatedly([](const v1::ReplayEventsRequest&) {
    return std::make_unique<ScriptedReader>(
        std::deque<Step>{absl::UnavailableError("server down")});
  });
  ReplayOptions o = Fast();
  o.max_reconnect_attempts = 3;
  ReplayStream stream = AuditClient(conn).Replay({}, o);
  absl::Status end;
  Drain(stream, &end);
  EXPECT_EQ(end.code(), absl::StatusCode::kUnavailable);
}

TEST(ReplayStreamTest, FollowingReplayReconnectsWhenTheServerEndsTheStream) {
  auto conn = std::make_shared<MockAuditConnection>();
  EXPECT_CALL(*conn, ReplayEvents(_))
      .WillOnce([](const v1::ReplayEventsRequest&) {
        return std::make_unique<ScriptedReader>(std::deque<Step>{Frame({1}, 1, true)});
      })
      .WillOnce([](const v1::ReplayEventsRequest& r) {
        EXPECT_EQ(r.after_position(), 1);
        return std::make_unique<ScriptedReader>(
            std::deque<Step>{Frame({2}, 2, true), absl::InvalidArgumentError("stop here")});
      });
  v1::ReplayEventsRequest r;
  r.set_follow(true);
  ReplayStream stream = AuditClient(conn).Replay(r, Fast());
  absl::Status end;
  EXPECT_EQ(Drain(stream, &end), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(end.code(), absl::StatusCode::kInvalidArgument);
}

// Verified replays: frames built from a correct log with real range proofs.
class VerifiedReplayTest : public ::testing::Test {
 protected:
  v1::ReplayEventsResponse ProvenFrame(int64_t first, int64_t last, bool with_checkpoint) {
    v1::ReplayEventsResponse f;
    for (int64_t p = first; p <= last; ++p) *f.add_events() = log_.events[p - 1];
    f.set_last_position(last);
    f.set_caught_up(last == checkpoint().tree_size());
    std::vector<Sha256Digest> leaves;
    for (const auto& e : log_.events) leaves.push_back(RecomputeLeafHash(e));
    const std::vector<Sha256Digest> proof =
        *merkle::RangeProof(first - 1, last, checkpoint().tree_size(), merkle::SubtreesOf(leaves));
    f.mutable_proof()->set_tree_size(checkpoint().tree_size());
    for (const Sha256Digest& h : proof) f.mutable_proof()->add_hashes(std::string(DigestBytes(h)));
    if (with_checkpoint) *f.mutable_checkpoint() = checkpoint();
    return f;
  }
  const v1::Checkpoint& checkpoint() const { return log_.checkpoints.back(); }  // tree 90

  std::vector<int64_t> Run(std::deque<Step> steps, absl::Status* end,
                           v1::ReplayEventsRequest* sent = nullptr) {
    auto conn = std::make_shared<MockAuditConnection>();
    EXPECT_CALL(*conn, ReplayEvents(_)).WillOnce([steps, sent](const v1::ReplayEventsRequest& r) {
      if (sent != nullptr) *sent = r;
      return std::make_unique<ScriptedReader>(steps);
    });
    ReplayOptions o = Fast();
    o.verify_with = &anchor_;
    ReplayStream stream = AuditClient(conn).Replay(v1::ReplayEventsRequest(), o);
    return Drain(stream, end);
  }

  SigningKey key_ = SigningKey::Generate();
  testing::TestLog log_ = testing::BuildLog(95, 90, key_);
  LogAnchor anchor_{{key_.public_key()}};
};

std::vector<int64_t> Range(int64_t first, int64_t last) {
  std::vector<int64_t> out;
  for (int64_t p = first; p <= last; ++p) out.push_back(p);
  return out;
}

TEST_F(VerifiedReplayTest, AProvenReplayDeliversEverythingAndAdvancesTheAnchor) {
  absl::Status end;
  v1::ReplayEventsRequest sent;
  EXPECT_EQ(Run({ProvenFrame(1, 40, true), ProvenFrame(41, 90, false)}, &end, &sent), Range(1, 90));
  EXPECT_TRUE(end.ok()) << end;
  EXPECT_TRUE(sent.with_proofs());
  EXPECT_EQ(anchor_.checkpoint()->tree_size(), 90);
}

TEST_F(VerifiedReplayTest, AnAlteredEventFailsBeforeItsFrameIsDelivered) {
  v1::ReplayEventsResponse bad = ProvenFrame(41, 90, false);
  bad.mutable_events(7)->mutable_event()->set_subject("order-x");
  absl::Status end;
  EXPECT_EQ(Run({ProvenFrame(1, 40, true), bad}, &end), Range(1, 40));
  EXPECT_EQ(end.code(), absl::StatusCode::kDataLoss) << end;
}

TEST_F(VerifiedReplayTest, ASkippedRangeOrAnEarlyEndIsCaught) {
  absl::Status end;
  EXPECT_EQ(Run({ProvenFrame(1, 40, true), ProvenFrame(51, 90, false)}, &end), Range(1, 40));
  EXPECT_EQ(end.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(end.message().find("41..50 were skipped"), std::string::npos) << end;
  EXPECT_EQ(Run({ProvenFrame(1, 40, true)}, &end), Range(1, 40));
  EXPECT_EQ(end.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(end.message().find("ended before position 41"), std::string::npos) << end;
}

TEST_F(VerifiedReplayTest, AnUntrustedOrMissingCheckpointIsRefused) {
  absl::Status end;
  EXPECT_TRUE(Run({ProvenFrame(1, 40, false)}, &end).empty());
  EXPECT_EQ(end.code(), absl::StatusCode::kDataLoss) << end;
  anchor_ = LogAnchor({SigningKey::Generate().public_key()});
  EXPECT_TRUE(Run({ProvenFrame(1, 40, true)}, &end).empty());
  EXPECT_EQ(end.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(end.message().find("not trusted"), std::string::npos) << end;
}

TEST(AuditClientTest, SubjectHistoryFollowsPageTokens) {
  auto conn = std::make_shared<MockAuditConnection>();
  v1::GetSubjectHistoryResponse first, second;
  first.add_events()->set_position(1);
  first.set_next_page_token("t1");
  second.add_events()->set_position(4);
  EXPECT_CALL(*conn, GetSubjectHistory(_))
      .WillOnce([&](const v1::GetSubjectHistoryRequest& r) {
        EXPECT_EQ(r.subject(), "order-1");
        EXPECT_TRUE(r.page_token().empty());
        return first;
      })
      .WillOnce([&](const v1::GetSubjectHistoryRequest& r) {
        EXPECT_EQ(r.page_token(), "t1");
        return second;
      });
  absl::StatusOr<std::vector<v1::StoredEvent>> h = AuditClient(conn).SubjectHistory("order-1");
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[1].position(), 4);
}

TEST(AuditClientTest, ErrorsKeepTheServerCode) {
  auto conn = std::make_shared<MockAuditConnection>();
  EXPECT_CALL(*conn, GetEvent(_)).WillOnce(Return(absl::NotFoundError("no event at position 9")));
  absl::StatusOr<v1::StoredEvent> e = AuditClient(conn).GetEvent(9);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kNotFound);
}

TEST(RetryPolicyTest, OnlyTransientCodesAreRetryable) {
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kResourceExhausted));
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kAborted));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kNotFound));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kDeadlineExceeded));
}

}  // namespace
}  // namespace audit
