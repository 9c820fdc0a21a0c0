#include "services/ingestor/ingestor_main.h"

#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "services/common/config.h"
#include "services/common/log.h"
#include "services/common/pg.h"
#include "services/common/shutdown.h"
#include "services/ingestor/checkpointer.h"
#include "services/ingestor/ingestor.h"
#include "services/ingestor/kafka_source.h"
#include "services/ingestor/leaf_feed.h"
#include "services/ingestor/pg_event_store.h"

ABSL_FLAG(std::string, kafka_brokers, "", "Kafka bootstrap servers, host:port[,host:port...].");
ABSL_FLAG(std::string, group_id, "audit-ingestor", "Kafka consumer group.");
ABSL_FLAG(std::string, topics, "^.*\\.events$",
          "Comma-separated topics to consume; entries starting with '^' are regular "
          "expressions (the default takes every topic ending in .events).");
ABSL_FLAG(std::string, pg_url, "",
          "libpq URI of the store, as a role in audit_writer. Passwords belong in a "
          "PGPASSFILE, not here.");
ABSL_FLAG(int, batch_max_records, 2000, "Most messages per database transaction.");
ABSL_FLAG(int, max_message_bytes, 1 << 20,
          "Messages larger than this (key + headers + value) are dead-lettered as oversized.");
ABSL_FLAG(int, metadata_refresh_ms, 5000,
          "How often to refresh topic metadata, i.e. how soon a new matching topic is consumed.");
ABSL_FLAG(int, session_timeout_ms, 10000,
          "Kafka session.timeout.ms: how soon a dead ingestor's partitions move to another.");
ABSL_FLAG(std::string, assignment_strategy, "cooperative-sticky",
          "Kafka partition.assignment.strategy.");
ABSL_FLAG(std::string, kafka_config, "",
          "Extra librdkafka properties, key=value pairs separated by commas (e.g. "
          "security.protocol=SSL).");
ABSL_FLAG(int, shutdown_grace_ms, 30000,
          "On shutdown, how long a batch may keep retrying an unavailable database.");
ABSL_FLAG(int, stats_interval_ms, 10000, "How often to log progress counters.");
ABSL_FLAG(std::string, checkpoint_key_file, "",
          "Ed25519 private key (PEM, e.g. from `auditctl keygen`) to sign checkpoints with. "
          "Empty: no checkpoints (events are still hash-chained). docs/VERIFICATION.md.");
ABSL_FLAG(std::string, checkpoint_previous_key_file, "",
          "When rotating keys: the key the log was signed with until now, to endorse the "
          "rotation so that verifiers pinning it accept the new key.");
ABSL_FLAG(int, checkpoint_interval_ms, 10000, "How often to sign a checkpoint if the log grew.");
ABSL_FLAG(int, checkpoint_gap_after_ms, 60000,
          "An event that waited longer than this for a checkpoint is recorded as a gap entry.");
ABSL_FLAG(std::string, ready_file, "",
          "Write this file once the database answers with the right schema and the consumer has "
          "subscribed (for supervisors such as tools/dev up).");

namespace audit::ingestor {
namespace {

constexpr char kUsage[] =
    "audit-ingestor: Kafka -> PostgreSQL audit store.\n"
    "  audit-ingestor --kafka_brokers=host:9092 --pg_url=postgresql://ingestor@db/audit";

absl::Status WriteFileAtomically(const std::string& path, absl::string_view content) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return absl::UnavailableError(absl::StrCat("cannot create ", tmp));
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  if (std::fclose(f) != 0 || !written || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> ParseKafkaConfig(const std::string& text) {
  std::map<std::string, std::string> out;
  for (absl::string_view item : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first.empty() || item.find('=') == absl::string_view::npos) {
      return absl::InvalidArgumentError("--kafka_config entries must be key=value");
    }
    out[std::string(absl::StripAsciiWhitespace(kv.first))] = kv.second;
  }
  return out;
}

// Calls a hook before committing offsets (fault injection).
class HookedSource final : public RecordSource {
 public:
  HookedSource(RecordSource& inner, std::function<void()> before_commit)
      : inner_(inner), before_commit_(std::move(before_commit)) {}
  absl::StatusOr<RecordBatch> Poll(size_t max_records, absl::Duration max_wait) override {
    return inner_.Poll(max_records, max_wait);
  }
  absl::Status Commit(const RecordBatch& batch) override {
    before_commit_();
    return inner_.Commit(batch);
  }
  void Pause() override { inner_.Pause(); }
  void Resume() override { inner_.Resume(); }

