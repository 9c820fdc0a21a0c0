#include "schema/migrator.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/canonical.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "gtest/gtest.h"
#include "schema/migrations.h"
#include "services/common/pg.h"
#include "tests/fixtures/postgres_test.h"

namespace audit::schema {
namespace {

// An unmigrated server: each test creates and migrates its own databases.
class MigratorTest : public testing::PostgresTest</*kMigrated=*/false> {
 protected:
  pg::ConnPtr ConnectNew(const std::string& db) {
    absl::StatusOr<std::string> created = server_->CreateDatabase(db);
    EXPECT_TRUE(created.ok()) << created.status();
    return Connect("postgres", db);
  }
};

TEST_F(MigratorTest, AppliesEverythingThenIsANoOp) {
  pg::ConnPtr conn = ConnectNew("twice");
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(*CurrentVersion(conn.get()), 0);
  absl::StatusOr<MigrationReport> first = Migrate(conn.get(), EmbeddedMigrations());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->applied.size(), EmbeddedMigrations().size());
  EXPECT_EQ(first->version, static_cast<int>(EmbeddedMigrations().size()));

  absl::StatusOr<MigrationReport> second = Migrate(conn.get(), EmbeddedMigrations());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(second->version, first->version);

  absl::StatusOr<std::vector<std::string>> recorded =
      server_->Query("twice",
                     "SELECT version || ':' || name || ':' || length(sha256) FROM "
                     "audit_migrations.applied ORDER BY version");
  ASSERT_TRUE(recorded.ok());
  ASSERT_FALSE(recorded->empty());
  EXPECT_EQ((*recorded)[0], "1:event_store:64");
  EXPECT_EQ((*recorded)[1], "2:tamper_evidence:64");
  EXPECT_TRUE(CheckVersion(conn.get(), first->version).ok());
  EXPECT_EQ(CheckVersion(conn.get(), first->version + 1).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(MigratorTest, AFailingMigrationLeavesNothingBehind) {
  pg::ConnPtr conn = ConnectNew("failing");
  ASSERT_NE(conn, nullptr);
  std::vector<Migration> migrations = EmbeddedMigrations();
  migrations.push_back({static_cast<int>(migrations.size()) + 1, "broken",
                        "CREATE TABLE audit.half_done (x int); SELECT 1/0;"});
  absl::StatusOr<MigrationReport> r = Migrate(conn.get(), migrations);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);  // 22012 division_by_zero
  EXPECT_NE(r.status().message().find("broken"), absl::string_view::npos);
  // The good migrations before it stay applied; the broken one left no table and no record.
  EXPECT_EQ(*CurrentVersion(conn.get()), static_cast<int>(EmbeddedMigrations().size()));
  absl::StatusOr<std::vector<std::string>> t =
      server_->Query("failing", "SELECT to_regclass('audit.half_done') IS NULL");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)[0], "t");
}

TEST_F(MigratorTest, RefusesAChangedAppliedMigration) {
  pg::ConnPtr conn = ConnectNew("changed");
  ASSERT_NE(conn, nullptr);
  ASSERT_TRUE(Migrate(conn.get(), EmbeddedMigrations()).ok());
  std::vector<Migration> edited = EmbeddedMigrations();
  const std::string sql = std::string(edited[0].sql) + "\n-- edited";
  edited[0].sql = sql;
  absl::StatusOr<MigrationReport> r = Migrate(conn.get(), edited);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("must never change"), absl::string_view::npos);
}

