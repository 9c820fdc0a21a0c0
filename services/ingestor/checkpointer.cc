#include "services/ingestor/checkpointer.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "audit/checkpoint.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "audit/rfc3339.h"
#include "services/common/checkpoint_rows.h"
#include "services/common/log.h"
#include "services/common/merkle_store.h"

namespace audit::ingestor {
namespace {

// pg_advisory_xact_lock key shared by every checkpointer ("audit-cp").
constexpr char kBegin[] = "BEGIN; SELECT pg_advisory_xact_lock(7022629598037631856)";

constexpr char kHead[] =
    "SELECT position, chain_hash FROM audit.events ORDER BY position DESC LIMIT 1";

// Read in binary: hashes as their 32 bytes, no per-row numeric arithmetic for the time.
constexpr char kLeaves[] = R"sql(
SELECT position, leaf_hash, chain_hash, recorded_at
FROM audit.events WHERE position > $1 AND position <= $2 ORDER BY position)sql";

// One row per requested node, in the order requested (a join alone does not keep it).
constexpr char kNodes[] = R"sql(
SELECT m.hash
FROM unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY AS k(level, node_index, ord)
LEFT JOIN audit.merkle_nodes m ON m.level = k.level AND m.node_index = k.node_index
ORDER BY k.ord)sql";

// Most stored subtrees compared per query.
constexpr size_t kNodesPerCheck = 4096;

constexpr char kKeyUsedBefore[] =
    "SELECT 1 FROM audit.checkpoints WHERE key_id = $1 AND seq < $2 LIMIT 1";

bool Decode(absl::string_view hex, Sha256Digest* out) {
  absl::StatusOr<std::string> b = pg::DecodeByteaHex(hex);
  return b.ok() && DigestFromBytes(*b, out);
}

bool Equal(const std::string& bytes, const Sha256Digest& d) { return bytes == DigestBytes(d); }

absl::Status Loss(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("refusing to sign: ", what));
}

// Checks the stored subtrees that leaves just folded in completed.
absl::Status CheckStoredNodes(PGconn* conn, const std::vector<merkle::Frontier::Node>& nodes) {
  if (nodes.empty()) return absl::OkStatus();
  std::vector<std::string> levels, indexes;
  for (const auto& n : nodes) {
    levels.push_back(absl::StrCat(n.level));
    indexes.push_back(absl::StrCat(n.index));
  }
  const std::optional<std::string> params[] = {pg::TextArrayLiteral(levels),
                                               pg::TextArrayLiteral(indexes)};
  absl::StatusOr<pg::ResultPtr> r = pg::ExecParams(conn, kNodes, params);
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) != static_cast<int>(nodes.size())) {
    return absl::InternalError("the node lookup returned the wrong number of rows");
  }
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    Sha256Digest d;
    if (pg::IsNull(r->get(), i, 0) || !Decode(pg::Value(r->get(), i, 0), &d) ||
        d != nodes[i].hash) {
      return Loss(absl::StrCat("stored Merkle node (", nodes[i].level, ", ", nodes[i].index,
                               ") is missing or differs from its leaves"));
    }
  }
  return absl::OkStatus();
}

// Leaves folded into the tree and the chain during a round.
struct Fold {
  Sha256Digest chain;
  merkle::Frontier* frontier;
  std::vector<merkle::Frontier::Node> completed;  // not yet compared with the stored ones
  std::optional<int64_t> first_recorded;          // of the first leaf folded in
};

// Positions from+1..to of `run`: what this process committed, as it wrote it.
void FoldFed(const LeafFeed::Run& run, int64_t from, int64_t to, Fold* fold) {
  if (!fold->first_recorded.has_value()) fold->first_recorded = run.recorded_micros;
  for (int64_t p = from + 1; p <= to; ++p) {
    const Sha256Digest& leaf = run.leaves[p - run.first];
    fold->chain = ChainHash(fold->chain, leaf);
    fold->frontier->Append(leaf, kStoredMerkleLevel, &fold->completed);
  }
}

