#include "services/ingestor/pg_event_store.h"

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "audit/json.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "audit/rfc3339.h"
#include "audit/utf8.h"
#include "schema/migrations.h"
#include "schema/migrator.h"
#include "services/common/copy_binary.h"
#include "services/common/log.h"
#include "services/common/merkle_store.h"

namespace audit::ingestor {
namespace {

constexpr char kBegin[] =
    "BEGIN; SELECT head_position, recorded_at_micros, head_chain_hash FROM audit.begin_append()";

constexpr char kLookupEvents[] = R"sql(
SELECT e.source, e.event_id, e.content_hash, e.position
FROM unnest($1::text[], $2::text[]) AS k(source, event_id)
JOIN audit.events e ON e.source = k.source AND e.event_id = k.event_id)sql";

constexpr char kLookupDeadLetters[] = R"sql(
SELECT d.kafka_topic, d.kafka_partition, d.kafka_offset
FROM unnest($1::text[], $2::int[], $3::bigint[]) AS k(topic, part, off)
JOIN audit.dead_letters d
  ON d.kafka_topic = k.topic AND d.kafka_partition = k.part AND d.kafka_offset = k.off)sql";

}  // namespace

const char kCopyEventsSql[] =
    "COPY audit.events (position, event_id, source, type, spec_version, subject, occurred_at,"
    " recorded_at, data_content_type, data_schema, data, data_bytes, correlation_id,"
    " causation_id, actor, tenant, traceparent, sequence, extensions, kafka_topic,"
    " kafka_partition, kafka_offset, content_hash, leaf_hash, chain_hash) FROM STDIN"
    " (FORMAT binary)";
namespace {

constexpr int16_t kEventColumns = 25;

constexpr char kCopyMerkleNodes[] =
    "COPY audit.merkle_nodes (level, node_index, hash) FROM STDIN (FORMAT binary)";

constexpr char kCopyDeadLetters[] =
    "COPY audit.dead_letters (kafka_topic, kafka_partition, kafka_offset, kafka_timestamp,"
    " raw_key, raw_header_keys, raw_header_values, raw_value, error_class, reason,"
    " event_source, event_id, conflicting_position, received_at) FROM STDIN (FORMAT binary)";
constexpr int16_t kDeadLetterColumns = 14;

constexpr size_t kMaxReasonBytes = 4096;

// Rows hashed and encoded per piece of the streamed COPY.
constexpr size_t kStreamRows = 256;

using EventKey = std::pair<absl::string_view, absl::string_view>;  // (source, id)
using Provenance = std::tuple<std::string, int32_t, int64_t>;

struct Known {
  Sha256Digest hash;
  int64_t position;
};

// Text that is safe in a text column: valid UTF-8, no NUL, bounded.
std::string SafeText(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes && IsValidUtf8(s) && s.find('\0') == absl::string_view::npos) {
    return std::string(s);
  }
  const std::string quoted = QuoteForMessage(s, max_bytes);
  return quoted;
}

std::string ExtensionsJson(const v1::Event& e) {
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : e.extensions()) {
    if (!first) out.append(", ");
    first = false;
    AppendJsonString(k, &out);
    out.append(": ");
    AppendJsonString(v, &out);
  }
  out.push_back('}');
  return out;
}

}  // namespace

