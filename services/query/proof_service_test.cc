// ProofService and replays with proofs, through a real gRPC channel (TCP, port 0) over a real
// PostgreSQL, with checkpoints signed by the real checkpointer. Every proof the server gives
// is checked with the SDK's verifiers against the signed checkpoint, never taken on trust.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/audit_client.h"
#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "audit/signing.h"
#include "audit/test_events.h"
#include "audit/v1/audit_service.grpc.pb.h"
#include "audit/v1/proof_service.grpc.pb.h"
#include "audit/verify.h"
#include "gtest/gtest.h"
#include "services/ingestor/checkpointer.h"
#include "services/query/query_server.h"
#include "tests/fixtures/postgres_test.h"
#include "tests/fixtures/seed.h"

namespace audit::query {
namespace {

using ::audit::testing::MakeValidEvent;

std::vector<Sha256Digest> Digests(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<Sha256Digest> out;
  for (const std::string& b : in) {
    Sha256Digest d;
    EXPECT_TRUE(DigestFromBytes(b, &d));
    out.push_back(d);
  }
  return out;
}

Sha256Digest Digest(const std::string& b) {
  Sha256Digest d{};
  EXPECT_TRUE(DigestFromBytes(b, &d));
  return d;
}

class ProofServiceTest : public testing::PostgresTest<> {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    key_ = SigningKey::Generate();
    StartServer({key_.public_key()});
  }

  void StartServer(std::vector<std::string> trusted) {
    QueryServerOptions o;
    o.pg_url = server_->Url(db_, "reader");
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    o.trusted_keys = std::move(trusted);
    query_server_.reset();
    absl::StatusOr<std::unique_ptr<QueryServer>> s = QueryServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    query_server_ = *std::move(s);
    auto channel =
        grpc::CreateChannel(query_server_->address(), grpc::InsecureChannelCredentials());
    proofs_ = v1::ProofService::NewStub(channel);
    audit_ = v1::AuditService::NewStub(channel);
  }

  void Seed(int n) {
    std::vector<v1::Event> events;
    for (int i = 0; i < n; ++i) events.push_back(MakeValidEvent(absl::StrCat("e", seeded_ + i)));
    ASSERT_TRUE(testing::SeedEvents(server_->Url(db_, "ingestor"), events, seeded_).ok());
    seeded_ += n;
  }

  v1::Checkpoint Sign() {
    ingestor::Checkpointer cp({.url = server_->Url(db_, "ingestor"), .key = key_});
    absl::StatusOr<ingestor::Checkpointer::Round> r = cp.RunOnce();
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->appended.size(), 1u);
    return r->appended.empty() ? v1::Checkpoint() : r->appended.back();
  }

  // Runs SQL as the superuser with the append-only triggers off.
  void Tamper(const std::string& sql) {
    Query(absl::StrCat("ALTER TABLE audit.events DISABLE TRIGGER USER; ", sql,
                       "; ALTER TABLE audit.events ENABLE TRIGGER USER; SELECT 1"));
  }

  template <typename Stub, typename Request, typename Response>
  grpc::Status Call(Stub* stub,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
                    const Request& request, Response* response) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return (stub->*method)(&ctx, request, response);
  }

  std::vector<v1::ReplayEventsResponse> Replay(const v1::ReplayEventsRequest& r,
                                               grpc::Status* status) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto reader = audit_->ReplayEvents(&ctx, r);
    std::vector<v1::ReplayEventsResponse> frames;
    v1::ReplayEventsResponse f;
    while (reader->Read(&f)) frames.push_back(f);
    *status = reader->Finish();
    return frames;
  }

  SigningKey key_;
  int seeded_ = 0;
  std::unique_ptr<QueryServer> query_server_;
  std::unique_ptr<v1::ProofService::Stub> proofs_;
  std::unique_ptr<v1::AuditService::Stub> audit_;
};