 private:
  RecordSource& inner_;
  std::function<void()> before_commit_;
};

}  // namespace

int IngestorMain(int argc, char** argv, const IngestorHooks& hooks) {
  std::unique_ptr<ShutdownSignals> signals = ShutdownSignals::Install();
  InitProgram(argc, argv, "ingestor", kUsage,
              {{"kafka_brokers", "AUDIT_KAFKA_BROKERS"},
               {"group_id", "AUDIT_INGESTOR_GROUP_ID"},
               {"topics", "AUDIT_INGESTOR_TOPICS"},
               {"pg_url", "AUDIT_INGESTOR_PG_URL"},
               {"batch_max_records", "AUDIT_INGESTOR_BATCH_MAX_RECORDS"},
               {"max_message_bytes", "AUDIT_INGESTOR_MAX_MESSAGE_BYTES"},
               {"metadata_refresh_ms", "AUDIT_INGESTOR_METADATA_REFRESH_MS"},
               {"assignment_strategy", "AUDIT_INGESTOR_ASSIGNMENT_STRATEGY"},
               {"session_timeout_ms", "AUDIT_INGESTOR_SESSION_TIMEOUT_MS"},
               {"kafka_config", "AUDIT_INGESTOR_KAFKA_CONFIG"},
               {"shutdown_grace_ms", "AUDIT_INGESTOR_SHUTDOWN_GRACE_MS"},
               {"stats_interval_ms", "AUDIT_INGESTOR_STATS_INTERVAL_MS"},
               {"checkpoint_key_file", "AUDIT_CHECKPOINT_KEY_FILE"},
               {"checkpoint_previous_key_file", "AUDIT_CHECKPOINT_PREVIOUS_KEY_FILE"},
               {"checkpoint_interval_ms", "AUDIT_CHECKPOINT_INTERVAL_MS"},
               {"checkpoint_gap_after_ms", "AUDIT_CHECKPOINT_GAP_AFTER_MS"},
               {"ready_file", "AUDIT_INGESTOR_READY_FILE"}});
  const std::string brokers = absl::GetFlag(FLAGS_kafka_brokers);
  const std::string url = absl::GetFlag(FLAGS_pg_url);
  if (brokers.empty() || url.empty()) {
    std::fprintf(stderr,
                 "--kafka_brokers (AUDIT_KAFKA_BROKERS) and --pg_url "
                 "(AUDIT_INGESTOR_PG_URL) are required\n");
    return 2;
  }
  if (absl::GetFlag(FLAGS_batch_max_records) < 1 || absl::GetFlag(FLAGS_max_message_bytes) < 1) {
    std::fprintf(stderr, "--batch_max_records and --max_message_bytes must be positive\n");
    return 2;
  }
  absl::StatusOr<std::map<std::string, std::string>> extra =
      ParseKafkaConfig(absl::GetFlag(FLAGS_kafka_config));
  if (!extra.ok()) {
    std::fprintf(stderr, "%s\n", std::string(extra.status().message()).c_str());
    return 2;
  }

  std::optional<Checkpointer::Options> checkpointer_options;
  if (const std::string key_file = absl::GetFlag(FLAGS_checkpoint_key_file); !key_file.empty()) {
    absl::StatusOr<SigningKey> key = SigningKey::FromPemFile(key_file);
    if (!key.ok()) {
      std::fprintf(stderr, "--checkpoint_key_file: %s\n",
                   std::string(key.status().message()).c_str());
      return 2;
    }
    checkpointer_options.emplace(Checkpointer::Options{.url = url, .key = *std::move(key)});
    checkpointer_options->connect.application_name = "audit-checkpointer";
    if (const std::string previous = absl::GetFlag(FLAGS_checkpoint_previous_key_file);
        !previous.empty()) {
      absl::StatusOr<SigningKey> key = SigningKey::FromPemFile(previous);
      if (!key.ok()) {
        std::fprintf(stderr, "--checkpoint_previous_key_file: %s\n",
                     std::string(key.status().message()).c_str());
        return 2;
      }
      checkpointer_options->previous_key = *std::move(key);
    }
    if (absl::GetFlag(FLAGS_checkpoint_interval_ms) < 1 ||
        absl::GetFlag(FLAGS_checkpoint_gap_after_ms) < 1) {
      std::fprintf(stderr,
                   "--checkpoint_interval_ms and --checkpoint_gap_after_ms must be positive\n");
      return 2;
    }
    checkpointer_options->interval =
        absl::Milliseconds(absl::GetFlag(FLAGS_checkpoint_interval_ms));
    checkpointer_options->gap_after =
        absl::Milliseconds(absl::GetFlag(FLAGS_checkpoint_gap_after_ms));
  } else {
    LogWarning(
        "no --checkpoint_key_file: events are hash-chained but no checkpoints are signed; "
        "the log cannot be proven complete until signing starts (a gap entry will say so)");
  }

  // The leaves the store commits go straight to the checkpointer, which signs them as written
  // instead of reading them back (docs/DECISIONS.md, 2026-11-26).
  LeafFeed leaf_feed;
  PgEventStore::Options store_options;
  store_options.url = url;
  if (checkpointer_options.has_value()) {
    store_options.leaf_feed = &leaf_feed;
    checkpointer_options->leaf_feed = &leaf_feed;
  }
  store_options.stage_hook = hooks.store_stage;
  store_options.connect.application_name = "audit-ingestor";
  PgEventStore store(store_options);
  // Wait for the database at start-up (it may still be starting); a schema that is not
  // migrated is a deployment error, not something to wait out.
  absl::Duration backoff = absl::Milliseconds(200);
  while (true) {
    absl::Status s = store.Ping();
    if (s.ok()) break;
    if (s.code() == absl::StatusCode::kFailedPrecondition) {
      LogError("database not ready for the ingestor").With(s);
      return 1;
    }
    LogWarning("waiting for the database").With(s).With("url", pg::RedactUrl(url));
    if (signals->requested().WaitForNotificationWithTimeout(backoff)) return 0;
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }

  KafkaSource::Options source_options;
  source_options.brokers = brokers;
  source_options.group_id = absl::GetFlag(FLAGS_group_id);
  source_options.topics.clear();
  for (absl::string_view t :
       absl::StrSplit(absl::GetFlag(FLAGS_topics), ',', absl::SkipWhitespace())) {
    source_options.topics.emplace_back(absl::StripAsciiWhitespace(t));
  }
  source_options.metadata_refresh = absl::Milliseconds(absl::GetFlag(FLAGS_metadata_refresh_ms));
  source_options.assignment_strategy = absl::GetFlag(FLAGS_assignment_strategy);
  source_options.session_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_session_timeout_ms));
  source_options.extra_config = *extra;
  absl::StatusOr<std::unique_ptr<KafkaSource>> source = KafkaSource::Create(source_options);
  if (!source.ok()) {
    LogError("cannot start the Kafka consumer").With(source.status());
    return 2;
  }

  if (const std::string path = absl::GetFlag(FLAGS_ready_file); !path.empty()) {
    if (absl::Status s = WriteFileAtomically(path, "ready\n"); !s.ok()) {
      LogError("cannot write the ready file").With(s);
      return 1;
    }
  }

  IngestorOptions options;
  options.batch_max_records = static_cast<size_t>(absl::GetFlag(FLAGS_batch_max_records));
  options.decoder.max_message_bytes = static_cast<size_t>(absl::GetFlag(FLAGS_max_message_bytes));
  options.shutdown_grace = absl::Milliseconds(absl::GetFlag(FLAGS_shutdown_grace_ms));
  options.stats_interval = absl::Milliseconds(absl::GetFlag(FLAGS_stats_interval_ms));
  LogInfo("ingestor starting")
      .With("brokers", brokers)
      .With("group_id", source_options.group_id)
      .With("topics", absl::GetFlag(FLAGS_topics))
      .With("database", pg::RedactUrl(url));
  // The checkpointer stops after the ingestor, so that its last round signs the last batch.
  absl::Notification checkpointer_stop;
  std::thread checkpointing;
  if (checkpointer_options.has_value()) {
    checkpointing = std::thread([&checkpointer_stop, &checkpointer_options] {
      Checkpointer(*std::move(checkpointer_options)).Run(checkpointer_stop);
    });
  }
  std::unique_ptr<RecordSource> hooked;
  if (hooks.before_offset_commit) {
    hooked = std::make_unique<HookedSource>(**source, hooks.before_offset_commit);
  }
  Ingestor ingestor(hooked != nullptr ? *hooked : **source, store, options);
  absl::Status run = ingestor.Run(signals->requested());
  signals->Request();  // the ingestor may have stopped on its own
  checkpointer_stop.Notify();
  if (checkpointing.joinable()) checkpointing.join();
  absl::Status closed = (*source)->Close();
  if (!closed.ok()) LogWarning("leaving the consumer group failed").With(closed);
  if (!run.ok()) {
    LogError("ingestor failed").With(run);
    return 1;
  }
  return 0;
}

}  // namespace audit::ingestor