void AppendEventCopyRow(const EventEntry& entry, int64_t position, int64_t recorded_micros,
                        const Sha256Digest& leaf, const Sha256Digest& chain,
                        pg::BinaryCopyWriter* w) {
  const v1::Event& e = *entry.event;
  w->StartRow(kEventColumns);
  w->Int64(position);
  w->Text(e.id());
  w->Text(e.source());
  w->Text(e.type());
  w->Text(e.spec_version());
  w->Text(e.subject());
  w->TimestampMicros(ToUnixMicros(e.time()));
  w->TimestampMicros(recorded_micros);
  w->TextOrNull(e.data_content_type());
  w->TextOrNull(e.data_schema());
  if (e.data_case() == v1::Event::kTextData) {
    w->Jsonb(e.text_data());
    w->Null();
  } else if (e.data_case() == v1::Event::kBinaryData) {
    w->Null();
    w->Bytea(e.binary_data());
  } else {
    w->Null();
    w->Null();
  }
  w->TextOrNull(e.correlation_id());
  w->TextOrNull(e.causation_id());
  w->TextOrNull(e.actor());
  w->TextOrNull(e.tenant());
  w->TextOrNull(e.traceparent());
  if (e.has_sequence()) {
    w->Int64(static_cast<int64_t>(e.sequence()));
  } else {
    w->Null();
  }
  if (e.extensions().empty()) {
    w->Null();
  } else {
    w->Jsonb(ExtensionsJson(e));
  }
  w->Text(entry.record->topic);
  w->Int32(entry.record->partition);
  w->Int64(entry.record->offset);
  w->Bytea(DigestBytes(entry.content_hash));
  w->Bytea(DigestBytes(leaf));
  w->Bytea(DigestBytes(chain));
}

namespace {

void WriteDeadLetter(const DeadLetterEntry& dl, std::optional<int64_t> conflicting_position,
                     int64_t received_micros, pg::BinaryCopyWriter* w) {
  const KafkaRecord& r = *dl.record;
  w->StartRow(kDeadLetterColumns);
  w->Text(r.topic);
  w->Int32(r.partition);
  w->Int64(r.offset);
  // A producer can stamp any CreateTime; keep it only when PostgreSQL can represent it.
  if (r.timestamp_ms.has_value() && *r.timestamp_ms / 1000 >= kMinTimestampSeconds &&
      *r.timestamp_ms / 1000 <= kMaxTimestampSeconds) {
    w->TimestampMicros(*r.timestamp_ms * 1000);
  } else {
    w->Null();
  }
  if (r.key.has_value()) {
    w->Bytea(*r.key);
  } else {
    w->Null();
  }
  std::vector<std::optional<absl::string_view>> keys, values;
  keys.reserve(r.headers.size());
  values.reserve(r.headers.size());
  for (const HeaderView& h : r.headers) {
    keys.emplace_back(h.key);
    values.push_back(h.value);
  }
  w->ByteaArray(keys);
  w->ByteaArray(values);
  if (r.value.has_value()) {
    w->Bytea(*r.value);
  } else {
    w->Null();
  }
  w->Text(ErrorClassName(dl.error_class));
  w->Text(SafeText(dl.reason, kMaxReasonBytes));
  const std::string source = SafeText(dl.event_source, kMaxAttributeBytes);
  const std::string id = SafeText(dl.event_id, kMaxAttributeBytes);
  w->TextOrNull(source);
  w->TextOrNull(id);
  if (conflicting_position.has_value()) {
    w->Int64(*conflicting_position);
  } else {
    w->Null();
  }
  w->TimestampMicros(received_micros);
}

// The sink contract: INVALID_ARGUMENT only for content the database refused.
absl::Status ClassifyForCaller(absl::Status s) {
  const std::string state = pg::SqlStateOf(s);
  if (state.size() == 5 && (state.compare(0, 2, "22") == 0 || state.compare(0, 2, "54") == 0)) {
    return absl::InvalidArgumentError(s.message());
  }
  if (s.code() == absl::StatusCode::kInvalidArgument) {
    return absl::InternalError(s.message());
  }
  return s;
}

// The whole optimistic append in one query (one round trip plus the server's work): the lock
// and head, the events, the Merkle subtrees they complete, the commit.
const std::string& AppendScript() {
  static const std::string* script = new std::string(
      absl::StrCat(kBegin, "; ", kCopyEventsSql, "; ", kCopyMerkleNodes, "; COMMIT"));
  return *script;
}

// The head begin_append() returned.
struct Head {
  int64_t position;
  int64_t now_micros;
  Sha256Digest chain;
};

absl::StatusOr<Head> ParseHead(const PGresult* r) {
  if (PQntuples(r) != 1 || PQnfields(r) != 3) {
    return absl::InternalError("audit.begin_append() returned an unexpected result");
  }
  Head h;
  h.position = pg::Int64Value(r, 0, 0);
  h.now_micros = pg::Int64Value(r, 0, 1);
  absl::StatusOr<std::string> bytes = pg::DecodeByteaHex(pg::Value(r, 0, 2));
  if (!bytes.ok() || !DigestFromBytes(*bytes, &h.chain)) {
    return absl::InternalError("audit.begin_append() returned a malformed head_chain_hash");
  }
  return h;
}

std::string MerkleNodeRows(const std::vector<merkle::Frontier::Node>& completed) {
  pg::BinaryCopyWriter nodes;
  for (const merkle::Frontier::Node& n : completed) {
    nodes.StartRow(3);
    nodes.Int16(static_cast<int16_t>(n.level));
    nodes.Int64(static_cast<int64_t>(n.index));
    nodes.Bytea(DigestBytes(n.hash));
  }
  return nodes.Finish();
}

// The batch in order, against `known` (stored events a lookup found, if any; it grows with the
// batch's own): the new events (positions head+1.. in that order), identical repetitions, and
// conflicts (same (source, id), other content), with the position each conflicts with.
struct Classified {
  std::vector<const EventEntry*> fresh;
  std::vector<DeadLetterEntry> conflicts;
  std::vector<int64_t> conflicting_positions;
  int64_t duplicates = 0;
};

Classified Classify(const AppendBatch& batch, int64_t head,
                    absl::flat_hash_map<EventKey, Known>* known) {
  Classified c;
  c.fresh.reserve(batch.events.size());
  int64_t next = head + 1;
  for (const EventEntry& entry : batch.events) {
    const EventKey key{entry.event->source(), entry.event->id()};
    auto [it, inserted] = known->try_emplace(key, Known{entry.content_hash, next});
    if (inserted) {
      c.fresh.push_back(&entry);
      ++next;
      continue;
    }
    if (it->second.hash == entry.content_hash) {
      ++c.duplicates;
      continue;
    }
    c.conflicts.push_back(DeadLetterEntry{
        entry.record, ErrorClass::kConflict,
        absl::StrCat("(source, id) = (", QuoteForMessage(entry.event->source()), ", ",
                     QuoteForMessage(entry.event->id()), ") is already stored at position ",
                     it->second.position, " with content hash ", HexDigest(it->second.hash),
                     "; this message's content hash is ", HexDigest(entry.content_hash)),
        entry.event->source(), entry.event->id()});
    c.conflicting_positions.push_back(it->second.position);
  }
  return c;
}

}  // namespace