// Positions from+1..to as stored, each row's chain hash checked.
absl::Status FoldStored(PGconn* conn, int64_t from, int64_t to, Fold* fold) {
  const std::optional<std::string> params[] = {absl::StrCat(from), absl::StrCat(to)};
  absl::StatusOr<pg::ResultPtr> r =
      pg::ExecParams(conn, kLeaves, params, pg::ResultFormat::kBinary);
  if (!r.ok()) return r.status();
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    const std::optional<int64_t> position = pg::BinaryInt64(r->get(), i, 0);
    Sha256Digest leaf, stored_chain;
    if (!position.has_value() || *position != from + i + 1) {
      return Loss(absl::StrCat("position ", from + i + 1, " is missing"));
    }
    if (!DigestFromBytes(pg::Value(r->get(), i, 1), &leaf) ||
        !DigestFromBytes(pg::Value(r->get(), i, 2), &stored_chain) ||
        (fold->chain = ChainHash(fold->chain, leaf)) != stored_chain) {
      return Loss(absl::StrCat("the chain is broken at position ", *position));
    }
    if (!fold->first_recorded.has_value()) {
      fold->first_recorded = pg::BinaryTimestampUnixMicros(r->get(), i, 3);
      if (!fold->first_recorded.has_value()) {
        return Loss(absl::StrCat("position ", *position, " has no recorded time"));
      }
    }
    fold->frontier->Append(leaf, kStoredMerkleLevel, &fold->completed);
  }
  if (PQntuples(r->get()) != to - from) {
    return Loss(absl::StrCat("position ", from + PQntuples(r->get()) + 1, " is missing"));
  }
  return absl::OkStatus();
}

}  // namespace

Checkpointer::Checkpointer(Options options) : options_(std::move(options)) {}

absl::StatusOr<Checkpointer::Round> Checkpointer::RunOnce() {
  const absl::Time start = absl::Now();
  absl::StatusOr<Round> round = RunOnceUntimed();
  busy_nanos_ += absl::ToInt64Nanoseconds(absl::Now() - start);
  return round;
}

absl::StatusOr<Checkpointer::Round> Checkpointer::RunOnceUntimed() {
  if (conn_ == nullptr || PQstatus(conn_.get()) != CONNECTION_OK) {
    conn_.reset();
    absl::StatusOr<pg::ConnPtr> c = pg::Connect(options_.url, options_.connect);
    if (!c.ok()) return c.status();
    conn_ = *std::move(c);
  }
  absl::StatusOr<Round> round = RoundInTransaction(conn_.get());
  if (PQstatus(conn_.get()) == CONNECTION_OK && PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
    (void)pg::Exec(conn_.get(), "ROLLBACK");
  }
  if (PQstatus(conn_.get()) != CONNECTION_OK || PQtransactionStatus(conn_.get()) != PQTRANS_IDLE) {
    conn_.reset();
  }
  if (!round.ok() && pg::SqlStateOf(round.status()) == "23505") {
    return absl::AbortedError(
        absl::StrCat("another signer took the seq: ", round.status().message()));
  }
  return round;
}

