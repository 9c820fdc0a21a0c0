// Test helpers: a valid event to start from. Test-only.
#ifndef CLIENTS_CPP_AUDIT_TEST_EVENTS_H_
#define CLIENTS_CPP_AUDIT_TEST_EVENTS_H_

#include <string>

#include "audit/v1/event.pb.h"

namespace audit::testing {

// A valid, normalised "order created" event for `subject` with JSON data.
inline v1::Event MakeValidEvent(const std::string& id = "evt-1",
                                const std::string& subject = "order-1") {
  v1::Event e;
  e.set_id(id);
  e.set_source("/services/orders");
  e.set_type("com.acme.order.created");
  e.set_spec_version("1.0");
  e.set_subject(subject);
  e.mutable_time()->set_seconds(1709210096);
  e.mutable_time()->set_nanos(789000000);
  e.set_data_content_type("application/json");
  e.set_text_data(R"({"total": 12.50, "currency": "EUR"})");
  e.set_correlation_id("corr-1");
  e.set_actor("user:42");
  e.set_tenant("acme");
  return e;
}

}  // namespace audit::testing

#endif  // CLIENTS_CPP_AUDIT_TEST_EVENTS_H_
