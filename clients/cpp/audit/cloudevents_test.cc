#include "audit/cloudevents.h"

#include <string>
#include <vector>

#include "audit/envelope.h"
#include "audit/test_events.h"
#include "gtest/gtest.h"

namespace audit {
namespace {

using ::audit::testing::MakeValidEvent;

void ExpectError(const absl::Status& s, ErrorClass c, absl::string_view fragment) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorClassOf(s), c) << s;
  EXPECT_NE(s.message().find(fragment), absl::string_view::npos)
      << "message '" << s.message() << "' lacks '" << fragment << "'";
}

v1::Event Normalized(v1::Event e) {
  EXPECT_TRUE(NormalizeEvent(&e).ok());
  return e;
}

TEST(StructuredJsonTest, RoundTripsEveryAttribute) {
  v1::Event e = MakeValidEvent();
  e.set_causation_id("evt-0");
  e.set_data_schema("https://schemas.acme.com/order.json");
  e.set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  e.set_sequence(7);
  (*e.mutable_extensions())["region"] = "eu";
  e = Normalized(e);
  absl::StatusOr<v1::Event> back = ParseStructuredJson(ToStructuredJson(e));
  ASSERT_TRUE(back.ok()) << back.status();
  v1::Event n = Normalized(*back);
  EXPECT_EQ(n.SerializeAsString(), e.SerializeAsString()) << ToStructuredJson(e);
}

TEST(StructuredJsonTest, BinaryDataTravelsAsBase64) {
  v1::Event e = MakeValidEvent();
  e.set_data_content_type("application/octet-stream");
  e.set_binary_data(std::string("\0\xff\x01", 3));
  e = Normalized(e);
  const std::string json = ToStructuredJson(e);
  EXPECT_NE(json.find("\"data_base64\":\"AP8B\""), std::string::npos) << json;
  absl::StatusOr<v1::Event> back = ParseStructuredJson(json);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->binary_data(), std::string("\0\xff\x01", 3));
}