// Adds each phase's time to the store's counters: Mark(p) charges the time since the last
// mark to p.
class PgEventStore::PhaseClock {
 public:
  explicit PhaseClock(PgEventStore* store)
      : store_(store), start_(std::chrono::steady_clock::now()) {}
  void Mark(Phase p) {
    const auto now = std::chrono::steady_clock::now();
    store_->phase_nanos_[static_cast<int>(p)] +=
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - start_).count();
    start_ = now;
  }

 private:
  PgEventStore* store_;
  std::chrono::steady_clock::time_point start_;
};

void PgEventStore::StreamEvents(const std::vector<const EventEntry*>& fresh, int64_t head,
                                int64_t now_micros, Sha256Digest* chain, merkle::Frontier* frontier,
                                std::vector<merkle::Frontier::Node>* completed,
                                std::vector<Sha256Digest>* leaves, pg::CopyStream* copy,
                                PhaseClock* clock) {
  // While the server stores one chunk, the next one is hashed (tamper evidence: leaf and chain
  // hashes, and the Merkle subtrees the new leaves complete) and encoded.
  pg::BinaryCopyWriter events;
  if (leaves != nullptr) leaves->reserve(fresh.size());
  if (fresh.empty()) copy->Put(events.Finish());
  for (size_t begin = 0; begin < fresh.size(); begin += kStreamRows) {
    const size_t end = std::min(fresh.size(), begin + kStreamRows);
    std::pair<Sha256Digest, Sha256Digest> hashes[kStreamRows];
    for (size_t i = begin; i < end; ++i) {
      const EventEntry& entry = *fresh[i];
      const Sha256Digest leaf =
          RecordLeafHash(head + 1 + static_cast<int64_t>(i), now_micros, entry.record->topic,
                         entry.record->partition, entry.record->offset, entry.content_hash);
      *chain = ChainHash(*chain, leaf);
      frontier->Append(leaf, kStoredMerkleLevel, completed);
      if (leaves != nullptr) leaves->push_back(leaf);
      hashes[i - begin] = {leaf, *chain};
    }
    clock->Mark(Phase::kHashing);
    for (size_t i = begin; i < end; ++i) {
      AppendEventCopyRow(*fresh[i], head + 1 + static_cast<int64_t>(i), now_micros,
                         hashes[i - begin].first, hashes[i - begin].second, &events);
    }
    if (end == fresh.size()) events.Finish();
    clock->Mark(Phase::kEncode);
    copy->Put(events.Drain());
    clock->Mark(Phase::kCopy);
  }
}

