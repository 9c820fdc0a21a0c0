// The database itself enforces the audit log's guarantees, whoever connects.
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/pg.h"
#include "tests/fixtures/postgres_test.h"

namespace audit {
namespace {

// One event appended the way a writer must: positions, recorded_at and the chain continue the
// head returned by begin_append (hashes computed with the schema's own SQL functions).
constexpr char kInsertOne[] = R"sql(
WITH h AS (SELECT * FROM audit.begin_append()),
     r AS (SELECT head_position + 1 AS p, to_timestamp(recorded_at_micros / 1e6) AS rec,
                  head_chain_hash AS prev, decode(repeat('ab', 32), 'hex') AS ch FROM h),
     l AS (SELECT *, audit.leaf_hash(audit.record_bytes(p, rec, 'orders.events', 0, p, ch))
                     AS leaf FROM r)
INSERT INTO audit.events (position, event_id, source, type, spec_version, subject, occurred_at,
  recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash, leaf_hash, chain_hash)
SELECT p, 'e-' || p, '/s', 't', '1.0', 'o', now(), rec, 'orders.events', 0, p, ch, leaf,
       audit.chain_hash(prev, leaf)
FROM l
)sql";

class SchemaTest : public testing::PostgresTest<> {
 protected:
  // Runs `sql` as `user` (after `prelude`, e.g. SET ROLE) and returns the SQLSTATE ("" = ok).
  std::string SqlState(const std::string& user, const std::string& sql,
                       const char* prelude = nullptr) {
    pg::ConnPtr c = Connect(user);
    if (c == nullptr) return "no connection";
    if (prelude != nullptr) {
      EXPECT_TRUE(pg::Exec(c.get(), prelude).ok());
    }
    absl::StatusOr<pg::ResultPtr> r = pg::Exec(c.get(), sql.c_str());
    return r.ok() ? "" : pg::SqlStateOf(r.status());
  }
};

TEST_F(SchemaTest, WriterAppendsThroughBeginAppendAndHeadAdvances) {
  EXPECT_EQ(SqlState("ingestor", kInsertOne), "");
  EXPECT_EQ(SqlState("ingestor", kInsertOne), "");
  EXPECT_EQ(Query("SELECT position FROM audit.append_head")[0], "2");
  EXPECT_EQ(Count("audit.events"), 2);
}

TEST_F(SchemaTest, NoServiceRoleCanUpdateDeleteOrTruncateEvents) {
  ASSERT_EQ(SqlState("ingestor", kInsertOne), "");
  for (const char* user : {"ingestor", "reader"}) {
    EXPECT_EQ(SqlState(user, "UPDATE audit.events SET type = 'x'"), "42501") << user;
    EXPECT_EQ(SqlState(user, "DELETE FROM audit.events"), "42501") << user;
    EXPECT_EQ(SqlState(user, "TRUNCATE audit.events"), "42501") << user;
    EXPECT_EQ(SqlState(user, "UPDATE audit.dead_letters SET reason = 'x'"), "42501") << user;
    EXPECT_EQ(SqlState(user, "DELETE FROM audit.dead_letters"), "42501") << user;
    EXPECT_EQ(SqlState(user, "TRUNCATE audit.dead_letters"), "42501") << user;
    EXPECT_EQ(SqlState(user, "UPDATE audit.append_head SET position = 0"), "42501") << user;
    EXPECT_EQ(SqlState(user, "ALTER TABLE audit.events DISABLE TRIGGER USER"), "42501") << user;
  }
  EXPECT_EQ(SqlState("reader", kInsertOne), "42501");
  EXPECT_EQ(Count("audit.events"), 1);
}

TEST_F(SchemaTest, TriggersRejectMutationEvenForTheOwner) {
  ASSERT_EQ(SqlState("ingestor", kInsertOne), "");
  const char* as_owner = "SET ROLE audit_owner";
  EXPECT_EQ(SqlState("postgres", "UPDATE audit.events SET type = 'x'", as_owner), "AU002");
  EXPECT_EQ(SqlState("postgres", "DELETE FROM audit.events", as_owner), "AU002");
  EXPECT_EQ(SqlState("postgres", "TRUNCATE audit.events", as_owner), "AU002");
  EXPECT_EQ(SqlState("postgres", "DELETE FROM audit.dead_letters", as_owner), "AU002");
  EXPECT_EQ(SqlState("postgres", "TRUNCATE audit.dead_letters", as_owner), "AU002");
  // Even when no row matches: the statement itself is refused.
  EXPECT_EQ(SqlState("postgres", "DELETE FROM audit.events WHERE false", as_owner), "AU002");
  EXPECT_EQ(Count("audit.events"), 1);
}

TEST_F(SchemaTest, ReaderSeesEverythingButCannotWrite) {
  ASSERT_EQ(SqlState("ingestor", kInsertOne), "");
  EXPECT_EQ(SqlState("reader", "SELECT * FROM audit.events"), "");
  EXPECT_EQ(SqlState("reader", "SELECT * FROM audit.dead_letters"), "");
  EXPECT_EQ(SqlState("reader", "SELECT * FROM audit.append_head"), "");
  EXPECT_EQ(SqlState("reader", "SELECT max(version) FROM audit_migrations.applied"), "");
  EXPECT_EQ(SqlState("reader", "SELECT * FROM audit.begin_append()"), "42501");
  // The writer reads only what idempotency needs.
  EXPECT_EQ(SqlState("ingestor", "SELECT data FROM audit.events"), "42501");
  EXPECT_EQ(SqlState("ingestor",
                     "SELECT position, source, event_id, content_hash "
                     "FROM audit.events"),
            "");
}

TEST_F(SchemaTest, PositionsMustContinueTheLog) {
  // Skipping a position, reusing one, or not starting at head + 1 is refused.
  // Rows at the given positions; the first one's chain continues the head (the trigger checks
  // only where the batch joins the log).
  const std::string insert_at = R"sql(
    INSERT INTO audit.events (position, event_id, source, type, spec_version, subject,
      occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash,
      leaf_hash, chain_hash)
    SELECT p, 'x' || p, '/s', 't', '1.0', 'o', now(), now(), 't', 0, p,
           decode(repeat('ab', 32), 'hex'), decode(repeat('cd', 32), 'hex'),
           audit.chain_hash(head_chain_hash, decode(repeat('cd', 32), 'hex'))
    FROM audit.begin_append(), unnest(ARRAY[)sql";
  EXPECT_EQ(SqlState("ingestor", insert_at + "2]) p"), "AU001");
  EXPECT_EQ(SqlState("ingestor", insert_at + "1, 3]) p"), "AU001");
  EXPECT_EQ(SqlState("ingestor", insert_at + "1, 2]) p"), "");
  EXPECT_EQ(SqlState("ingestor", insert_at + "2]) p"), "23505");  // position taken
  EXPECT_EQ(SqlState("ingestor", insert_at + "3]) p"), "");
  EXPECT_EQ(Count("audit.events"), 3);
}

TEST_F(SchemaTest, RecordedAtNeverGoesBackwards) {
  ASSERT_EQ(SqlState("ingestor", kInsertOne), "");
  const std::string backdated = R"sql(
    INSERT INTO audit.events (position, event_id, source, type, spec_version, subject,
      occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash,
      leaf_hash, chain_hash)
    SELECT head_position + 1, 'late', '/s', 't', '1.0', 'o', now(), '2000-01-01', 't', 0, 9,
           decode(repeat('ab', 32), 'hex'), decode(repeat('cd', 32), 'hex'),
           audit.chain_hash(head_chain_hash, decode(repeat('cd', 32), 'hex'))
    FROM audit.begin_append())sql";
  EXPECT_EQ(SqlState("ingestor", backdated), "AU001");
}

TEST_F(SchemaTest, ABrokenChainIsRefused) {
  const std::string unlinked = R"sql(
    INSERT INTO audit.events (position, event_id, source, type, spec_version, subject,
      occurred_at, recorded_at, kafka_topic, kafka_partition, kafka_offset, content_hash,
      leaf_hash, chain_hash)
    SELECT head_position + 1, 'x', '/s', 't', '1.0', 'o', now(), now(), 't', 0, 1,
           decode(repeat('ab', 32), 'hex'), decode(repeat('cd', 32), 'hex'),
           decode(repeat('ef', 32), 'hex')
    FROM audit.begin_append())sql";
  EXPECT_EQ(SqlState("ingestor", unlinked), "AU001");
  EXPECT_EQ(Count("audit.events"), 0);
}

