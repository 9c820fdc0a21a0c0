// auditctl: the command-line tool of the audit trail.
//
//   auditctl get POSITION | get --source=S --id=I       one event
//   auditctl list [filters] [--newest_first] [--limit=N] events matching filters
//   auditctl history SUBJECT [--as_of=TIME]              an order's full history
//   auditctl replay [--after=P | --from=TIME] [filters] [--follow]   events as NDJSON
//   auditctl tail [filters]                              new events as they commit (NDJSON)
//   auditctl stats [--occurred_from/to --recorded_from/to]
//   auditctl dead-letters [--class=C] [--limit=N]
//   auditctl publish --topic=T [--encoding=E] [FILE|-]   publish CloudEvents JSON lines
//   auditctl migrate [--pg_url=URL]                      apply the schema migrations
//   auditctl lag [--group=G] [--topics=T,..]             consumer-group lag per partition
//   auditctl version
//
// Filters: --subject --type=a,b --source=a,b --occurred_from --occurred_to --recorded_from
// --recorded_to (RFC 3339) --correlation_id --actor --tenant --data_contains=JSON.
// Output: --output=table (people; the default for get/list/history/stats/dead-letters) or
// --output=ndjson (machines; always for replay and tail). Progress of long replays goes to
// stderr. Exit status: 0 success, 1 failure, 2 usage error.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "audit/audit_client.h"
#include "audit/cloudevents.h"
#include "audit/json.h"
#include "audit/publisher.h"
#include "audit/rfc3339.h"
#include "schema/migrations.h"
#include "schema/migrator.h"
#include "services/common/config.h"
#include "services/common/kafka_lag.h"
#include "services/common/log.h"
#include "services/common/pg.h"
#include "services/common/shutdown.h"
#include "tools/auditctl/output.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "The query server (host:port).");
ABSL_FLAG(std::string, output, "table", "table or ndjson.");
ABSL_FLAG(std::string, subject, "", "Filter: subject.");
ABSL_FLAG(std::string, type, "", "Filter: comma-separated event types.");
ABSL_FLAG(std::string, source, "", "Filter: comma-separated sources; with get: the source.");
ABSL_FLAG(std::string, id, "", "get: the event id (with --source).");
ABSL_FLAG(std::string, occurred_from, "", "Filter: occurred at or after (RFC 3339).");
ABSL_FLAG(std::string, occurred_to, "", "Filter: occurred before (RFC 3339).");
ABSL_FLAG(std::string, recorded_from, "", "Filter: recorded at or after (RFC 3339).");
ABSL_FLAG(std::string, recorded_to, "", "Filter: recorded before (RFC 3339).");
ABSL_FLAG(std::string, correlation_id, "", "Filter: correlation id.");
ABSL_FLAG(std::string, actor, "", "Filter: actor.");
ABSL_FLAG(std::string, tenant, "", "Filter: tenant.");
ABSL_FLAG(std::string, data_contains, "", "Filter: JSON the data must contain.");
ABSL_FLAG(bool, newest_first, false, "list: newest first.");
ABSL_FLAG(int64_t, limit, 100, "list, dead-letters: at most this many (0 = all).");
ABSL_FLAG(std::string, as_of, "", "history: as the store knew it at this time (RFC 3339).");
ABSL_FLAG(int64_t, after, -1, "replay: start after this position.");
ABSL_FLAG(std::string, from, "", "replay: start at this recorded time (RFC 3339).");
ABSL_FLAG(bool, follow, false, "replay: keep streaming new events.");
ABSL_FLAG(bool, quiet, false, "replay: no progress on stderr.");
ABSL_FLAG(std::string, dead_letter_class, "", "dead-letters: only this class, e.g. conflict.");
ABSL_FLAG(std::string, topic, "", "publish: the Kafka topic.");
ABSL_FLAG(std::string, encoding, "protobuf", "publish: protobuf, json or binary.");
ABSL_FLAG(std::string, kafka_brokers, "", "publish, lag: Kafka bootstrap servers.");
ABSL_FLAG(std::string, pg_url, "",
          "migrate: libpq URI of the migration user (needs CREATEROLE the first time).");
