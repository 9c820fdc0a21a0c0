// audit-simulator: publishes realistic order-lifecycle traffic to Kafka.
//
//   audit-simulator --kafka_brokers=... [--rate=20] [--count=0] [--encoding=mixed]
//
// --rate is events per second (0 = as fast as possible); --count 0 runs until SIGINT/SIGTERM.
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/time/clock.h"
#include "audit/envelope.h"
#include "audit/publisher.h"
#include "services/common/config.h"
#include "services/common/log.h"
#include "services/common/shutdown.h"
#include "tools/simulator/order_simulator.h"

ABSL_FLAG(std::string, kafka_brokers, "", "Kafka bootstrap servers.");
ABSL_FLAG(double, rate, 20, "Events per second; 0 = as fast as possible.");
ABSL_FLAG(int64_t, count, 0, "Stop after this many events; 0 = run until stopped.");
ABSL_FLAG(uint64_t, seed, 0, "Random seed; 0 = from the clock.");
ABSL_FLAG(std::string, encoding, "mixed", "protobuf, json, binary or mixed (rotating).");

namespace audit::simulator {
namespace {

int Main(int argc, char** argv) {
  std::unique_ptr<ShutdownSignals> signals = ShutdownSignals::Install();
  InitProgram(argc, argv, "simulator", "audit-simulator: publishes order-lifecycle events",
              {{"kafka_brokers", "AUDIT_KAFKA_BROKERS"}, {"rate", "AUDIT_SIMULATOR_RATE"}});
  const std::string brokers = absl::GetFlag(FLAGS_kafka_brokers);
  const std::string encoding = absl::GetFlag(FLAGS_encoding);
  if (brokers.empty()) {
    std::fprintf(stderr, "--kafka_brokers (AUDIT_KAFKA_BROKERS) is required\n");
    return 2;
  }
  const WireEncoding kAll[] = {WireEncoding::kProtobuf, WireEncoding::kStructuredJson,
                               WireEncoding::kBinaryMode};
  int fixed = -1;
  if (encoding == "protobuf") fixed = 0;
  if (encoding == "json") fixed = 1;
  if (encoding == "binary") fixed = 2;
  if (fixed < 0 && encoding != "mixed") {
    std::fprintf(stderr, "--encoding must be protobuf, json, binary or mixed\n");
    return 2;
  }
  absl::StatusOr<std::unique_ptr<Publisher>> publisher =
      Publisher::Create({.brokers = brokers, .client_id = "audit-simulator"});
  if (!publisher.ok()) {
    LogError("cannot create the publisher").With(publisher.status());
    return 1;
  }
  SimulatorOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  if (options.seed == 0) options.seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  options.start = absl::Now();
  options.mean_step = absl::Seconds(2);
  OrderSimulator sim(options);
  const double rate = absl::GetFlag(FLAGS_rate);
  const int64_t count = absl::GetFlag(FLAGS_count);
  const absl::Time started = absl::Now();
  int64_t sent = 0;
  std::vector<SimulatedEvent> buffer;
  LogInfo("simulator publishing").With("brokers", brokers).With("rate", rate);
  while (!signals->requested().HasBeenNotified() && (count == 0 || sent < count)) {
    if (buffer.empty()) sim.NextOrder(&buffer);
    SimulatedEvent e = std::move(buffer.front());
    buffer.erase(buffer.begin());
    if (rate > 0) {
      // Pacing, not synchronisation: wait for this event's slot (or a stop request).
      const absl::Time slot = started + absl::Seconds(static_cast<double>(sent) / rate);
      if (signals->requested().WaitForNotificationWithDeadline(slot)) break;
    }
    Headers headers;
    std::string value;
    v1::Event event = e.event;
    if (absl::Status s = NormalizeEvent(&event); !s.ok()) {
      LogError("simulator produced an invalid event").With(s);
      return 1;
    }
    Publisher::Encode(event, kAll[fixed >= 0 ? fixed : sent % 3], &headers, &value);
    if (absl::Status s = (*publisher)->PublishRaw(e.topic, event.subject(), headers, value);
        !s.ok()) {
      LogError("publish failed").With(s);
      return 1;
    }
    ++sent;
    if (sent % 1000 == 0) LogInfo("simulator progress").With("published", sent);
  }
  absl::Status flushed = (*publisher)->Flush(absl::Seconds(30));
  LogInfo("simulator stopped").With("published", sent).With("delivered", (*publisher)->delivered());
  return flushed.ok() ? 0 : 1;
}

}  // namespace
}  // namespace audit::simulator

int main(int argc, char** argv) { return audit::simulator::Main(argc, argv); }
