#include "audit/merkle.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace audit::merkle {
namespace {

Sha256Digest D(absl::string_view hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  Sha256Digest d;
  std::copy(bytes.begin(), bytes.end(), d.begin());
  return d;
}

std::string Hex(const Sha256Digest& d) { return HexDigest(d); }

// RFC 6962 test vectors published by Certificate Transparency (data only).
std::vector<Sha256Digest> CtLeaves() {
  std::vector<Sha256Digest> out;
  for (absl::string_view hex : {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                "606162636465666768696a6b6c6d6e6f"}) {
    out.push_back(LeafHash(absl::HexStringToBytes(hex)));
  }
  return out;
}

constexpr const char* kCtRoots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

std::vector<Sha256Digest> Synthetic(int n) {
  std::vector<Sha256Digest> out;
  for (int i = 0; i < n; ++i) out.push_back(LeafHash(std::string(1, static_cast<char>(i))));
  return out;
}

TEST(MerkleTest, RootsMatchRfc6962Vectors) {
  const std::vector<Sha256Digest> leaves = CtLeaves();
  for (uint64_t n = 0; n <= leaves.size(); ++n) {
    absl::StatusOr<Sha256Digest> root = Root(n, SubtreesOf(leaves));
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(Hex(*root), kCtRoots[n]) << "size " << n;
  }
}

TEST(MerkleTest, SplitPointIsTheLargestPowerOfTwoBelow) {
  EXPECT_EQ(SplitPoint(2), 1u);
  EXPECT_EQ(SplitPoint(3), 2u);
  EXPECT_EQ(SplitPoint(4), 2u);
  EXPECT_EQ(SplitPoint(5), 4u);
  EXPECT_EQ(SplitPoint(8), 4u);
  EXPECT_EQ(SplitPoint(9), 8u);
  EXPECT_EQ(SplitPoint(1000), 512u);
}

TEST(MerkleTest, InclusionProofsMatchRfc6962Vectors) {
  const auto fn = SubtreesOf(CtLeaves());
  const std::vector<std::pair<uint64_t, std::vector<const char*>>> cases = {
      {0,
       {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {5,
       {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
  };
  for (const auto& [index, expected] : cases) {
    absl::StatusOr<std::vector<Sha256Digest>> proof = InclusionProof(index, 8, fn);
    ASSERT_TRUE(proof.ok());
    ASSERT_EQ(proof->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(Hex((*proof)[i]), expected[i]);
    EXPECT_TRUE(VerifyInclusion(index, 8, CtLeaves()[index], *proof, D(kCtRoots[8])).ok());
  }
}

TEST(MerkleTest, ConsistencyProofsMatchRfc6962Vectors) {
  const auto fn = SubtreesOf(CtLeaves());
  const std::vector<std::tuple<uint64_t, uint64_t, std::vector<const char*>>> cases = {
      {2,
       8,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
      {6,
       8,
       {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
      {2,
       5,
       {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
  };
  for (const auto& [m, n, expected] : cases) {
    absl::StatusOr<std::vector<Sha256Digest>> proof = ConsistencyProof(m, n, fn);
    ASSERT_TRUE(proof.ok());
    ASSERT_EQ(proof->size(), expected.size()) << m << "->" << n;
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(Hex((*proof)[i]), expected[i]);
    EXPECT_TRUE(VerifyConsistency(m, n, D(kCtRoots[m]), D(kCtRoots[n]), *proof).ok());
  }
}

TEST(MerkleTest, EveryProofOfEveryShapeVerifies) {
  const std::vector<Sha256Digest> leaves = Synthetic(64);
  const auto fn = SubtreesOf(leaves);
  for (uint64_t n = 1; n <= 64; ++n) {
    const Sha256Digest root = *Root(n, fn);
    for (uint64_t i = 0; i < n; ++i) {
      absl::StatusOr<std::vector<Sha256Digest>> p = InclusionProof(i, n, fn);
      ASSERT_TRUE(p.ok());
      ASSERT_TRUE(VerifyInclusion(i, n, leaves[i], *p, root).ok()) << i << " in " << n;
    }
    for (uint64_t m = 1; m <= n; ++m) {
      absl::StatusOr<std::vector<Sha256Digest>> p = ConsistencyProof(m, n, fn);
      ASSERT_TRUE(p.ok());
      ASSERT_TRUE(VerifyConsistency(m, n, *Root(m, fn), root, *p).ok()) << m << "->" << n;
    }
  }
  for (uint64_t n = 1; n <= 24; ++n) {
    const Sha256Digest root = *Root(n, fn);
    for (uint64_t b = 0; b < n; ++b) {
      for (uint64_t e = b + 1; e <= n; ++e) {
        absl::StatusOr<std::vector<Sha256Digest>> p = RangeProof(b, e, n, fn);
        ASSERT_TRUE(p.ok());
        ASSERT_TRUE(VerifyRange(b, absl::MakeConstSpan(leaves).subspan(b, e - b), n, *p, root).ok())
            << "[" << b << "," << e << ") of " << n;
      }
    }
  }
}

// Verifiers that accept forged proofs are a known failure of such systems.
TEST(MerkleTest, ForgedInclusionProofsAreRejected) {
  const std::vector<Sha256Digest> leaves = Synthetic(40);  // room for size n + 1
  const auto fn = SubtreesOf(leaves);
  for (uint64_t n : {2u, 7u, 8u, 13u, 32u, 37u}) {
    const Sha256Digest root = *Root(n, fn);
    for (uint64_t i = 0; i < n; ++i) {
      const std::vector<Sha256Digest> good = *InclusionProof(i, n, fn);
      for (size_t k = 0; k < good.size(); ++k) {  // forged sibling
        std::vector<Sha256Digest> forged = good;
        forged[k][0] ^= 1;
        EXPECT_FALSE(VerifyInclusion(i, n, leaves[i], forged, root).ok()) << i << " " << n;
      }
      // A proof for another tree size, checked against that tree's (size, root), as a signed
      // checkpoint presents them.
      EXPECT_FALSE(VerifyInclusion(i, n + 1, leaves[i], good, *Root(n + 1, fn)).ok());
      if (i < n - 1) {
        EXPECT_FALSE(VerifyInclusion(i, n - 1, leaves[i], good, *Root(n - 1, fn)).ok());
      }
      EXPECT_FALSE(VerifyInclusion(i, n, leaves[i], good, leaves[0]).ok());  // wrong root
      if (!good.empty()) {                                                   // truncated
        EXPECT_FALSE(
            VerifyInclusion(i, n, leaves[i], absl::MakeConstSpan(good).first(good.size() - 1), root)
                .ok());
      }
      std::vector<Sha256Digest> longer = good;  // extended
      longer.push_back(leaves[0]);
      EXPECT_FALSE(VerifyInclusion(i, n, leaves[i], longer, root).ok());
      if (n > 1) {  // another index, another leaf
        EXPECT_FALSE(VerifyInclusion((i + 1) % n, n, leaves[i], good, root).ok());
      }
      EXPECT_FALSE(VerifyInclusion(i, n, leaves[(i + 1) % 37], good, root).ok());
    }
  }
  EXPECT_FALSE(VerifyInclusion(8, 8, leaves[0], {}, leaves[0]).ok());  // index out of range
}

TEST(MerkleTest, ForgedConsistencyProofsAreRejected) {
  const auto fn = SubtreesOf(Synthetic(48));  // room for size n + 1
  for (auto [m, n] : std::vector<std::pair<uint64_t, uint64_t>>{
           {1, 2}, {3, 7}, {4, 8}, {6, 8}, {5, 40}, {32, 40}, {17, 33}}) {
    const Sha256Digest r1 = *Root(m, fn), r2 = *Root(n, fn);
    const std::vector<Sha256Digest> good = *ConsistencyProof(m, n, fn);
    ASSERT_TRUE(VerifyConsistency(m, n, r1, r2, good).ok());
    for (size_t k = 0; k < good.size(); ++k) {
      std::vector<Sha256Digest> forged = good;
      forged[k][31] ^= 0x80;
      EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, forged).ok()) << m << "->" << n;
    }
    EXPECT_FALSE(VerifyConsistency(m, n, r2, r1, good).ok());  // swapped roots
    // Proofs for other sizes, checked against the (size, root) pairs of those trees.
    EXPECT_FALSE(VerifyConsistency(m, n + 1, r1, *Root(n + 1, fn), good).ok());
    if (m + 1 < n) EXPECT_FALSE(VerifyConsistency(m + 1, n, *Root(m + 1, fn), r2, good).ok());
    EXPECT_FALSE(
        VerifyConsistency(m, n, r1, r2, absl::MakeConstSpan(good).first(good.size() - 1)).ok());
    std::vector<Sha256Digest> longer = good;
    longer.push_back(r1);
    EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, longer).ok());
    EXPECT_FALSE(VerifyConsistency(m, n, r1, r2, {}).ok());
  }
  EXPECT_FALSE(VerifyConsistency(5, 4, D(kCtRoots[5]), D(kCtRoots[4]), {}).ok());
  EXPECT_FALSE(VerifyConsistency(0, 4, EmptyRoot(), D(kCtRoots[4]), {}).ok());
}

TEST(MerkleTest, ForgedRangesAreRejected) {
  const std::vector<Sha256Digest> leaves = Synthetic(30);
  const auto fn = SubtreesOf(leaves);
  const uint64_t n = 30, b = 9, e = 21;
  const Sha256Digest root = *Root(n, fn);
  const std::vector<Sha256Digest> proof = *RangeProof(b, e, n, fn);
  std::vector<Sha256Digest> range(leaves.begin() + b, leaves.begin() + e);
  ASSERT_TRUE(VerifyRange(b, range, n, proof, root).ok());

  std::vector<Sha256Digest> missing = range;  // a leaf left out
  missing.erase(missing.begin() + 4);
  EXPECT_FALSE(VerifyRange(b, missing, n, proof, root).ok());
  std::vector<Sha256Digest> swapped = range;  // two leaves swapped
  std::swap(swapped[2], swapped[3]);
  EXPECT_FALSE(VerifyRange(b, swapped, n, proof, root).ok());
  std::vector<Sha256Digest> added = range;  // a leaf slipped in
  added.insert(added.begin() + 5, leaves[0]);
  EXPECT_FALSE(VerifyRange(b, added, n, proof, root).ok());
  EXPECT_FALSE(VerifyRange(b + 1, range, n, proof, root).ok());  // shifted
  EXPECT_FALSE(
      VerifyRange(b, range, n, absl::MakeConstSpan(proof).first(proof.size() - 1), root).ok());
  std::vector<Sha256Digest> forged = proof;
  forged[0][5] ^= 4;
  EXPECT_FALSE(VerifyRange(b, range, n, forged, root).ok());
}

TEST(MerkleTest, FrontierAppendsMatchRootsAndReportCompletedSubtrees) {
  const std::vector<Sha256Digest> leaves = Synthetic(300);
  const auto fn = SubtreesOf(leaves);
  Frontier f;
  std::vector<Frontier::Node> completed;
  for (uint64_t i = 0; i < leaves.size(); ++i) {
    f.Append(leaves[i], 3, &completed);
    ASSERT_EQ(f.size(), i + 1);
    ASSERT_EQ(f.Root(), *Root(i + 1, fn)) << i + 1;
  }
  // Every complete subtree of level >= 3 within 300 leaves, each once, with the right hash.
  size_t expected = 0;
  for (int level = 3; (uint64_t{1} << level) <= 300; ++level) expected += 300 >> level;
  EXPECT_EQ(completed.size(), expected);
  for (const Frontier::Node& node : completed) {
    EXPECT_EQ(node.hash, *fn(node.level, node.index)) << node.level << "/" << node.index;
  }
  absl::StatusOr<Frontier> rebuilt = Frontier::Of(300, fn);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt->Root(), f.Root());
  EXPECT_EQ(Frontier().Root(), EmptyRoot());
}

}  // namespace
}  // namespace audit::merkle