void PgEventStore::Committed(merkle::Frontier frontier, int64_t head, int64_t now_micros,
                             std::vector<Sha256Digest> leaves) {
  frontier_ = std::move(frontier);
  if (options_.leaf_feed != nullptr) {
    options_.leaf_feed->Publish(
        {.first = head + 1, .recorded_micros = now_micros, .leaves = std::move(leaves)});
  }
}

PgEventStore::PgEventStore(Options options) : options_(std::move(options)) {}

absl::Status PgEventStore::EnsureConnected() {
  if (conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK &&
      PQtransactionStatus(conn_.get()) == PQTRANS_IDLE) {
    return absl::OkStatus();
  }
  conn_.reset();
  absl::StatusOr<pg::ConnPtr> c = pg::Connect(options_.url, options_.connect);
  if (!c.ok()) return c.status();
  conn_ = *std::move(c);
  return absl::OkStatus();
}

absl::Status PgEventStore::Ping() {
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  absl::Status s =
      schema::CheckVersion(conn_.get(), static_cast<int>(schema::EmbeddedMigrations().size()));
  if (!s.ok() && s.code() != absl::StatusCode::kFailedPrecondition) conn_.reset();
  return s;
}

absl::StatusOr<AppendResult> PgEventStore::Append(const AppendBatch& batch) {
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  // Optimistic first: most batches hold no event the store already has, and the unique index
  // on (source, id) refuses one that does (SQLSTATE 23505). Then the batch is redone with the
  // lookup, and the next batches too (redeliveries come in runs, e.g. after a restart).
  const bool optimistic = lookups_ahead_ == 0;
  if (!optimistic) --lookups_ahead_;
  absl::StatusOr<AppendResult> result;
  bool done = false;
  if (optimistic && batch.dead_letters.empty() && frontier_.has_value()) {
    // The common case, in one round trip. It declines (nullopt) a batch that needs more than
    // the unique index (conflicting repetitions) or a head another writer moved.
    absl::StatusOr<std::optional<AppendResult>> scripted = AppendScripted(batch);
    if (!scripted.ok()) {
      result = AbandonTransaction(scripted.status());
      done = true;
    } else if (scripted->has_value()) {
      result = **std::move(scripted);
      done = true;
      scripted_appends_++;
    }
  }
  if (!done) result = AppendOnce(batch, /*lookup=*/!optimistic);
  if (!result.ok() && optimistic && pg::SqlStateOf(result.status()) == "23505" &&
      PQstatus(conn_.get()) == CONNECTION_OK) {
    optimistic_misses_++;
    lookups_ahead_ = kLookupRun;
    result = AppendOnce(batch, /*lookup=*/true);
  }
  return result;
}