TEST(StructuredJsonTest, DataWithoutContentTypeIsJson) {
  absl::StatusOr<v1::Event> e =
      ParseStructuredJson(R"({"specversion":"1.0","id":"1","source":"/s","type":"t","subject":"o",)"
                          R"("time":"2024-01-01T00:00:00Z","data":{"b":1,"a":[true]}})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->data_content_type(), "application/json");
  EXPECT_EQ(e->text_data(), R"({"a": [true], "b": 1})");
}

TEST(StructuredJsonTest, TextDataUnderNonJsonTypeIsAString) {
  absl::StatusOr<v1::Event> e = ParseStructuredJson(
      R"({"specversion":"1.0","id":"1","datacontenttype":"text/plain","data":"héllo"})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->binary_data(), "héllo");
  ExpectError(ParseStructuredJson(R"({"datacontenttype":"text/plain","data":{"a":1}})").status(),
              ErrorClass::kInvalidData, "must be a string");
}

TEST(StructuredJsonTest, ExtensionsKeepTheirCanonicalStringForm) {
  absl::StatusOr<v1::Event> e =
      ParseStructuredJson(R"({"retries":3,"urgent":true,"note":"x","gone":null,"sequence":5})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->extensions().at("retries"), "3");
  EXPECT_EQ(e->extensions().at("urgent"), "true");
  EXPECT_EQ(e->extensions().at("note"), "x");
  EXPECT_EQ(e->extensions().count("gone"), 0u);
  EXPECT_EQ(e->sequence(), 5u);
}

TEST(StructuredJsonTest, PoisonDocuments) {
  ExpectError(ParseStructuredJson("{\"id\":").status(), ErrorClass::kUndecodable,
              "not a CloudEvents JSON document");
  ExpectError(ParseStructuredJson("[1]").status(), ErrorClass::kUndecodable, "not an object");
  ExpectError(ParseStructuredJson(R"({"id":"1","id":"2"})").status(), ErrorClass::kUndecodable,
              "duplicate member");
  ExpectError(ParseStructuredJson(R"({"time":"2024-02-30T00:00:00Z"})").status(),
              ErrorClass::kInvalidTime, "day 30 out of range");
  ExpectError(ParseStructuredJson(R"({"time":1700000000})").status(), ErrorClass::kInvalidAttribute,
              "'\"time\"': must be a string");
  ExpectError(ParseStructuredJson(R"({"id":7})").status(), ErrorClass::kInvalidAttribute,
              "must be a string");
  ExpectError(ParseStructuredJson(R"({"meta":{"a":1}})").status(), ErrorClass::kInvalidAttribute,
              "must be a string");
  ExpectError(ParseStructuredJson(R"({"Bad-Name":"x"})").status(), ErrorClass::kInvalidAttribute,
              "lowercase");
  ExpectError(ParseStructuredJson(R"({"sequence":"-1"})").status(), ErrorClass::kInvalidAttribute,
              "'sequence'");
  ExpectError(ParseStructuredJson(R"({"sequence":1.5})").status(), ErrorClass::kInvalidAttribute,
              "'sequence'");
  ExpectError(ParseStructuredJson(R"({"data":1,"data_base64":"AA=="})").status(),
              ErrorClass::kInvalidData, "both");
  ExpectError(ParseStructuredJson(R"({"data_base64":"!!"})").status(), ErrorClass::kInvalidData,
              "not valid base64");
}

std::vector<HeaderView> Views(const Headers& headers) {
  std::vector<HeaderView> views;
  for (const auto& [k, v] : headers) views.push_back({k, v});
  return views;
}

TEST(BinaryModeTest, RoundTripsEveryAttribute) {
  v1::Event e = MakeValidEvent();
  e.set_causation_id("evt-0");
  e.set_sequence(9);
  (*e.mutable_extensions())["region"] = "eu";
  e = Normalized(e);
  Headers headers;
  std::string value;
  ToBinaryMode(e, &headers, &value);
  absl::StatusOr<v1::Event> back = ParseBinaryMode(Views(headers), value);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(Normalized(*back).SerializeAsString(), e.SerializeAsString());
}

TEST(BinaryModeTest, ContentTypeHeaderIsCaseInsensitiveAndOtherHeadersIgnored) {
  const Headers headers = {{"ce_id", "1"}, {"Content-Type", "text/plain"}, {"x-trace", "\xff"}};
  absl::StatusOr<v1::Event> e = ParseBinaryMode(Views(headers), std::string("v"));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->data_content_type(), "text/plain");
  EXPECT_EQ(e->binary_data(), "v");
}

TEST(BinaryModeTest, NullHeaderValueIsAbsentAndNullValueIsNoData) {
  std::vector<HeaderView> headers = {{"ce_id", "1"}, {"ce_subject", std::nullopt}};
  absl::StatusOr<v1::Event> e = ParseBinaryMode(headers, std::nullopt);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->subject().empty());
  EXPECT_EQ(e->data_case(), v1::Event::DATA_NOT_SET);
}

TEST(BinaryModeTest, PoisonHeaders) {
  ExpectError(ParseBinaryMode(Views({{"ce_id", "1"}, {"ce_id", "2"}}), std::nullopt).status(),
              ErrorClass::kInvalidAttribute, "appears more than once");
  ExpectError(ParseBinaryMode(Views({{"ce_source", "\xc3"}}), std::nullopt).status(),
              ErrorClass::kInvalidAttribute, "not valid UTF-8");
  ExpectError(ParseBinaryMode(Views({{"ce_time", "now"}}), std::nullopt).status(),
              ErrorClass::kInvalidTime, "'time'");
  ExpectError(ParseBinaryMode(Views({{"ce_Bad", "x"}}), std::nullopt).status(),
              ErrorClass::kInvalidAttribute, "lowercase");
}

TEST(ProtobufEnvelopeTest, RoundTrips) {
  v1::Event e = Normalized(MakeValidEvent());
  absl::StatusOr<v1::Event> back = ParseProtobufEnvelope(e.SerializeAsString());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->SerializeAsString(), e.SerializeAsString());
}

TEST(ProtobufEnvelopeTest, RejectsMalformedAndUnknownFields) {
  ExpectError(ParseProtobufEnvelope("\x0a\x05"
                                    "ab")
                  .status(),
              ErrorClass::kUndecodable, "malformed wire format");
  // Field 1 (id) as a string holding invalid UTF-8.
  ExpectError(ParseProtobufEnvelope(std::string("\x0a\x01\xff", 3)).status(),
              ErrorClass::kUndecodable, "invalid UTF-8");
  // Field 99, varint 1: from a newer schema.
  std::string unknown = MakeValidEvent().SerializeAsString() + std::string("\x98\x06\x01", 3);
  ExpectError(ParseProtobufEnvelope(unknown).status(), ErrorClass::kUndecodable,
              "unknown field number 99");
}

}  // namespace
}  // namespace audit
