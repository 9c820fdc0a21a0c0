#include "services/ingestor/checkpointer.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/checkpoint.h"
#include "audit/rfc3339.h"
#include "audit/signing.h"
#include "audit/test_events.h"
#include "gtest/gtest.h"
#include "services/ingestor/leaf_feed.h"
#include "services/ingestor/pg_event_store.h"
#include "tests/fixtures/postgres_test.h"
#include "tests/fixtures/seed.h"
#include "tests/fixtures/stored_log.h"

namespace audit::ingestor {
namespace {

using ::audit::testing::MakeValidEvent;

class CheckpointerTest : public testing::PostgresTest<> {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    key_ = SigningKey::Generate();
  }

  Checkpointer::Options Opts(const SigningKey& key) {
    Checkpointer::Options o{.url = server_->Url(db_, "ingestor"), .key = key};
    o.read_chunk = 97;  // several chunks per round in these tests
    return o;
  }

  // Appends n events in one batch, through `store` if given (else a store of its own).
  void Seed(int n, PgEventStore* store = nullptr) {
    std::vector<v1::Event> events;
    for (int i = 0; i < n; ++i) events.push_back(MakeValidEvent(absl::StrCat("e", seeded_ + i)));
    PgEventStore own({.url = server_->Url(db_, "ingestor")});
    ASSERT_TRUE(audit::testing::SeedEvents(store != nullptr ? *store : own, events, seeded_).ok());
    seeded_ += n;
  }

  Checkpointer::Options FedOpts(LeafFeed* feed) {
    Checkpointer::Options o = Opts(key_);
    o.leaf_feed = feed;
    return o;
  }

  // The round appended one checkpoint, of `tree_size`.
  static void ExpectOneCheckpoint(const absl::StatusOr<Checkpointer::Round>& r, int64_t tree_size) {
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->appended.size(), 1u);
    EXPECT_EQ(r->appended[0].tree_size(), tree_size);
  }

  // The stored log verifies, through position `n`, with the roots that were signed.
  void ExpectVerifiedThrough(int64_t n) {
    VerifyReport report = audit::testing::VerifyLog(Log(), {key_.public_key()});
    EXPECT_TRUE(report.ok) << report.problem;
    EXPECT_EQ(report.verified_through, n);
  }

  // A store that hands what it commits to `feed`, as in the ingestor.
  std::unique_ptr<PgEventStore> FeedingStore(LeafFeed* feed) {
    return std::make_unique<PgEventStore>(
        PgEventStore::Options{.url = server_->Url(db_, "ingestor"), .leaf_feed = feed});
  }

  audit::testing::StoredLog Log() {
    pg::ConnPtr c = Connect("reader");
    absl::StatusOr<audit::testing::StoredLog> log = audit::testing::ReadStoredLog(c.get());
    EXPECT_TRUE(log.ok()) << log.status();
    return log.ok() ? *log : audit::testing::StoredLog{};
  }

  // Runs `sql` as the superuser with the append-only triggers off: a database administrator.
  void Tamper(const std::string& sql) {
    Query(absl::StrCat("ALTER TABLE audit.events DISABLE TRIGGER USER; ",
                       "ALTER TABLE audit.merkle_nodes DISABLE TRIGGER USER; ", sql,
                       "; ALTER TABLE audit.events ENABLE TRIGGER USER;",
                       " ALTER TABLE audit.merkle_nodes ENABLE TRIGGER USER; SELECT 1"));
  }

  SigningKey key_;
  int seeded_ = 0;
};

TEST_F(CheckpointerTest, SignsTheLogAsItGrowsEachEntryChainedToThePrevious) {
  Checkpointer cp(Opts(key_));
  absl::StatusOr<Checkpointer::Round> r = cp.RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->appended.empty()) << "an empty log needs no checkpoint";

  Seed(300);
  r = cp.RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->appended.size(), 1u);
  EXPECT_EQ(r->appended[0].seq(), 1);
  EXPECT_EQ(r->appended[0].kind(), v1::CHECKPOINT_KIND_CHECKPOINT);
  EXPECT_EQ(r->appended[0].tree_size(), 300);
  EXPECT_EQ(r->appended[0].key_id(), key_.key_id());

  r = cp.RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->appended.empty()) << "nothing new, nothing signed";

  Seed(517);
  r = cp.RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->appended.size(), 1u);
  EXPECT_EQ(r->appended[0].seq(), 2);
  EXPECT_EQ(r->appended[0].tree_size(), 817);

  audit::testing::StoredLog log = Log();
  ASSERT_EQ(log.checkpoints.size(), 2u);
  EXPECT_EQ(log.checkpoints[1].previous_signature_hash(),
            std::string(DigestBytes(SignatureHash(log.checkpoints[0]))));
  // What was stored is what was returned, and an independent verifier accepts it all.
  EXPECT_EQ(log.checkpoints[1].SerializeAsString(), r->appended[0].SerializeAsString());
  VerifyReport report = audit::testing::VerifyLog(log, {key_.public_key()});
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.verified_through, 817);
  EXPECT_EQ(report.checkpoints_checked, 2);
}