ABSL_FLAG(std::string, group, "audit-ingestor", "lag: the consumer group.");
ABSL_FLAG(std::string, topics, "orders.events,payments.events,inventory.events,shipping.events",
          "lag: comma-separated topics.");

namespace audit::cli {
namespace {

constexpr char kUsage[] =
    "auditctl <command> [flags]\n"
    "  get POSITION | get --source=S --id=I   one event\n"
    "  list [filters]                         events matching filters (--newest_first, --limit)\n"
    "  history SUBJECT [--as_of=TIME]         one subject's events in order\n"
    "  replay [--after=P|--from=TIME] [filters] [--follow]   events as NDJSON on stdout\n"
    "  tail [filters]                         new events as they commit, NDJSON\n"
    "  stats                                  counts by type and source, head, dead letters\n"
    "  dead-letters [--dead_letter_class=C]   rejected messages, newest first\n"
    "  publish --topic=T [FILE|-]             publish CloudEvents JSON lines (--encoding)\n"
    "  migrate [--pg_url=URL]                 apply the schema migrations\n"
    "  lag                                    consumer-group lag per partition\n"
    "  version                                the schema version this build carries\n"
    "Filters: --subject --type --source --occurred_from --occurred_to --recorded_from\n"
    "  --recorded_to --correlation_id --actor --tenant --data_contains. --output=table|ndjson.\n"
    "The server is --server (AUDIT_GRPC_ADDR).";

int Usage(absl::string_view message) {
  std::fprintf(stderr, "auditctl: %s\n", std::string(message).c_str());
  return 2;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "auditctl: %s: %s\n", absl::StatusCodeToString(s.code()).c_str(),
               std::string(s.message()).c_str());
  return 1;
}

bool Ndjson() { return absl::GetFlag(FLAGS_output) == "ndjson"; }

absl::Status ParseTime(const std::string& text, const char* flag,
                       google::protobuf::Timestamp* out) {
  absl::StatusOr<google::protobuf::Timestamp> t = ParseRfc3339(text);
  if (!t.ok())
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", t.status().message()));
  *out = *t;
  return absl::OkStatus();
}

// Sets the bounds given by --occurred_from/to and --recorded_from/to (and only those).
absl::Status SetRanges(v1::TimeRange* occurred, v1::TimeRange* recorded) {
  struct Bound {
    std::string text;
    const char* flag;
    std::function<google::protobuf::Timestamp*()> target;
  };
  const Bound bounds[] = {
      {absl::GetFlag(FLAGS_occurred_from), "occurred_from",
       [=] { return occurred->mutable_start(); }},
      {absl::GetFlag(FLAGS_occurred_to), "occurred_to", [=] { return occurred->mutable_end(); }},
      {absl::GetFlag(FLAGS_recorded_from), "recorded_from",
       [=] { return recorded->mutable_start(); }},
      {absl::GetFlag(FLAGS_recorded_to), "recorded_to", [=] { return recorded->mutable_end(); }},
  };
  for (const Bound& b : bounds) {
    if (b.text.empty()) continue;
    if (absl::Status s = ParseTime(b.text, b.flag, b.target()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::EventFilter> Filter() {
  v1::EventFilter f;
  f.set_subject(absl::GetFlag(FLAGS_subject));
  for (absl::string_view t : absl::StrSplit(absl::GetFlag(FLAGS_type), ',', absl::SkipEmpty())) {
    f.add_types(std::string(t));
  }
  for (absl::string_view s : absl::StrSplit(absl::GetFlag(FLAGS_source), ',', absl::SkipEmpty())) {
    f.add_sources(std::string(s));
  }
  if (absl::Status st = SetRanges(f.mutable_occurred(), f.mutable_recorded()); !st.ok()) {
    return st;
  }
  if (!f.occurred().has_start() && !f.occurred().has_end()) f.clear_occurred();
  if (!f.recorded().has_start() && !f.recorded().has_end()) f.clear_recorded();
  f.set_correlation_id(absl::GetFlag(FLAGS_correlation_id));
  f.set_actor(absl::GetFlag(FLAGS_actor));
  f.set_tenant(absl::GetFlag(FLAGS_tenant));
  f.set_data_contains(absl::GetFlag(FLAGS_data_contains));
  return f;
}

AuditClient Client() {
  return AuditClient(MakeAuditConnection({.target = absl::GetFlag(FLAGS_server)}));
}

void PrintEvents(const std::vector<v1::StoredEvent>& events) {
  if (Ndjson()) {
    for (const auto& e : events) std::printf("%s\n", EventJson(e).c_str());
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : events) rows.push_back(EventRow(e));
  std::fputs(Table(EventHeader(), rows).c_str(), stdout);
}

int Get(const std::vector<char*>& args) {
  AuditClient client = Client();
  absl::StatusOr<v1::StoredEvent> e;
  if (args.size() >= 3) {
    int64_t position = 0;
    if (!absl::SimpleAtoi(args[2], &position)) return Usage("get: POSITION must be a number");
    e = client.GetEvent(position);
  } else if (!absl::GetFlag(FLAGS_source).empty() && !absl::GetFlag(FLAGS_id).empty()) {
    e = client.GetEvent(absl::GetFlag(FLAGS_source), absl::GetFlag(FLAGS_id));
  } else {
    return Usage("get POSITION, or get --source=S --id=I");
  }
  if (!e.ok()) return Fail(e.status());
  std::printf("%s\n", Ndjson() ? EventJson(*e).c_str() : EventDetails(*e).c_str());
  return 0;
}

int List() {
  absl::StatusOr<v1::EventFilter> filter = Filter();
  if (!filter.ok()) return Fail(filter.status());
  v1::ListEventsRequest r;
  *r.mutable_filter() = *filter;
  r.set_order(absl::GetFlag(FLAGS_newest_first) ? v1::ORDER_NEWEST_FIRST : v1::ORDER_OLDEST_FIRST);
  const int64_t limit = absl::GetFlag(FLAGS_limit);
  r.set_page_size(static_cast<int32_t>(limit > 0 && limit < 1000 ? limit : 1000));
  absl::StatusOr<std::vector<v1::StoredEvent>> events =
      Client().ListAllEvents(r, limit > 0 ? static_cast<size_t>(limit) : SIZE_MAX);
  if (!events.ok()) return Fail(events.status());
  PrintEvents(*events);
  return 0;
}

int History(const std::vector<char*>& args) {
  if (args.size() < 3) return Usage("history SUBJECT");
  std::optional<absl::Time> as_of;
  if (const std::string t = absl::GetFlag(FLAGS_as_of); !t.empty()) {
    google::protobuf::Timestamp ts;
    if (absl::Status s = ParseTime(t, "as_of", &ts); !s.ok()) return Fail(s);
    as_of = absl::FromUnixMicros(ToUnixMicros(ts));
  }
  absl::StatusOr<std::vector<v1::StoredEvent>> events = Client().SubjectHistory(args[2], as_of);
  if (!events.ok()) return Fail(events.status());
  PrintEvents(*events);
  return 0;
}

int Replay(bool tail, const ShutdownSignals& signals) {
  absl::StatusOr<v1::EventFilter> filter = Filter();
  if (!filter.ok()) return Fail(filter.status());
  AuditClient client = Client();
  v1::ReplayEventsRequest r;
  *r.mutable_filter() = *filter;
  r.set_follow(tail || absl::GetFlag(FLAGS_follow));
  int64_t head = 0;
  if (absl::StatusOr<v1::GetStatisticsResponse> stats = client.GetStatistics(); stats.ok()) {
    head = stats->newest_position();
  } else {
    return Fail(stats.status());
  }
  if (tail) {
    r.set_after_position(head);
  } else if (absl::GetFlag(FLAGS_after) >= 0) {
    r.set_after_position(absl::GetFlag(FLAGS_after));
  } else if (const std::string from = absl::GetFlag(FLAGS_from); !from.empty()) {
    if (absl::Status s = ParseTime(from, "from", r.mutable_from_recorded_time()); !s.ok()) {
      return Fail(s);
    }
  }
  ReplayOptions options;
  options.max_reconnect_attempts = r.follow() ? 0 : 10;
  ReplayStream replay = client.Replay(r, options);
  // Ctrl-C ends the replay cleanly (the last line printed is complete).
  std::thread([&signals, &replay] {
    signals.requested().WaitForNotification();
    replay.Cancel();
  }).detach();
  const bool progress = !absl::GetFlag(FLAGS_quiet) && !tail;
  const bool tty = isatty(STDERR_FILENO);
  const absl::Time start = absl::Now();
  absl::Time next_progress = start + absl::Seconds(1);
  int64_t count = 0;
  const auto report = [&](bool final) {
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::fprintf(stderr, "%sreplayed %lld events, at position %lld of %lld, %.0f events/s%s",
                 tty ? "\r" : "", static_cast<long long>(count),
                 static_cast<long long>(replay.last_position()), static_cast<long long>(head),
                 seconds > 0 ? static_cast<double>(count) / seconds : 0.0,
                 final || !tty ? "\n" : "");
  };
  while (true) {
    absl::StatusOr<std::optional<v1::StoredEvent>> e = replay.Next();
    if (!e.ok()) {
      if (e.status().code() == absl::StatusCode::kCancelled) break;
      if (progress) report(true);
      return Fail(e.status());
    }
    if (!e->has_value()) break;
    if (std::printf("%s\n", EventJson(**e).c_str()) < 0 || std::ferror(stdout)) {
      replay.Cancel();  // the reader went away (e.g. `| head`): stop quietly
      return 0;
    }
    ++count;
    if (progress && absl::Now() >= next_progress) {
      std::fflush(stdout);
      report(false);
      next_progress = absl::Now() + (tty ? absl::Seconds(1) : absl::Seconds(10));
    }
  }
  std::fflush(stdout);
  if (progress) report(true);
  return 0;
}

int Stats() {
  v1::GetStatisticsRequest r;
  if (absl::Status st = SetRanges(r.mutable_occurred(), r.mutable_recorded()); !st.ok()) {
    return Fail(st);
  }
  if (!r.occurred().has_start() && !r.occurred().has_end()) r.clear_occurred();
  if (!r.recorded().has_start() && !r.recorded().has_end()) r.clear_recorded();
  absl::StatusOr<v1::GetStatisticsResponse> s = Client().GetStatistics(r);
  if (!s.ok()) return Fail(s.status());
  if (Ndjson()) {
    std::string out = absl::StrCat("{\"event_count\":", s->event_count(),
                                   ",\"newest_position\":", s->newest_position(),
                                   ",\"dead_letter_count\":", s->dead_letter_count());
    for (const auto& [name, counts] :
         {std::pair{"by_type", &s->by_type()}, std::pair{"by_source", &s->by_source()},
          std::pair{"dead_letters_by_class", &s->dead_letters_by_class()}}) {
      absl::StrAppend(&out, ",\"", name, "\":{");
      for (int i = 0; i < counts->size(); ++i) {
        if (i) out.push_back(',');
        AppendJsonString((*counts)[i].key(), &out);
        absl::StrAppend(&out, ":", (*counts)[i].count());
      }
      out.push_back('}');
    }
    std::printf("%s}\n", out.c_str());
    return 0;
  }
  std::printf(
      "events: %lld   newest position: %lld   newest recorded: %s   dead letters: %lld\n\n",
      static_cast<long long>(s->event_count()), static_cast<long long>(s->newest_position()),
      s->has_newest_recorded_time() ? FormatRfc3339(s->newest_recorded_time()).c_str() : "-",
      static_cast<long long>(s->dead_letter_count()));
  for (const auto& [title, counts] :
       {std::pair{"TYPE", &s->by_type()}, std::pair{"SOURCE", &s->by_source()},
        std::pair{"DEAD LETTER CLASS", &s->dead_letters_by_class()}}) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : *counts) rows.push_back({c.key(), absl::StrCat(c.count())});
    std::printf("%s\n", Table({title, "COUNT"}, rows, 64).c_str());
  }
  return 0;
}

int DeadLetters() {
  v1::ListDeadLettersRequest r;
  if (const std::string c = absl::GetFlag(FLAGS_dead_letter_class); !c.empty()) {
    v1::ErrorClass ec;
    if (!v1::ErrorClass_Parse(absl::StrCat("ERROR_CLASS_", absl::AsciiStrToUpper(c)), &ec)) {
      return Usage(absl::StrCat("--dead_letter_class: unknown class ", c));
    }
    r.set_error_class(ec);
  }
  const int64_t limit = absl::GetFlag(FLAGS_limit);
  r.set_page_size(static_cast<int32_t>(limit > 0 && limit < 1000 ? limit : 1000));
  AuditClient client = Client();
  std::vector<v1::DeadLetter> all;
  do {
    absl::StatusOr<v1::ListDeadLettersResponse> page = client.ListDeadLetters(r);
    if (!page.ok()) return Fail(page.status());
    for (const auto& d : page->dead_letters()) {
      if (limit > 0 && static_cast<int64_t>(all.size()) >= limit) break;
      all.push_back(d);
    }
    r.set_page_token(page->next_page_token());
  } while (!r.page_token().empty() && (limit == 0 || static_cast<int64_t>(all.size()) < limit));
  if (Ndjson()) {
    for (const auto& d : all) std::printf("%s\n", DeadLetterJson(d).c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& d : all) {
    std::string cls = v1::ErrorClass_Name(d.error_class());
    rows.push_back({absl::StrCat(d.id()), FormatRfc3339(d.received_time()),
                    absl::StrCat(d.provenance().topic(), "/", d.provenance().partition(), "@",
                                 d.provenance().offset()),
                    absl::AsciiStrToLower(absl::StripPrefix(cls, "ERROR_CLASS_")), d.reason()});
  }
  std::fputs(Table({"ID", "RECEIVED", "MESSAGE", "CLASS", "REASON"}, rows, 80).c_str(), stdout);
  return 0;
}

int Publish(const std::vector<char*>& args) {
  const std::string topic = absl::GetFlag(FLAGS_topic);
  const std::string brokers = absl::GetFlag(FLAGS_kafka_brokers);
  if (topic.empty() || brokers.empty()) {
    return Usage("publish needs --topic and --kafka_brokers (AUDIT_KAFKA_BROKERS)");
  }
  WireEncoding encoding;
  const std::string e = absl::GetFlag(FLAGS_encoding);
  if (e == "protobuf") {
    encoding = WireEncoding::kProtobuf;
  } else if (e == "json") {
    encoding = WireEncoding::kStructuredJson;
  } else if (e == "binary") {
    encoding = WireEncoding::kBinaryMode;
  } else {
    return Usage("--encoding must be protobuf, json or binary");
  }
  absl::StatusOr<std::unique_ptr<Publisher>> publisher =
      Publisher::Create({.brokers = brokers, .client_id = "auditctl", .encoding = encoding});
  if (!publisher.ok()) return Fail(publisher.status());
  std::ifstream file;
  const bool from_stdin = args.size() < 3 || std::string(args[2]) == "-";
  if (!from_stdin) {
    file.open(args[2]);
    if (!file) return Usage(absl::StrCat("cannot read ", args[2]));
  }
  std::istream& in = from_stdin ? std::cin : file;
  std::string line;
  int64_t number = 0, sent = 0, rejected = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    absl::StatusOr<v1::Event> event = ParseStructuredJson(line);
    absl::Status s = event.ok() ? (*publisher)->Publish(topic, *event) : event.status();
    if (!s.ok()) {
      ++rejected;
      std::fprintf(stderr, "line %lld: %s\n", static_cast<long long>(number),
                   std::string(s.message()).c_str());
      continue;
    }
    ++sent;
  }
  absl::Status flushed = (*publisher)->Flush(absl::Seconds(30));
  std::fprintf(stderr, "published %lld events to %s (%lld rejected)\n",
               static_cast<long long>(sent), topic.c_str(), static_cast<long long>(rejected));
  if (!flushed.ok()) return Fail(flushed);
  return rejected > 0 ? 1 : 0;
}

int Migrate() {
  const std::string url = absl::GetFlag(FLAGS_pg_url);
  if (url.empty()) return Usage("migrate: --pg_url (or AUDIT_MIGRATE_PG_URL) is required");
  pg::ConnectOptions options;
  options.application_name = "auditctl-migrate";
  options.statement_timeout = absl::ZeroDuration();  // migrations may take long
  absl::StatusOr<pg::ConnPtr> conn = pg::Connect(url, options);
  if (!conn.ok()) return Fail(conn.status());
  absl::StatusOr<schema::MigrationReport> report =
      schema::Migrate(conn->get(), schema::EmbeddedMigrations());
  if (!report.ok()) return Fail(report.status());
  std::printf("schema at version %d (%s)\n", report->version,
              report->applied.empty()
                  ? "already up to date"
                  : absl::StrCat("applied ", absl::StrJoin(report->applied, ", ")).c_str());
  return 0;
}

int Lag() {
  const std::string brokers = absl::GetFlag(FLAGS_kafka_brokers);
  if (brokers.empty()) return Usage("lag: --kafka_brokers (or AUDIT_KAFKA_BROKERS) is required");
  std::vector<std::string> topics =
      absl::StrSplit(absl::GetFlag(FLAGS_topics), ',', absl::SkipWhitespace());
  absl::StatusOr<std::vector<PartitionLag>> lags =
      GroupLag(brokers, absl::GetFlag(FLAGS_group), topics);
  if (!lags.ok()) return Fail(lags.status());
  int64_t total = 0;
  std::vector<std::vector<std::string>> rows;
  for (const PartitionLag& p : *lags) {
    total += p.lag();
    if (Ndjson()) {
      std::printf(R"({"topic":"%s","partition":%d,"committed":%lld,"end":%lld,"lag":%lld})"
                  "\n",
                  p.topic.c_str(), p.partition, static_cast<long long>(p.committed),
                  static_cast<long long>(p.high), static_cast<long long>(p.lag()));
    } else {
      rows.push_back({p.topic, absl::StrCat(p.partition),
                      p.committed < 0 ? "-" : absl::StrCat(p.committed), absl::StrCat(p.high),
                      absl::StrCat(p.lag())});
    }
  }
  if (!Ndjson()) {
    std::fputs(Table({"TOPIC", "PARTITION", "COMMITTED", "END", "LAG"}, rows).c_str(), stdout);
    std::printf("total lag: %lld\n", static_cast<long long>(total));
  }
  return 0;
}

int Main(int argc, char** argv) {
  std::unique_ptr<ShutdownSignals> signals = ShutdownSignals::Install();
  std::vector<char*> args = InitProgram(argc, argv, "auditctl", kUsage,
                                        {{"server", "AUDIT_GRPC_ADDR"},
                                         {"pg_url", "AUDIT_MIGRATE_PG_URL"},
                                         {"kafka_brokers", "AUDIT_KAFKA_BROKERS"}});
  SetMinLogLevel(LogLevel::kWarning);
  if (args.size() < 2) return Usage(kUsage);
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output != "table" && output != "ndjson") return Usage("--output must be table or ndjson");
  const std::string command = args[1];
  if (command == "get") return Get(args);
  if (command == "list") return List();
  if (command == "history") return History(args);
  if (command == "replay") return Replay(/*tail=*/false, *signals);
  if (command == "tail") return Replay(/*tail=*/true, *signals);
  if (command == "stats") return Stats();
  if (command == "dead-letters") return DeadLetters();
  if (command == "publish") return Publish(args);
  if (command == "migrate") return Migrate();
  if (command == "lag") return Lag();
  if (command == "version") {
    std::printf("%zu\n", schema::EmbeddedMigrations().size());
    return 0;
  }
  return Usage(absl::StrCat("unknown command ", command, "\n", kUsage));
}

}  // namespace
}  // namespace audit::cli

int main(int argc, char** argv) { return audit::cli::Main(argc, argv); }
