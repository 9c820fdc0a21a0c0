// RFC 6962 / RFC 9162 Merkle trees over the audit log, and their proofs.
//
// Leaf i (0-based) of the tree is the event at position i + 1. Hashing is RFC 6962's:
// leaf hash = SHA-256(0x00 || leaf data), interior node = SHA-256(0x01 || left || right), the
// empty tree's hash = SHA-256(""), and a tree of n leaves splits at the largest power of two
// smaller than n. A "perfect subtree" (level L, index i) is the complete subtree over leaves
// [i * 2^L, (i + 1) * 2^L); the store keeps those with L >= 8, so every proof needs at most
// a few hundred leaf hashes besides them.
//
// Proof generation takes a SubtreeFn (where perfect subtree hashes come from: a vector of
// leaves in tests, the database on the server). Verification is pure and follows RFC 9162
// (sections 2.1.3.2 and 2.1.4.2) exactly; every failure is INVALID_ARGUMENT explaining why.
// Thread-safe.
#ifndef CLIENTS_CPP_AUDIT_MERKLE_H_
#define CLIENTS_CPP_AUDIT_MERKLE_H_

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "audit/canonical.h"

namespace audit::merkle {

// SHA-256(0x00 || data).
Sha256Digest LeafHash(absl::string_view data);
// SHA-256(0x01 || left || right).
Sha256Digest NodeHash(const Sha256Digest& left, const Sha256Digest& right);
// SHA-256 of the empty string: the root of the empty tree.
Sha256Digest EmptyRoot();

// The largest power of two strictly smaller than n (n >= 2).
uint64_t SplitPoint(uint64_t n);

// The hash of perfect subtree (level, index).
using SubtreeFn = std::function<absl::StatusOr<Sha256Digest>(int level, uint64_t index)>;

// A SubtreeFn over leaf hashes in memory (leaf i is leaves[i]); keeps its own copy.
SubtreeFn SubtreesOf(absl::Span<const Sha256Digest> leaves);

// The RFC 6962 hash of leaves [begin, end), begin < end, end <= the tree's size, where begin
// is a multiple of the split structure (as in every range the RFC 6962 recursion visits).
absl::StatusOr<Sha256Digest> RangeHash(uint64_t begin, uint64_t end, const SubtreeFn& subtree);

// The root of the tree of the first `size` leaves.
absl::StatusOr<Sha256Digest> Root(uint64_t size, const SubtreeFn& subtree);

// RFC 6962 audit path for leaf `index` in the tree of `size` leaves (bottom-up).
absl::StatusOr<std::vector<Sha256Digest>> InclusionProof(uint64_t index, uint64_t size,
                                                         const SubtreeFn& subtree);

// RFC 6962 consistency proof from the tree of `size1` leaves to the tree of `size2` leaves.
absl::StatusOr<std::vector<Sha256Digest>> ConsistencyProof(uint64_t size1, uint64_t size2,
                                                           const SubtreeFn& subtree);

// OK iff `proof` proves that `leaf_hash` is leaf `index` of the tree of `size` leaves whose
// root is `root`.
absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Sha256Digest& leaf_hash,
                             absl::Span<const Sha256Digest> proof, const Sha256Digest& root);

// OK iff `proof` proves the tree (size1, root1) is a prefix of the tree (size2, root2).
absl::Status VerifyConsistency(uint64_t size1, uint64_t size2, const Sha256Digest& root1,
                               const Sha256Digest& root2, absl::Span<const Sha256Digest> proof);

// Range proofs: the hashes of every subtree disjoint from leaves [begin, end) that the RFC
// 6962 recursion over the tree of `size` leaves meets, left to right. With the leaves of the
// range, they recompute the root: proof that the range is exactly these leaves, in this order,
// nothing missing, nothing added.
absl::StatusOr<std::vector<Sha256Digest>> RangeProof(uint64_t begin, uint64_t end, uint64_t size,
                                                     const SubtreeFn& subtree);
absl::Status VerifyRange(uint64_t begin, absl::Span<const Sha256Digest> leaves, uint64_t size,
                         absl::Span<const Sha256Digest> proof, const Sha256Digest& root);

// The perfect-subtree roots of a tree (one per set bit of its size, largest first): enough to
// append leaves and to compute the root without the leaves themselves.
class Frontier {
 public:
  struct Node {
    int level;
    uint64_t index;
    Sha256Digest hash;
  };

  Frontier() = default;
  // The frontier of the tree of `size` leaves, from its perfect subtrees.
  static absl::StatusOr<Frontier> Of(uint64_t size, const SubtreeFn& subtree);

  uint64_t size() const { return size_; }
  const std::vector<Node>& nodes() const { return nodes_; }

  // Appends a leaf; perfect subtrees completed with level >= min_level go to `completed`.
  void Append(const Sha256Digest& leaf_hash, int min_level, std::vector<Node>* completed);
  Sha256Digest Root() const;

 private:
  uint64_t size_ = 0;
  std::vector<Node> nodes_;
};

}  // namespace audit::merkle

#endif  // CLIENTS_CPP_AUDIT_MERKLE_H_