TEST_F(ProofServiceTest, BeforeTheFirstCheckpointProofsAreNotFound) {
  Seed(3);
  v1::GetLatestCheckpointResponse latest;
  grpc::Status s = Call(proofs_.get(), &v1::ProofService::Stub::GetLatestCheckpoint,
                        v1::GetLatestCheckpointRequest(), &latest);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("--checkpoint_key_file"), std::string::npos);
  v1::ReplayEventsRequest r;
  r.set_with_proofs(true);
  Replay(r, &s);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
}

TEST_F(ProofServiceTest, CheckpointsAreListedInPagesAndVerify) {
  Seed(10);
  const v1::Checkpoint first = Sign();
  Seed(10);
  const v1::Checkpoint second = Sign();
  v1::GetLatestCheckpointResponse latest;
  ASSERT_TRUE(Call(proofs_.get(), &v1::ProofService::Stub::GetLatestCheckpoint,
                   v1::GetLatestCheckpointRequest(), &latest)
                  .ok());
  EXPECT_EQ(latest.checkpoint().SerializeAsString(), second.SerializeAsString());
  EXPECT_TRUE(VerifyCheckpointSignature(latest.checkpoint(), key_.public_key()).ok());

  v1::ListCheckpointsRequest list;
  list.set_page_size(1);
  std::vector<int64_t> seqs;
  for (int pages = 0; pages < 5; ++pages) {
    v1::ListCheckpointsResponse page;
    ASSERT_TRUE(Call(proofs_.get(), &v1::ProofService::Stub::ListCheckpoints, list, &page).ok());
    for (const auto& c : page.checkpoints()) seqs.push_back(c.seq());
    if (page.next_page_token().empty()) break;
    list.set_page_token(page.next_page_token());
  }
  EXPECT_EQ(seqs, (std::vector<int64_t>{1, 2}));
  list.set_page_token("forged");
  v1::ListCheckpointsResponse page;
  grpc::Status s = Call(proofs_.get(), &v1::ProofService::Stub::ListCheckpoints, list, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("page_token"), std::string::npos) << s.error_message();
  list.set_page_token("");
  list.set_page_size(1001);
  s = Call(proofs_.get(), &v1::ProofService::Stub::ListCheckpoints, list, &page);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("page_size"), std::string::npos) << s.error_message();
  (void)first;
}

TEST_F(ProofServiceTest, InclusionProofsVerifyAgainstTheSignedRoot) {
  Seed(1000);
  const v1::Checkpoint older = Sign();
  Seed(301);
  const v1::Checkpoint latest = Sign();
  for (int64_t position : {1, 2, 255, 256, 257, 512, 999, 1000, 1001, 1301}) {
    for (const v1::Checkpoint* c : {&latest, &older}) {
      if (position > c->tree_size()) continue;
      v1::GetInclusionProofRequest r;
      r.set_position(position);
      if (c == &older) r.set_tree_size(older.tree_size());  // else 0: the latest checkpoint
      v1::GetInclusionProofResponse proof;
      grpc::Status s = Call(proofs_.get(), &v1::ProofService::Stub::GetInclusionProof, r, &proof);
      ASSERT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(proof.checkpoint().seq(), c->seq());
      EXPECT_EQ(proof.tree_size(), c->tree_size());
      EXPECT_EQ(proof.event().position(), position);
      // The leaf is recomputed from the event's fields, not taken from the response.
      EXPECT_TRUE(merkle::VerifyInclusion(position - 1, c->tree_size(),
                                          RecomputeLeafHash(proof.event()), Digests(proof.hashes()),
                                          Digest(c->root_hash()))
                      .ok())
          << "position " << position << " in tree " << c->tree_size();
    }
  }
}

