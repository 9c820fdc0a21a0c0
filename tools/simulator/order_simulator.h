// Realistic order-lifecycle traffic, deterministic for a seed.
//
// Each order produces, across four services and topics (key = order id):
//   orders.events     order.created -> (order.cancelled)
//   payments.events   payment.authorized -> payment.captured | payment.failed
//   inventory.events  inventory.reserved -> (inventory.released)
//   shipping.events   shipment.shipped -> shipment.delivered
// with a correlation id per order, causation ids linking each event to its cause, actors,
// a tenant, W3C traceparents, per-order sequence numbers and JSON data of a few hundred
// bytes. Some events are emitted twice (redeliveries: same id, same content) and some are
// emitted after their successor (out-of-order arrival). Ids are time-ordered (UUIDv7 layout).
//
// Thread safety: none; one simulator per thread.
#ifndef TOOLS_SIMULATOR_ORDER_SIMULATOR_H_
#define TOOLS_SIMULATOR_ORDER_SIMULATOR_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "audit/v1/event.pb.h"

namespace audit::simulator {

struct SimulatorOptions {
  uint64_t seed = 1;
  double redelivery_rate = 0.02;      // share of events emitted a second time
  double out_of_order_rate = 0.05;    // share of events emitted after their successor
  double payment_failure_rate = 0.1;  // authorized payments that then fail
  double cancel_rate = 0.05;          // orders the customer cancels before shipping
  std::string tenant = "acme";
  absl::Time start = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
  absl::Duration mean_step = absl::Seconds(40);          // between one order's consecutive events
  absl::Duration order_spacing = absl::Milliseconds(250);
};

struct SimulatedEvent {
  std::string topic;
  v1::Event event;
  bool redelivery = false;  // a second emission of an event already emitted
};

class OrderSimulator {
 public:
  explicit OrderSimulator(SimulatorOptions options);

  // Appends one whole order lifecycle, in emission order.
  void NextOrder(std::vector<SimulatedEvent>* out);

  // Whole orders until at least `n` events.
  std::vector<SimulatedEvent> Generate(size_t n);

  int64_t orders() const { return order_number_; }

 private:
  std::string NextId(absl::Time t);
  v1::Event Make(const std::string& source, const std::string& type, const std::string& subject,
                 absl::Time t, const std::string& data_json);
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
  int Between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  SimulatorOptions options_;
  std::mt19937_64 rng_;
  int64_t order_number_ = 0;
  uint64_t id_counter_ = 0;
};

// The topics the simulator publishes to.
std::vector<std::string> SimulatorTopics();

}  // namespace audit::simulator

#endif  // TOOLS_SIMULATOR_ORDER_SIMULATOR_H_
