#include "audit/envelope.h"

#include <string>

#include "audit/test_events.h"
#include "gtest/gtest.h"

namespace audit {
namespace {

using ::audit::testing::MakeValidEvent;

// Normalises `e` and expects a failure of class `c` whose message contains `fragment`.
void ExpectRejected(v1::Event e, ErrorClass c, absl::string_view fragment) {
  absl::Status s = NormalizeEvent(&e);
  ASSERT_FALSE(s.ok()) << "accepted: " << e.ShortDebugString();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorClassOf(s), c) << s;
  EXPECT_NE(s.message().find(fragment), absl::string_view::npos)
      << "message '" << s.message() << "' lacks '" << fragment << "'";
}

TEST(EnvelopeTest, ValidEventPasses) {
  v1::Event e = MakeValidEvent();
  EXPECT_TRUE(NormalizeEvent(&e).ok());
}

TEST(EnvelopeTest, ErrorClassRoundTripsThroughStatus) {
  absl::Status s = EnvelopeError(ErrorClass::kConflict, "x");
  EXPECT_EQ(ErrorClassOf(s), ErrorClass::kConflict);
  EXPECT_EQ(ErrorClassName(ErrorClass::kConflict), "conflict");
  EXPECT_EQ(ErrorClassOf(absl::InvalidArgumentError("plain")), ErrorClass::kNone);
  EXPECT_EQ(ErrorClassOf(absl::OkStatus()), ErrorClass::kNone);
}

TEST(EnvelopeTest, EveryRequiredAttributeIsRequired) {
  struct Case {
    void (*clear)(v1::Event*);
    const char* name;
  };
  const Case cases[] = {
      {[](v1::Event* e) { e->clear_id(); }, "'id'"},
      {[](v1::Event* e) { e->clear_source(); }, "'source'"},
      {[](v1::Event* e) { e->clear_type(); }, "'type'"},
      {[](v1::Event* e) { e->clear_spec_version(); }, "'specversion'"},
      {[](v1::Event* e) { e->clear_subject(); }, "'subject'"},
      {[](v1::Event* e) { e->clear_time(); }, "'time'"},
  };
  for (const Case& c : cases) {
    v1::Event e = MakeValidEvent();
    c.clear(&e);
    ExpectRejected(e, ErrorClass::kMissingAttribute, c.name);
  }
}

TEST(EnvelopeTest, SpecVersionMustBe10) {
  v1::Event e = MakeValidEvent();
  e.set_spec_version("0.3");
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "unsupported version \"0.3\"");
}

TEST(EnvelopeTest, TextMustBeUtf8WithoutNulAndBounded) {
  v1::Event e = MakeValidEvent();
  e.set_subject(std::string("order\0x", 7));
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "'subject': contains a NUL");
  e = MakeValidEvent();
  e.set_actor("bad \xff utf8");
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "'actor': invalid UTF-8 at byte 4");
  e = MakeValidEvent();
  e.set_id(std::string(kMaxAttributeBytes + 1, 'x'));
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "'id': longer than");
}

TEST(EnvelopeTest, SourceIsAUriReference) {
  v1::Event e = MakeValidEvent();
  e.set_source("/services/my orders");
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "'source'");
}

TEST(EnvelopeTest, TimeOutOfRangeIsInvalidTime) {
  v1::Event e = MakeValidEvent();
  e.mutable_time()->set_seconds(-62135596801);
  ExpectRejected(e, ErrorClass::kInvalidTime, "'time'");
  e = MakeValidEvent();
  e.mutable_time()->set_nanos(1000000000);
  ExpectRejected(e, ErrorClass::kInvalidTime, "'time'");
}

TEST(EnvelopeTest, TimeIsTruncatedToMicroseconds) {
  v1::Event e = MakeValidEvent();
  e.mutable_time()->set_nanos(123456789);
  ASSERT_TRUE(NormalizeEvent(&e).ok());
  EXPECT_EQ(e.time().nanos(), 123456000);
}

