#include "tools/simulator/order_simulator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace audit::simulator {
namespace {

constexpr const char* kSkus[] = {"SKU-1001", "SKU-1002", "SKU-2040", "SKU-3300",
                                 "SKU-4711", "SKU-5120", "SKU-6001", "SKU-7777"};
constexpr const char* kCarriers[] = {"DHL", "UPS", "FedEx", "PostNL"};
constexpr const char* kCities[] = {"Amsterdam", "Berlin", "Lisbon", "Madrid", "Paris", "Vienna"};

std::string Hex(std::mt19937_64& rng, int digits) {
  std::string out;
  for (int i = 0; i < digits; ++i) out.push_back("0123456789abcdef"[rng() & 0xF]);
  return out;
}

}  // namespace

std::vector<std::string> SimulatorTopics() {
  return {"orders.events", "payments.events", "inventory.events", "shipping.events"};
}

OrderSimulator::OrderSimulator(SimulatorOptions options)
    : options_(std::move(options)), rng_(options_.seed) {}

std::string OrderSimulator::NextId(absl::Time t) {
  // UUIDv7 layout: 48-bit Unix milliseconds, version 7, a counter, variant, random bits.
  const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(t));
  const uint64_t counter = id_counter_++ & 0xFFF;
  return absl::StrFormat("%08x-%04x-7%03x-%x%s-%s", ms >> 16, ms & 0xFFFF, counter,
                         8 + (rng_() & 3), Hex(rng_, 3), Hex(rng_, 12));
}

v1::Event OrderSimulator::Make(const std::string& source, const std::string& type,
                               const std::string& subject, absl::Time t,
                               const std::string& data_json) {
  v1::Event e;
  e.set_id(NextId(t));
  e.set_source(source);
  e.set_type(type);
  e.set_spec_version("1.0");
  e.set_subject(subject);
  const int64_t micros = absl::ToUnixMicros(t);
  e.mutable_time()->set_seconds(micros / 1000000);
  e.mutable_time()->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
  e.set_data_content_type("application/json");
  e.set_text_data(data_json);
  e.set_tenant(options_.tenant);
  e.set_traceparent(absl::StrCat("00-", Hex(rng_, 32), "-", Hex(rng_, 16), "-01"));
  return e;
}

