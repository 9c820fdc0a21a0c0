#include "tools/auditctl/output.h"

#include "audit/json.h"
#include "gtest/gtest.h"

namespace audit::cli {
namespace {

v1::StoredEvent Sample() {
  v1::StoredEvent s;
  s.set_position(7);
  s.mutable_recorded_time()->set_seconds(1767225600);
  s.mutable_provenance()->set_topic("orders.events");
  s.mutable_provenance()->set_partition(2);
  s.mutable_provenance()->set_offset(40);
  s.set_content_hash(std::string("\x01\xab", 2));
  v1::Event* e = s.mutable_event();
  e->set_id("e-1");
  e->set_source("/services/orders");
  e->set_type("com.acme.order.created");
  e->set_spec_version("1.0");
  e->set_subject("order-1");
  e->mutable_time()->set_seconds(1767225600);
  e->set_data_content_type("application/json");
  e->set_text_data(R"({"total": 12.50})");
  return s;
}

TEST(OutputTest, EventJsonIsOneValidJsonObject) {
  const std::string json = EventJson(Sample());
  EXPECT_EQ(json, R"({"position":7,"recorded_time":"2026-01-01T00:00:00Z","topic":"orders.events",)"
                  R"("partition":2,"offset":40,"content_hash":"01ab","event":{"specversion":"1.0",)"
                  R"("id":"e-1","source":"/services/orders","type":"com.acme.order.created",)"
                  R"("subject":"order-1","time":"2026-01-01T00:00:00Z",)"
                  R"("datacontenttype":"application/json","data":{"total": 12.50}}})");
  EXPECT_TRUE(ParseJson(json).ok());
}

TEST(OutputTest, DeadLetterJsonKeepsRawBytes) {
  v1::DeadLetter d;
  d.set_id(3);
  d.set_error_class(v1::ERROR_CLASS_INVALID_TIME);
  d.set_reason("attribute 'time': \"bad\"");
  d.set_raw_value(std::string("\x00\xff", 2));
  d.add_raw_headers()->set_key("ce_time");
  const std::string json = DeadLetterJson(d);
  EXPECT_NE(json.find(R"("error_class":"invalid_time")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("raw_value_base64":"AP8=")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("raw_headers":[{"key_base64":"Y2VfdGltZQ=="}])"), std::string::npos);
  EXPECT_TRUE(ParseJson(json).ok()) << json;
}

TEST(OutputTest, TablesAlignAndCut) {
  EXPECT_EQ(Table({"A", "LONGER"}, {{"xx", "y"}, {"z", "0123456789"}}, 6),
            "A   LONGER\nxx  y\nz   01234…\n");
}

}  // namespace
}  // namespace audit::cli
