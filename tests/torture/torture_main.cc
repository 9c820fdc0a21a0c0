// audit-torture: the reliability torture suite (docs/RELIABILITY.md).
//
//   bazel run //tests/torture:audit-torture -- --scale=long            # every scenario, full size
//   bazel run //tests/torture:audit-torture -- --scenarios=kill9,disk_full --seed=7
//   tools/dev torture                                                  # the same, long
//
// Prints each scenario's figures and failures, a summary table, and (with --json_out) JSON.
// Exit status 1 if anything did not hold.
#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "audit/json.h"
#include "services/common/log.h"
#include "tests/torture/scenarios.h"

ABSL_FLAG(std::string, scale, "short", "short (CI) or long (the full suite).");
ABSL_FLAG(std::string, scenarios, "all", "Comma-separated scenario names, or all.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of every random choice (kill moments, poison mix).");
ABSL_FLAG(std::string, work_dir, "", "Where logs go (default: a new directory under /tmp).");
ABSL_FLAG(std::string, json_out, "", "Also write the results as JSON here.");
ABSL_FLAG(bool, pause_on_failure, false,
          "After a failed scenario, keep its database up for inspection (until killed).");

namespace audit::torture {
namespace {

std::string Json(const std::vector<Report>& reports, const Scale& scale) {
  std::string out = absl::StrCat("{\"scale\":\"", scale.long_run ? "long" : "short",
                                 "\",\"seed\":", scale.seed, ",\"scenarios\":[");
  for (size_t i = 0; i < reports.size(); ++i) {
    const Report& r = reports[i];
    absl::StrAppend(&out, i ? "," : "", "{\"name\":\"", r.scenario,
                    "\",\"passed\":", r.passed() ? "true" : "false",
                    ",\"seconds\":", absl::ToInt64Milliseconds(r.elapsed) / 1000.0,
                    ",\"figures\":{");
    for (size_t f = 0; f < r.figures.size(); ++f) {
      if (f) out.push_back(',');
      AppendJsonString(r.figures[f].first, &out);
      out.push_back(':');
      AppendJsonString(r.figures[f].second, &out);
    }
    out.append("},\"failures\":[");
    for (size_t f = 0; f < r.failures.size(); ++f) {
      if (f) out.push_back(',');
      AppendJsonString(r.failures[f], &out);
    }
    out.append("]}");
  }
  out.append("]}");
  return out;
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  SetMinLogLevel(LogLevel::kWarning);
  signal(SIGPIPE, SIG_IGN);
  Scale scale;
  scale.long_run = absl::GetFlag(FLAGS_scale) == "long";
  scale.seed = absl::GetFlag(FLAGS_seed);
  std::string work = absl::GetFlag(FLAGS_work_dir);
  if (work.empty()) {
    char tmpl[] = "/tmp/audit-torture-XXXXXX";
    work = mkdtemp(tmpl);
  }
  absl::StatusOr<Binaries> binaries = FindBinaries(argv[0]);
  if (!binaries.ok()) {
    std::fprintf(stderr, "%s\n", binaries.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<World>> world = World::Create(*binaries, work);
  if (!world.ok()) {
    std::fprintf(stderr, "cannot set up: %s\n", world.status().ToString().c_str());
    return 1;
  }
  const std::string wanted = absl::GetFlag(FLAGS_scenarios);
  std::vector<std::string> names = absl::StrSplit(wanted, ',', absl::SkipEmpty());
  std::vector<Report> reports;
  std::printf("torture suite, %s scale, seed %llu, logs in %s\n\n",
              scale.long_run ? "long" : "short", static_cast<unsigned long long>(scale.seed),
              work.c_str());
  for (const Scenario& s : AllScenarios()) {
    if (wanted != "all" && std::find(names.begin(), names.end(), s.name) == names.end()) continue;
    std::printf("== %s: %s\n", s.name.c_str(), s.what.c_str());
    std::fflush(stdout);
    const absl::Time start = absl::Now();
    Report r;
    if (absl::Status b = (*world)->BeginScenario(s.name); !b.ok()) {
      r.Fail(absl::StrCat("setup: ", b.ToString()));
    } else {
      r = s.run(**world, scale);
    }
    r.scenario = s.name;
    r.elapsed = absl::Now() - start;
    for (const auto& [k, v] : r.figures) std::printf("   %-48s %s\n", k.c_str(), v.c_str());
    for (const auto& f : r.failures) std::printf("   FAILED: %s\n", f.c_str());
    if (!r.passed() && absl::GetFlag(FLAGS_pause_on_failure)) {
      // For a post-mortem: the scenario's database stays up until the harness is killed.
      std::printf("   paused; the database is %s (Ctrl-C to end)\n",
                  (*world)->Url("postgres").c_str());
      std::fflush(stdout);
      absl::SleepFor(absl::InfiniteDuration());
    }
    std::printf("   %s in %.1f s\n\n", r.passed() ? "PASS" : "FAIL",
                absl::ToDoubleSeconds(r.elapsed));
    std::fflush(stdout);
    reports.push_back(std::move(r));
  }
  std::printf("%-20s %-6s %8s\n", "SCENARIO", "RESULT", "SECONDS");
  bool all = true;
  for (const Report& r : reports) {
    std::printf("%-20s %-6s %8.1f\n", r.scenario.c_str(), r.passed() ? "pass" : "FAIL",
                absl::ToDoubleSeconds(r.elapsed));
    all &= r.passed();
  }
  if (const std::string path = absl::GetFlag(FLAGS_json_out); !path.empty()) {
    std::ofstream(path) << Json(reports, scale) << "\n";
  }
  return all ? 0 : 1;
}

}  // namespace
}  // namespace audit::torture

int main(int argc, char** argv) { return audit::torture::Main(argc, argv); }