// Found by the torture suite (rebalance storm): a round that completes many stored subtrees
// must compare each with its own recomputation, whatever order the database returns them in.
TEST_F(CheckpointerTest, ARoundCompletingManySubtreesSigns) {
  Seed(1000);
  ASSERT_TRUE(Checkpointer(Opts(key_)).RunOnce().ok());
  // The next round completes (8, 3), (9, 1), (10, 0) at position 1024, then (8, 4) at 1280.
  Seed(300);
  // Rows in another physical order than they were completed in (as concurrent writers leave
  // them), read by a hash join (as the planner picks when the table is larger than the list).
  Query("CLUSTER audit.merkle_nodes USING merkle_nodes_pkey; SELECT 1");
  Query(absl::StrCat("ALTER ROLE ingestor IN DATABASE \"", db_,
                     "\" SET enable_nestloop = off; ALTER ROLE ingestor IN DATABASE \"", db_,
                     "\" SET enable_mergejoin = off; SELECT 1"));
  Checkpointer::Options o = Opts(key_);
  o.read_chunk = 100000;  // all four in one chunk
  absl::StatusOr<Checkpointer::Round> r = Checkpointer(o).RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->appended.size(), 1u);
  EXPECT_EQ(r->appended[0].tree_size(), 1300);
}

TEST_F(CheckpointerTest, RefusesToSignWhenTheSignedTreeWasAltered) {
  Checkpointer cp(Opts(key_));
  Seed(600);
  ASSERT_TRUE(cp.RunOnce().ok());
  Seed(10);
  // An administrator rewrites an event's leaf hash inside the signed range. (The checkpointer
  // rebuilds the signed tree from O(log n) stored hashes, here the leaves of positions
  // 513..600 and subtree (9, 0); a change under a stored subtree is left to verifiers, which
  // recompute everything: see ATamperedLogIsCaughtByVerifiers... in the tamper matrix.)
  Tamper("UPDATE audit.events SET leaf_hash = sha256('forged') WHERE position = 590");
  absl::StatusOr<Checkpointer::Round> r = cp.RunOnce();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_NE(r.status().message().find("no longer has the root"), std::string::npos) << r.status();
  EXPECT_EQ(Count("audit.checkpoints"), 1);
}

TEST_F(CheckpointerTest, RefusesToSignABrokenChainOrForgedSubtreeAfterTheLastCheckpoint) {
  Checkpointer cp(Opts(key_));
  Seed(100);
  ASSERT_TRUE(cp.RunOnce().ok());
  Seed(200);
  Tamper("UPDATE audit.events SET leaf_hash = sha256('forged') WHERE position = 150");
  absl::StatusOr<Checkpointer::Round> r = cp.RunOnce();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("chain is broken at position 150"), std::string::npos)
      << r.status();

  // A subtree node that does not hash its leaves.
  Tamper(
      "UPDATE audit.events SET leaf_hash = (SELECT leaf_hash FROM audit.events x"
      " WHERE x.position = 149) WHERE position = 150");  // undo nothing: chain still broken
  Tamper("UPDATE audit.merkle_nodes SET hash = sha256('x') WHERE level = 8 AND node_index = 0");
  r = cp.RunOnce();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_EQ(Count("audit.checkpoints"), 1);
}

TEST_F(CheckpointerTest, AForgedMerkleNodeIsNoticedEvenWithAnIntactChain) {
  Checkpointer cp(Opts(key_));
  Seed(100);
  ASSERT_TRUE(cp.RunOnce().ok());
  Seed(200);
  Tamper("UPDATE audit.merkle_nodes SET hash = sha256('x') WHERE level = 8 AND node_index = 0");
  absl::StatusOr<Checkpointer::Round> r = cp.RunOnce();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("Merkle node (8, 0)"), std::string::npos) << r.status();
}

