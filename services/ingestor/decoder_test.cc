#include "services/ingestor/decoder.h"

#include <string>
#include <vector>

#include "audit/cloudevents.h"
#include "audit/test_events.h"
#include "gtest/gtest.h"

namespace audit::ingestor {
namespace {

using ::audit::testing::MakeValidEvent;

// Owns the bytes a KafkaRecord points into.
struct Message {
  std::string topic = "orders.events";
  std::optional<std::string> key = "order-1";
  Headers headers;
  std::optional<std::string> value;

  KafkaRecord View() const {
    KafkaRecord r;
    r.topic = topic;
    r.partition = 3;
    r.offset = 42;
    if (key) r.key = *key;
    for (const auto& [k, v] : headers) r.headers.push_back({k, v});
    if (value) r.value = *value;
    return r;
  }
};

v1::Event Normalized() {
  v1::Event e = MakeValidEvent();
  EXPECT_TRUE(NormalizeEvent(&e).ok());
  return e;
}

Message AsProtobuf(const v1::Event& e, bool with_header = true) {
  Message m;
  if (with_header) m.headers.emplace_back("content-type", "application/protobuf");
  m.value = e.SerializeAsString();
  return m;
}

Message AsStructured(const v1::Event& e, bool with_header = true) {
  Message m;
  if (with_header) m.headers.emplace_back("content-type", std::string(kStructuredJsonContentType));
  m.value = ToStructuredJson(e);
  return m;
}

Message AsBinaryMode(const v1::Event& e) {
  Message m;
  std::string value;
  ToBinaryMode(e, &m.headers, &value);
  m.value = value;
  return m;
}

Decoded DecodeMessage(const Message& m, size_t max_bytes = 1 << 20) {
  DecoderOptions options;
  options.max_message_bytes = max_bytes;
  return Decode(m.View(), options);
}

void ExpectPoison(const Message& m, ErrorClass c, absl::string_view fragment) {
  Decoded d = DecodeMessage(m);
  ASSERT_FALSE(d.status.ok()) << "accepted";
  EXPECT_EQ(d.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorClassOf(d.status), c) << d.status;
  EXPECT_NE(d.status.message().find(fragment), absl::string_view::npos)
      << "message '" << d.status.message() << "' lacks '" << fragment << "'";
}

TEST(DecoderTest, AllThreeEncodingsYieldTheSameEvent) {
  const v1::Event e = Normalized();
  const Sha256Digest want = ContentHash(e);
  const std::pair<Message, Encoding> cases[] = {
      {AsProtobuf(e), Encoding::kProtobuf},
      {AsProtobuf(e, /*with_header=*/false), Encoding::kProtobuf},
      {AsStructured(e), Encoding::kStructuredJson},
      {AsStructured(e, /*with_header=*/false), Encoding::kStructuredJson},
      {AsBinaryMode(e), Encoding::kBinaryMode},
  };
  for (const auto& [message, encoding] : cases) {
    Decoded d = DecodeMessage(message);
    ASSERT_TRUE(d.status.ok()) << EncodingName(encoding) << ": " << d.status;
    EXPECT_EQ(d.encoding, encoding);
    EXPECT_EQ(d.content_hash, want) << EncodingName(encoding);
    EXPECT_EQ(d.event.SerializeAsString(), e.SerializeAsString()) << EncodingName(encoding);
  }
}

TEST(DecoderTest, StructuredJsonWithLeadingWhitespaceIsSniffed) {
  Message m = AsStructured(Normalized(), /*with_header=*/false);
  m.value = " \n" + *m.value;
  Decoded d = DecodeMessage(m);
  EXPECT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.encoding, Encoding::kStructuredJson);
}

TEST(DecoderTest, OversizedIsRejectedBeforeParsing) {
  Message m = AsStructured(Normalized());
  Decoded d = DecodeMessage(m, /*max_bytes=*/64);
  EXPECT_EQ(ErrorClassOf(d.status), ErrorClass::kOversized);
  EXPECT_NE(d.status.message().find("exceeds the limit of 64 bytes"), absl::string_view::npos);
}

TEST(DecoderTest, PoisonMessagesGetTheirClassAndReason) {
  const v1::Event e = Normalized();
  {
    Message m;
    m.value = std::string("\x0a\x10garbage", 9);
    ExpectPoison(m, ErrorClass::kUndecodable, "malformed wire format");
  }
  {
    Message m;
    ExpectPoison(m, ErrorClass::kUndecodable, "empty message");
  }
  {
    Message m = AsStructured(e);
    m.value = "{\"specversion\": \"1.0\", ";
    ExpectPoison(m, ErrorClass::kUndecodable, "not a CloudEvents JSON document");
  }
  {
    Message m = AsStructured(e);
    m.headers = {{"content-type", "application/cloudevents+xml"}};
    ExpectPoison(m, ErrorClass::kUndecodable, "unsupported CloudEvents event format");
  }
  {
    Message m = AsStructured(e);
    m.headers = {{"content-type", "text/plain"}};
    ExpectPoison(m, ErrorClass::kUndecodable, "is neither");
  }
  {
    v1::Event missing = e;
    missing.clear_subject();
    ExpectPoison(AsProtobuf(missing), ErrorClass::kMissingAttribute, "'subject' is required");
    ExpectPoison(AsBinaryMode(missing), ErrorClass::kMissingAttribute, "'subject' is required");
  }
  {
    Message m = AsBinaryMode(e);
    for (auto& [k, v] : m.headers) {
      if (k == "ce_time") v = "2024-02-30T00:00:00Z";
    }
    ExpectPoison(m, ErrorClass::kInvalidTime, "day 30 out of range");
  }
  {
    Message m = AsBinaryMode(e);
    m.value = "{\"total\": 12.50,";
    ExpectPoison(m, ErrorClass::kInvalidData, "data is not valid JSON");
  }
  {
    Message m = AsBinaryMode(e);
    m.headers.emplace_back("ce_actor", "\xc3\x28");
    ExpectPoison(m, ErrorClass::kInvalidAttribute, "appears more than once");
  }
  {
    Message m = AsBinaryMode(e);
    for (auto& [k, v] : m.headers) {
      if (k == "ce_actor") v = "\xc3\x28";
    }
    ExpectPoison(m, ErrorClass::kInvalidAttribute, "not valid UTF-8");
  }
  {
    Message m = AsProtobuf(e);
    m.value->append("\x98\x06\x01", 3);  // field 99
    ExpectPoison(m, ErrorClass::kUndecodable, "unknown field number 99");
  }
  {
    v1::Event bad = e;
    bad.set_spec_version("0.3");
    ExpectPoison(AsStructured(bad), ErrorClass::kInvalidAttribute, "unsupported version");
  }
}

// The ingestor decodes into recycled Decodeds: nothing of an earlier message may survive into
// a later one's result, whatever the encodings, fields and failures in between.
TEST(DecoderTest, DecodingIntoAReusedResultEqualsAFreshDecode) {
  v1::Event rich = Normalized();
  (*rich.mutable_extensions())["region"] = "eu";
  rich.set_actor("user:1");
  rich.set_sequence(7);
  v1::Event plain = Normalized();
  plain.set_id("evt-2");
  plain.clear_actor();
  plain.clear_sequence();
  plain.clear_data();
  plain.clear_data_content_type();
  v1::Event binary = Normalized();
  binary.set_id("evt-3");
  binary.set_data_content_type("application/octet-stream");
  binary.set_binary_data(std::string("\x00\x01\xff", 3));
  v1::Event missing = rich;
  missing.clear_subject();
  Message garbage;
  garbage.value = std::string("\x0a\x10garbage", 9);
  const std::vector<Message> sequence = {
      AsProtobuf(rich),
      AsProtobuf(plain),
      AsStructured(rich),
      AsProtobuf(binary),
      AsBinaryMode(plain),
      AsProtobuf(missing),
      garbage,
      AsProtobuf(rich),
      AsProtobuf(plain),
  };
  Decoded reused;
  for (size_t i = 0; i < sequence.size(); ++i) {
    DecodeInto(sequence[i].View(), DecoderOptions{}, &reused);
    const Decoded fresh = DecodeMessage(sequence[i]);
    EXPECT_EQ(reused.status, fresh.status) << i;
    EXPECT_EQ(reused.encoding, fresh.encoding) << i;
    if (fresh.status.ok()) {
      EXPECT_EQ(reused.event.SerializeAsString(), fresh.event.SerializeAsString()) << i;
      EXPECT_EQ(reused.content_hash, fresh.content_hash) << i;
    }
  }
  // And the sequence really did change the event each time.
  EXPECT_EQ(reused.event.id(), "evt-2");
  EXPECT_FALSE(reused.event.has_sequence());
}

TEST(DecoderTest, MessageSizeCountsKeyHeadersAndValue) {
  Message m;
  m.key = "abc";
  m.headers = {{"k", "vv"}};
  m.value = "12345";
  EXPECT_EQ(MessageSize(m.View()), 3u + 1u + 2u + 5u);
}

}  // namespace
}  // namespace audit::ingestor
