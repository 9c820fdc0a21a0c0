#include "audit/merkle.h"

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, whose per-call
// algorithm lookup costs several times a short hash (docs/DECISIONS.md, 2026-11-26).
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace audit::merkle {
namespace {

absl::Status Invalid(absl::string_view why) { return absl::InvalidArgumentError(why); }

bool IsPowerOfTwo(uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

int Log2(uint64_t n) { return 63 - __builtin_clzll(n); }

absl::Status Path(uint64_t m, uint64_t lo, uint64_t hi, const SubtreeFn& subtree,
                  std::vector<Sha256Digest>* out) {
  const uint64_t n = hi - lo;
  if (n == 1) return absl::OkStatus();
  const uint64_t k = SplitPoint(n);
  absl::StatusOr<Sha256Digest> sibling;
  if (m < lo + k) {
    if (absl::Status s = Path(m, lo, lo + k, subtree, out); !s.ok()) return s;
    sibling = RangeHash(lo + k, hi, subtree);
  } else {
    if (absl::Status s = Path(m, lo + k, hi, subtree, out); !s.ok()) return s;
    sibling = RangeHash(lo, lo + k, subtree);
  }
  if (!sibling.ok()) return sibling.status();
  out->push_back(*sibling);
  return absl::OkStatus();
}

// RFC 6962 SUBPROOF(m, D[lo:hi], b), m counted from lo.
absl::Status SubProof(uint64_t m, uint64_t lo, uint64_t hi, bool b, const SubtreeFn& subtree,
                      std::vector<Sha256Digest>* out) {
  const uint64_t n = hi - lo;
  if (m == n) {
    if (b) return absl::OkStatus();
    absl::StatusOr<Sha256Digest> h = RangeHash(lo, hi, subtree);
    if (!h.ok()) return h.status();
    out->push_back(*h);
    return absl::OkStatus();
  }
  const uint64_t k = SplitPoint(n);
  absl::StatusOr<Sha256Digest> other;
  if (m <= k) {
    if (absl::Status s = SubProof(m, lo, lo + k, b, subtree, out); !s.ok()) return s;
    other = RangeHash(lo + k, hi, subtree);
  } else {
    if (absl::Status s = SubProof(m - k, lo + k, hi, false, subtree, out); !s.ok()) return s;
    other = RangeHash(lo, lo + k, subtree);
  }
  if (!other.ok()) return other.status();
  out->push_back(*other);
  return absl::OkStatus();
}

absl::Status Collect(uint64_t lo, uint64_t hi, uint64_t begin, uint64_t end,
                     const SubtreeFn& subtree, std::vector<Sha256Digest>* out) {
  if (hi <= begin || lo >= end) {
    absl::StatusOr<Sha256Digest> h = RangeHash(lo, hi, subtree);
    if (!h.ok()) return h.status();
    out->push_back(*h);
    return absl::OkStatus();
  }
  if (hi - lo == 1) return absl::OkStatus();
  const uint64_t k = SplitPoint(hi - lo);
  if (absl::Status s = Collect(lo, lo + k, begin, end, subtree, out); !s.ok()) return s;
  return Collect(lo + k, hi, begin, end, subtree, out);
}

struct RangeRecompute {
  uint64_t begin, end;
  absl::Span<const Sha256Digest> leaves;
  absl::Span<const Sha256Digest> proof;
  size_t next = 0;

  absl::StatusOr<Sha256Digest> At(uint64_t lo, uint64_t hi) {
    if (hi <= begin || lo >= end) {
      if (next >= proof.size()) return Invalid("range proof too short");
      return proof[next++];
    }
    if (hi - lo == 1) return leaves[lo - begin];
    const uint64_t k = SplitPoint(hi - lo);
    absl::StatusOr<Sha256Digest> left = At(lo, lo + k);
    if (!left.ok()) return left;
    absl::StatusOr<Sha256Digest> right = At(lo + k, hi);
    if (!right.ok()) return right;
    return NodeHash(*left, *right);
  }
};

}  // namespace

Sha256Digest LeafHash(absl::string_view data) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  const unsigned char prefix = 0x00;
  SHA256_Update(&ctx, &prefix, 1);
  SHA256_Update(&ctx, data.data(), data.size());
  Sha256Digest d;
  SHA256_Final(d.data(), &ctx);
  return d;
}

Sha256Digest NodeHash(const Sha256Digest& left, const Sha256Digest& right) {
  unsigned char buf[65];
  buf[0] = 0x01;
  std::copy(left.begin(), left.end(), buf + 1);
  std::copy(right.begin(), right.end(), buf + 33);
  return Sha256(absl::string_view(reinterpret_cast<const char*>(buf), sizeof buf));
}

Sha256Digest EmptyRoot() { return Sha256(""); }

uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

SubtreeFn SubtreesOf(absl::Span<const Sha256Digest> leaves) {
  // Owns a copy: the function may outlive the caller's leaves.
  auto owned = std::make_shared<const std::vector<Sha256Digest>>(leaves.begin(), leaves.end());
  return [owned](int level, uint64_t index) -> absl::StatusOr<Sha256Digest> {
    const std::vector<Sha256Digest>& leaves = *owned;
    std::function<absl::StatusOr<Sha256Digest>(int, uint64_t)> at =
        [&](int l, uint64_t i) -> absl::StatusOr<Sha256Digest> {
      if (l == 0) {
        if (i >= leaves.size()) return absl::OutOfRangeError("no such leaf");
        return leaves[i];
      }
      absl::StatusOr<Sha256Digest> left = at(l - 1, 2 * i);
      if (!left.ok()) return left;
      absl::StatusOr<Sha256Digest> right = at(l - 1, 2 * i + 1);
      if (!right.ok()) return right;
      return NodeHash(*left, *right);
    };
    return at(level, index);
  };
}

absl::StatusOr<Sha256Digest> RangeHash(uint64_t begin, uint64_t end, const SubtreeFn& subtree) {
  if (end <= begin) return Invalid("empty range");
  const uint64_t n = end - begin;
  if (IsPowerOfTwo(n) && begin % n == 0) return subtree(Log2(n), begin / n);
  const uint64_t k = SplitPoint(n);
  absl::StatusOr<Sha256Digest> left = RangeHash(begin, begin + k, subtree);
  if (!left.ok()) return left;
  absl::StatusOr<Sha256Digest> right = RangeHash(begin + k, end, subtree);
  if (!right.ok()) return right;
  return NodeHash(*left, *right);
}

absl::StatusOr<Sha256Digest> Root(uint64_t size, const SubtreeFn& subtree) {
  if (size == 0) return EmptyRoot();
  return RangeHash(0, size, subtree);
}

absl::StatusOr<std::vector<Sha256Digest>> InclusionProof(uint64_t index, uint64_t size,
                                                         const SubtreeFn& subtree) {
  if (index >= size) {
    return Invalid(absl::StrCat("leaf index ", index, " is not below tree size ", size));
  }
  std::vector<Sha256Digest> out;
  if (absl::Status s = Path(index, 0, size, subtree, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<Sha256Digest>> ConsistencyProof(uint64_t size1, uint64_t size2,
                                                           const SubtreeFn& subtree) {
  if (size1 == 0 || size1 > size2) {
    return Invalid(absl::StrCat("need 0 < first size <= second size, got ", size1, " and ", size2));
  }
  std::vector<Sha256Digest> out;
  if (size1 == size2) return out;
  if (absl::Status s = SubProof(size1, 0, size2, true, subtree, &out); !s.ok()) return s;
  return out;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Sha256Digest& leaf_hash,
                             absl::Span<const Sha256Digest> proof, const Sha256Digest& root) {
  if (index >= size) return Invalid("leaf index is not below the tree size");
  uint64_t fn = index, sn = size - 1;
  Sha256Digest r = leaf_hash;
  for (const Sha256Digest& p : proof) {
    if (sn == 0) return Invalid("inclusion proof too long");
    if ((fn & 1) || fn == sn) {
      r = NodeHash(p, r);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Invalid("inclusion proof too short");
  if (r != root) return Invalid("inclusion proof does not lead to the root");
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t size1, uint64_t size2, const Sha256Digest& root1,
                               const Sha256Digest& root2, absl::Span<const Sha256Digest> proof) {
  if (size1 == 0 || size1 > size2) return Invalid("need 0 < first size <= second size");
  if (size1 == size2) {
    if (!proof.empty()) return Invalid("consistency proof between equal sizes must be empty");
    if (root1 != root2) return Invalid("equal sizes with different roots");
    return absl::OkStatus();
  }
  if (proof.empty()) return Invalid("consistency proof is empty");
  std::vector<Sha256Digest> path(proof.begin(), proof.end());
  if (IsPowerOfTwo(size1)) path.insert(path.begin(), root1);
  uint64_t fn = size1 - 1, sn = size2 - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  Sha256Digest fr = path[0], sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Sha256Digest& c = path[i];
    if (sn == 0) return Invalid("consistency proof too long");
    if ((fn & 1) || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return Invalid("consistency proof too short");
  if (fr != root1) return Invalid("consistency proof does not lead to the first root");
  if (sr != root2) return Invalid("consistency proof does not lead to the second root");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Sha256Digest>> RangeProof(uint64_t begin, uint64_t end, uint64_t size,
                                                     const SubtreeFn& subtree) {
  if (begin >= end || end > size) {
    return Invalid(absl::StrCat("need begin < end <= size, got ", begin, ", ", end, ", ", size));
  }
  std::vector<Sha256Digest> out;
  if (absl::Status s = Collect(0, size, begin, end, subtree, &out); !s.ok()) return s;
  return out;
}

absl::Status VerifyRange(uint64_t begin, absl::Span<const Sha256Digest> leaves, uint64_t size,
                         absl::Span<const Sha256Digest> proof, const Sha256Digest& root) {
  if (leaves.empty()) return Invalid("no leaves to verify");
  const uint64_t end = begin + leaves.size();
  if (end > size) return Invalid("range extends beyond the tree");
  RangeRecompute rc{begin, end, leaves, proof};
  absl::StatusOr<Sha256Digest> computed = rc.At(0, size);
  if (!computed.ok()) return computed.status();
  if (rc.next != proof.size()) return Invalid("range proof too long");
  if (*computed != root) return Invalid("range proof does not lead to the root");
  return absl::OkStatus();
}

absl::StatusOr<Frontier> Frontier::Of(uint64_t size, const SubtreeFn& subtree) {
  Frontier f;
  f.size_ = size;
  uint64_t start = 0;
  for (int level = 63; level >= 0; --level) {
    if (!(size >> level & 1)) continue;
    const uint64_t index = start >> level;
    absl::StatusOr<Sha256Digest> h = subtree(level, index);
    if (!h.ok()) return h.status();
    f.nodes_.push_back({level, index, *h});
    start += uint64_t{1} << level;
  }
  return f;
}

void Frontier::Append(const Sha256Digest& leaf_hash, int min_level, std::vector<Node>* completed) {
  nodes_.push_back({0, size_, leaf_hash});
  ++size_;
  if (min_level <= 0 && completed != nullptr) completed->push_back(nodes_.back());
  while (nodes_.size() >= 2 && nodes_[nodes_.size() - 1].level == nodes_[nodes_.size() - 2].level) {
    const Node right = nodes_.back();
    nodes_.pop_back();
    const Node left = nodes_.back();
    nodes_.pop_back();
    nodes_.push_back({left.level + 1, left.index / 2, NodeHash(left.hash, right.hash)});
    if (nodes_.back().level >= min_level && completed != nullptr) {
      completed->push_back(nodes_.back());
    }
  }
}

Sha256Digest Frontier::Root() const {
  if (nodes_.empty()) return EmptyRoot();
  Sha256Digest r = nodes_.back().hash;
  for (size_t i = nodes_.size() - 1; i-- > 0;) r = NodeHash(nodes_[i].hash, r);
  return r;
}

}  // namespace audit::merkle
