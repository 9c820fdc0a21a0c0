// The production ingestor (IngestorMain) with deterministic crash points, for the torture
// suite: AUDIT_TORTURE_CRASH_AT=<stage>:<n> kills the process with SIGKILL the n-th time a
// batch reaches <stage>:
//   before_insert         the append lock is held, nothing written
//   before_commit         events and hashes written, transaction not committed
//   before_offset_commit  the transaction committed, Kafka offsets not yet committed
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "services/ingestor/ingestor_main.h"

namespace {

std::atomic<int> reached{0};

void MaybeCrash(const std::string& here, const std::string& stage, int n) {
  if (here == stage && ++reached == n) {
    std::fprintf(stderr, "{\"msg\":\"torture: crashing at %s, batch %d\"}\n", here.c_str(), n);
    std::fflush(stderr);
    raise(SIGKILL);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string stage;
  int n = 0;
  if (const char* spec = std::getenv("AUDIT_TORTURE_CRASH_AT")) {
    std::pair<std::string, std::string> parts = absl::StrSplit(spec, ':');
    if (!absl::SimpleAtoi(parts.second, &n) || n < 1) {
      std::fprintf(stderr, "AUDIT_TORTURE_CRASH_AT must be <stage>:<n>\n");
      return 2;
    }
    stage = parts.first;
  }
  audit::ingestor::IngestorHooks hooks;
  hooks.store_stage = [stage, n](audit::ingestor::PgEventStore::Stage s) {
    MaybeCrash(s == audit::ingestor::PgEventStore::Stage::kBeforeInsert ? "before_insert"
                                                                        : "before_commit",
               stage, n);
  };
  hooks.before_offset_commit = [stage, n] { MaybeCrash("before_offset_commit", stage, n); };
  return audit::ingestor::IngestorMain(argc, argv, hooks);
}
