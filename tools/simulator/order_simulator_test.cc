#include "tools/simulator/order_simulator.h"

#include <map>
#include <set>
#include <string>

#include "audit/envelope.h"
#include "gtest/gtest.h"

namespace audit::simulator {
namespace {

TEST(OrderSimulatorTest, EventsAreValidLinkedAndDeterministic) {
  SimulatorOptions options;
  options.seed = 7;
  std::vector<SimulatedEvent> a = OrderSimulator(options).Generate(2000);
  std::vector<SimulatedEvent> b = OrderSimulator(options).Generate(2000);
  ASSERT_EQ(a.size(), b.size());
  std::set<std::string> ids;
  std::map<std::string, std::string> correlation_of_subject;
  size_t redeliveries = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].event.SerializeAsString(), b[i].event.SerializeAsString());
    v1::Event e = a[i].event;
    ASSERT_TRUE(NormalizeEvent(&e).ok()) << e.ShortDebugString();
    if (a[i].redelivery) {
      ++redeliveries;
      EXPECT_EQ(ids.count(e.id()), 1u) << "a redelivery repeats an emitted event";
      continue;
    }
    EXPECT_TRUE(ids.insert(e.id()).second) << "duplicate id " << e.id();
    auto [it, inserted] = correlation_of_subject.emplace(e.subject(), e.correlation_id());
    EXPECT_EQ(it->second, e.correlation_id()) << "one correlation id per order";
    if (e.type() != "com.acme.order.created" && e.type() != "com.acme.order.cancelled") {
      EXPECT_FALSE(e.causation_id().empty()) << e.type();
    }
  }
  // Roughly the configured redelivery share, and some data of realistic size.
  EXPECT_GT(redeliveries, a.size() / 100);
  EXPECT_LT(redeliveries, a.size() / 20);
  EXPECT_GT(a[0].event.text_data().size(), 200u);
}

TEST(OrderSimulatorTest, DifferentSeedsDiffer) {
  SimulatorOptions o1, o2;
  o2.seed = o1.seed + 1;
  EXPECT_NE(OrderSimulator(o1).Generate(10)[0].event.id(),
            OrderSimulator(o2).Generate(10)[0].event.id());
}

}  // namespace
}  // namespace audit::simulator
