#include "audit/canonical.h"

#include <set>
#include <string>

#include "audit/envelope.h"
#include "audit/test_events.h"
#include "gtest/gtest.h"

namespace audit {
namespace {

using ::audit::testing::MakeValidEvent;

std::string Encode(const v1::Event& e) {
  std::string out;
  AppendCanonicalContent(e, &out);
  return out;
}

TEST(CanonicalTest, Sha256KnownAnswer) {
  EXPECT_EQ(HexDigest(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// The byte layout is a public contract (docs/API.md): this vector pins it.
TEST(CanonicalTest, ByteLayoutOfAMinimalEvent) {
  v1::Event e;
  e.set_id("1");
  e.set_source("s");
  e.set_type("t");
  e.set_spec_version("1.0");
  e.set_subject("o");
  e.mutable_time()->set_seconds(1);
  e.set_text_data("{}");
  e.set_sequence(2);
  (*e.mutable_extensions())["b"] = "y";
  (*e.mutable_extensions())["a"] = "x";
  const std::string expected = std::string("audit.v1.EventContent\0", 22) +
                               std::string(
                                   "\x01\0\0\0\x01"
                                   "1",
                                   6) +
                               std::string(
                                   "\x02\0\0\0\x01"
                                   "s",
                                   6) +
                               std::string(
                                   "\x03\0\0\0\x01"
                                   "t",
                                   6) +
                               std::string(
                                   "\x04\0\0\0\x03"
                                   "1.0",
                                   8) +
                               std::string(
                                   "\x05\0\0\0\x01"
                                   "o",
                                   6) +
                               std::string("\x06\0\0\0\x08\0\0\0\0\0\x0f\x42\x40", 13) +
                               std::string("\x0a\0\0\0\x02{}", 7) +
                               std::string("\x10\0\0\0\x08\0\0\0\0\0\0\0\x02", 13) +
                               std::string(
                                   "\x11\0\0\0\x06\0\0\0\x01"
                                   "ax",
                                   11) +
                               std::string(
                                   "\x11\0\0\0\x06\0\0\0\x01"
                                   "by",
                                   11);
  EXPECT_EQ(Encode(e), expected);
  EXPECT_EQ(ContentHash(e), Sha256(expected));
}

TEST(CanonicalTest, NegativeTimesAreTwosComplement) {
  v1::Event e;
  e.mutable_time()->set_seconds(-1);
  const std::string enc = Encode(e);
  EXPECT_EQ(enc.substr(22), std::string("\x06\0\0\0\x08\xff\xff\xff\xff\xff\xf0\xbd\xc0", 13));
}

TEST(CanonicalTest, EveryFieldChangesTheHash) {
  const v1::Event base = MakeValidEvent();
  std::set<Sha256Digest> seen = {ContentHash(base)};
  const auto variant = [&](void (*mutate)(v1::Event*)) {
    v1::Event e = base;
    mutate(&e);
    EXPECT_TRUE(seen.insert(ContentHash(e)).second) << e.ShortDebugString();
  };
  variant([](v1::Event* e) { e->set_id("evt-2"); });
  variant([](v1::Event* e) { e->set_source("/services/payments"); });
  variant([](v1::Event* e) { e->set_type("com.acme.order.shipped"); });
  variant([](v1::Event* e) { e->set_subject("order-2"); });
  variant([](v1::Event* e) { e->mutable_time()->set_nanos(789001000); });
  variant([](v1::Event* e) { e->set_data_content_type("application/vnd.acme+json"); });
  variant([](v1::Event* e) { e->set_data_schema("urn:x"); });
  variant([](v1::Event* e) { e->set_text_data(R"({"total": 12.5})"); });
  variant([](v1::Event* e) { e->set_binary_data(R"({"total": 12.50, "currency": "EUR"})"); });
  variant([](v1::Event* e) { e->set_correlation_id("corr-2"); });
  variant([](v1::Event* e) { e->set_causation_id("evt-0"); });
  variant([](v1::Event* e) { e->set_actor("user:43"); });
  variant([](v1::Event* e) { e->set_tenant("other"); });
  variant([](v1::Event* e) { e->set_traceparent("x"); });
  variant([](v1::Event* e) { e->set_sequence(0); });
  variant([](v1::Event* e) { (*e->mutable_extensions())["k"] = ""; });
  // Moving bytes between adjacent fields must not collide (length prefixes).
  variant([](v1::Event* e) {
    e->set_actor("user:42a");
    e->set_tenant("cme");
  });
}

TEST(CanonicalTest, ExtensionInsertionOrderDoesNotMatter) {
  v1::Event a = MakeValidEvent(), b = MakeValidEvent();
  (*a.mutable_extensions())["x"] = "1";
  (*a.mutable_extensions())["y"] = "2";
  (*b.mutable_extensions())["y"] = "2";
  (*b.mutable_extensions())["x"] = "1";
  EXPECT_EQ(ContentHash(a), ContentHash(b));
}

}  // namespace
}  // namespace audit
