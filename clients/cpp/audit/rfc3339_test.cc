#include "audit/rfc3339.h"

#include "gtest/gtest.h"

namespace audit {
namespace {

int64_t Micros(absl::string_view text) {
  absl::StatusOr<google::protobuf::Timestamp> ts = ParseRfc3339(text);
  EXPECT_TRUE(ts.ok()) << text << ": " << ts.status();
  return ts.ok() ? ToUnixMicros(*ts) : 0;
}

void ExpectBad(absl::string_view text, absl::string_view fragment) {
  absl::StatusOr<google::protobuf::Timestamp> ts = ParseRfc3339(text);
  ASSERT_FALSE(ts.ok()) << "accepted " << text;
  EXPECT_EQ(ts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ts.status().message().find(fragment), absl::string_view::npos) << ts.status();
}

TEST(Rfc3339Test, ParsesUtcOffsetsAndFractions) {
  EXPECT_EQ(Micros("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Micros("2024-02-29T12:34:56.789Z"), 1709210096789000);
  EXPECT_EQ(Micros("2024-02-29t12:34:56.789z"), 1709210096789000);
  EXPECT_EQ(Micros("2024-02-29T14:34:56.789+02:00"), 1709210096789000);
  EXPECT_EQ(Micros("2024-02-29T07:04:56.789-05:30"), 1709210096789000);
  EXPECT_EQ(Micros("1969-12-31T23:59:59.999999Z"), -1);
  EXPECT_EQ(Micros("0001-01-01T00:00:00Z"), kMinTimestampSeconds * 1000000);
  EXPECT_EQ(Micros("9999-12-31T23:59:59Z"), kMaxTimestampSeconds * 1000000);
}

TEST(Rfc3339Test, KeepsNanosecondsAndDropsBeyond) {
  absl::StatusOr<google::protobuf::Timestamp> ts =
      ParseRfc3339("2024-01-01T00:00:00.1234567891234Z");
  ASSERT_TRUE(ts.ok());
  EXPECT_EQ(ts->nanos(), 123456789);
}

TEST(Rfc3339Test, LeapSecondIsTheNextSecond) {
  EXPECT_EQ(Micros("2016-12-31T23:59:60Z"), Micros("2017-01-01T00:00:00Z"));
}

TEST(Rfc3339Test, RejectsMalformedAndOutOfRange) {
  ExpectBad("2024-13-01T00:00:00Z", "month 13");
  ExpectBad("2023-02-29T00:00:00Z", "day 29 out of range");
  ExpectBad("2024-01-01T24:00:00Z", "hour 24");
  ExpectBad("2024-01-01T00:60:00Z", "minute 60");
  ExpectBad("2024-01-01T00:00:61Z", "second 61");
  ExpectBad("2024-01-01 00:00:00Z", "expected 'T'");
  ExpectBad("2024-01-01T00:00:00", "expected 'Z'");
  ExpectBad("2024-01-01T00:00:00+0100", "offset");
  ExpectBad("2024-01-01T00:00:00.Z", "digits after '.'");
  ExpectBad("2024-01-01T00:00:00Zjunk", "unexpected characters");
  ExpectBad("0000-01-01T00:00:00Z", "year 0000");
  ExpectBad("0001-01-01T00:00:00+01:00", "out of range");
  ExpectBad("yesterday", "YYYY-MM-DD");
  ExpectBad("", "YYYY-MM-DD");
}

TEST(Rfc3339Test, FormatsRoundTrip) {
  for (absl::string_view text :
       {"1970-01-01T00:00:00Z", "2024-02-29T12:34:56.789000Z", "1969-12-31T23:59:59.999999Z",
        "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.123456789Z"}) {
    absl::StatusOr<google::protobuf::Timestamp> ts = ParseRfc3339(text);
    ASSERT_TRUE(ts.ok()) << text;
    EXPECT_EQ(FormatRfc3339(*ts), text);
  }
  EXPECT_EQ(ToUnixMicros(FromUnixMicros(-1)), -1);
  EXPECT_EQ(FromUnixMicros(-1).nanos(), 999999000);
}

}  // namespace
}  // namespace audit