TEST_F(CheckpointerTest, ATruncatedLogIsRefused) {
  Checkpointer cp(Opts(key_));
  Seed(50);
  ASSERT_TRUE(cp.RunOnce().ok());
  Tamper("DELETE FROM audit.events WHERE position > 40");
  absl::StatusOr<Checkpointer::Round> r = cp.RunOnce();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status();
}

TEST_F(CheckpointerTest, EventsThatWaitedTooLongAreRecordedAsAGap) {
  Seed(20);
  Checkpointer::Options o = Opts(key_);
  o.gap_after = absl::Minutes(1);
  o.clock = [] { return absl::Now() + absl::Minutes(5); };  // signing was off for 5 minutes
  absl::StatusOr<Checkpointer::Round> r = Checkpointer(o).RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->appended.size(), 1u);
  EXPECT_EQ(r->appended[0].kind(), v1::CHECKPOINT_KIND_GAP);
  EXPECT_EQ(r->appended[0].tree_size(), 20);
  EXPECT_NE(r->appended[0].note().find("position 1 was recorded at"), std::string::npos)
      << r->appended[0].note();
  // A gap entry still signs the root, so the log verifies; the gap is visible, not silent.
  VerifyReport report = audit::testing::VerifyLog(Log(), {key_.public_key()});
  EXPECT_TRUE(report.ok) << report.problem;
  // Prompt signing makes no gap.
  Seed(5);
  r = Checkpointer(Opts(key_)).RunOnce();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->appended.size(), 1u);
  EXPECT_EQ(r->appended[0].kind(), v1::CHECKPOINT_KIND_CHECKPOINT);
}

TEST_F(CheckpointerTest, KeyRotationsAreExplicitAndEndorsedWhenThePreviousKeyIsGiven) {
  Seed(10);
  ASSERT_TRUE(Checkpointer(Opts(key_)).RunOnce().ok());
  // Rotation with the previous key at hand: endorsed, so verifiers pinning the old key follow.
  const SigningKey second = SigningKey::Generate();
  Checkpointer::Options o = Opts(second);
  o.previous_key = key_;
  Seed(10);
  absl::StatusOr<Checkpointer::Round> r = Checkpointer(o).RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->appended.size(), 1u);
  EXPECT_EQ(r->appended[0].kind(), v1::CHECKPOINT_KIND_KEY_ROTATION);
  EXPECT_EQ(r->appended[0].endorsing_key_id(), key_.key_id());
  EXPECT_EQ(r->appended[0].tree_size(), 20);
  VerifyReport report = audit::testing::VerifyLog(Log(), {key_.public_key()});
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.verified_through, 20);

  // An ingestor still holding the old key stays passive instead of rotating back.
  Seed(3);
  r = Checkpointer(Opts(key_)).RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->passive);
  EXPECT_TRUE(r->appended.empty());

  // A lost key: the rotation is recorded, unendorsed; verifiers must pin the new key.
  const SigningKey third = SigningKey::Generate();
  r = Checkpointer(Opts(third)).RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->appended.size(), 1u);
  EXPECT_EQ(r->appended[0].kind(), v1::CHECKPOINT_KIND_KEY_ROTATION);
  EXPECT_TRUE(r->appended[0].endorsement().empty());
  report = audit::testing::VerifyLog(Log(), {key_.public_key()});
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_position, 21);
  EXPECT_NE(report.problem.find("not trusted"), std::string::npos) << report.problem;
  report = audit::testing::VerifyLog(Log(), {key_.public_key(), third.public_key()});
  EXPECT_TRUE(report.ok) << report.problem;
}

TEST_F(CheckpointerTest, SignsWhatItsOwnStoreCommittedWithoutReadingItBack) {
  LeafFeed feed;
  std::unique_ptr<PgEventStore> store = FeedingStore(&feed);
  Checkpointer cp(FedOpts(&feed));
  Seed(300, store.get());
  ExpectOneCheckpoint(cp.RunOnce(), 300);
  Seed(517, store.get());
  Seed(3, store.get());
  ExpectOneCheckpoint(cp.RunOnce(), 820);
  EXPECT_EQ(cp.leaves_fed(), 820);
  EXPECT_EQ(cp.leaves_read(), 0);
  // Signed the same roots a reader of the stored log recomputes.
  ExpectVerifiedThrough(820);
}

