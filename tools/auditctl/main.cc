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
//   auditctl keygen --key_out=PATH                       an Ed25519 signing key (+ PATH.pub)
//   auditctl checkpoints                                 the signed checkpoint log
//   auditctl prove POSITION --public_key=K               an event, proven against a checkpoint
//   auditctl export [FILE|-]                             the whole log as a bundle
//   auditctl verify --public_key=K [--bundle=FILE | --on_server] [--anchor_file=F]
//   auditctl version
//
// Filters: --subject --type=a,b --source=a,b --occurred_from --occurred_to --recorded_from
// --recorded_to (RFC 3339) --correlation_id --actor --tenant --data_contains=JSON.
// Output: --output=table (people; the default for get/list/history/stats/dead-letters) or
// --output=ndjson (machines; always for replay and tail). Progress of long replays goes to
// stderr. Exit status: 0 success, 1 failure (for verify: anything not proven intact, naming the
// first bad position), 2 usage error.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
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
#include "audit/signing.h"
#include "audit/verify.h"
#include "google/protobuf/util/json_util.h"
#include "schema/migrations.h"
#include "schema/migrator.h"
#include "services/common/config.h"
#include "services/common/kafka_lag.h"
#include "services/common/log.h"
#include "services/common/pg.h"
#include "services/common/shutdown.h"
#include "tools/auditctl/output.h"
#include "tools/auditctl/verification.h"

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
ABSL_FLAG(std::vector<std::string>, public_key, {},
          "prove, verify: the checkpoint signing public key(s) to trust (PEM files, "
          "comma-separated).");
ABSL_FLAG(std::string, bundle, "", "verify: an exported bundle file (- for stdin).");
ABSL_FLAG(bool, on_server, false,
          "verify: ask the server to recompute (ProofService.VerifyRange) instead of "
          "recomputing here.");
ABSL_FLAG(std::string, anchor_file, "",
          "verify, prove: a checkpoint trusted from an earlier run (JSON); the log must extend "
          "it; rewritten with the newest verified checkpoint on success.");
ABSL_FLAG(std::string, key_out, "", "keygen: where to write the private key (PATH.pub too).");
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
    "  keygen --key_out=PATH                  an Ed25519 checkpoint signing key (+ PATH.pub)\n"
    "  checkpoints                            the signed checkpoint log\n"
    "  prove POSITION --public_key=K          one event, proven against the newest checkpoint\n"
    "  export [FILE|-]                        the whole log (events + checkpoints) as a bundle\n"
    "  verify --public_key=K [--bundle=FILE|--on_server]   prove the log intact (exit 1 if not)\n"
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

absl::StatusOr<std::vector<std::string>> PinnedKeys() {
  std::vector<std::string> keys;
  for (const std::string& path : absl::GetFlag(FLAGS_public_key)) {
    absl::StatusOr<std::string> k = PublicKeyFromPemFile(path);
    if (!k.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--public_key ", path, ": ", k.status().message()));
    }
    keys.push_back(*std::move(k));
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(
        "--public_key (AUDIT_PUBLIC_KEY_FILE) is required: proofs mean nothing without a key "
        "you trust");
  }
  return keys;
}

absl::StatusOr<std::optional<v1::Checkpoint>> ReadAnchor() {
  const std::string path = absl::GetFlag(FLAGS_anchor_file);
  if (path.empty()) return std::optional<v1::Checkpoint>();
  std::ifstream in(path);
  if (!in) return std::optional<v1::Checkpoint>();  // the first run creates it
  std::stringstream text;
  text << in.rdbuf();
  v1::Checkpoint c;
  if (!google::protobuf::util::JsonStringToMessage(text.str(), &c).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--anchor_file ", path, ": not a checkpoint"));
  }
  return std::optional<v1::Checkpoint>(c);
}

absl::Status WriteAnchor(const v1::Checkpoint& c) {
  const std::string path = absl::GetFlag(FLAGS_anchor_file);
  if (path.empty()) return absl::OkStatus();
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(c, &json, options);
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << json << "\n";
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

int Keygen() {
  const std::string path = absl::GetFlag(FLAGS_key_out);
  if (path.empty()) return Usage("keygen --key_out=PATH");
  if (access(path.c_str(), F_OK) == 0 || access((path + ".pub").c_str(), F_OK) == 0) {
    return Usage(absl::StrCat(path, " or ", path, ".pub exists; refusing to overwrite a key"));
  }
  const SigningKey key = SigningKey::Generate();
  const std::string private_pem = key.PrivatePem();
  std::FILE* f = std::fopen(path.c_str(), "wx");
  if (f == nullptr || fchmod(fileno(f), 0600) != 0 ||
      std::fwrite(private_pem.data(), 1, private_pem.size(), f) != private_pem.size() ||
      std::fclose(f) != 0) {
    return Fail(absl::UnavailableError(absl::StrCat("cannot write ", path)));
  }
  std::ofstream(path + ".pub") << key.PublicPem();
  std::printf(
      "key id %s\nprivate key: %s (mode 0600; give it to the ingestor only)\n"
      "public key:  %s.pub (give it to verifiers)\n",
      key.key_id().c_str(), path.c_str(), path.c_str());
  return 0;
}

std::string CheckpointJson(const v1::Checkpoint& c) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(c, &json, options);
  return json;
}

