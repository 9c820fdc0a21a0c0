// What must hold after every scenario, checked against the ledger (Jepsen-style set
// comparison), with the figures each scenario reports.
#ifndef TESTS_TORTURE_CHECKS_H_
#define TESTS_TORTURE_CHECKS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/torture/ledger.h"
#include "tests/torture/world.h"

namespace audit::torture {

// A scenario's outcome: named figures (in order) and what did not hold.
struct Report {
  std::string scenario;
  std::vector<std::pair<std::string, std::string>> figures;
  std::vector<std::string> failures;
  absl::Duration elapsed;

  bool passed() const { return failures.empty(); }
  void Figure(const std::string& name, int64_t value);
  void Figure(const std::string& name, const std::string& value);
  void Fail(const std::string& what) { failures.push_back(what); }
  // Records a failure unless `s` is OK; returns s.ok().
  bool Require(const absl::Status& s, const std::string& what);
};

// Waits until the store holds (as events or dead letters) as many messages as the ledger.
bool WaitForLedger(const World& world, const Ledger& ledger, absl::Duration timeout);

// The exact checks: every acknowledged event stored exactly once with its own content, no
// per-producer gap, nothing stored that was not sent; every poison message dead-lettered
// exactly once with its class; every conflict dead-lettered once (the original kept); stored
// + dead-lettered = produced; the hash chain and every checkpoint verify. Adds the figures.
void CheckAgainstLedger(const World& world, const Ledger& ledger, Report* report);

// Redeliveries the store absorbed, summed over the ingestor logs ("batch stored" lines):
// duplicates plus dead letters found already written.
int64_t RedeliveriesAbsorbed(const std::vector<std::string>& logs);
// Lines of the logs containing `needle`.
int64_t CountLogLines(const std::vector<std::string>& logs, const std::string& needle);

}  // namespace audit::torture

#endif  // TESTS_TORTURE_CHECKS_H_
