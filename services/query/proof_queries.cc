#include "services/query/proof_queries.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "audit/verify.h"
#include "services/common/checkpoint_rows.h"
#include "services/common/event_rows.h"
#include "services/common/merkle_store.h"
#include "services/common/pg.h"
#include "services/query/event_queries.h"
#include "services/query/request_validation.h"

namespace audit::query {
namespace {

constexpr int64_t kVerifyChunk = 5000;
constexpr int kCheckpointPage = 1000;

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::StatusOr<std::vector<v1::Checkpoint>> Checkpoints(PGconn* conn, absl::string_view where,
                                                        absl::Span<const std::string> args,
                                                        absl::string_view tail) {
  std::vector<std::optional<std::string>> params(args.begin(), args.end());
  const std::string sql =
      absl::StrCat("SELECT ", kCheckpointColumns, " FROM audit.checkpoints ", where, " ", tail);
  absl::StatusOr<pg::ResultPtr> r = pg::ExecParams(conn, sql.c_str(), params);
  if (!r.ok()) return r.status();
  std::vector<v1::Checkpoint> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    absl::StatusOr<v1::Checkpoint> c = CheckpointFromRow(r->get(), i);
    if (!c.ok()) return c.status();
    out.push_back(*std::move(c));
  }
  return out;
}

absl::StatusOr<std::vector<v1::StoredEvent>> Events(PGconn* conn, int64_t first, int64_t last) {
  const std::optional<std::string> params[] = {absl::StrCat(first), absl::StrCat(last)};
  const std::string sql = absl::StrCat("SELECT ", kStoredEventColumns,
                                       " FROM audit.events WHERE position BETWEEN $1 AND $2"
                                       " ORDER BY position");
  absl::StatusOr<pg::ResultPtr> r =
      pg::ExecParams(conn, sql.c_str(), params, pg::ResultFormat::kBinary);
  if (!r.ok()) return r.status();
  std::vector<v1::StoredEvent> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    absl::StatusOr<v1::StoredEvent> e = StoredEventFromRow(r->get(), i);
    if (!e.ok()) return e.status();
    out.push_back(*std::move(e));
  }
  return out;
}

google::protobuf::RepeatedPtrField<std::string> ToBytes(const std::vector<Sha256Digest>& hashes) {
  google::protobuf::RepeatedPtrField<std::string> out;
  for (const Sha256Digest& h : hashes) *out.Add() = std::string(DigestBytes(h));
  return out;
}

// A proof that cannot be built from the store means the store lost hashes it should have.
absl::Status StoreProblem(const absl::Status& s) {
  if (s.code() == absl::StatusCode::kFailedPrecondition) {
    return absl::DataLossError(absl::StrCat("the store cannot build the proof: ", s.message()));
  }
  return s;
}

}  // namespace

absl::StatusOr<v1::GetLatestCheckpointResponse> ProofQueries::GetLatestCheckpoint(
    PGconn* conn, const v1::GetLatestCheckpointRequest&) const {
  absl::StatusOr<v1::Checkpoint> c = RequireLatestCheckpoint(conn);
  if (!c.ok()) return c.status();
  v1::GetLatestCheckpointResponse out;
  *out.mutable_checkpoint() = *std::move(c);
  return out;
}

absl::StatusOr<v1::ListCheckpointsResponse> ProofQueries::ListCheckpoints(
    PGconn* conn, const v1::ListCheckpointsRequest& r) const {
  absl::StatusOr<int> page = PageSize(r.page_size(), kDefaultPageSize, "page_size");
  if (!page.ok()) return page.status();
  int64_t after = 0;
  if (!r.page_token().empty()) {
    absl::StatusOr<int64_t> cursor = tokens_->Decode(r, r.page_token());
    if (!cursor.ok()) return cursor.status();
    after = *cursor;
  }
  const std::string args[] = {absl::StrCat(after)};
  absl::StatusOr<std::vector<v1::Checkpoint>> rows =
      Checkpoints(conn, "WHERE seq > $1", args, absl::StrCat("ORDER BY seq LIMIT ", *page + 1));
  if (!rows.ok()) return rows.status();
  v1::ListCheckpointsResponse out;
  for (int i = 0; i < std::min<int>(*page, rows->size()); ++i) {
    *out.add_checkpoints() = std::move((*rows)[i]);
  }
  if (static_cast<int>(rows->size()) > *page) {
    out.set_next_page_token(tokens_->Encode(r, out.checkpoints(*page - 1).seq()));
  }
  return out;
}