int Checkpoints() {
  absl::StatusOr<std::vector<v1::Checkpoint>> all = Client().ListAllCheckpoints();
  if (!all.ok()) return Fail(all.status());
  if (Ndjson()) {
    for (const auto& c : *all) std::printf("%s\n", CheckpointJson(c).c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : *all) {
    rows.push_back({absl::StrCat(c.seq()),
                    absl::AsciiStrToLower(
                        absl::StripPrefix(v1::CheckpointKind_Name(c.kind()), "CHECKPOINT_KIND_")),
                    absl::StrCat(c.tree_size()), FormatRfc3339(c.created_time()), c.key_id(),
                    absl::BytesToHexString(c.root_hash()), c.note()});
  }
  std::fputs(
      Table({"SEQ", "KIND", "TREE SIZE", "CREATED", "KEY", "ROOT", "NOTE"}, rows, 64).c_str(),
      stdout);
  return 0;
}

int Prove(const std::vector<char*>& args) {
  int64_t position = 0;
  if (args.size() < 3 || !absl::SimpleAtoi(args[2], &position)) {
    return Usage("prove POSITION --public_key=K");
  }
  absl::StatusOr<std::vector<std::string>> keys = PinnedKeys();
  if (!keys.ok()) return Usage(keys.status().message());
  absl::StatusOr<std::optional<v1::Checkpoint>> trusted = ReadAnchor();
  if (!trusted.ok()) return Fail(trusted.status());
  LogAnchor anchor(*keys, *trusted);
  absl::StatusOr<v1::GetInclusionProofResponse> proof = Client().ProveEvent(position, &anchor);
  if (!proof.ok()) return Fail(proof.status());
  const v1::StoredEvent* e = &proof->event();
  if (absl::Status s = WriteAnchor(*anchor.checkpoint()); !s.ok()) return Fail(s);
  const v1::Checkpoint& c = *anchor.checkpoint();
  if (Ndjson()) {
    // Everything needed to check the proof by hand (docs/VERIFICATION.md), hashes in hex.
    std::string hashes;
    for (const std::string& h : proof->hashes()) {
      absl::StrAppend(&hashes, hashes.empty() ? "" : ",", "\"", absl::BytesToHexString(h), "\"");
    }
    std::printf(
        "{\"checkpoint\":%s,\"event\":%s,\"leaf_index\":%lld,\"tree_size\":%lld,"
        "\"leaf_hash\":\"%s\",\"proof\":[%s],\"root_hash\":\"%s\"}\n",
        CheckpointJson(c).c_str(), EventJson(*e).c_str(),
        static_cast<long long>(proof->leaf_index()), static_cast<long long>(proof->tree_size()),
        absl::BytesToHexString(e->leaf_hash()).c_str(), hashes.c_str(),
        absl::BytesToHexString(c.root_hash()).c_str());
  } else {
    std::printf(
        "%s\nproven: leaf %lld of the tree of checkpoint seq %lld (tree size %lld, "
        "signed %s by key %s)\n",
        EventDetails(*e).c_str(), static_cast<long long>(position - 1),
        static_cast<long long>(c.seq()), static_cast<long long>(c.tree_size()),
        FormatRfc3339(c.created_time()).c_str(), c.key_id().c_str());
  }
  return 0;
}

int Export(const std::vector<char*>& args, const ShutdownSignals& signals) {
  const bool to_stdout = args.size() < 3 || std::string(args[2]) == "-";
  std::FILE* out = to_stdout ? stdout : std::fopen(args[2], "w");
  if (out == nullptr) return Usage(absl::StrCat("cannot write ", args[2]));
  AuditClient client = Client();
  BundleWriter writer(out);
  if (absl::Status s = writer.Header(absl::GetFlag(FLAGS_server)); !s.ok()) return Fail(s);
  absl::StatusOr<std::vector<v1::Checkpoint>> checkpoints = client.ListAllCheckpoints();
  if (!checkpoints.ok()) return Fail(checkpoints.status());
  for (const auto& c : *checkpoints) {
    if (absl::Status s = writer.Checkpoint(c); !s.ok()) return Fail(s);
  }
  // Events up to the head at the time of the newest checkpoint read or later: all of them.
  ReplayStream replay = client.Replay(v1::ReplayEventsRequest(), ReplayOptions());
  std::thread([&signals, &replay] {
    signals.requested().WaitForNotification();
    replay.Cancel();
  }).detach();
  int64_t count = 0;
  while (true) {
    absl::StatusOr<std::optional<v1::StoredEvent>> e = replay.Next();
    if (!e.ok()) return Fail(e.status());
    if (!e->has_value()) break;
    if (absl::Status s = writer.Event(**e); !s.ok()) return Fail(s);
    ++count;
  }
  if (std::fflush(out) != 0 || (!to_stdout && std::fclose(out) != 0)) {
    return Fail(absl::UnavailableError("cannot write the bundle"));
  }
  std::fprintf(stderr, "exported %lld events and %zu checkpoint-log entries\n",
               static_cast<long long>(count), checkpoints->size());
  return 0;
}

int Verify(const ShutdownSignals& signals) {
  absl::StatusOr<std::vector<std::string>> keys = PinnedKeys();
  if (!keys.ok()) return Usage(keys.status().message());
  if (absl::GetFlag(FLAGS_on_server)) {
    absl::StatusOr<v1::VerifyRangeResponse> r = Client().VerifyRangeOnServer();
    if (!r.ok()) return Fail(r.status());
    std::printf("the server checked %lld events and %lld checkpoint-log entries%s\n",
                static_cast<long long>(r->events_checked()),
                static_cast<long long>(r->checkpoints_checked()),
                r->keys_pinned() ? "" : " (its keys are NOT pinned: trusted on first use)");
    if (r->ok()) {
      std::printf(
          "positions 1..%lld are proven by checkpoints\nOK (as the server says: "
          "verify locally to trust no one)\n",
          static_cast<long long>(r->verified_through()));
      return 0;
    }
    std::printf("FAILED at position %lld: %s\n", static_cast<long long>(r->first_bad_position()),
                r->problem().c_str());
    return 1;
  }
  absl::StatusOr<std::optional<v1::Checkpoint>> anchor = ReadAnchor();
  if (!anchor.ok()) return Fail(anchor.status());
  Verification v;
  std::vector<v1::Checkpoint> seen;
  if (const std::string bundle = absl::GetFlag(FLAGS_bundle); !bundle.empty()) {
    std::ifstream file;
    if (bundle != "-") {
      file.open(bundle);
      if (!file) return Usage(absl::StrCat("cannot read ", bundle));
    }
    absl::StatusOr<Verification> result =
        VerifyBundle(bundle == "-" ? std::cin : file, *keys, *anchor);
    if (!result.ok()) return Fail(result.status());
    v = *std::move(result);
  } else {
    // Against the server: everything is fetched and recomputed here.
    AuditClient client = Client();
    absl::StatusOr<std::vector<v1::Checkpoint>> checkpoints = client.ListAllCheckpoints();
    if (!checkpoints.ok()) return Fail(checkpoints.status());
    VerificationRun run(*keys, *anchor);
    for (const auto& c : *checkpoints) run.AddCheckpoint(c);
    ReplayStream replay = client.Replay(v1::ReplayEventsRequest(), ReplayOptions());
    std::thread([&signals, &replay] {
      signals.requested().WaitForNotification();
      replay.Cancel();
    }).detach();
    while (!run.failed()) {
      absl::StatusOr<std::optional<v1::StoredEvent>> e = replay.Next();
      if (!e.ok()) return Fail(e.status());
      if (!e->has_value()) break;
      run.AddEvent(**e);
    }
    replay.Cancel();
    v = run.Finish();
  }
  std::fputs(Describe(v).c_str(), stdout);
  if (!v.report.ok) return 1;
  if (v.last_checkpoint.has_value()) {
    if (absl::Status s = WriteAnchor(*v.last_checkpoint); !s.ok()) return Fail(s);
  }
  return 0;
}

int Main(int argc, char** argv) {
  std::unique_ptr<ShutdownSignals> signals = ShutdownSignals::Install();
  std::vector<char*> args = InitProgram(argc, argv, "auditctl", kUsage,
                                        {{"server", "AUDIT_GRPC_ADDR"},
                                         {"pg_url", "AUDIT_MIGRATE_PG_URL"},
                                         {"kafka_brokers", "AUDIT_KAFKA_BROKERS"},
                                         {"public_key", "AUDIT_PUBLIC_KEY_FILE"}});
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
  if (command == "keygen") return Keygen();
  if (command == "checkpoints") return Checkpoints();
  if (command == "prove") return Prove(args);
  if (command == "export") return Export(args, *signals);
  if (command == "verify") return Verify(*signals);
  if (command == "version") {
    std::printf("%zu\n", schema::EmbeddedMigrations().size());
    return 0;
  }
  return Usage(absl::StrCat("unknown command ", command, "\n", kUsage));
}

}  // namespace
}  // namespace audit::cli

int main(int argc, char** argv) { return audit::cli::Main(argc, argv); }