TEST_F(ProofServiceTest, ConsistencyProofsLinkCheckpoints) {
  Seed(700);
  const v1::Checkpoint a = Sign();
  Seed(345);
  const v1::Checkpoint b = Sign();
  v1::GetConsistencyProofRequest r;
  r.set_first_tree_size(a.tree_size());
  r.set_second_tree_size(b.tree_size());
  v1::GetConsistencyProofResponse proof;
  ASSERT_TRUE(Call(proofs_.get(), &v1::ProofService::Stub::GetConsistencyProof, r, &proof).ok());
  EXPECT_TRUE(merkle::VerifyConsistency(a.tree_size(), b.tree_size(), Digest(a.root_hash()),
                                        Digest(b.root_hash()), Digests(proof.hashes()))
                  .ok());
  // The same proof does not link a different pair.
  EXPECT_FALSE(merkle::VerifyConsistency(a.tree_size() - 1, b.tree_size(), Digest(a.root_hash()),
                                         Digest(b.root_hash()), Digests(proof.hashes()))
                   .ok());
}

// Every malformed request to every ProofService method (and replays with proofs) gets its
// exact status, with a message that starts with the field's path.
TEST_F(ProofServiceTest, BadProofRequestsNameTheField) {
  Seed(5);
  Sign();
  using Stub = v1::ProofService::Stub;
  struct Case {
    const char* name;
    std::function<grpc::Status()> call;
    grpc::StatusCode code;
    const char* prefix;
  };
  const auto inclusion = [this](int64_t position, int64_t tree_size) {
    return [this, position, tree_size] {
      v1::GetInclusionProofRequest r;
      r.set_position(position);
      r.set_tree_size(tree_size);
      v1::GetInclusionProofResponse out;
      return Call(proofs_.get(), &Stub::GetInclusionProof, r, &out);
    };
  };
  const auto consistency = [this](int64_t first, int64_t second) {
    return [this, first, second] {
      v1::GetConsistencyProofRequest r;
      r.set_first_tree_size(first);
      r.set_second_tree_size(second);
      v1::GetConsistencyProofResponse out;
      return Call(proofs_.get(), &Stub::GetConsistencyProof, r, &out);
    };
  };
  const auto verify = [this](int64_t first, int64_t last) {
    return [this, first, last] {
      v1::VerifyRangeRequest r;
      r.set_first_position(first);
      r.set_last_position(last);
      v1::VerifyRangeResponse out;
      return Call(proofs_.get(), &Stub::VerifyRange, r, &out);
    };
  };
  const auto list = [this](int32_t page_size, std::string token) {
    return [this, page_size, token] {
      v1::ListCheckpointsRequest r;
      r.set_page_size(page_size);
      r.set_page_token(token);
      v1::ListCheckpointsResponse out;
      return Call(proofs_.get(), &Stub::ListCheckpoints, r, &out);
    };
  };
  const auto replay = [this](std::function<void(v1::ReplayEventsRequest*)> set) {
    return [this, set] {
      v1::ReplayEventsRequest r;
      r.set_with_proofs(true);
      set(&r);
      grpc::Status s;
      Replay(r, &s);
      return s;
    };
  };
  const std::vector<Case> cases = {
      {"inclusion of position 0", inclusion(0, 0), grpc::StatusCode::INVALID_ARGUMENT,
       "position: must be positive"},
      {"inclusion in a negative tree", inclusion(1, -1), grpc::StatusCode::INVALID_ARGUMENT,
       "tree_size: must not be negative"},
      {"inclusion beyond the tree", inclusion(4, 3), grpc::StatusCode::INVALID_ARGUMENT,
       "tree_size: position 4 is not in the tree of size 3"},
      {"inclusion beyond the latest checkpoint", inclusion(6, 0),
       grpc::StatusCode::INVALID_ARGUMENT, "position: position 6 is not in the tree of size 5"},
      {"inclusion in a tree larger than the log", inclusion(4, 6), grpc::StatusCode::OUT_OF_RANGE,
       "tree_size: 6 exceeds the log's size 5"},
      {"consistency from 0", consistency(0, 3), grpc::StatusCode::INVALID_ARGUMENT,
       "first_tree_size: must be positive"},
      {"consistency backwards", consistency(3, 2), grpc::StatusCode::INVALID_ARGUMENT,
       "second_tree_size: must not be smaller than first_tree_size"},
      {"consistency beyond the log", consistency(2, 9), grpc::StatusCode::OUT_OF_RANGE,
       "second_tree_size: 9 exceeds the log's size 5"},
      {"verify from a negative position", verify(-1, 0), grpc::StatusCode::INVALID_ARGUMENT,
       "first_position: must not be negative"},
      {"verify to a negative position", verify(0, -1), grpc::StatusCode::INVALID_ARGUMENT,
       "last_position: must not be negative"},
      {"verify backwards", verify(4, 2), grpc::StatusCode::INVALID_ARGUMENT,
       "last_position: must not be smaller than first_position"},
      {"verify beyond the log", verify(1, 6), grpc::StatusCode::OUT_OF_RANGE,
       "last_position: 6 exceeds the log's size 5"},
      {"checkpoints page too large", list(1001, ""), grpc::StatusCode::INVALID_ARGUMENT,
       "page_size: must be between 1 and 1000"},
      {"checkpoints page negative", list(-1, ""), grpc::StatusCode::INVALID_ARGUMENT,
       "page_size: must be between 1 and 1000"},
      {"checkpoints forged token", list(10, "Zm9yZ2Vk"), grpc::StatusCode::INVALID_ARGUMENT,
       "page_token:"},
      {"proven replay that follows",
       replay([](v1::ReplayEventsRequest* r) { r->set_follow(true); }),
       grpc::StatusCode::INVALID_ARGUMENT, "with_proofs: cannot be combined with follow"},
      {"proven replay with a filter",
       replay([](v1::ReplayEventsRequest* r) { r->mutable_filter()->add_types("x"); }),
       grpc::StatusCode::INVALID_ARGUMENT, "with_proofs: cannot be combined with a filter"},
  };
  for (const Case& c : cases) {
    const grpc::Status s = c.call();
    EXPECT_EQ(s.error_code(), c.code) << c.name << ": " << s.error_message();
    EXPECT_EQ(s.error_message().rfind(c.prefix, 0), 0u)
        << c.name << ": '" << s.error_message() << "' does not start with '" << c.prefix << "'";
  }
}

