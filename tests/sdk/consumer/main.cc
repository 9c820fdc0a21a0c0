// Uses the installed SDK the way another service would: builds and checks an event, hashes
// it, encodes it for Kafka, and calls a query server that is not there (expecting UNAVAILABLE
// or DEADLINE_EXCEEDED, not a crash). Prints "ok" and exits 0 when everything behaves.
#include <cstdio>

#include "audit/audit_client.h"
#include "audit/canonical.h"
#include "audit/cloudevents.h"
#include "audit/envelope.h"
#include "audit/publisher.h"

int main() {
  audit::v1::Event e;
  e.set_id("sdk-1");
  e.set_source("/consumer");
  e.set_type("com.acme.order.created");
  e.set_spec_version("1.0");
  e.set_subject("order-1");
  e.mutable_time()->set_seconds(1767225600);
  e.set_data_content_type("application/json");
  e.set_text_data(R"({"b": 1e2, "a": true})");
  if (absl::Status s = audit::NormalizeEvent(&e); !s.ok()) {
    std::printf("unexpected: %s\n", s.ToString().c_str());
    return 1;
  }
  if (e.text_data() != R"({"a": true, "b": 100})") return 1;
  audit::v1::Event bad = e;
  bad.clear_subject();
  if (audit::NormalizeEvent(&bad).code() != absl::StatusCode::kInvalidArgument) return 1;
  std::printf("hash %s\n", audit::HexDigest(audit::ContentHash(e)).c_str());
  std::printf("%s\n", audit::ToStructuredJson(e).c_str());

  audit::ConnectionOptions options;
  options.target = "127.0.0.1:1";
  options.timeout = absl::Milliseconds(500);
  options.retry.max_attempts = 2;
  audit::AuditClient client(audit::MakeAuditConnection(options));
  absl::StatusOr<audit::v1::StoredEvent> got = client.GetEvent(1);
  if (got.ok() || (got.status().code() != absl::StatusCode::kUnavailable &&
                   got.status().code() != absl::StatusCode::kDeadlineExceeded)) {
    std::printf("unexpected: %s\n", got.status().ToString().c_str());
    return 1;
  }
  std::printf("ok\n");
  return 0;
}