absl::StatusOr<AppendResult> PgEventStore::AppendOnce(const AppendBatch& batch, bool lookup) {
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  absl::StatusOr<AppendResult> result = AppendInTransaction(batch, lookup);
  if (!result.ok()) return AbandonTransaction(result.status());
  return result;
}

absl::Status PgEventStore::AbandonTransaction(absl::Status why) {
  frontier_.reset();  // a COMMIT that failed may still have committed
  if (conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK) {
    (void)pg::Exec(conn_.get(), "ROLLBACK");
  }
  if (conn_ != nullptr && (PQstatus(conn_.get()) != CONNECTION_OK ||
                           PQtransactionStatus(conn_.get()) != PQTRANS_IDLE)) {
    conn_.reset();  // reconnect on the next attempt
  }
  // 23505 is for Append to handle; anything else is classified for the caller.
  if (pg::SqlStateOf(why) == "23505") return why;
  return ClassifyForCaller(why);
}

absl::StatusOr<std::optional<AppendResult>> PgEventStore::AppendScripted(const AppendBatch& batch) {
  PhaseClock clock(this);
  AppendResult result;
  // The batch's own repetitions; the unique index finds events stored before. The head is not
  // known yet, but positions only matter for conflicts, which this path declines.
  absl::flat_hash_map<EventKey, Known> known;
  known.reserve(batch.events.size());
  const Classified classified = Classify(batch, /*head=*/0, &known);
  if (!classified.conflicts.empty()) {
    return std::nullopt;  // a conflict within the batch: dead-lettered by AppendOnce
  }
  const std::vector<const EventEntry*>& fresh = classified.fresh;
  result.duplicates = classified.duplicates;
  clock.Mark(Phase::kLookup);
  if (absl::Status s = EnsureConnected(); !s.ok()) return s;
  PGconn* conn = conn_.get();
  pg::Script script;
  if (absl::Status s = script.Send(conn, AppendScript().c_str()); !s.ok()) return s;
  // Every early return drains the query first (its transaction is then rolled back).
  const auto fail = [&](absl::Status s) {
    (void)script.Finish();
    return s;
  };
  if (absl::StatusOr<pg::ResultPtr> begun = script.Next(); !begun.ok()) {
    return fail(begun.status());
  }
  absl::StatusOr<pg::ResultPtr> head_row = script.Next();
  if (!head_row.ok()) return fail(head_row.status());
  absl::StatusOr<Head> head = ParseHead(head_row->get());
  if (!head.ok()) return fail(head.status());
  if (frontier_->size() != static_cast<uint64_t>(head->position)) {
    // Another writer appended since our last commit: the frontier is rebuilt by AppendOnce.
    (void)script.Finish();
    (void)AbandonTransaction(absl::AbortedError("the head moved"));
    return std::nullopt;
  }
  merkle::Frontier frontier = *frontier_;
  std::vector<merkle::Frontier::Node> completed;
  std::vector<Sha256Digest> leaves;
  Sha256Digest chain = head->chain;
  clock.Mark(Phase::kLock);
  if (options_.stage_hook) options_.stage_hook(Stage::kBeforeInsert);

  absl::StatusOr<pg::ResultPtr> events_copy = script.Next();
  if (!events_copy.ok()) return fail(events_copy.status());
  pg::CopyStream copy;
  copy.Attach(conn);
  StreamEvents(fresh, head->position, head->now_micros, &chain, &frontier, &completed,
               LeavesFor(&leaves), &copy, &clock);
  if (absl::Status s = copy.End(); !s.ok()) return fail(s);
  absl::StatusOr<pg::ResultPtr> nodes_copy = script.Next();
  if (!nodes_copy.ok()) return fail(nodes_copy.status());
  pg::CopyStream nodes;
  nodes.Attach(conn);
  nodes.Put(MerkleNodeRows(completed));
  clock.Mark(Phase::kCopy);
  if (options_.stage_hook) options_.stage_hook(Stage::kBeforeCommit);
  if (absl::Status s = nodes.End(); !s.ok()) return fail(s);
  if (absl::StatusOr<pg::ResultPtr> c = script.Next(); !c.ok()) return fail(c.status());
  if (absl::Status s = script.Finish(); !s.ok()) return s;
  clock.Mark(Phase::kCommit);
  Committed(std::move(frontier), head->position, head->now_micros, std::move(leaves));
  result.appended = static_cast<int64_t>(fresh.size());
  if (result.appended > 0) {
    result.first_position = head->position + 1;
    result.last_position = head->position + result.appended;
  }
  return std::optional<AppendResult>(result);
}

