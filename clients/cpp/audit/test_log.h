// Test helper: a correct log in memory, the way the store builds it, plus signed checkpoints.
// Test-only.
#ifndef CLIENTS_CPP_AUDIT_TEST_LOG_H_
#define CLIENTS_CPP_AUDIT_TEST_LOG_H_

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audit/canonical.h"
#include "audit/checkpoint.h"
#include "audit/envelope.h"
#include "audit/merkle.h"
#include "audit/record.h"
#include "audit/rfc3339.h"
#include "audit/test_events.h"
#include "audit/v1/audit_service.pb.h"

namespace audit::testing {

struct TestLog {
  std::vector<v1::StoredEvent> events;
  std::vector<v1::Checkpoint> checkpoints;
};

// Recomputes the content, leaf and chain hashes of events[from..] (what an attacker who knows
// the algorithms can do), given the chain before `from`.
inline void Rehash(std::vector<v1::StoredEvent>* events, size_t from) {
  Sha256Digest chain = {};
  if (from > 0) {
    DigestFromBytes((*events)[from - 1].chain_hash(), &chain);
  }
  for (size_t i = from; i < events->size(); ++i) {
    v1::StoredEvent& e = (*events)[i];
    e.set_content_hash(std::string(DigestBytes(RecomputeContentHash(e))));
    const Sha256Digest leaf = RecomputeLeafHash(e);
    e.set_leaf_hash(std::string(DigestBytes(leaf)));
    chain = ChainHash(chain, leaf);
    e.set_chain_hash(std::string(DigestBytes(chain)));
  }
}

inline v1::Checkpoint MakeCheckpoint(const std::vector<v1::StoredEvent>& events, int64_t size,
                                     const v1::Checkpoint* previous, const SigningKey& key,
                                     v1::CheckpointKind kind = v1::CHECKPOINT_KIND_CHECKPOINT) {
  std::vector<Sha256Digest> leaves;
  for (int64_t i = 0; i < size; ++i) {
    Sha256Digest d;
    DigestFromBytes(events[i].leaf_hash(), &d);
    leaves.push_back(d);
  }
  v1::Checkpoint c;
  c.set_seq(previous ? previous->seq() + 1 : 1);
  c.set_kind(kind);
  c.set_tree_size(size);
  c.set_root_hash(std::string(DigestBytes(*merkle::Root(size, merkle::SubtreesOf(leaves)))));
  c.set_chain_hash(size > 0 ? events[size - 1].chain_hash() : std::string(32, '\0'));
  c.mutable_created_time()->set_seconds(1767225600 + size);
  c.set_previous_signature_hash(previous ? std::string(DigestBytes(SignatureHash(*previous)))
                                         : std::string(32, '\0'));
  SignCheckpoint(key, &c);
  return c;
}

// `n` events, a checkpoint every `every` events (and none at the tail beyond the last one).
inline TestLog BuildLog(int n, int every, const SigningKey& key) {
  TestLog log;
  for (int i = 1; i <= n; ++i) {
    v1::StoredEvent s;
    s.set_position(i);
    *s.mutable_event() = MakeValidEvent(absl::StrCat("e", i), absl::StrCat("order-", i % 5));
    NormalizeEvent(s.mutable_event()).IgnoreError();
    *s.mutable_recorded_time() = FromUnixMicros(1767225600000000 + i * 1000);
    s.mutable_provenance()->set_topic("orders.events");
    s.mutable_provenance()->set_partition(i % 3);
    s.mutable_provenance()->set_offset(100 + i);
    log.events.push_back(s);
  }
  Rehash(&log.events, 0);
  for (int size = every; size <= n; size += every) {
    log.checkpoints.push_back(MakeCheckpoint(
        log.events, size, log.checkpoints.empty() ? nullptr : &log.checkpoints.back(), key));
  }
  return log;
}

}  // namespace audit::testing

#endif  // CLIENTS_CPP_AUDIT_TEST_LOG_H_
