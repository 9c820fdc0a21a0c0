#include "services/common/pg.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/common/copy_binary.h"
#include "tests/fixtures/postgres_test.h"

namespace audit::pg {
namespace {

class PgTest : public testing::PostgresTest</*kMigrated=*/false> {};

TEST(SqlStateTest, MapsClassesToCodes) {
  EXPECT_EQ(CodeForSqlState("08006"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqlState("57P01"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqlState("53100"), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqlState("40001"), absl::StatusCode::kAborted);
  EXPECT_EQ(CodeForSqlState("57014"), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(CodeForSqlState("22P02"), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CodeForSqlState("54000"), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(CodeForSqlState("23505"), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(CodeForSqlState("23514"), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CodeForSqlState("42501"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeForSqlState("42P01"), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CodeForSqlState("AU001"), absl::StatusCode::kAborted);
  EXPECT_EQ(CodeForSqlState("AU002"), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeForSqlState("XX000"), absl::StatusCode::kInternal);
}

TEST(RedactTest, NeverShowsPasswords) {
  EXPECT_EQ(RedactUrl("postgresql://u:s3cret@db:5432/audit"), "postgresql://u:***@db:5432/audit");
  EXPECT_EQ(RedactUrl("postgresql://u@db/audit"), "postgresql://u@db/audit");
  EXPECT_EQ(RedactUrl("host=db password=s3cret user=u"), "host=db password=*** user=u");
  EXPECT_EQ(RedactUrl("postgresql:///a?host=/tmp&password=s3cret"),
            "postgresql:///a?host=/tmp&password=***");
}

TEST(ByteaTest, HexRoundTrip) {
  const std::string bytes("\x00\xff\x10z", 4);
  EXPECT_EQ(EncodeByteaHex(bytes), "\\x00ff107a");
  EXPECT_EQ(*DecodeByteaHex("\\x00ff107a"), bytes);
  EXPECT_FALSE(DecodeByteaHex("00ff").ok());
  EXPECT_FALSE(DecodeByteaHex("\\x0g").ok());
}

TEST_F(PgTest, ErrorsKeepSqlStateAndMessage) {
  ConnPtr c = Connect();
  absl::StatusOr<ResultPtr> r = Exec(c.get(), "SELECT 1/0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SqlStateOf(r.status()), "22012");
  EXPECT_NE(r.status().message().find("division by zero"), absl::string_view::npos);
  EXPECT_EQ(SqlStateOf(absl::InternalError("x")), "");
}

TEST_F(PgTest, UnreachableServerIsUnavailableWithoutPassword) {
  absl::StatusOr<ConnPtr> c = pg::Connect("postgresql://u:s3cret@127.0.0.1:1/x?connect_timeout=1");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(c.status().message().find("s3cret"), absl::string_view::npos) << c.status();
}

TEST_F(PgTest, SessionLimitsAreApplied) {
  ConnectOptions options;
  options.statement_timeout = absl::Milliseconds(50);
  absl::StatusOr<ConnPtr> c = pg::Connect(server_->Url("postgres"), options);
  ASSERT_TRUE(c.ok());
  absl::StatusOr<ResultPtr> r = Exec(c->get(), "SELECT pg_sleep(5)");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(PgTest, ExecParamsPassesNulls) {
  ConnPtr c = Connect();
  const std::optional<std::string> params[] = {std::string("x"), std::nullopt};
  absl::StatusOr<ResultPtr> r = ExecParams(c.get(), "SELECT $1::text, $2::text IS NULL", params);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Value(r->get(), 0, 0), "x");
  EXPECT_EQ(Value(r->get(), 0, 1), "t");
}

TEST_F(PgTest, PreparedStatementsArePreparedOnceAndSurviveLosingThem) {
  ConnPtr c = Connect();
  const std::string sql = "SELECT $1::int + 1";
  const auto run = [&](const char* v) -> std::string {
    const std::optional<std::string> params[] = {std::string(v)};
    absl::StatusOr<ResultPtr> r = ExecPrepared(c.get(), sql, params);
    return r.ok() ? std::string(Value(r->get(), 0, 0)) : r.status().ToString();
  };
  const auto prepared_count = [&] {
    absl::StatusOr<ResultPtr> r = Exec(c.get(), "SELECT count(*) FROM pg_prepared_statements");
    return r.ok() ? std::string(Value(r->get(), 0, 0)) : r.status().ToString();
  };
  EXPECT_EQ(run("1"), "2");
  EXPECT_EQ(run("41"), "42");
  EXPECT_EQ(prepared_count(), "1") << "one statement for one text";
  ASSERT_TRUE(Exec(c.get(), "DEALLOCATE ALL").ok());
  EXPECT_EQ(run("2"), "3") << "re-prepared after the server lost it";
  EXPECT_EQ(prepared_count(), "1");
  PQreset(c.get());
  ASSERT_EQ(PQstatus(c.get()), CONNECTION_OK);
  EXPECT_EQ(run("3"), "4") << "re-prepared after a reset";
  const std::optional<std::string> bad[] = {std::string("x")};
  absl::StatusOr<ResultPtr> r = ExecPrepared(c.get(), sql, bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_EQ(SqlStateOf(r.status()), "22P02");
}

TEST_F(PgTest, BinaryResultsDecodeOnlyTheirExactType) {
  ConnPtr c = Connect();
  const char sql[] =
      "SELECT -2::bigint, 7::int, '2000-01-01 00:00:01+00'::timestamptz, 'infinity'::timestamptz";
  absl::StatusOr<ResultPtr> b = ExecBinary(c.get(), sql);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(BinaryInt64(b->get(), 0, 0), -2);
  EXPECT_EQ(BinaryInt32(b->get(), 0, 1), 7);
  EXPECT_EQ(BinaryInt64(b->get(), 0, 1), std::nullopt) << "an int4 is not an int8";
  EXPECT_EQ(BinaryTimestampUnixMicros(b->get(), 0, 2), int64_t{946'684'801'000'000});
  EXPECT_EQ(BinaryTimestampUnixMicros(b->get(), 0, 3), std::nullopt);
  absl::StatusOr<ResultPtr> t = Exec(c.get(), sql);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(BinaryInt64(t->get(), 0, 0), std::nullopt) << "text format";
}

TEST_F(PgTest, BinaryCopyRoundTripsEveryType) {
  ConnPtr c = Connect();
  ASSERT_TRUE(Exec(c.get(),
                   "CREATE TEMP TABLE t (i int, b bigint, s text, y bytea, j jsonb, "
                   "ts timestamptz, a bytea[], n text, e bytea[])")
                  .ok());
  BinaryCopyWriter w;
  for (int row = 0; row < 3; ++row) {
    w.StartRow(9);
    w.Int32(-7 - row);
    w.Int64(int64_t{1} << 40);
    w.Text("héllo");
    w.Bytea(std::string("\0\xff", 2));
    w.Jsonb(R"({"a": [1, 2.50]})");
    w.TimestampMicros(1709210096789000);  // 2024-02-29T12:34:56.789Z
    const std::optional<absl::string_view> elems[] = {absl::string_view("k1"), std::nullopt};
    w.ByteaArray(elems);
    w.Null();
    w.ByteaArray({});
  }
  ASSERT_TRUE(CopyIn(c.get(), "COPY t FROM STDIN (FORMAT binary)", w.Finish()).ok());
  absl::StatusOr<ResultPtr> r =
      Exec(c.get(),
           "SET TIME ZONE 'UTC'; SELECT count(*), min(i), min(b), min(s), min(encode(y,'hex')),"
           " min(j::text), min(ts)::text, min(a::text), bool_and(n IS NULL),"
           " min(cardinality(e)) FROM t");
  ASSERT_TRUE(r.ok()) << r.status();
  const PGresult* res = r->get();
  EXPECT_EQ(Value(res, 0, 0), "3");
  EXPECT_EQ(Value(res, 0, 1), "-9");
  EXPECT_EQ(Value(res, 0, 2), "1099511627776");
  EXPECT_EQ(Value(res, 0, 3), "héllo");
  EXPECT_EQ(Value(res, 0, 4), "00ff");
  EXPECT_EQ(Value(res, 0, 5), R"({"a": [1, 2.50]})");
  EXPECT_EQ(Value(res, 0, 6), "2024-02-29 12:34:56.789+00");
  EXPECT_EQ(Value(res, 0, 7), R"({"\\x6b31",NULL})");
  EXPECT_EQ(Value(res, 0, 8), "t");
  EXPECT_EQ(Value(res, 0, 9), "0");
}

TEST_F(PgTest, CopyErrorsAreReportedWithSqlState) {
  ConnPtr c = Connect();
  ASSERT_TRUE(Exec(c.get(), "CREATE TEMP TABLE j (v jsonb)").ok());
  BinaryCopyWriter w;
  w.StartRow(1);
  w.Jsonb("{not json");
  absl::Status s = CopyIn(c.get(), "COPY j FROM STDIN (FORMAT binary)", w.Finish());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SqlStateOf(s), "22P02");
  // The connection is usable afterwards.
  EXPECT_TRUE(Exec(c.get(), "SELECT 1").ok());
}

// One query for a whole transaction: each statement's result in turn, COPYs served in the
// middle, nothing sent twice.
TEST_F(PgTest, AScriptRunsATransactionWithCopiesInOneQuery) {
  ConnPtr c = Connect();
  ASSERT_TRUE(Exec(c.get(), "CREATE TABLE s (v int)").ok());
  Script script;
  ASSERT_TRUE(script
                  .Send(c.get(),
                        "BEGIN; SELECT 41 + 1; COPY s FROM STDIN (FORMAT binary);"
                        " COPY s FROM STDIN (FORMAT binary); COMMIT")
                  .ok());
  absl::StatusOr<ResultPtr> begun = script.Next();
  ASSERT_TRUE(begun.ok()) << begun.status();
  EXPECT_EQ(PQresultStatus(begun->get()), PGRES_COMMAND_OK);
  absl::StatusOr<ResultPtr> row = script.Next();
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(Value(row->get(), 0, 0), "42");
  for (int32_t v : {1, 2}) {
    absl::StatusOr<ResultPtr> copy = script.Next();
    ASSERT_TRUE(copy.ok()) << copy.status();
    ASSERT_EQ(PQresultStatus(copy->get()), PGRES_COPY_IN);
    CopyStream stream;
    stream.Attach(c.get());
    BinaryCopyWriter w;
    w.StartRow(1);
    w.Int32(v);
    stream.Put(w.Finish());
    ASSERT_TRUE(stream.End().ok());
  }
  absl::StatusOr<ResultPtr> committed = script.Next();
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(script.Next().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(script.Finish().ok());
  absl::StatusOr<ResultPtr> sum = Exec(c.get(), "SELECT sum(v) FROM s");
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(Value(sum->get(), 0, 0), "3");
}

// After an error the rest of the query is skipped and the transaction waits for a rollback;
// a COPY the caller does not serve is refused, so nothing after it runs either.
TEST_F(PgTest, AScriptStopsAtTheFirstErrorAndAtAnUnservedCopy) {
  ConnPtr c = Connect();
  ASSERT_TRUE(Exec(c.get(), "CREATE TABLE t (v int)").ok());
  {
    Script script;
    ASSERT_TRUE(
        script
            .Send(c.get(), "BEGIN; INSERT INTO t VALUES (1); SELECT 1/0; INSERT INTO t VALUES (2)")
            .ok());
    EXPECT_TRUE(script.Next().ok());
    EXPECT_TRUE(script.Next().ok());
    absl::StatusOr<ResultPtr> failed = script.Next();
    EXPECT_EQ(SqlStateOf(failed.status()), "22012");
    EXPECT_TRUE(script.Finish().ok());  // nothing ran after the error
    EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INERROR);
    ASSERT_TRUE(Exec(c.get(), "ROLLBACK").ok());
  }
  {
    Script script;
    ASSERT_TRUE(script
                    .Send(c.get(),
                          "BEGIN; INSERT INTO t VALUES (3); COPY t FROM STDIN; "
                          "INSERT INTO t VALUES (4); COMMIT")
                    .ok());
    EXPECT_TRUE(script.Next().ok());
    EXPECT_TRUE(script.Next().ok());
    EXPECT_EQ(script.Finish().code(), absl::StatusCode::kInternal);  // the COPY not served
    ASSERT_TRUE(Exec(c.get(), "ROLLBACK").ok());
  }
  absl::StatusOr<ResultPtr> n = Exec(c.get(), "SELECT count(*) FROM t");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(Value(n->get(), 0, 0), "0");
}

}  // namespace
}  // namespace audit::pg
