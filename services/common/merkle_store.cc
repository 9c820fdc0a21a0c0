#include "services/common/merkle_store.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "audit/record.h"
#include "services/common/pg.h"

namespace audit {

absl::StatusOr<const std::vector<Sha256Digest>*> PgSubtrees::Tile(uint64_t tile) {
  if (auto it = tiles_.find(tile); it != tiles_.end()) return &it->second;
  const std::optional<std::string> params[] = {absl::StrCat(tile * 256 + 1),
                                               absl::StrCat(tile * 256 + 256)};
  absl::StatusOr<pg::ResultPtr> r = pg::ExecParams(
      conn_,
      "SELECT leaf_hash FROM audit.events WHERE position BETWEEN $1 AND $2 ORDER BY position",
      params);
  if (!r.ok()) return r.status();
  std::vector<Sha256Digest> leaves;
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    absl::StatusOr<std::string> bytes = pg::DecodeByteaHex(pg::Value(r->get(), i, 0));
    Sha256Digest d;
    if (!bytes.ok() || !DigestFromBytes(*bytes, &d)) {
      return absl::InternalError("malformed leaf_hash in the store");
    }
    leaves.push_back(d);
  }
  return &(tiles_[tile] = std::move(leaves));
}

absl::StatusOr<Sha256Digest> PgSubtrees::Subtree(int level, uint64_t index) {
  if (level >= kStoredMerkleLevel) {
    const std::optional<std::string> params[] = {absl::StrCat(level), absl::StrCat(index)};
    absl::StatusOr<pg::ResultPtr> r = pg::ExecParams(
        conn_, "SELECT hash FROM audit.merkle_nodes WHERE level = $1 AND node_index = $2", params);
    if (!r.ok()) return r.status();
    Sha256Digest d;
    absl::StatusOr<std::string> bytes = PQntuples(r->get()) == 1
                                            ? pg::DecodeByteaHex(pg::Value(r->get(), 0, 0))
                                            : absl::StatusOr<std::string>(absl::NotFoundError(""));
    if (!bytes.ok() || !DigestFromBytes(*bytes, &d)) {
      return absl::FailedPreconditionError(
          absl::StrCat("Merkle node (", level, ", ", index, ") is missing from the store"));
    }
    return d;
  }
  const uint64_t first = index << level;
  const uint64_t tile = first >> kStoredMerkleLevel;
  absl::StatusOr<const std::vector<Sha256Digest>*> leaves = Tile(tile);
  if (!leaves.ok()) return leaves.status();
  const uint64_t offset = first - tile * 256;
  const uint64_t count = uint64_t{1} << level;
  if ((*leaves)->size() < offset + count) {
    return absl::FailedPreconditionError(
        absl::StrCat("leaves ", first + 1, "..", first + count, " are not all stored"));
  }
  return merkle::RangeHash(
      0, count, merkle::SubtreesOf(absl::MakeConstSpan(**leaves).subspan(offset, count)));
}

}  // namespace audit