// Migration 0002 fills in hashes for events stored before it, in SQL; they must be exactly
// what the C++ ingestor computes (audit/record.h, audit/merkle.h).
TEST_F(MigratorTest, TamperEvidenceBackfillMatchesTheCxxImplementation) {
  pg::ConnPtr conn = ConnectNew("backfill");
  ASSERT_NE(conn, nullptr);
  const std::vector<Migration> v1(EmbeddedMigrations().begin(), EmbeddedMigrations().begin() + 1);
  ASSERT_TRUE(Migrate(conn.get(), v1).ok());
  constexpr int kEvents = 600;  // two level-8 subtrees and one level-9 subtree
  ASSERT_TRUE(pg::Exec(conn.get(), absl::StrCat(R"sql(
      INSERT INTO audit.events (position, event_id, source, type, spec_version, subject,
        occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash)
      SELECT head_position + g, 'e' || g, '/s', 't', '1.0', 'o', now(),
             to_timestamp(recorded_at_micros / 1e6), 'orders.events', g % 3 - 1, 1000 + g,
             sha256(convert_to('content ' || g, 'UTF8'))
      FROM audit.begin_append(), generate_series(1, )sql",
                                                kEvents, ") g")
                                       .c_str())
                  .ok());
  absl::StatusOr<MigrationReport> r = Migrate(conn.get(), EmbeddedMigrations());
  ASSERT_TRUE(r.ok()) << r.status();

  absl::StatusOr<pg::ResultPtr> rows = pg::Exec(
      conn.get(),
      "SELECT position, (extract(epoch FROM recorded_at) * 1000000)::bigint, kafka_topic,"
      " kafka_partition, kafka_offset, content_hash, leaf_hash, chain_hash FROM audit.events"
      " ORDER BY position");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(PQntuples(rows->get()), kEvents);
  Sha256Digest chain = kGenesisChainHash;
  merkle::Frontier frontier;
  std::vector<merkle::Frontier::Node> nodes;
  for (int i = 0; i < kEvents; ++i) {
    const PGresult* res = rows->get();
    Sha256Digest content;
    ASSERT_TRUE(DigestFromBytes(*pg::DecodeByteaHex(pg::Value(res, i, 5)), &content));
    const Sha256Digest leaf = RecordLeafHash(
        pg::Int64Value(res, i, 0), pg::Int64Value(res, i, 1), pg::Value(res, i, 2),
        static_cast<int32_t>(pg::Int64Value(res, i, 3)), pg::Int64Value(res, i, 4), content);
    chain = ChainHash(chain, leaf);
    ASSERT_EQ(*pg::DecodeByteaHex(pg::Value(res, i, 6)), std::string(DigestBytes(leaf))) << i;
    ASSERT_EQ(*pg::DecodeByteaHex(pg::Value(res, i, 7)), std::string(DigestBytes(chain))) << i;
    frontier.Append(leaf, 8, &nodes);
  }
  absl::StatusOr<pg::ResultPtr> stored =
      pg::Exec(conn.get(),
               "SELECT level, node_index, hash FROM audit.merkle_nodes ORDER BY level, node_index");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(PQntuples(stored->get()), static_cast<int>(nodes.size()));
  std::sort(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) {
    return std::tie(a.level, a.index) < std::tie(b.level, b.index);
  });
  for (size_t i = 0; i < nodes.size(); ++i) {
    EXPECT_EQ(pg::Int64Value(stored->get(), i, 0), nodes[i].level);
    EXPECT_EQ(pg::Int64Value(stored->get(), i, 1), static_cast<int64_t>(nodes[i].index));
    EXPECT_EQ(*pg::DecodeByteaHex(pg::Value(stored->get(), i, 2)),
              std::string(DigestBytes(nodes[i].hash)));
  }
  absl::StatusOr<pg::ResultPtr> head =
      pg::Exec(conn.get(), "SELECT position, chain_hash FROM audit.append_head");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(pg::Int64Value(head->get(), 0, 0), kEvents);
  EXPECT_EQ(*pg::DecodeByteaHex(pg::Value(head->get(), 0, 1)), std::string(DigestBytes(chain)));
}

TEST_F(MigratorTest, RejectsNonContiguousVersions) {
  pg::ConnPtr conn = ConnectNew("gaps");
  ASSERT_NE(conn, nullptr);
  std::vector<Migration> migrations = {{2, "two", "SELECT 1"}};
  EXPECT_EQ(Migrate(conn.get(), migrations).status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace audit::schema
