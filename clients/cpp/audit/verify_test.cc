#include "audit/verify.h"

#include <string>
#include <vector>

#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "audit/signing.h"
#include "audit/test_log.h"
#include "gtest/gtest.h"

namespace audit {
namespace {

using ::audit::testing::BuildLog;
using ::audit::testing::MakeCheckpoint;
using ::audit::testing::Rehash;
using ::audit::testing::TestLog;

VerifyReport Verify(const TestLog& log, const std::vector<std::string>& keys) {
  LogVerifier v({.trusted_keys = keys});
  for (const auto& c : log.checkpoints) v.AddCheckpoint(c);
  for (const auto& e : log.events) v.AddEvent(e);
  return v.Finish();
}

class VerifyTest : public ::testing::Test {
 protected:
  SigningKey key_ = SigningKey::Generate();
  SigningKey other_ = SigningKey::Generate();
  TestLog log_ = BuildLog(95, 10, key_);  // checkpoints at 10, 20, ..., 90
};

TEST_F(VerifyTest, AnIntactLogVerifies) {
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.events_checked, 95);
  EXPECT_EQ(r.checkpoints_checked, 9);
  EXPECT_EQ(r.verified_through, 90);
  EXPECT_EQ(r.last_position, 95);
  EXPECT_TRUE(r.keys_pinned);
}

TEST_F(VerifyTest, AlteredDataIsCaughtAtItsPosition) {
  log_.events[56].mutable_event()->set_text_data(R"({"total": 99.99, "currency": "EUR"})");
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_position, 57);
  EXPECT_NE(r.problem.find("content hash"), std::string::npos) << r.problem;
}

TEST_F(VerifyTest, ADeletedEventIsCaughtAtItsPosition) {
  log_.events.erase(log_.events.begin() + 41);
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_EQ(r.first_bad_position, 42);
  EXPECT_NE(r.problem.find("position 42 is missing"), std::string::npos) << r.problem;
}

TEST_F(VerifyTest, SwappedEventsAreCaughtAtTheFirst) {
  std::swap(*log_.events[30].mutable_event(), *log_.events[31].mutable_event());
  std::swap(*log_.events[30].mutable_content_hash(), *log_.events[31].mutable_content_hash());
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_EQ(r.first_bad_position, 31);
  EXPECT_NE(r.problem.find("leaf hash"), std::string::npos) << r.problem;
}

TEST_F(VerifyTest, ARewriteThatRecomputesEveryHashIsCaughtByTheCheckpoints) {
  log_.events[56].mutable_event()->set_actor("user:mallory");
  Rehash(&log_.events, 56);
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_position, 51);  // the first position after the last matching checkpoint
  EXPECT_EQ(r.verified_through, 50);
  EXPECT_NE(r.problem.find("checkpoint seq 6 (tree size 60) does not match"), std::string::npos)
      << r.problem;
}

TEST_F(VerifyTest, AForgedInsertionIsCaughtByTheCheckpoints) {
  v1::StoredEvent forged = log_.events[40];
  forged.mutable_event()->set_id("forged");
  log_.events.insert(log_.events.begin() + 40, forged);
  for (size_t i = 40; i < log_.events.size(); ++i) log_.events[i].set_position(i + 1);
  Rehash(&log_.events, 40);
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_EQ(r.first_bad_position, 41);
}

TEST_F(VerifyTest, ATruncatedTailIsCaughtAtTheFirstMissingPosition) {
  log_.events.resize(85);  // checkpoint 90 covers positions that are gone
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_EQ(r.first_bad_position, 86);
  EXPECT_NE(r.problem.find("truncated"), std::string::npos) << r.problem;
}

TEST_F(VerifyTest, AnAlteredCheckpointFailsItsSignature) {
  log_.checkpoints[4].set_tree_size(49);
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_EQ(r.first_bad_position, 41);
  EXPECT_NE(r.problem.find("signature does not verify"), std::string::npos) << r.problem;
}

TEST_F(VerifyTest, ADeletedCheckpointBreaksTheCheckpointChain) {
  log_.checkpoints.erase(log_.checkpoints.begin() + 3);
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_EQ(r.first_bad_position, 31);
  EXPECT_NE(r.problem.find("expected seq 4"), std::string::npos) << r.problem;
}

