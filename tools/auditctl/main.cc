// auditctl: the command-line tool for the audit trail.
//
//   auditctl migrate [--pg_url=URL]   apply the schema migrations (transactional, idempotent)
//   auditctl lag [--kafka_brokers=B] [--group=G] [--topics=T,..] [--json]
//                                     the ingestor group's lag per partition
//   auditctl version                  print the schema version this build carries
//
// Exit status: 0 success, 1 failure, 2 usage error.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "schema/migrations.h"
#include "schema/migrator.h"
#include "services/common/config.h"
#include "services/common/kafka_lag.h"
#include "services/common/log.h"
#include "services/common/pg.h"

ABSL_FLAG(std::string, pg_url, "",
          "migrate: libpq URI of the migration user (needs CREATEROLE the first time).");
ABSL_FLAG(std::string, kafka_brokers, "", "lag: Kafka bootstrap servers.");
ABSL_FLAG(std::string, group, "audit-ingestor", "lag: the consumer group.");
ABSL_FLAG(std::string, topics, "orders.events,payments.events,inventory.events,shipping.events",
          "lag: comma-separated topics.");
ABSL_FLAG(bool, json, false, "Print NDJSON instead of a table.");

namespace audit::cli {
namespace {

constexpr char kUsage[] =
    "auditctl <command> [flags]\n"
    "  migrate   apply the schema migrations to --pg_url (AUDIT_MIGRATE_PG_URL)\n"
    "  lag       consumer-group lag per partition (--kafka_brokers, --group, --topics)\n"
    "  version   print the newest schema version this build carries";

int Migrate() {
  const std::string url = absl::GetFlag(FLAGS_pg_url);
  if (url.empty()) {
    std::fprintf(stderr, "auditctl migrate: --pg_url (or AUDIT_MIGRATE_PG_URL) is required\n");
    return 2;
  }
  pg::ConnectOptions options;
  options.application_name = "auditctl-migrate";
  options.statement_timeout = absl::ZeroDuration();  // migrations may take long
  absl::StatusOr<pg::ConnPtr> conn = pg::Connect(url, options);
  if (!conn.ok()) {
    std::fprintf(stderr, "auditctl migrate: %s\n", std::string(conn.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<schema::MigrationReport> report =
      schema::Migrate(conn->get(), schema::EmbeddedMigrations());
  if (!report.ok()) {
    std::fprintf(stderr, "auditctl migrate: %s\n", std::string(report.status().message()).c_str());
    return 1;
  }
  std::printf("schema at version %d (%s)\n", report->version,
              report->applied.empty()
                  ? "already up to date"
                  : absl::StrCat("applied ", absl::StrJoin(report->applied, ", ")).c_str());
  return 0;
}

int Lag() {
  const std::string brokers = absl::GetFlag(FLAGS_kafka_brokers);
  if (brokers.empty()) {
    std::fprintf(stderr, "auditctl lag: --kafka_brokers (or AUDIT_KAFKA_BROKERS) is required\n");
    return 2;
  }
  std::vector<std::string> topics =
      absl::StrSplit(absl::GetFlag(FLAGS_topics), ',', absl::SkipWhitespace());
  absl::StatusOr<std::vector<PartitionLag>> lags =
      GroupLag(brokers, absl::GetFlag(FLAGS_group), topics);
  if (!lags.ok()) {
    std::fprintf(stderr, "auditctl lag: %s\n", std::string(lags.status().message()).c_str());
    return 1;
  }
  int64_t total = 0;
  if (!absl::GetFlag(FLAGS_json)) {
    std::printf("%-24s %9s %12s %12s %10s\n", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG");
  }
  for (const PartitionLag& p : *lags) {
    total += p.lag();
    if (absl::GetFlag(FLAGS_json)) {
      std::printf(
          "{\"topic\":\"%s\",\"partition\":%d,\"committed\":%lld,\"end\":%lld,\"lag\":%lld}\n",
          p.topic.c_str(), p.partition, static_cast<long long>(p.committed),
          static_cast<long long>(p.high), static_cast<long long>(p.lag()));
    } else {
      std::printf("%-24s %9d %12s %12lld %10lld\n", p.topic.c_str(), p.partition,
                  p.committed < 0 ? "-" : std::to_string(p.committed).c_str(),
                  static_cast<long long>(p.high), static_cast<long long>(p.lag()));
    }
  }
  if (!absl::GetFlag(FLAGS_json)) std::printf("total lag: %lld\n", static_cast<long long>(total));
  return 0;
}

int Main(int argc, char** argv) {
  std::vector<char*> args =
      InitProgram(argc, argv, "auditctl", kUsage, {{"pg_url", "AUDIT_MIGRATE_PG_URL"}});
  SetMinLogLevel(LogLevel::kWarning);
  if (args.size() < 2) {
    std::fprintf(stderr, "%s\n", kUsage);
    return 2;
  }
  const std::string command = args[1];
  if (command == "migrate") return Migrate();
  if (command == "lag") return Lag();
  if (command == "version") {
    std::printf("%zu\n", schema::EmbeddedMigrations().size());
    return 0;
  }
  std::fprintf(stderr, "auditctl: unknown command %s\n%s\n", command.c_str(), kUsage);
  return 2;
}

}  // namespace
}  // namespace audit::cli

int main(int argc, char** argv) { return audit::cli::Main(argc, argv); }