void OrderSimulator::NextOrder(std::vector<SimulatedEvent>* out) {
  const int64_t n = ++order_number_;
  const std::string order = absl::StrFormat("order-%08d", n);
  const std::string customer = absl::StrFormat("customer-%05d", Between(1, 20000));
  const std::string correlation = absl::StrCat("corr-", Hex(rng_, 16));
  absl::Time t = options_.start + options_.order_spacing * static_cast<double>(n);
  const auto step = [&] {
    t += options_.mean_step * (0.2 + 1.6 * Uniform());
    return t;
  };

  // Items and totals.
  std::string items = "[";
  int64_t total_cents = 0;
  const int lines = Between(1, 3);
  for (int i = 0; i < lines; ++i) {
    const int qty = Between(1, 4);
    const int price = Between(199, 19999);
    total_cents += int64_t{qty} * price;
    absl::StrAppendFormat(&items, "%s{\"sku\": \"%s\", \"qty\": %d, \"unit_price\": %d.%02d}",
                          i ? ", " : "", kSkus[Between(0, 7)], qty, price / 100, price % 100);
  }
  items += "]";
  const std::string total = absl::StrFormat("%d.%02d", total_cents / 100, total_cents % 100);
  const char* city = kCities[Between(0, 5)];

  std::vector<SimulatedEvent> events;
  const auto add = [&](const std::string& topic, v1::Event e, const v1::Event* cause,
                       const std::string& actor) {
    e.set_correlation_id(correlation);
    if (cause != nullptr) e.set_causation_id(cause->id());
    e.set_actor(actor);
    e.set_sequence(events.size() + 1);
    events.push_back({topic, std::move(e), false});
    return events.back().event;
  };

  const v1::Event created =
      add("orders.events",
          Make("/services/orders", "com.acme.order.created", order, t,
               absl::StrFormat("{\"order_id\": \"%s\", \"customer_id\": \"%s\", \"items\": %s, "
                               "\"total\": %s, \"currency\": \"EUR\", \"channel\": \"web\", "
                               "\"shipping_address\": {\"city\": \"%s\", \"country\": \"EU\"}}",
                               order, customer, items, total, city)),
          nullptr, absl::StrCat("user:", customer));
  const v1::Event authorized =
      add("payments.events",
          Make("/services/payments", "com.acme.payment.authorized", order, step(),
               absl::StrFormat("{\"order_id\": \"%s\", \"payment_id\": \"pay-%s\", \"amount\": %s, "
                               "\"currency\": \"EUR\", \"method\": \"card\", \"psp\": \"adyen\"}",
                               order, Hex(rng_, 10), total)),
          &created, "service:payments");
  const v1::Event reserved =
      add("inventory.events",
          Make("/services/inventory", "com.acme.inventory.reserved", order, step(),
               absl::StrFormat("{\"order_id\": \"%s\", \"reservation_id\": \"res-%s\", "
                               "\"items\": %s, \"warehouse\": \"WH-%d\"}",
                               order, Hex(rng_, 8), items, Between(1, 9))),
          &created, "service:inventory");

  const double fate = Uniform();
  if (fate < options_.payment_failure_rate) {
    const v1::Event failed =
        add("payments.events",
            Make("/services/payments", "com.acme.payment.failed", order, step(),
                 absl::StrFormat("{\"order_id\": \"%s\", \"reason\": \"insufficient_funds\", "
                                 "\"amount\": %s, \"currency\": \"EUR\"}",
                                 order, total)),
            &authorized, "service:payments");
    const v1::Event cancelled =
        add("orders.events",
            Make("/services/orders", "com.acme.order.cancelled", order, step(),
                 absl::StrFormat("{\"order_id\": \"%s\", \"reason\": \"payment_failed\"}", order)),
            &failed, "service:orders");
    add("inventory.events",
        Make("/services/inventory", "com.acme.inventory.released", order, step(),
             absl::StrFormat("{\"order_id\": \"%s\", \"items\": %s}", order, items)),
        &cancelled, "service:inventory");
  } else if (fate < options_.payment_failure_rate + options_.cancel_rate) {
    const v1::Event cancelled = add(
        "orders.events",
        Make("/services/orders", "com.acme.order.cancelled", order, step(),
             absl::StrFormat("{\"order_id\": \"%s\", \"reason\": \"customer_request\"}", order)),
        nullptr, absl::StrCat("user:", customer));
    add("inventory.events",
        Make("/services/inventory", "com.acme.inventory.released", order, step(),
             absl::StrFormat("{\"order_id\": \"%s\", \"items\": %s}", order, items)),
        &cancelled, "service:inventory");
  } else {
    const v1::Event captured =
        add("payments.events",
            Make("/services/payments", "com.acme.payment.captured", order, step(),
                 absl::StrFormat("{\"order_id\": \"%s\", \"amount\": %s, \"currency\": \"EUR\"}",
                                 order, total)),
            &authorized, "service:payments");
    const v1::Event shipped =
        add("shipping.events",
            Make("/services/shipping", "com.acme.shipment.shipped", order, step(),
                 absl::StrFormat("{\"order_id\": \"%s\", \"carrier\": \"%s\", \"tracking\": "
                                 "\"TRK%s\", \"to_city\": \"%s\"}",
                                 order, kCarriers[Between(0, 3)], Hex(rng_, 12), city)),
            &reserved, "service:shipping");
    (void)captured;
    add("shipping.events",
        Make("/services/shipping", "com.acme.shipment.delivered", order, step(),
             absl::StrFormat("{\"order_id\": \"%s\", \"signed_by\": \"%s\"}", order, customer)),
        &shipped, "carrier:webhook");
  }

  // Out-of-order arrival: an event overtaken by its successor.
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    if (Uniform() < options_.out_of_order_rate) std::swap(events[i], events[i + 1]);
  }
  for (SimulatedEvent& e : events) {
    out->push_back(e);
    if (Uniform() < options_.redelivery_rate) {
      out->push_back(e);
      out->back().redelivery = true;
    }
  }
}

std::vector<SimulatedEvent> OrderSimulator::Generate(size_t n) {
  std::vector<SimulatedEvent> out;
  out.reserve(n + 16);
  while (out.size() < n) NextOrder(&out);
  return out;
}

}  // namespace audit::simulator