TEST_F(VerifyTest, ACheckpointSignedWithAnotherKeyIsNotTrusted) {
  log_.checkpoints[2] = MakeCheckpoint(log_.events, 30, &log_.checkpoints[1], other_);
  log_.checkpoints.resize(3);
  const VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_EQ(r.first_bad_position, 21);
  EXPECT_NE(r.problem.find("not trusted"), std::string::npos) << r.problem;
}

TEST_F(VerifyTest, AnEndorsedKeyRotationIsTrusted) {
  log_.checkpoints.resize(3);
  v1::Checkpoint rotation = MakeCheckpoint(log_.events, 30, &log_.checkpoints[2], other_,
                                           v1::CHECKPOINT_KIND_KEY_ROTATION);
  rotation.set_note("rotated");
  SignCheckpoint(other_, &rotation);
  EndorseCheckpoint(key_, &rotation);
  log_.checkpoints.push_back(rotation);
  log_.checkpoints.push_back(MakeCheckpoint(log_.events, 40, &rotation, other_));
  VerifyReport r = Verify(log_, {key_.public_key()});
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.verified_through, 40);

  log_.checkpoints[3].clear_endorsement();  // unendorsed: the new key is not trusted
  r = Verify(log_, {key_.public_key()});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("not trusted"), std::string::npos) << r.problem;
}

TEST_F(VerifyTest, WithoutPinnedKeysTheFirstKeyIsTrustedOnFirstUse) {
  const VerifyReport r = Verify(log_, {});
  EXPECT_TRUE(r.ok);
  EXPECT_FALSE(r.keys_pinned);
}

TEST_F(VerifyTest, ReplayFramesProveTheirRange) {
  const v1::Checkpoint& cp = log_.checkpoints[8];  // tree size 90
  std::vector<Sha256Digest> leaves;
  for (int i = 0; i < 90; ++i) {
    Sha256Digest d;
    DigestFromBytes(log_.events[i].leaf_hash(), &d);
    leaves.push_back(d);
  }
  v1::ReplayEventsResponse frame;
  for (int i = 20; i < 35; ++i) *frame.add_events() = log_.events[i];
  frame.mutable_proof()->set_tree_size(90);
  const std::vector<Sha256Digest> proof =
      *merkle::RangeProof(20, 35, 90, merkle::SubtreesOf(leaves));
  for (const Sha256Digest& h : proof) {
    frame.mutable_proof()->add_hashes(std::string(DigestBytes(h)));
  }
  EXPECT_TRUE(VerifyReplayFrame(frame, cp).ok());

  v1::ReplayEventsResponse dropped = frame;  // an event left out of the frame
  dropped.mutable_events()->erase(dropped.mutable_events()->begin() + 3);
  EXPECT_FALSE(VerifyReplayFrame(dropped, cp).ok());
  v1::ReplayEventsResponse altered = frame;  // an event altered on the way
  altered.mutable_events(2)->mutable_event()->set_type("com.acme.order.forged");
  EXPECT_FALSE(VerifyReplayFrame(altered, cp).ok());
  v1::ReplayEventsResponse wrong_tree = frame;
  EXPECT_FALSE(VerifyReplayFrame(wrong_tree, log_.checkpoints[7]).ok());
}

// LogAnchor: a client holding keys and a checkpoint it trusts.
class LogAnchorTest : public VerifyTest {
 protected:
  std::vector<Sha256Digest> Leaves() const {
    std::vector<Sha256Digest> out;
    for (const auto& e : log_.events) out.push_back(RecomputeLeafHash(e));
    return out;
  }
  std::vector<std::string> Consistency(int64_t a, int64_t b) const {
    std::vector<std::string> out;
    const std::vector<Sha256Digest> proof1 =
        *merkle::ConsistencyProof(a, b, merkle::SubtreesOf(Leaves()));
    for (const Sha256Digest& h : proof1) {
      out.emplace_back(DigestBytes(h));
    }
    return out;
  }
  v1::GetInclusionProofResponse Inclusion(int64_t position, int64_t size) const {
    v1::GetInclusionProofResponse r;
    *r.mutable_event() = log_.events[position - 1];
    r.set_leaf_index(position - 1);
    r.set_tree_size(size);
    const std::vector<Sha256Digest> proof2 =
        *merkle::InclusionProof(position - 1, size, merkle::SubtreesOf(Leaves()));
    for (const Sha256Digest& h : proof2) {
      r.add_hashes(std::string(DigestBytes(h)));
    }
    return r;
  }
};

