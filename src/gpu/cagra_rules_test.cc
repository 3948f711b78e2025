// The per-node CAGRA optimization rules (cagra_rules.h) on hand-made graphs, on the CPU: the
// table-and-bits detour count the kernel uses equals the definition, the pruned order, the
// merge, and the whole rule on a graph worked out by hand.
#include "gpu/cagra_rules.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "common/testing.h"
#include "vector/index_parts.h"

namespace vlake::gpu::cagra_rules {
namespace {

static_assert(kNoNode == vector::kNoNeighbor);
constexpr uint32_t X = kNoNode;

uint32_t TableSizeFor(int knn_degree) {
  uint32_t size = 1;
  while (size < static_cast<uint32_t>(2 * knn_degree)) size <<= 1;
  return size;
}

// detours(node, j) for every j the way PruneKernel computes them, serially.
std::vector<int> TableDetours(const std::vector<uint32_t>& knn, uint64_t rows, int k,
                              uint64_t node) {
  const uint32_t* list = knn.data() + node * k;
  const uint32_t size = TableSizeFor(k);
  std::vector<uint32_t> keys(size, kNoNode), positions(size, 0);
  for (int j = 0; j < k; ++j) {
    if (IsNode(list[j], rows))
      TableInsertSerial(keys.data(), positions.data(), size - 1, list[j], j);
  }
  std::vector<uint32_t> bits(static_cast<size_t>(k) * WordsPerRow(k), 0);
  auto set_bit = [&](int word, uint32_t mask) { bits[word] |= mask; };
  for (int r = 0; r + 1 < k; ++r) {
    for (int s = 0; s + 1 < k; ++s) {
      MarkDetourPair(knn.data(), rows, k, list, keys.data(), positions.data(), size - 1, r, s,
                     set_bit);
    }
  }
  std::vector<int> detours(k);
  for (int j = 0; j < k; ++j) detours[j] = DetourCountFromBits(bits.data(), k, j);
  return detours;
}

std::vector<int> DefinitionDetours(const std::vector<uint32_t>& knn, uint64_t rows, int k,
                                   uint64_t node) {
  std::vector<int> detours(k);
  for (int j = 0; j < k; ++j) {
    detours[j] = DetourCountByDefinition(knn.data(), rows, k, knn.data() + node * k, j);
  }
  return detours;
}

std::vector<uint32_t> Pruned(const std::vector<uint32_t>& knn, uint64_t rows, int k, int degree,
                             uint64_t node) {
  const uint32_t* list = knn.data() + node * k;
  const std::vector<int> detours = TableDetours(knn, rows, k, node);
  std::vector<int> keys(k);
  for (int j = 0; j < k; ++j) keys[j] = PruneKey(list[j], rows, k, detours[j]);
  std::vector<uint32_t> out(degree, 0xdeadbeefu);
  for (int j = 0; j < k; ++j) {
    const int rank = PruneRank(keys.data(), k, j);
    if (rank < degree) out[rank] = IsNode(list[j], rows) ? list[j] : kNoNode;
  }
  return out;
}

// The whole rule, serially: (a) per node, (b) by its definition, (c) per node.
std::vector<uint32_t> OptimizeSerial(const std::vector<uint32_t>& knn, uint64_t rows, int k,
                                     int degree) {
  std::vector<uint32_t> pruned;
  for (uint64_t i = 0; i < rows; ++i) {
    std::vector<uint32_t> p = Pruned(knn, rows, k, degree, i);
    pruned.insert(pruned.end(), p.begin(), p.end());
  }
  std::vector<uint32_t> rev(rows * degree, kNoNode);
  std::vector<int> count(rows, 0);
  for (int p = 0; p < degree; ++p) {
    for (uint64_t i = 0; i < rows; ++i) {
      const uint32_t v = pruned[i * degree + p];
      if (IsNode(v, rows) && count[v] < degree)
        rev[v * degree + count[v]++] = static_cast<uint32_t>(i);
    }
  }
  std::vector<uint32_t> out(rows * degree);
  for (uint64_t i = 0; i < rows; ++i) {
    MergeNode(pruned.data() + i * degree, rev.data() + i * degree, count[i], degree, rows,
              out.data() + i * degree);
  }
  return out;
}

// Worked by hand (K = 3, degree = 2):
//   N(0) = 1 2 3   detours 0 1 0  (2 is reached through 1: N(1)[0] = 2)  -> pruned 1 3
//   N(1) = 2 0 3   detours 0 0 0                                        -> pruned 2 0
//   N(2) = 1 0 3   detours 0 0 0                                        -> pruned 1 0
//   N(3) = 2 1 0   detours 0 1 2  (1 via 2; 0 via 2 at s=1 and via 1)   -> pruned 2 1
// Reverse edges, p = 0 then p = 1: rev(1) = 0 2, rev(2) = 1 3, rev(3) = 0, rev(0) = 1 2
// (3 -> 1 at p = 1 finds rev(1) full). Merge keeps pruned[0] then fills from rev.
const std::vector<uint32_t> kHandKnn = {1, 2, 3, 2, 0, 3, 1, 0, 3, 2, 1, 0};

TEST(CagraRulesTest, HandMadeDetours) {
  EXPECT_EQ(DefinitionDetours(kHandKnn, 4, 3, 0), (std::vector<int>{0, 1, 0}));
  EXPECT_EQ(DefinitionDetours(kHandKnn, 4, 3, 1), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(DefinitionDetours(kHandKnn, 4, 3, 2), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(DefinitionDetours(kHandKnn, 4, 3, 3), (std::vector<int>{0, 1, 2}));
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(TableDetours(kHandKnn, 4, 3, i), DefinitionDetours(kHandKnn, 4, 3, i)) << i;
  }
}

TEST(CagraRulesTest, HandMadePruned) {
  EXPECT_EQ(Pruned(kHandKnn, 4, 3, 2, 0), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(Pruned(kHandKnn, 4, 3, 2, 1), (std::vector<uint32_t>{2, 0}));
  EXPECT_EQ(Pruned(kHandKnn, 4, 3, 2, 2), (std::vector<uint32_t>{1, 0}));
  EXPECT_EQ(Pruned(kHandKnn, 4, 3, 2, 3), (std::vector<uint32_t>{2, 1}));
}

TEST(CagraRulesTest, HandMadeWholeRule) {
  EXPECT_EQ(OptimizeSerial(kHandKnn, 4, 3, 2), (std::vector<uint32_t>{1, 2, 2, 0, 1, 3, 2, 0}));
}

// Detours need max(r, s) < j: a neighbour u that lists v only at a rank >= j does not count.
TEST(CagraRulesTest, DetourRankBound) {
  // N(0) = 1 2 3 4; N(1) lists 4 at rank 3, N(2) lists 4 at rank 1, N(3) lists 2 at rank 0.
  const std::vector<uint32_t> knn = {
      1, 2, 3, 4,  //
      0, 2, 3, 4,  //
      0, 4, 1, 3,  //
      2, 0, 1, 4,  //
      0, 1, 2, 3,  //
  };
  // j = 1 (v = 2): r = 0 (u = 1) lists 2 at s = 1, not < 1: 0.
  // j = 2 (v = 3): u = 1 lists 3 at s = 2: no; u = 2 lists 3 at s = 3: no -> 0.
  // j = 3 (v = 4): u = 1 lists 4 at s = 3: no; u = 2 at s = 1: yes; u = 3 at s = 3: no -> 1.
  EXPECT_EQ(DefinitionDetours(knn, 5, 4, 0), (std::vector<int>{0, 0, 0, 1}));
  EXPECT_EQ(TableDetours(knn, 5, 4, 0), (std::vector<int>{0, 0, 0, 1}));
  EXPECT_EQ(Pruned(knn, 5, 4, 3, 0), (std::vector<uint32_t>{1, 2, 3}));
}

// A node repeated in N(u) counts once per (r, j); a node repeated in N(i) is two entries.
TEST(CagraRulesTest, DuplicatesCountOnce) {
  const std::vector<uint32_t> knn = {
      1, 2, 2, 3,  // N(0): 2 twice
      2, 2, 3, 0,  // N(1): 2 twice
      3, 0, 1, 1,  //
      0, 1, 2, 2,  //
  };
  const std::vector<int> want = DefinitionDetours(knn, 4, 4, 0);
  // j = 1 (v = 2): r = 0 (u = 1) has 2 at s = 0 -> 1 (not 2, although listed twice).
  EXPECT_EQ(want[1], 1);
  // j = 2 (v = 2 again): r = 0 -> yes; r = 1 (u = 2): N(2)[0..1] = 3 0 -> no: 1.
  EXPECT_EQ(want[2], 1);
  EXPECT_EQ(TableDetours(knn, 4, 4, 0), want);
}

// Padding (and anything >= rows) is no node: it adds no detours and sorts after every node.
TEST(CagraRulesTest, PaddingSortsLast) {
  const std::vector<uint32_t> knn = {
      1, X, 2, 7,  // N(0): padding at rank 1, out-of-range 7 at rank 3
      2, 0, X, X,  //
      1, 0, X, X,  //
  };
  // 2 is reached through 1 (N(1)[0] = 2, max(0, 0) < 2): detours(0, 2) = 1.
  EXPECT_EQ(DefinitionDetours(knn, 3, 4, 0)[2], 1);
  EXPECT_EQ(TableDetours(knn, 3, 4, 0)[2], 1);
  EXPECT_EQ(Pruned(knn, 3, 4, 4, 0), (std::vector<uint32_t>{1, 2, X, X}));
  EXPECT_EQ(Pruned(knn, 3, 4, 2, 1), (std::vector<uint32_t>{2, 0}));
  EXPECT_EQ(Pruned(knn, 3, 4, 3, 2), (std::vector<uint32_t>{1, 0, X}));
}

TEST(CagraRulesTest, PruneRankIsStableByKey) {
  const std::vector<int> keys = {2, 0, 1, 0, 5, 1};
  std::vector<int> ranks;
  for (int j = 0; j < 6; ++j) ranks.push_back(PruneRank(keys.data(), 6, j));
  EXPECT_EQ(ranks, (std::vector<int>{4, 0, 2, 1, 5, 3}));
}

TEST(CagraRulesTest, MergeNode) {
  // degree 4: pruned[0..1], then rev (skipping 5, present), then pruned[2..3] until full.
  const std::vector<uint32_t> pruned = {5, 6, 7, 8};
  const std::vector<uint32_t> rev = {5, 9, 6, 10};
  std::vector<uint32_t> out(4);
  MergeNode(pruned.data(), rev.data(), 4, 4, 100, out.data());
  EXPECT_EQ(out, (std::vector<uint32_t>{5, 6, 9, 10}));
  MergeNode(pruned.data(), rev.data(), 2, 4, 100, out.data());
  EXPECT_EQ(out, (std::vector<uint32_t>{5, 6, 9, 7}));
  MergeNode(pruned.data(), rev.data(), 0, 4, 100, out.data());
  EXPECT_EQ(out, pruned);
  // Short pruned lists and empty rev: padded.
  const std::vector<uint32_t> short_pruned = {3, X, X, X};
  MergeNode(short_pruned.data(), rev.data(), 0, 4, 100, out.data());
  EXPECT_EQ(out, (std::vector<uint32_t>{3, X, X, X}));
  // Rev entries already in the remainder of pruned are not repeated later.
  const std::vector<uint32_t> rev2 = {8, 1};
  MergeNode(pruned.data(), rev2.data(), 2, 4, 100, out.data());
  EXPECT_EQ(out, (std::vector<uint32_t>{5, 6, 8, 1}));
  // Odd degree: the first degree/2 = 1 entry comes from pruned.
  const std::vector<uint32_t> pruned3 = {4, 5, 6};
  const std::vector<uint32_t> rev3 = {7, 8, 9};
  std::vector<uint32_t> out3(3);
  MergeNode(pruned3.data(), rev3.data(), 3, 3, 100, out3.data());
  EXPECT_EQ(out3, (std::vector<uint32_t>{4, 7, 8}));
}

// Random graphs with duplicates, padding, self loops and out-of-range entries: the kernel's
// counting equals the definition, and the pruned order is a permutation of the list.
TEST(CagraRulesTest, TableCountEqualsDefinitionOnRandomGraphs) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const uint64_t rows = 2 + rng() % 60;
    const int k = 1 + static_cast<int>(rng() % 40);
    std::vector<uint32_t> knn(rows * k);
    for (uint32_t& v : knn) {
      const uint64_t roll = rng() % 20;
      v = roll == 0   ? X
          : roll == 1 ? static_cast<uint32_t>(rows + rng() % 5)
                      : static_cast<uint32_t>(rng() % rows);
    }
    for (uint64_t i = 0; i < rows; ++i) {
      ASSERT_EQ(TableDetours(knn, rows, k, i), DefinitionDetours(knn, rows, k, i))
          << "trial " << trial << " node " << i;
      const std::vector<uint32_t> all = Pruned(knn, rows, k, k, i);
      std::vector<uint32_t> want(knn.begin() + i * k, knn.begin() + (i + 1) * k);
      for (uint32_t& v : want) v = IsNode(v, rows) ? v : X;
      std::vector<uint32_t> got = all;
      std::sort(want.begin(), want.end());
      std::sort(got.begin(), got.end());
      ASSERT_EQ(got, want);
    }
  }
}

// Whole rule on a random well-formed kNN graph: rows of distinct nodes, no self loops, and
// every output row duplicate-free.
TEST(CagraRulesTest, OutputRowsAreDistinctNodes) {
  std::mt19937_64 rng(11);
  const uint64_t rows = 200;
  const int k = 16, degree = 8;
  std::vector<uint32_t> knn(rows * k);
  for (uint64_t i = 0; i < rows; ++i) {
    std::vector<uint32_t> others;
    for (uint32_t v = 0; v < rows; ++v) {
      if (v != i) others.push_back(v);
    }
    std::shuffle(others.begin(), others.end(), rng);
    std::copy(others.begin(), others.begin() + k, knn.begin() + i * k);
  }
  const std::vector<uint32_t> out = OptimizeSerial(knn, rows, k, degree);
  for (uint64_t i = 0; i < rows; ++i) {
    std::vector<uint32_t> row(out.begin() + i * degree, out.begin() + (i + 1) * degree);
    for (uint32_t v : row) {
      EXPECT_LT(v, rows);
      EXPECT_NE(v, i);
    }
    std::sort(row.begin(), row.end());
    EXPECT_EQ(std::adjacent_find(row.begin(), row.end()), row.end()) << "node " << i;
  }
}

}  // namespace
}  // namespace vlake::gpu::cagra_rules