TEST(EnvelopeTest, MediaTypeAndSchemaAreChecked) {
  v1::Event e = MakeValidEvent();
  e.set_data_content_type("json");
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "'datacontenttype': not a media type");
  e = MakeValidEvent();
  e.set_data_schema("orders/v1");
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "'dataschema': must be an absolute URI");
  e = MakeValidEvent();
  e.set_data_schema("https://schemas.acme.com/order/v1.json");
  EXPECT_TRUE(NormalizeEvent(&e).ok());
}

TEST(EnvelopeTest, TraceparentFollowsW3c) {
  v1::Event e = MakeValidEvent();
  e.set_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_TRUE(NormalizeEvent(&e).ok());
  for (const char* bad : {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}) {
    e.set_traceparent(bad);
    ExpectRejected(e, ErrorClass::kInvalidAttribute, "'traceparent'");
  }
}

TEST(EnvelopeTest, SequenceMustFitBigint) {
  v1::Event e = MakeValidEvent();
  e.set_sequence(uint64_t{1} << 63);
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "'sequence'");
  e.set_sequence((uint64_t{1} << 63) - 1);
  EXPECT_TRUE(NormalizeEvent(&e).ok());
}

TEST(EnvelopeTest, ExtensionsAreNamedAndNotShadowing) {
  v1::Event e = MakeValidEvent();
  (*e.mutable_extensions())["region"] = "eu-west-1";
  EXPECT_TRUE(NormalizeEvent(&e).ok());
  (*e.mutable_extensions())["Region"] = "x";
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "a-z and 0-9");
  e = MakeValidEvent();
  (*e.mutable_extensions())["correlationid"] = "x";
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "shadows a named attribute");
  e = MakeValidEvent();
  for (size_t i = 0; i <= kMaxExtensions; ++i) (*e.mutable_extensions())["x" + std::to_string(i)];
  ExpectRejected(e, ErrorClass::kInvalidAttribute, "more than 64 extensions");
}

TEST(EnvelopeTest, JsonDataIsValidatedAndCanonicalized) {
  v1::Event e = MakeValidEvent();
  e.set_binary_data(R"({"b": 1e2, "a": "x"})");
  ASSERT_TRUE(NormalizeEvent(&e).ok());
  EXPECT_EQ(e.data_case(), v1::Event::kTextData);
  EXPECT_EQ(e.text_data(), R"({"a": "x", "b": 100})");
  v1::Event again = e;
  ASSERT_TRUE(NormalizeEvent(&again).ok());
  EXPECT_EQ(again.SerializeAsString(), e.SerializeAsString());

  e = MakeValidEvent();
  e.set_text_data("{not json");
  ExpectRejected(e, ErrorClass::kInvalidData, "data is not valid JSON");
  e = MakeValidEvent();
  e.set_data_content_type("application/vnd.acme+json");
  e.set_text_data("[1e-99999]");
  ExpectRejected(e, ErrorClass::kInvalidData, "number out of range");
}

TEST(EnvelopeTest, NonJsonDataIsKeptAsBytesAndEmptyDataIsNoData) {
  v1::Event e = MakeValidEvent();
  e.set_data_content_type("text/plain");
  e.set_text_data("hello \xff");  // not UTF-8: fine for non-JSON data, kept as bytes
  ASSERT_TRUE(NormalizeEvent(&e).ok());
  EXPECT_EQ(e.data_case(), v1::Event::kBinaryData);
  EXPECT_EQ(e.binary_data(), "hello \xff");

  e = MakeValidEvent();
  e.clear_data_content_type();
  e.set_text_data("{}");  // no content type: bytes, not JSON
  ASSERT_TRUE(NormalizeEvent(&e).ok());
  EXPECT_EQ(e.data_case(), v1::Event::kBinaryData);

  e = MakeValidEvent();
  e.set_binary_data("");
  ASSERT_TRUE(NormalizeEvent(&e).ok());
  EXPECT_EQ(e.data_case(), v1::Event::DATA_NOT_SET);
}

}  // namespace
}  // namespace audit
