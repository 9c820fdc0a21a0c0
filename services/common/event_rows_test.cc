#include "services/common/event_rows.h"

#include <string>

#include "gtest/gtest.h"
#include "services/common/pg.h"
#include "tests/fixtures/postgres_test.h"

namespace audit {
namespace {

class EventRowsTest : public testing::PostgresTest</*kMigrated=*/false> {};

// Two rows in kStoredEventColumns' shape: the first sets every optional field, the second
// none of them (and carries binary data instead of JSON).
constexpr char kRows[] = R"sql(
  SELECT * FROM (VALUES
    (7::bigint, 'e7', 'orders', 'order.created', '1.0', 'order-1',
     '2026-11-26 03:57:50.819485+00'::timestamptz, '1999-12-31 23:59:59.000001+00'::timestamptz,
     'application/json', 'https://schemas/x', '{"a": 1}', NULL::bytea, 'corr', 'cause',
     'alice', 'acme', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 42::bigint,
     '{"region": "eu"}', 'audit.orders', 3, 1234567890123::bigint,
     '\x01'::bytea, '\x02'::bytea, '\x03'::bytea),
    (8::bigint, 'e8', 'orders', 'order.paid', '1.0', 'order-1',
     '2026-11-26 03:57:51+00'::timestamptz, '2026-11-26 03:57:52+00'::timestamptz,
     NULL, NULL, NULL, '\x00ff'::bytea, NULL, NULL, NULL, NULL, NULL, NULL::bigint,
     NULL, 'audit.orders', 0, 5::bigint, '\x04'::bytea, '\x05'::bytea, '\x06'::bytea)
  ) AS t ORDER BY 1)sql";

TEST_F(EventRowsTest, DecodesBinaryRows) {
  pg::ConnPtr c = Connect();
  absl::StatusOr<pg::ResultPtr> r = pg::ExecBinary(c.get(), kRows);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<v1::StoredEvent> e = StoredEventFromRow(r->get(), 0);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->position(), 7);
  EXPECT_EQ(e->event().time().seconds(), 1795665470);
  EXPECT_EQ(e->event().time().nanos(), 819485000);
  // Before PostgreSQL's epoch (2000-01-01): negative in its encoding.
  EXPECT_EQ(e->recorded_time().seconds(), 946684799);
  EXPECT_EQ(e->recorded_time().nanos(), 1000);
  EXPECT_EQ(e->event().text_data(), "{\"a\": 1}");
  EXPECT_EQ(e->event().sequence(), 42u);
  EXPECT_EQ(e->event().extensions().at("region"), "eu");
  EXPECT_EQ(e->provenance().partition(), 3);
  EXPECT_EQ(e->provenance().offset(), 1234567890123);
  EXPECT_EQ(e->chain_hash(), "\x03");
}

TEST_F(EventRowsTest, AReusedMessageHoldsExactlyTheNewRow) {
  pg::ConnPtr c = Connect();
  absl::StatusOr<pg::ResultPtr> r = pg::ExecBinary(c.get(), kRows);
  ASSERT_TRUE(r.ok()) << r.status();
  v1::StoredEvent reused;
  ASSERT_TRUE(ReadStoredEventRow(r->get(), 0, 0, &reused).ok());
  ASSERT_TRUE(ReadStoredEventRow(r->get(), 1, 0, &reused).ok());
  absl::StatusOr<v1::StoredEvent> fresh = StoredEventFromRow(r->get(), 1);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(reused.SerializeAsString(), fresh->SerializeAsString()) << reused.DebugString();
  EXPECT_FALSE(reused.event().has_sequence());
  EXPECT_TRUE(reused.event().extensions().empty());
  EXPECT_EQ(reused.event().binary_data(), std::string("\x00\xff", 2));
  EXPECT_EQ(reused.event().correlation_id(), "");
}

TEST_F(EventRowsTest, TextFormatRowsAreRefused) {
  pg::ConnPtr c = Connect();
  absl::StatusOr<pg::ResultPtr> r = pg::Exec(c.get(), kRows);
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<v1::StoredEvent> e = StoredEventFromRow(r->get(), 0);
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace audit
