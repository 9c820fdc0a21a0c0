// The tamper matrix: a database administrator (the PostgreSQL superuser, append-only triggers
// switched off) changes the stored log in every way that matters, and every change is caught
// with the first position that can no longer be proven — by the offline verifier over an
// export bundle (what an auditor runs) and by ProofService.VerifyRange (what an operator
// runs), which must agree. The attacker knows every algorithm: "rehash" cases recompute every
// content, leaf and chain hash and every stored Merkle node after the edit, so only the signed
// checkpoints stand in the way.
//
// The log: 620 events, checkpoints at 300 (seq 1) and 600 (seq 2), 20 events not yet signed.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "audit/signing.h"
#include "audit/test_events.h"
#include "audit/test_log.h"
#include "audit/v1/proof_service.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/common/checkpoint_rows.h"
#include "services/common/pg.h"
#include "services/ingestor/checkpointer.h"
#include "services/query/query_server.h"
#include "tests/fixtures/postgres_test.h"
#include "tests/fixtures/seed.h"
#include "tests/fixtures/stored_log.h"
#include "tools/auditctl/verification.h"

namespace audit {
namespace {

constexpr int kFirstCheckpoint = 300;
constexpr int kSecondCheckpoint = 600;
constexpr int kEvents = 620;

struct Outcome {
  bool ok = false;
  int64_t first_bad_position = 0;
  std::string problem;
  int64_t verified_through = 0;
};

class TamperTest : public testing::PostgresTest<> {
 protected:
  void SetUp() override {
    PostgresTest::SetUp();
    key_ = SigningKey::Generate();
    Seed(kFirstCheckpoint);
    Sign();
    Seed(kSecondCheckpoint - kFirstCheckpoint);
    Sign();
    Seed(kEvents - kSecondCheckpoint);
    ASSERT_EQ(Count("audit.checkpoints"), 2);
  }

  void Seed(int n) {
    std::vector<v1::Event> events;
    for (int i = 0; i < n; ++i) {
      v1::Event e = testing::MakeValidEvent(absl::StrCat("e", seeded_ + i),
                                            absl::StrCat("order-", (seeded_ + i) % 7));
      events.push_back(e);
    }
    ASSERT_TRUE(testing::SeedEvents(server_->Url(db_, "ingestor"), events, seeded_).ok());
    seeded_ += n;
  }