absl::StatusOr<v1::GetInclusionProofResponse> ProofQueries::GetInclusionProof(
    PGconn* conn, const v1::GetInclusionProofRequest& r) const {
  if (r.position() <= 0) return Invalid("position", "must be positive");
  if (r.tree_size() < 0) return Invalid("tree_size", "must not be negative");
  v1::GetInclusionProofResponse out;
  int64_t size = r.tree_size();
  if (size == 0) {
    absl::StatusOr<v1::Checkpoint> c = RequireLatestCheckpoint(conn);
    if (!c.ok()) return c.status();
    size = c->tree_size();
    *out.mutable_checkpoint() = *std::move(c);
  }
  if (r.position() > size) {
    return Invalid(r.tree_size() == 0 ? "position" : "tree_size",
                   absl::StrCat("position ", r.position(), " is not in the tree of size ", size,
                                r.tree_size() == 0 ? " (the latest checkpoint's)" : ""));
  }
  absl::StatusOr<int64_t> head = EventQueries::Head(conn);
  if (!head.ok()) return head.status();
  if (size > *head) {
    return absl::OutOfRangeError(
        absl::StrCat("tree_size: ", size, " exceeds the log's size ", *head));
  }
  absl::StatusOr<std::vector<v1::StoredEvent>> event = Events(conn, r.position(), r.position());
  if (!event.ok()) return event.status();
  if (event->empty())
    return absl::NotFoundError(absl::StrCat("no event at position ", r.position()));
  *out.mutable_event() = std::move((*event)[0]);
  PgSubtrees subtrees(conn);
  absl::StatusOr<std::vector<Sha256Digest>> proof = merkle::InclusionProof(
      static_cast<uint64_t>(r.position() - 1), static_cast<uint64_t>(size), subtrees.AsFn());
  if (!proof.ok()) return StoreProblem(proof.status());
  out.set_leaf_index(r.position() - 1);
  out.set_tree_size(size);
  *out.mutable_hashes() = ToBytes(*proof);
  if (!out.has_checkpoint()) {
    const std::string args[] = {absl::StrCat(size)};
    absl::StatusOr<std::vector<v1::Checkpoint>> c =
        Checkpoints(conn, "WHERE tree_size = $1", args, "ORDER BY seq DESC LIMIT 1");
    if (!c.ok()) return c.status();
    if (!c->empty()) *out.mutable_checkpoint() = std::move((*c)[0]);
  }
  return out;
}

absl::StatusOr<v1::GetConsistencyProofResponse> ProofQueries::GetConsistencyProof(
    PGconn* conn, const v1::GetConsistencyProofRequest& r) const {
  if (r.first_tree_size() <= 0) return Invalid("first_tree_size", "must be positive");
  if (r.second_tree_size() < r.first_tree_size()) {
    return Invalid("second_tree_size", "must not be smaller than first_tree_size");
  }
  absl::StatusOr<int64_t> head = EventQueries::Head(conn);
  if (!head.ok()) return head.status();
  if (r.second_tree_size() > *head) {
    return absl::OutOfRangeError(absl::StrCat("second_tree_size: ", r.second_tree_size(),
                                              " exceeds the log's size ", *head));
  }
  PgSubtrees subtrees(conn);
  absl::StatusOr<std::vector<Sha256Digest>> proof =
      merkle::ConsistencyProof(static_cast<uint64_t>(r.first_tree_size()),
                               static_cast<uint64_t>(r.second_tree_size()), subtrees.AsFn());
  if (!proof.ok()) return StoreProblem(proof.status());
  v1::GetConsistencyProofResponse out;
  *out.mutable_hashes() = ToBytes(*proof);
  return out;
}