absl::StatusOr<AppendResult> PgEventStore::AppendInTransaction(const AppendBatch& batch,
                                                               bool lookup) {
  PGconn* conn = conn_.get();
  AppendResult result;
  // Where the time goes, per phase (for the benchmarks; two clock reads per phase).
  PhaseClock clock(this);
  const auto mark = [&](Phase p) { clock.Mark(p); };

  absl::StatusOr<pg::ResultPtr> begun = pg::Exec(conn, kBegin);
  mark(Phase::kLock);
  if (!begun.ok()) return begun.status();
  absl::StatusOr<Head> parsed_head = ParseHead(begun->get());
  if (!parsed_head.ok()) return parsed_head.status();
  const int64_t head = parsed_head->position;
  const int64_t now_micros = parsed_head->now_micros;
  Sha256Digest chain = parsed_head->chain;
  // The tree's frontier at the head: cached from our last commit unless another writer
  // appended since, in which case it is rebuilt from the stored subtrees.
  if (!frontier_.has_value() || frontier_->size() != static_cast<uint64_t>(head)) {
    frontier_.reset();
    PgSubtrees subtrees(conn);
    absl::StatusOr<merkle::Frontier> f =
        merkle::Frontier::Of(static_cast<uint64_t>(head), subtrees.AsFn());
    if (!f.ok()) {
      return absl::InternalError(absl::StrCat("cannot rebuild the Merkle frontier at head ", head,
                                              ": ", f.status().message()));
    }
    frontier_ = *std::move(f);
  }
  merkle::Frontier frontier = *frontier_;
  std::vector<merkle::Frontier::Node> completed;
  std::vector<Sha256Digest> leaves;
  mark(Phase::kLock);

  if (options_.stage_hook) options_.stage_hook(Stage::kBeforeInsert);

  // Which (source, id) pairs are stored already, with which content (with `lookup`; without,
  // only the batch's own repetitions are found here, and the unique index finds the rest).
  absl::flat_hash_map<EventKey, Known> known;
  std::vector<std::string> owned_keys;  // backing storage for `known`'s views
  if (lookup && !batch.events.empty()) {
    const std::optional<std::string> params[] = {
        pg::TextArrayLiteral(
            batch.events,
            [](const EventEntry& e) -> const std::string& { return e.event->source(); }),
        pg::TextArrayLiteral(
            batch.events, [](const EventEntry& e) -> const std::string& { return e.event->id(); })};
    absl::StatusOr<pg::ResultPtr> found = pg::ExecParams(conn, kLookupEvents, params);
    if (!found.ok()) return found.status();
    const PGresult* r = found->get();
    owned_keys.reserve(2 * PQntuples(r));
    for (int i = 0; i < PQntuples(r); ++i) {
      absl::StatusOr<std::string> hash = pg::DecodeByteaHex(pg::Value(r, i, 2));
      if (!hash.ok() || hash->size() != 32) return absl::InternalError("bad content_hash");
      owned_keys.emplace_back(pg::Value(r, i, 0));
      owned_keys.emplace_back(pg::Value(r, i, 1));
      Known k;
      std::copy(hash->begin(), hash->end(), k.hash.begin());
      k.position = pg::Int64Value(r, i, 3);
      known[{owned_keys[owned_keys.size() - 2], owned_keys.back()}] = k;
    }
  }

  // Classify in batch order; new events get consecutive positions.
  const Classified classified = Classify(batch, head, &known);
  const std::vector<const EventEntry*>& fresh = classified.fresh;
  result.duplicates += classified.duplicates;
  result.conflicts += static_cast<int64_t>(classified.conflicts.size());
  std::vector<std::pair<const DeadLetterEntry*, std::optional<int64_t>>> dead;
  for (size_t i = 0; i < classified.conflicts.size(); ++i) {
    dead.emplace_back(&classified.conflicts[i], classified.conflicting_positions[i]);
  }
  for (const DeadLetterEntry& dl : batch.dead_letters) dead.emplace_back(&dl, std::nullopt);
  result.appended = static_cast<int64_t>(fresh.size());

  mark(Phase::kLookup);
  if (!dead.empty()) {
    // Already dead-lettered messages (a redelivery after a crash) are not written again.
    const auto topic = [](const auto& d) { return d.first->record->topic; };
    const auto part = [](const auto& d) { return std::to_string(d.first->record->partition); };
    const auto off = [](const auto& d) { return std::to_string(d.first->record->offset); };
    const std::optional<std::string> params[] = {pg::TextArrayLiteral(dead, topic),
                                                 pg::TextArrayLiteral(dead, part),
                                                 pg::TextArrayLiteral(dead, off)};
    absl::StatusOr<pg::ResultPtr> found = pg::ExecParams(conn, kLookupDeadLetters, params);
    if (!found.ok()) return found.status();
    std::set<Provenance> present;
    for (int i = 0; i < PQntuples(found->get()); ++i) {
      present.emplace(std::string(pg::Value(found->get(), i, 0)),
                      static_cast<int32_t>(pg::Int64Value(found->get(), i, 1)),
                      pg::Int64Value(found->get(), i, 2));
    }
    pg::BinaryCopyWriter letters;
    for (const auto& [dl, conflicting] : dead) {
      Provenance p{std::string(dl->record->topic), dl->record->partition, dl->record->offset};
      if (!present.insert(std::move(p)).second) {
        ++result.dead_letters_existing;
        continue;
      }
      WriteDeadLetter(*dl, conflicting, now_micros, &letters);
      ++result.dead_letters_written;
    }
    if (letters.rows() > 0) {
      if (absl::Status s = pg::CopyIn(conn, kCopyDeadLetters, letters.Finish()); !s.ok()) {
        return s;
      }
    }
  }
  // The events, streamed.
  if (!fresh.empty()) {
    mark(Phase::kCopy);
    pg::CopyStream copy;
    if (absl::Status s = copy.Start(conn, kCopyEventsSql); !s.ok()) return s;
    StreamEvents(fresh, head, now_micros, &chain, &frontier, &completed, LeavesFor(&leaves), &copy,
                 &clock);
    if (absl::Status s = copy.Finish(); !s.ok()) return s;
  }
  if (!completed.empty()) {
    if (absl::Status s = pg::CopyIn(conn, kCopyMerkleNodes, MerkleNodeRows(completed)); !s.ok()) {
      return s;
    }
  }
  mark(Phase::kCopy);
  if (options_.stage_hook) options_.stage_hook(Stage::kBeforeCommit);
  if (absl::StatusOr<pg::ResultPtr> c = pg::Exec(conn, "COMMIT"); !c.ok()) return c.status();
  mark(Phase::kCommit);
  Committed(std::move(frontier), head, now_micros, std::move(leaves));
  if (result.appended > 0) {
    result.first_position = head + 1;
    result.last_position = head + result.appended;
  }
  return result;
}

}  // namespace audit::ingestor