  void Sign() {
    ingestor::Checkpointer cp({.url = server_->Url(db_, "ingestor"), .key = key_});
    absl::StatusOr<ingestor::Checkpointer::Round> r = cp.RunOnce();
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // SQL as the superuser, with every user trigger off: what a database administrator can do.
  void AsSuperuser(const std::string& sql) {
    Query(
        absl::StrCat("ALTER TABLE audit.events DISABLE TRIGGER USER;"
                     " ALTER TABLE audit.merkle_nodes DISABLE TRIGGER USER;"
                     " ALTER TABLE audit.checkpoints DISABLE TRIGGER USER;",
                     sql,
                     "; ALTER TABLE audit.events ENABLE TRIGGER USER;"
                     " ALTER TABLE audit.merkle_nodes ENABLE TRIGGER USER;"
                     " ALTER TABLE audit.checkpoints ENABLE TRIGGER USER; SELECT 1"));
  }

  // The attacker recomputes every hash from `from` on, and every Merkle node and the head.
  void Rehash(int64_t from) {
    pg::ConnPtr c = Connect();
    absl::StatusOr<testing::StoredLog> log = testing::ReadStoredLog(c.get());
    ASSERT_TRUE(log.ok()) << log.status();
    testing::Rehash(&log->events, static_cast<size_t>(from - 1));
    std::string sql;
    for (size_t i = from - 1; i < log->events.size(); ++i) {
      const v1::StoredEvent& e = log->events[i];
      absl::StrAppend(&sql, "UPDATE audit.events SET content_hash = '",
                      pg::EncodeByteaHex(e.content_hash()), "', leaf_hash = '",
                      pg::EncodeByteaHex(e.leaf_hash()), "', chain_hash = '",
                      pg::EncodeByteaHex(e.chain_hash()), "' WHERE position = ", e.position(), ";");
    }
    merkle::Frontier f;
    std::vector<merkle::Frontier::Node> nodes;
    for (const auto& e : log->events) {
      Sha256Digest leaf;
      ASSERT_TRUE(DigestFromBytes(e.leaf_hash(), &leaf));
      f.Append(leaf, 8, &nodes);
    }
    absl::StrAppend(&sql, "DELETE FROM audit.merkle_nodes;");
    for (const auto& n : nodes) {
      absl::StrAppend(&sql, "INSERT INTO audit.merkle_nodes VALUES (", n.level, ", ", n.index,
                      ", '", pg::EncodeByteaHex(std::string(DigestBytes(n.hash))), "');");
    }
    if (!log->events.empty()) {
      absl::StrAppend(&sql,
                      "UPDATE audit.append_head SET position = ", log->events.back().position(),
                      ", chain_hash = '", pg::EncodeByteaHex(log->events.back().chain_hash()), "'");
    }
    AsSuperuser(sql);
  }

  // Verifies as an auditor: an export bundle (written from the stored log) verified offline.
  Outcome VerifyBundle(const std::vector<std::string>& keys) {
    pg::ConnPtr c = Connect("reader");
    absl::StatusOr<testing::StoredLog> log = testing::ReadStoredLog(c.get());
    EXPECT_TRUE(log.ok()) << log.status();
    char* buffer = nullptr;
    size_t size = 0;
    std::FILE* f = open_memstream(&buffer, &size);
    cli::BundleWriter w(f);
    EXPECT_TRUE(w.Header("tamper test").ok());
    for (const auto& cp : log->checkpoints) EXPECT_TRUE(w.Checkpoint(cp).ok());
    for (const auto& e : log->events) EXPECT_TRUE(w.Event(e).ok());
    std::fclose(f);
    std::istringstream in(std::string(buffer, size));
    std::free(buffer);
    absl::StatusOr<cli::Verification> v = cli::VerifyBundle(in, keys);
    EXPECT_TRUE(v.ok()) << v.status();
    if (!v.ok()) return {};
    return {v->report.ok, v->report.first_bad_position, v->report.problem,
            v->report.verified_through};
  }

  // Verifies as an operator: ProofService.VerifyRange on a server pinning `keys`.
  Outcome VerifyOnServer(const std::vector<std::string>& keys) {
    query::QueryServerOptions o;
    o.pg_url = server_->Url(db_, "reader");
    o.listen = "127.0.0.1:0";
    o.threads = 1;
    o.trusted_keys = keys;
    absl::StatusOr<std::unique_ptr<query::QueryServer>> s = query::QueryServer::Start(o);
    EXPECT_TRUE(s.ok()) << s.status();
    if (!s.ok()) return {};
    auto stub = v1::ProofService::NewStub(
        grpc::CreateChannel((*s)->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::VerifyRangeResponse r;
    grpc::Status st = stub->VerifyRange(&ctx, v1::VerifyRangeRequest(), &r);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return {r.ok(), r.first_bad_position(), r.problem(), r.verified_through()};
  }

  // Both verifiers must catch it at `position`, and agree.
  void ExpectCaughtAt(int64_t position, const std::string& why) {
    const Outcome bundle = VerifyBundle({key_.public_key()});
    EXPECT_FALSE(bundle.ok) << "offline verification missed it";
    EXPECT_EQ(bundle.first_bad_position, position) << bundle.problem;
    EXPECT_NE(bundle.problem.find(why), std::string::npos) << bundle.problem;
    const Outcome server = VerifyOnServer({key_.public_key()});
    EXPECT_FALSE(server.ok) << "VerifyRange missed it";
    EXPECT_EQ(server.first_bad_position, position) << server.problem;
    EXPECT_NE(server.problem.find(why), std::string::npos) << server.problem;
  }

  SigningKey key_;
  int seeded_ = 0;
};

TEST_F(TamperTest, TheUntouchedLogVerifiesBothWays) {
  const Outcome bundle = VerifyBundle({key_.public_key()});
  EXPECT_TRUE(bundle.ok) << bundle.problem;
  EXPECT_EQ(bundle.verified_through, kSecondCheckpoint);
  const Outcome server = VerifyOnServer({key_.public_key()});
  EXPECT_TRUE(server.ok) << server.problem;
  EXPECT_EQ(server.verified_through, kSecondCheckpoint);
}

TEST_F(TamperTest, OneByteOfAnEventChanged) {
  AsSuperuser("UPDATE audit.events SET subject = 'order-9' WHERE position = 137");
  ExpectCaughtAt(137, "does not match its content hash");
}

TEST_F(TamperTest, OneByteOfTheDataChanged) {
  AsSuperuser(
      "UPDATE audit.events SET data = replace(data::text, '1', '2')::jsonb"
      " WHERE position = 412 AND data::text LIKE '%1%'");
  ASSERT_EQ(Query("SELECT data::text LIKE '%2%' FROM audit.events WHERE position = 412")[0], "t");
  ExpectCaughtAt(412, "does not match its content hash");
}

TEST_F(TamperTest, AMiddleEventDeleted) {
  AsSuperuser("DELETE FROM audit.events WHERE position = 250");
  ExpectCaughtAt(250, "position 250 is missing");
}

TEST_F(TamperTest, TwoEventsSwapped) {
  AsSuperuser(
      "UPDATE audit.events SET position = 1000000 WHERE position = 40;"
      " UPDATE audit.events SET position = 40 WHERE position = 41;"
      " UPDATE audit.events SET position = 41 WHERE position = 1000000");
  ExpectCaughtAt(40, "leaf hash");
}

TEST_F(TamperTest, AForgedEventInsertedNaively) {
  // Positions 500.. move up one; a forged event takes 500, with plausible hashes.
  AsSuperuser(
      "UPDATE audit.events SET position = position + 100000 WHERE position >= 500;"
      " UPDATE audit.events SET position = position - 99999 WHERE position >= 100000;"
      " INSERT INTO audit.events (position, event_id, source, type, spec_version, subject,"
      " occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash,"
      " leaf_hash, chain_hash) SELECT 500, 'forged', source, type, spec_version, subject,"
      " occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash,"
      " leaf_hash, chain_hash FROM audit.events WHERE position = 499");
  ExpectCaughtAt(500, "position 500");
}

TEST_F(TamperTest, AForgedEventInsertedWithEveryHashRecomputed) {
  AsSuperuser(
      "UPDATE audit.events SET position = position + 100000 WHERE position >= 500;"
      " UPDATE audit.events SET position = position - 99999 WHERE position >= 100000;"
      " INSERT INTO audit.events (position, event_id, source, type, spec_version, subject,"
      " occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash,"
      " leaf_hash, chain_hash) SELECT 500, 'forged', source, type, spec_version, subject,"
      " occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset + 1000,"
      " content_hash, leaf_hash, chain_hash FROM audit.events WHERE position = 499");
  Rehash(500);
  // Every stored hash is consistent again: only checkpoint seq 2 (tree size 600) disagrees,
  // so positions after seq 1 are what can no longer be proven.
  ExpectCaughtAt(kFirstCheckpoint + 1, "does not match the log");
}

TEST_F(TamperTest, TheTailTruncated) {
  // A careful attacker also moves the head back.
  AsSuperuser(
      "DELETE FROM audit.events WHERE position > 590;"
      " UPDATE audit.append_head SET position = 590,"
      " chain_hash = (SELECT chain_hash FROM audit.events WHERE position = 590)");
  ExpectCaughtAt(591, "truncated");
}

TEST_F(TamperTest, TheWholeChainRewrittenAfterTheLastCheckpoint) {
  // An edit at position 10, then every hash of the log recomputed from position 1.
  AsSuperuser("UPDATE audit.events SET subject = 'order-rewritten' WHERE position = 10");
  Rehash(1);
  ExpectCaughtAt(1, "checkpoint seq 1 (tree size 300) does not match the log");
}

TEST_F(TamperTest, EventsAfterTheLastCheckpointAreReportedAsNotYetProven) {
  // The documented window: an edit after the newest checkpoint with every hash recomputed is
  // not detectable yet; verification reports those positions as not covered, never as proven.
  AsSuperuser("UPDATE audit.events SET subject = 'order-rewritten' WHERE position = 610");
  Rehash(610);
  const Outcome bundle = VerifyBundle({key_.public_key()});
  EXPECT_TRUE(bundle.ok) << bundle.problem;
  EXPECT_EQ(bundle.verified_through, kSecondCheckpoint);
  // Without the recomputation, the same edit is caught at once.
  AsSuperuser("UPDATE audit.events SET subject = 'order-again' WHERE position = 615");
  ExpectCaughtAt(615, "does not match its content hash");
}

TEST_F(TamperTest, ACheckpointAltered) {
  AsSuperuser("UPDATE audit.checkpoints SET tree_size = 299 WHERE seq = 1");
  ExpectCaughtAt(1, "signature");
}

TEST_F(TamperTest, ACheckpointRootReplacedAndResigned) {
  // The root is replaced and the entry re-signed by the attacker's own key.
  pg::ConnPtr c = Connect();
  absl::StatusOr<std::optional<v1::Checkpoint>> latest = LatestCheckpoint(c.get());
  ASSERT_TRUE(latest.ok() && latest->has_value());
  v1::Checkpoint forged = **latest;
  forged.set_root_hash(std::string(32, 'x'));
  SignCheckpoint(SigningKey::Generate(), &forged);
  AsSuperuser(absl::StrCat("DELETE FROM audit.checkpoints WHERE seq = 2"));
  ASSERT_TRUE(InsertCheckpoint(c.get(), forged).ok());
  ExpectCaughtAt(kFirstCheckpoint + 1, "not trusted");
}

TEST_F(TamperTest, ACheckpointDeleted) {
  AsSuperuser("DELETE FROM audit.checkpoints WHERE seq = 1");
  ExpectCaughtAt(1, "does not start at seq 1");
}

TEST_F(TamperTest, AMiddleCheckpointDeleted) {
  Seed(5);
  Sign();  // seq 3 at 625
  AsSuperuser("DELETE FROM audit.checkpoints WHERE seq = 2");
  ExpectCaughtAt(kFirstCheckpoint + 1, "expected seq 2");
}

TEST_F(TamperTest, EverythingResignedWithAnotherKey) {
  // The attacker rewrites the log and signs a whole new checkpoint log with their own key.
  AsSuperuser(
      "UPDATE audit.events SET subject = 'order-rewritten' WHERE position = 10;"
      " DELETE FROM audit.checkpoints");
  Rehash(1);
  const SigningKey attacker = SigningKey::Generate();
  ingestor::Checkpointer cp({.url = server_->Url(db_, "ingestor"), .key = attacker});
  ASSERT_TRUE(cp.RunOnce().ok());
  ExpectCaughtAt(1, "not trusted");
  // An auditor who pins nothing would have been fooled: pinning is the point.
  EXPECT_TRUE(VerifyBundle({}).ok);
}

}  // namespace
}  // namespace audit