absl::StatusOr<Checkpointer::Round> Checkpointer::RoundInTransaction(PGconn* conn) {
  if (absl::StatusOr<pg::ResultPtr> r = pg::Exec(conn, kBegin); !r.ok()) return r.status();
  absl::StatusOr<std::optional<v1::Checkpoint>> last = LatestCheckpoint(conn);
  if (!last.ok()) return last.status();
  absl::StatusOr<pg::ResultPtr> head = pg::Exec(conn, kHead);
  if (!head.ok()) return head.status();
  int64_t size = 0;
  Sha256Digest head_chain = kGenesisChainHash;
  if (PQntuples(head->get()) == 1) {
    size = pg::Int64Value(head->get(), 0, 0);
    if (!Decode(pg::Value(head->get(), 0, 1), &head_chain)) {
      return Loss(absl::StrCat("the chain hash at position ", size, " is malformed"));
    }
  }

  // The log must still be what the newest entry signed.
  const int64_t signed_size = last->has_value() ? (*last)->tree_size() : 0;
  if (last->has_value()) {
    const v1::Checkpoint& c = **last;
    if (absl::Status s = VerifyCheckpointSignature(c, c.public_key()); !s.ok()) {
      return Loss(absl::StrCat("checkpoint seq ", c.seq(), ": ", s.message()));
    }
    if (size < signed_size) {
      return Loss(absl::StrCat("the log ends at position ", size, " but checkpoint seq ", c.seq(),
                               " covers ", signed_size, " (truncated)"));
    }
  }
  PgSubtrees subtrees(conn);
  absl::StatusOr<merkle::Frontier> frontier =
      merkle::Frontier::Of(static_cast<uint64_t>(signed_size), subtrees.AsFn());
  if (!frontier.ok()) {
    return Loss(absl::StrCat("cannot rebuild the tree at ", signed_size, ": ",
                             frontier.status().message()));
  }
  if (last->has_value() && !Equal((*last)->root_hash(), frontier->Root())) {
    return Loss(absl::StrCat("the stored tree of size ", signed_size,
                             " no longer has the root checkpoint seq ", (*last)->seq(), " signed"));
  }

  // Fold in the leaves since, checking the chain and the stored subtrees.
  Fold fold{.chain = kGenesisChainHash, .frontier = &*frontier};
  if (last->has_value() && !DigestFromBytes((*last)->chain_hash(), &fold.chain)) {
    return Loss("the newest checkpoint's chain hash is malformed");
  }
  std::vector<std::shared_ptr<const LeafFeed::Run>> fed;
  if (options_.leaf_feed != nullptr) fed = options_.leaf_feed->After(signed_size);
  size_t next_fed = 0;
  for (int64_t from = signed_size; from < size;) {
    while (next_fed < fed.size() && fed[next_fed]->last() <= from) ++next_fed;
    const LeafFeed::Run* run = next_fed < fed.size() ? fed[next_fed].get() : nullptr;
    int64_t to;
    if (run != nullptr && run->first <= from + 1) {
      to = std::min(size, run->last());
      FoldFed(*run, from, to, &fold);
      leaves_fed_ += to - from;
    } else {
      // Up to the next run the feed holds.
      to = std::min(size, from + options_.read_chunk);
      if (run != nullptr) to = std::min(to, run->first - 1);
      if (absl::Status s = FoldStored(conn, from, to, &fold); !s.ok()) return s;
      leaves_read_ += to - from;
    }
    from = to;
    if (fold.completed.size() >= kNodesPerCheck || from == size) {
      if (absl::Status s = CheckStoredNodes(conn, fold.completed); !s.ok()) return s;
      fold.completed.clear();
    }
  }
  if (fold.chain != head_chain) {
    return Loss(absl::StrCat("the chain hash stored at position ", size,
                             " is not the chain of the leaves before it"));
  }

  // What to append.
  Round round;
  struct Entry {
    v1::CheckpointKind kind;
    std::string note;
  };
  std::vector<Entry> entries;
  const std::string our_id = options_.key.key_id();
  bool endorse = false;
  if (last->has_value() && (*last)->key_id() != our_id) {
    const std::string their_id = (*last)->key_id();
    endorse = options_.previous_key.has_value() && options_.previous_key->key_id() == their_id;
    if (!endorse) {
      const std::optional<std::string> params[] = {our_id, absl::StrCat((*last)->seq())};
      absl::StatusOr<pg::ResultPtr> r = pg::ExecParams(conn, kKeyUsedBefore, params);
      if (!r.ok()) return r.status();
      if (PQntuples(r->get()) > 0) {
        round.passive = true;
        return round;
      }
    }
    entries.push_back({v1::CHECKPOINT_KIND_KEY_ROTATION,
                       absl::StrCat("key rotated from ", their_id, " to ", our_id,
                                    endorse ? " (endorsed by the previous key)"
                                            : " (not endorsed: the previous key was not given)")});
  }
  const absl::Time now = options_.clock();
  if (fold.first_recorded.has_value()) {
    const absl::Time recorded = absl::FromUnixMicros(*fold.first_recorded);
    if (now - recorded > options_.gap_after) {
      entries.push_back(
          {v1::CHECKPOINT_KIND_GAP,
           absl::StrCat("no checkpoint for ", absl::FormatDuration(now - recorded), ": position ",
                        signed_size + 1, " was recorded at ",
                        FormatRfc3339(FromUnixMicros(*fold.first_recorded)),
                        last->has_value() ? absl::StrCat(", the previous checkpoint was made at ",
                                                         FormatRfc3339((*last)->created_time()))
                                          : std::string(", before any checkpoint"))});
    }
  }
  if (entries.empty() && size > signed_size) {
    entries.push_back({v1::CHECKPOINT_KIND_CHECKPOINT, ""});
  }

  std::optional<v1::Checkpoint> previous = *last;
  const int64_t created = absl::ToUnixMicros(now);
  for (Entry& e : entries) {
    v1::Checkpoint c;
    c.set_seq(previous.has_value() ? previous->seq() + 1 : 1);
    c.set_kind(e.kind);
    c.set_tree_size(size);
    c.set_root_hash(std::string(DigestBytes(frontier->Root())));
    c.set_chain_hash(std::string(DigestBytes(fold.chain)));
    *c.mutable_created_time() = FromUnixMicros(created);
    const Sha256Digest previous_hash =
        previous.has_value() ? SignatureHash(*previous) : Sha256Digest{};
    c.set_previous_signature_hash(std::string(DigestBytes(previous_hash)));
    c.set_note(std::move(e.note));
    SignCheckpoint(options_.key, &c);
    if (e.kind == v1::CHECKPOINT_KIND_KEY_ROTATION && endorse) {
      EndorseCheckpoint(*options_.previous_key, &c);
    }
    if (absl::Status s = InsertCheckpoint(conn, c); !s.ok()) return s;
    round.appended.push_back(c);
    previous = std::move(c);
  }
  if (absl::StatusOr<pg::ResultPtr> r = pg::Exec(conn, "COMMIT"); !r.ok()) return r.status();
  return round;
}

