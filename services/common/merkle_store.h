// Perfect Merkle subtree hashes from the store, for proofs and for continuing the tree.
//
// Levels >= 8 come from audit.merkle_nodes; lower ones are computed from the leaf hashes of
// their 256-leaf tile (positions t*256+1 .. t*256+256), read once per tile and cached. So any
// proof costs O(log n) node lookups and at most a few tile reads. Reads through `conn` (a role
// that may read leaf_hash and merkle_nodes). Not thread-safe; one per request.
#ifndef SERVICES_COMMON_MERKLE_STORE_H_
#define SERVICES_COMMON_MERKLE_STORE_H_

#include <libpq-fe.h>

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/statusor.h"
#include "audit/canonical.h"
#include "audit/merkle.h"

namespace audit {

inline constexpr int kStoredMerkleLevel = 8;

class PgSubtrees {
 public:
  explicit PgSubtrees(PGconn* conn) : conn_(conn) {}

  // FAILED_PRECONDITION if the subtree is not complete in the store (or a node is missing).
  absl::StatusOr<Sha256Digest> Subtree(int level, uint64_t index);
  merkle::SubtreeFn AsFn() {
    return [this](int level, uint64_t index) { return Subtree(level, index); };
  }

 private:
  absl::StatusOr<const std::vector<Sha256Digest>*> Tile(uint64_t tile);

  PGconn* conn_;
  std::map<uint64_t, std::vector<Sha256Digest>> tiles_;
};

}  // namespace audit

#endif  // SERVICES_COMMON_MERKLE_STORE_H_
