#include "schema/migrator.h"

#include <memory>
#include <string>
#include <vector>

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

TEST_F(MigratorTest, RejectsNonContiguousVersions) {
  pg::ConnPtr conn = ConnectNew("gaps");
  ASSERT_NE(conn, nullptr);
  std::vector<Migration> migrations = {{2, "two", "SELECT 1"}};
  EXPECT_EQ(Migrate(conn.get(), migrations).status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace audit::schema