void Checkpointer::Run(const absl::Notification& stop) {
  LogInfo("checkpointer starting")
      .With("key_id", options_.key.key_id())
      .With("interval", options_.interval);
  bool final_round = false;
  while (true) {
    absl::StatusOr<Round> round = RunOnce();
    if (!round.ok()) {
      if (round.status().code() == absl::StatusCode::kDataLoss) {
        LogError("the log does not reconcile with the checkpoint log; nothing signed")
            .With(round.status());
      } else {
        LogWarning("checkpoint round failed; retrying").With(round.status());
      }
      if (final_round) break;
      final_round = stop.WaitForNotificationWithTimeout(options_.interval);
      continue;
    }
    if (round->passive) {
      LogWarning("the checkpoint log is signed by a newer key; this checkpointer is passive")
          .With("key_id", options_.key.key_id());
    }
    for (const v1::Checkpoint& c : round->appended) {
      (c.kind() == v1::CHECKPOINT_KIND_CHECKPOINT ? LogDebug("checkpoint signed")
                                                  : LogWarning("checkpoint-log entry"))
          .With("seq", c.seq())
          .With("kind", v1::CheckpointKind_Name(c.kind()))
          .With("tree_size", c.tree_size())
          .With("note", c.note());
    }
    if (final_round) break;
    // After the stop, one more round signs what was stored last.
    final_round = stop.WaitForNotificationWithTimeout(options_.interval);
  }
  LogInfo("checkpointer stopped");
}

}  // namespace audit::ingestor