absl::StatusOr<v1::VerifyRangeResponse> ProofQueries::VerifyRange(
    PGconn* conn, const v1::VerifyRangeRequest& r) const {
  if (r.first_position() < 0) return Invalid("first_position", "must not be negative");
  if (r.last_position() < 0) return Invalid("last_position", "must not be negative");
  const int64_t first = std::max<int64_t>(r.first_position(), 1);
  if (r.last_position() != 0 && r.last_position() < first) {
    return Invalid("last_position", "must not be smaller than first_position");
  }
  absl::StatusOr<int64_t> head = EventQueries::Head(conn);
  if (!head.ok()) return head.status();
  const int64_t last = r.last_position() == 0 ? *head : r.last_position();
  if (last > *head) {
    return absl::OutOfRangeError(
        absl::StrCat("last_position: ", last, " exceeds the log's size ", *head));
  }
  v1::VerifyRangeResponse out;
  out.set_ok(true);
  out.set_keys_pinned(!trusted_keys_.empty());
  if (last < first) {  // an empty log
    return out;
  }

  // The state just before the range, from the store.
  LogVerifier::Options options{.trusted_keys = trusted_keys_, .first_position = first};
  if (first > 1) {
    absl::StatusOr<std::vector<v1::StoredEvent>> before = Events(conn, first - 1, first - 1);
    if (!before.ok()) return before.status();
    if (before->empty() || !DigestFromBytes((*before)[0].chain_hash(), &options.chain_before)) {
      out.set_ok(false);
      out.set_first_bad_position(first - 1);
      out.set_problem(absl::StrCat("position ", first - 1, " is missing or malformed"));
      return out;
    }
    PgSubtrees subtrees(conn);
    absl::StatusOr<merkle::Frontier> f =
        merkle::Frontier::Of(static_cast<uint64_t>(first - 1), subtrees.AsFn());
    if (!f.ok()) return StoreProblem(f.status());
    options.frontier_before = *std::move(f);
  }
  // Check events through the first checkpoint at or after `last`, so the range is covered.
  int64_t end = last;
  {
    const std::string args[] = {absl::StrCat(last)};
    absl::StatusOr<std::vector<v1::Checkpoint>> covering =
        Checkpoints(conn, "WHERE tree_size >= $1", args, "ORDER BY seq LIMIT 1");
    if (!covering.ok()) return covering.status();
    if (!covering->empty()) end = std::min(*head, (*covering)[0].tree_size());
  }

  LogVerifier verifier(options);
  // Checkpoints in seq order, from the last one before the range (it links the chain), fed
  // ahead of the events they cover.
  int64_t next_seq = 1;
  if (first > 1) {
    const std::string args[] = {absl::StrCat(first)};
    absl::StatusOr<pg::ResultPtr> s = pg::ExecParams(
        conn, "SELECT coalesce(max(seq), 1) FROM audit.checkpoints WHERE tree_size < $1",
        std::vector<std::optional<std::string>>(args, args + 1));
    if (!s.ok()) return s.status();
    next_seq = pg::Int64Value(s->get(), 0, 0);
  }
  std::deque<v1::Checkpoint> pending;
  bool exhausted = false;
  const auto feed_through = [&](int64_t bound) -> absl::Status {
    while (true) {
      while (!pending.empty() && pending.front().tree_size() <= bound) {
        verifier.AddCheckpoint(pending.front());
        pending.pop_front();
      }
      if (!pending.empty() || exhausted) return absl::OkStatus();
      const std::string args[] = {absl::StrCat(next_seq)};
      absl::StatusOr<std::vector<v1::Checkpoint>> page = Checkpoints(
          conn, "WHERE seq >= $1", args, absl::StrCat("ORDER BY seq LIMIT ", kCheckpointPage));
      if (!page.ok()) return page.status();
      exhausted = static_cast<int>(page->size()) < kCheckpointPage;
      for (v1::Checkpoint& c : *page) pending.push_back(std::move(c));
      if (!pending.empty()) next_seq = pending.back().seq() + 1;
    }
  };
  for (int64_t from = first; from <= end && !verifier.failed(); from += kVerifyChunk) {
    const int64_t to = std::min(end, from + kVerifyChunk - 1);
    if (absl::Status s = feed_through(to); !s.ok()) return s;
    absl::StatusOr<std::vector<v1::StoredEvent>> events = Events(conn, from, to);
    if (!events.ok()) return events.status();
    for (const v1::StoredEvent& e : *events) verifier.AddEvent(e);
    if (events->size() < static_cast<size_t>(to - from + 1) && !verifier.failed()) {
      // Missing rows at the end of the chunk: the next one would report them; say it here.
      v1::StoredEvent none;
      none.set_position(to + 1);
      verifier.AddEvent(none);
    }
  }
  if (r.last_position() == 0 && !verifier.failed()) {
    // To the end of the log: a checkpoint beyond it means the log was truncated.
    if (absl::Status s = feed_through(std::numeric_limits<int64_t>::max()); !s.ok()) return s;
  }
  const VerifyReport report = verifier.Finish();
  out.set_ok(report.ok);
  out.set_events_checked(report.events_checked);
  out.set_checkpoints_checked(report.checkpoints_checked);
  out.set_keys_pinned(report.keys_pinned);
  out.set_first_bad_position(report.first_bad_position);
  out.set_problem(report.problem);
  out.set_verified_through(std::min(report.verified_through, last));
  return out;
}

}  // namespace audit::query