TEST_F(ProofServiceTest, VerifyRangeRecomputesTheLogAndFindsTheFirstBadPosition) {
  Seed(800);
  Sign();
  Seed(200);
  Sign();
  Seed(7);  // not yet signed
  v1::VerifyRangeResponse out;
  ASSERT_TRUE(
      Call(proofs_.get(), &v1::ProofService::Stub::VerifyRange, v1::VerifyRangeRequest(), &out)
          .ok());
  EXPECT_TRUE(out.ok()) << out.problem();
  EXPECT_TRUE(out.keys_pinned());
  EXPECT_EQ(out.events_checked(), 1007);
  EXPECT_EQ(out.checkpoints_checked(), 2);
  EXPECT_EQ(out.verified_through(), 1000);

  v1::VerifyRangeRequest middle;
  middle.set_first_position(300);
  middle.set_last_position(420);
  ASSERT_TRUE(Call(proofs_.get(), &v1::ProofService::Stub::VerifyRange, middle, &out).ok());
  EXPECT_TRUE(out.ok()) << out.problem();
  EXPECT_EQ(out.verified_through(), 420);
  EXPECT_EQ(out.events_checked(), 800 - 299) << "checked through the covering checkpoint";

  Tamper("UPDATE audit.events SET data = '{\"forged\": true}' WHERE position = 333");
  ASSERT_TRUE(
      Call(proofs_.get(), &v1::ProofService::Stub::VerifyRange, v1::VerifyRangeRequest(), &out)
          .ok());
  EXPECT_FALSE(out.ok());
  EXPECT_EQ(out.first_bad_position(), 333);
  EXPECT_NE(out.problem().find("content hash"), std::string::npos) << out.problem();
  ASSERT_TRUE(Call(proofs_.get(), &v1::ProofService::Stub::VerifyRange, middle, &out).ok());
  EXPECT_EQ(out.first_bad_position(), 333);

  // A server that pins another key refuses the checkpoints.
  StartServer({SigningKey::Generate().public_key()});
  v1::VerifyRangeRequest tail;
  tail.set_first_position(900);
  ASSERT_TRUE(Call(proofs_.get(), &v1::ProofService::Stub::VerifyRange, tail, &out).ok());
  EXPECT_FALSE(out.ok());
  EXPECT_NE(out.problem().find("not trusted"), std::string::npos) << out.problem();
}