TEST_F(LogAnchorTest, AdvancesAlongConsistentCheckpointsAndVerifiesInclusion) {
  LogAnchor anchor({key_.public_key()});
  ASSERT_TRUE(anchor.Advance(log_.checkpoints[2], {}).ok());  // tree 30, no previous
  ASSERT_TRUE(anchor.Advance(log_.checkpoints[6], Consistency(30, 70)).ok())
      << anchor.Advance(log_.checkpoints[6], Consistency(30, 70));
  EXPECT_EQ(anchor.checkpoint()->tree_size(), 70);
  EXPECT_TRUE(anchor.Advance(log_.checkpoints[6], {}).ok()) << "the same checkpoint again";
  for (int64_t p : {1, 33, 64, 65, 70}) {
    EXPECT_TRUE(anchor.VerifyInclusion(Inclusion(p, 70)).ok()) << p;
  }
  // Restored from storage in a later run, the anchor still binds the server.
  LogAnchor restored({key_.public_key()}, anchor.checkpoint());
  EXPECT_TRUE(restored.Advance(log_.checkpoints[8], Consistency(70, 90)).ok());
}

TEST_F(LogAnchorTest, RefusesForgedAndInconsistentCheckpoints) {
  LogAnchor anchor({key_.public_key()});
  ASSERT_TRUE(anchor.Advance(log_.checkpoints[2], {}).ok());
  // A forged sibling in the consistency proof.
  std::vector<std::string> forged = Consistency(30, 70);
  forged[0][5] ^= 1;
  EXPECT_EQ(anchor.Advance(log_.checkpoints[6], forged).code(), absl::StatusCode::kDataLoss);
  // A truncated proof.
  std::vector<std::string> truncated = Consistency(30, 70);
  truncated.pop_back();
  EXPECT_EQ(anchor.Advance(log_.checkpoints[6], truncated).code(), absl::StatusCode::kDataLoss);
  // A proof between other sizes.
  EXPECT_EQ(anchor.Advance(log_.checkpoints[6], Consistency(20, 70)).code(),
            absl::StatusCode::kDataLoss);
  // A rewritten log: a checkpoint, validly signed by the trusted key, of a different history.
  TestLog other = BuildLog(95, 10, key_);
  other.events[4].mutable_event()->set_subject("rewritten");
  Rehash(&other.events, 4);
  v1::Checkpoint fork = MakeCheckpoint(other.events, 70, &log_.checkpoints[5], key_);
  std::vector<std::string> fork_proof;
  std::vector<Sha256Digest> other_leaves;
  for (const auto& e : other.events) other_leaves.push_back(RecomputeLeafHash(e));
  const std::vector<Sha256Digest> proof3 =
      *merkle::ConsistencyProof(30, 70, merkle::SubtreesOf(other_leaves));
  for (const Sha256Digest& h : proof3) {
    fork_proof.emplace_back(DigestBytes(h));
  }
  EXPECT_EQ(anchor.Advance(fork, fork_proof).code(), absl::StatusCode::kDataLoss);
  v1::Checkpoint same_size_fork = MakeCheckpoint(other.events, 30, nullptr, key_);
  EXPECT_EQ(anchor.Advance(same_size_fork, {}).code(), absl::StatusCode::kDataLoss);
  // Another key; an older checkpoint.
  TestLog foreign = BuildLog(95, 10, other_);
  EXPECT_EQ(anchor.Advance(foreign.checkpoints[6], Consistency(30, 70)).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(anchor.Advance(log_.checkpoints[1], {}).code(), absl::StatusCode::kFailedPrecondition);
  // After all that, the anchor still holds what it trusted.
  EXPECT_EQ(anchor.checkpoint()->tree_size(), 30);
}

TEST_F(LogAnchorTest, InclusionProofsAreCheckedAgainstTheTrustedRoot) {
  LogAnchor anchor({key_.public_key()});
  ASSERT_TRUE(anchor.Advance(log_.checkpoints[6], {}).ok());  // tree 70
  v1::GetInclusionProofResponse good = Inclusion(41, 70);
  ASSERT_TRUE(anchor.VerifyInclusion(good).ok());
  v1::GetInclusionProofResponse forged_sibling = good;
  (*forged_sibling.mutable_hashes(2))[0] ^= 1;
  EXPECT_EQ(anchor.VerifyInclusion(forged_sibling).code(), absl::StatusCode::kDataLoss);
  v1::GetInclusionProofResponse truncated = good;
  truncated.mutable_hashes()->RemoveLast();
  EXPECT_EQ(anchor.VerifyInclusion(truncated).code(), absl::StatusCode::kDataLoss);
  v1::GetInclusionProofResponse wrong_size = Inclusion(41, 80);
  EXPECT_FALSE(anchor.VerifyInclusion(wrong_size).ok());
  v1::GetInclusionProofResponse altered = good;
  altered.mutable_event()->mutable_event()->set_type("com.acme.order.cancelled");
  EXPECT_EQ(anchor.VerifyInclusion(altered).code(), absl::StatusCode::kDataLoss);
  v1::GetInclusionProofResponse moved = good;
  moved.set_leaf_index(40 - 1);
  EXPECT_EQ(anchor.VerifyInclusion(moved).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(LogAnchor({key_.public_key()}).VerifyInclusion(good).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(LogAnchorTest, AnEndorsedRotationCarriesTrustToTheNewKey) {
  LogAnchor anchor({key_.public_key()});
  ASSERT_TRUE(anchor.Advance(log_.checkpoints[2], {}).ok());
  v1::Checkpoint rotation = MakeCheckpoint(log_.events, 40, &log_.checkpoints[2], other_,
                                           v1::CHECKPOINT_KIND_KEY_ROTATION);
  v1::Checkpoint unendorsed = rotation;
  EXPECT_EQ(anchor.Advance(unendorsed, Consistency(30, 40)).code(), absl::StatusCode::kDataLoss);
  EndorseCheckpoint(key_, &rotation);
  ASSERT_TRUE(anchor.Advance(rotation, Consistency(30, 40)).ok());
  v1::Checkpoint next = MakeCheckpoint(log_.events, 50, &rotation, other_);
  EXPECT_TRUE(anchor.Advance(next, Consistency(40, 50)).ok());
}

TEST(SigningTest, PemRoundTripAndKeyIds) {
  const SigningKey key = SigningKey::Generate();
  absl::StatusOr<SigningKey> again = SigningKey::FromPem(key.PrivatePem());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->public_key(), key.public_key());
  absl::StatusOr<std::string> pub = PublicKeyFromPem(key.PublicPem());
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(*pub, key.public_key());
  EXPECT_EQ(key.key_id().size(), 16u);
  const std::string sig = key.Sign("message");
  EXPECT_TRUE(VerifySignature(key.public_key(), "message", sig).ok());
  EXPECT_FALSE(VerifySignature(key.public_key(), "massage", sig).ok());
  EXPECT_FALSE(SigningKey::FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n").ok());
}

TEST(RecordTest, ByteLayoutIsPinned) {
  std::string record;
  Sha256Digest content{};
  content[0] = 0xAB;
  AppendCanonicalRecord(2, 1000000, "t", -1, 7, content, &record);
  const std::string expected =
      std::string("audit.v1.EventRecord\0", 21) + std::string("\0\0\0\0\0\0\0\x02", 8) +
      std::string("\0\0\0\0\0\x0f\x42\x40", 8) + std::string("\0\0\0\x01t", 5) +
      std::string("\xff\xff\xff\xff", 4) + std::string("\0\0\0\0\0\0\0\x07", 8) +
      std::string("\xab", 1) + std::string(31, '\0');
  EXPECT_EQ(record, expected);
}

}  // namespace
}  // namespace audit
