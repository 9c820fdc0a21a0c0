// The torture scenarios (docs/RELIABILITY.md). Each runs against real processes in a fresh
// database, checks what must hold (checks.h) and reports its figures. `long_run` selects the
// full size; the short size runs in CI.
#ifndef TESTS_TORTURE_SCENARIOS_H_
#define TESTS_TORTURE_SCENARIOS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tests/torture/checks.h"
#include "tests/torture/world.h"

namespace audit::torture {

struct Scale {
  bool long_run = false;
  uint64_t seed = 1;
};

struct Scenario {
  std::string name;
  std::string what;
  Report (*run)(World& world, const Scale& scale);
};

const std::vector<Scenario>& AllScenarios();

}  // namespace audit::torture

#endif  // TESTS_TORTURE_SCENARIOS_H_