TEST_F(ProofServiceTest, AReplayWithProofsProvesEveryFrameUpToTheCheckpoint) {
  Seed(1234);
  const v1::Checkpoint c = Sign();
  Seed(50);  // after the checkpoint: not part of a proven replay
  v1::ReplayEventsRequest r;
  r.set_with_proofs(true);
  r.set_max_events_per_frame(100);
  r.set_after_position(17);
  grpc::Status s;
  std::vector<v1::ReplayEventsResponse> frames = Replay(r, &s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames[0].checkpoint().SerializeAsString(), c.SerializeAsString());
  int64_t next = 18;
  for (const v1::ReplayEventsResponse& f : frames) {
    EXPECT_TRUE(VerifyReplayFrame(f, frames[0].checkpoint()).ok());
    for (const auto& e : f.events()) EXPECT_EQ(e.position(), next++);
  }
  EXPECT_EQ(next - 1, c.tree_size()) << "the replay ends exactly at the checkpoint";
  EXPECT_TRUE(frames.back().caught_up());

  // A frame whose event was altered in transit no longer verifies.
  v1::ReplayEventsResponse altered = frames[1];
  altered.mutable_events(3)->mutable_event()->set_subject("someone-else");
  EXPECT_FALSE(VerifyReplayFrame(altered, frames[0].checkpoint()).ok());
  // Nor does one with an event left out.
  v1::ReplayEventsResponse shortened = frames[1];
  shortened.mutable_events()->DeleteSubrange(99, 1);
  EXPECT_FALSE(VerifyReplayFrame(shortened, frames[0].checkpoint()).ok());
}

TEST_F(ProofServiceTest, TheSdkProvesEventsAndReplaysAgainstItsAnchor) {
  AuditClient client(MakeAuditConnection({.target = query_server_->address()}));
  Seed(300);
  Sign();
  LogAnchor anchor({key_.public_key()});
  absl::StatusOr<v1::StoredEvent> e = client.GetProvenEvent(123, &anchor);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->event().id(), "e122");
  EXPECT_EQ(anchor.checkpoint()->tree_size(), 300);

  Seed(211);
  Sign();
  v1::ReplayEventsRequest r;
  r.set_after_position(250);
  r.set_max_events_per_frame(64);
  ReplayStream replay = client.Replay(r, {.verify_with = &anchor});
  int64_t next = 251;
  while (true) {
    absl::StatusOr<std::optional<v1::StoredEvent>> got = replay.Next();
    ASSERT_TRUE(got.ok()) << got.status();
    if (!got->has_value()) break;
    ASSERT_EQ((*got)->position(), next++);
  }
  EXPECT_EQ(next - 1, 511);
  EXPECT_EQ(anchor.checkpoint()->tree_size(), 511) << "advanced with a consistency proof";

  // The database is rewritten under the server: the SDK refuses what it cannot prove.
  Tamper("UPDATE audit.events SET subject = 'order-rewritten' WHERE position = 400");
  ReplayStream tampered = client.Replay(r, {.verify_with = &anchor});
  absl::Status end;
  int delivered = 0;
  while (true) {
    absl::StatusOr<std::optional<v1::StoredEvent>> got = tampered.Next();
    if (!got.ok()) {
      end = got.status();
      break;
    }
    if (!got->has_value()) break;
    ++delivered;
    EXPECT_LT((*got)->position(), 400);
  }
  EXPECT_EQ(end.code(), absl::StatusCode::kDataLoss) << end;
  EXPECT_LT(delivered, 400 - 250);
  EXPECT_EQ(client.GetProvenEvent(400, &anchor).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace audit::query