TEST_F(SchemaTest, MerkleNodesAndCheckpointsAreAppendOnly) {
  ASSERT_EQ(SqlState("ingestor",
                     "INSERT INTO audit.merkle_nodes VALUES (8, 0, "
                     "decode(repeat('ab', 32), 'hex'))"),
            "");
  const char* as_owner = "SET ROLE audit_owner";
  EXPECT_EQ(SqlState("postgres", "UPDATE audit.merkle_nodes SET level = 9", as_owner), "AU002");
  EXPECT_EQ(SqlState("postgres", "DELETE FROM audit.checkpoints", as_owner), "AU002");
  EXPECT_EQ(SqlState("ingestor", "DELETE FROM audit.merkle_nodes"), "42501");
  EXPECT_EQ(SqlState("reader", "INSERT INTO audit.checkpoints (seq) VALUES (1)"), "42501");
}

TEST_F(SchemaTest, DeadLettersAreWritableOnceByTheWriter) {
  const std::string insert = R"sql(
    INSERT INTO audit.dead_letters (kafka_topic, kafka_partition, kafka_offset,
      raw_header_keys, raw_header_values, raw_value, error_class, reason, received_at)
    VALUES ('orders.events', 0, 7, '{}', '{}', '\x00ff', 'undecodable', 'r', now()))sql";
  EXPECT_EQ(SqlState("ingestor", insert), "");
  EXPECT_EQ(SqlState("ingestor", insert), "23505");  // one dead letter per Kafka message
  EXPECT_EQ(SqlState("ingestor",
                     "INSERT INTO audit.dead_letters (kafka_topic, kafka_partition,"
                     " kafka_offset, raw_header_keys, raw_header_values, error_class,"
                     " reason, received_at) VALUES ('t', 0, 8, '{}', '{}', 'whatever',"
                     " 'r', now())"),
            "23514");  // unknown error class
  EXPECT_EQ(Count("audit.dead_letters"), 1);
}

}  // namespace
}  // namespace audit