TEST_F(CheckpointerTest, ReadsWhatOtherWritersStoredBetweenItsOwnBatches) {
  LeafFeed feed;
  std::unique_ptr<PgEventStore> store = FeedingStore(&feed);
  Checkpointer cp(FedOpts(&feed));
  Seed(100, store.get());
  Seed(250);  // another ingestor
  Seed(70, store.get());
  Seed(30);  // another ingestor, last
  ExpectOneCheckpoint(cp.RunOnce(), 450);
  EXPECT_EQ(cp.leaves_fed(), 170);
  EXPECT_EQ(cp.leaves_read(), 280);
  ExpectVerifiedThrough(450);
}

// The window docs/VERIFICATION.md names: a tail rewritten with its hashes recomputed before
// the next checkpoint. Signed as stored it would pass; signed as written it is refused.
TEST_F(CheckpointerTest, ATailRewrittenBeforeTheRoundIsRefusedWhenItsLeavesWereFed) {
  LeafFeed feed;
  std::unique_ptr<PgEventStore> store = FeedingStore(&feed);
  Seed(300, store.get());
  Tamper(
      "UPDATE audit.events SET leaf_hash = sha256('forged') WHERE position = 299; "
      "UPDATE audit.events e SET chain_hash = sha256('\\x02'::bytea || (SELECT chain_hash FROM"
      " audit.events WHERE position = 298) || e.leaf_hash) WHERE position = 299; "
      "UPDATE audit.events e SET chain_hash = sha256('\\x02'::bytea || (SELECT chain_hash FROM"
      " audit.events WHERE position = 299) || e.leaf_hash) WHERE position = 300");
  absl::StatusOr<Checkpointer::Round> r = Checkpointer(FedOpts(&feed)).RunOnce();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("chain hash stored at position 300"), std::string::npos)
      << r.status();
  EXPECT_EQ(Count("audit.checkpoints"), 0);
  // Without the feed the rewrite is consistent with itself and is signed; only verifiers find
  // that position 299's leaf no longer hashes its record.
  r = Checkpointer(Opts(key_)).RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  VerifyReport report = audit::testing::VerifyLog(Log(), {key_.public_key()});
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_position, 299) << report.problem;
}

TEST_F(CheckpointerTest, AGapIsDatedFromTheFedRunAsFromTheStoredRow) {
  LeafFeed feed;
  std::unique_ptr<PgEventStore> store = FeedingStore(&feed);
  Seed(20, store.get());
  Checkpointer::Options o = FedOpts(&feed);
  o.clock = [] { return absl::Now() + absl::Minutes(5); };
  Checkpointer cp(o);
  absl::StatusOr<Checkpointer::Round> r = cp.RunOnce();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->appended.size(), 1u);
  EXPECT_EQ(r->appended[0].kind(), v1::CHECKPOINT_KIND_GAP);
  EXPECT_EQ(cp.leaves_fed(), 20);
  const std::string recorded = FormatRfc3339(Log().events.at(0).recorded_time());
  EXPECT_NE(r->appended[0].note().find(absl::StrCat("position 1 was recorded at ", recorded)),
            std::string::npos)
      << r->appended[0].note();
}

TEST_F(CheckpointerTest, ConcurrentCheckpointersAndWritersKeepOneValidCheckpointLog) {
  std::atomic<bool> done{false};
  std::vector<std::thread> signers;
  std::atomic<int> failures{0};
  for (int i = 0; i < 2; ++i) {
    signers.emplace_back([&] {
      Checkpointer cp(Opts(key_));
      while (!done) {
        absl::StatusOr<Checkpointer::Round> r = cp.RunOnce();
        if (!r.ok()) ++failures;
      }
    });
  }
  for (int b = 0; b < 30; ++b) Seed(37);
  done = true;
  for (auto& t : signers) t.join();
  EXPECT_EQ(failures, 0);
  ASSERT_TRUE(Checkpointer(Opts(key_)).RunOnce().ok());
  audit::testing::StoredLog log = Log();
  ASSERT_FALSE(log.checkpoints.empty());
  EXPECT_EQ(log.checkpoints.back().tree_size(), 30 * 37);
  VerifyReport report = audit::testing::VerifyLog(log, {key_.public_key()});
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.verified_through, 30 * 37);
}

}  // namespace
}  // namespace audit::ingestor
