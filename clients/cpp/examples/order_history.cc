// Example: a service publishes an audit event with the SDK and reads an order's history back.
//
//   order_history --server=127.0.0.1:50051 --subject=order-1 [--kafka_brokers=host:port]
//
// With --kafka_brokers it first publishes a "com.acme.order.noted" event for the subject and
// waits (up to --wait_seconds) until the audit trail has stored it. It then prints the
// subject's history, one event per line: position, time, type, source, id. Exit status 0 on
// success, 1 on failure, 2 on bad usage.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "audit/audit_client.h"
#include "audit/publisher.h"
#include "audit/rfc3339.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "The query server.");
ABSL_FLAG(std::string, subject, "", "The order (subject) to show.");
ABSL_FLAG(std::string, kafka_brokers, "", "If set, publish an event for the subject first.");
ABSL_FLAG(int, wait_seconds, 30, "How long to wait for the published event to be stored.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string subject = absl::GetFlag(FLAGS_subject);
  if (subject.empty()) {
    std::fprintf(stderr, "--subject is required\n");
    return 2;
  }
  audit::AuditClient client(audit::MakeAuditConnection({.target = absl::GetFlag(FLAGS_server)}));

  std::string published_id;
  if (const std::string brokers = absl::GetFlag(FLAGS_kafka_brokers); !brokers.empty()) {
    absl::StatusOr<std::unique_ptr<audit::Publisher>> publisher =
        audit::Publisher::Create({.brokers = brokers, .client_id = "order-history-example"});
    if (!publisher.ok()) {
      std::fprintf(stderr, "publisher: %s\n", publisher.status().ToString().c_str());
      return 1;
    }
    audit::v1::Event e;
    published_id = absl::StrCat("note-", absl::ToUnixNanos(absl::Now()));
    e.set_id(published_id);
    e.set_source("/examples/order-history");
    e.set_type("com.acme.order.noted");
    e.set_spec_version("1.0");
    e.set_subject(subject);
    *e.mutable_time() = audit::FromUnixMicros(absl::ToUnixMicros(absl::Now()));
    e.set_data_content_type("application/json");
    e.set_text_data(R"({"note": "looked at by the example"})");
    e.set_actor("example:order_history");
    absl::Status s = (*publisher)->Publish("orders.events", e);  // checked; key = subject
    if (s.ok()) s = (*publisher)->Flush(absl::Seconds(10));
    if (!s.ok()) {
      std::fprintf(stderr, "publish: %s\n", s.ToString().c_str());
      return 1;
    }
  }

  const absl::Time deadline = absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_wait_seconds));
  while (true) {
    absl::StatusOr<std::vector<audit::v1::StoredEvent>> history = client.SubjectHistory(subject);
    if (!history.ok()) {
      std::fprintf(stderr, "history: %s\n", history.status().ToString().c_str());
      return 1;
    }
    bool found = published_id.empty();
    for (const auto& e : *history) found |= e.event().id() == published_id;
    if (found) {
      for (const auto& e : *history) {
        std::printf("%lld %s %s %s %s\n", static_cast<long long>(e.position()),
                    audit::FormatRfc3339(e.event().time()).c_str(), e.event().type().c_str(),
                    e.event().source().c_str(), e.event().id().c_str());
      }
      return 0;
    }
    if (absl::Now() > deadline) {
      std::fprintf(stderr, "the published event was not stored within --wait_seconds\n");
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(100));  // polling the store for the example's event
  }
}
