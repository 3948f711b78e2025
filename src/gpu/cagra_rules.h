// The per-node pieces of CAGRA's graph optimization, as plain functions usable from host and
// device code (cagra.cu runs them in kernels; cagra_rules_test.cc checks them on hand-made
// graphs without a GPU). The whole rule, which vector::CagraOptimize (reference_build.h)
// implements identically on the CPU:
//
//  (a) Rank-based detour pruning. N(i) is node i's kNN list of K entries, rank 0 = nearest.
//      For entry j (v = N(i)[j]), detours(i, j) = the number of ranks r < j whose node
//      u = N(i)[r] has v in N(u) at a rank s < j (max(r, s) < j). pruned(i) = the first
//      `degree` entries of N(i) ordered by (detours ascending, j ascending).
//  (b) Reverse edges. For p = 0..degree-1 (outer), i = 0..rows-1 ascending (inner): with
//      v = pruned(i)[p], append i to rev(v) while rev(v) has fewer than `degree` entries.
//  (c) Merge. out(i) = the first degree/2 entries of pruned(i); then the entries of rev(i) in
//      order; then the rest of pruned(i) in order — each phase skipping entries already in
//      out(i) — until out(i) has `degree` entries; padded with kNoNeighbor.
//
// Conventions that make the rule total (they change nothing on a well-formed kNN graph, whose
// rows hold distinct nodes < rows, without the row's own node):
// - An entry is a node when it is < rows; anything else (kNoNeighbor padding, garbage) is "no
//   node": it never counts as a detour, contributes no detours as u, and sorts after every
//   node in (a) (its key is K, larger than any detour count) — so padding stays at the tail
//   of pruned(i) and is written as kNoNeighbor. (b) and (c) skip it.
// - Duplicates in N(i) are separate entries j; a node repeated in N(u) counts once per (r, j).
// - (c) skips duplicates in every phase, the first degree/2 included.
//
// Plain header: no CUDA includes; VLAKE_HD marks functions for both sides under nvcc.
// Thread-safety: pure functions over caller-owned arrays.
#pragma once

#include <cstdint>
#include <vector>

#include "vlake/status.h"

#ifndef VLAKE_HD
#ifdef __CUDACC__
#define VLAKE_HD __host__ __device__
#else
#define VLAKE_HD
#endif
#endif

namespace vlake::gpu::cagra_rules {

// Equal to vector::kNoNeighbor (index_parts.h; static_assert in cagra.cu and the test).
inline constexpr uint32_t kNoNode = 0xffffffffu;

VLAKE_HD inline bool IsNode(uint32_t v, uint64_t rows) { return v < rows; }

VLAKE_HD inline int PopCount(uint32_t x) {
#ifdef __CUDA_ARCH__
  return __popc(x);
#else
  return __builtin_popcount(x);
#endif
}

// ---- (a) detours, by the definition (O(j^2) per entry: the oracle for tests) ----

// detours(i, j) for the node whose list is `list` (K entries); knn is the whole kNN graph
// (rows x K). Meaningless (0) when list[j] is no node.
VLAKE_HD inline int DetourCountByDefinition(const uint32_t* knn, uint64_t rows, int knn_degree,
                                            const uint32_t* list, int j) {
  const uint32_t v = list[j];
  if (!IsNode(v, rows)) return 0;
  int count = 0;
  for (int r = 0; r < j; ++r) {
    const uint32_t u = list[r];
    if (!IsNode(u, rows)) continue;
    const uint32_t* nu = knn + static_cast<uint64_t>(u) * static_cast<uint64_t>(knn_degree);
    for (int s = 0; s < j; ++s) {
      if (nu[s] == v) {
        ++count;
        break;
      }
    }
  }
  return count;
}

// ---- (a) detours, the way the kernel counts them: O(K^2) table look-ups per node ----
//
// A position table maps each node of N(i) to its ranks j: open addressing with linear probing
// over mask+1 slots (a power of two >= 2K, so probes end), keys[slot] == kNoNode when empty;
// a node listed twice occupies two slots. Then every pair (r, s) looks up w = N(N(i)[r])[s]
// and, for each rank j of w in N(i) with j > max(r, s), sets bit r of row j of a K x words
// bit matrix (words = ceil(K/32)); detours(i, j) = popcount of row j. Bits rather than
// counters make a node repeated in N(u) count once.

VLAKE_HD inline uint32_t TableStart(uint32_t key, uint32_t mask) {
  uint32_t x = key;  // lowbias32 (Chris Wellons): every input bit moves every slot bit
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x & mask;
}

VLAKE_HD inline int WordsPerRow(int knn_degree) { return (knn_degree + 31) / 32; }

// Single-threaded insert (the kernel inserts with atomicCAS along the same probe sequence).
VLAKE_HD inline void TableInsertSerial(uint32_t* keys, uint32_t* positions, uint32_t mask,
                                       uint32_t key, uint32_t position) {
  uint32_t slot = TableStart(key, mask);
  while (keys[slot] != kNoNode) slot = (slot + 1) & mask;
  keys[slot] = key;
  positions[slot] = position;
}

// Pair (r, s) of node list `list`: sets the detour bits it witnesses through
// set_bit(word_index, bit_mask) (atomicOr on the GPU, |= on the host).
template <typename SetBit>
VLAKE_HD inline void MarkDetourPair(const uint32_t* knn, uint64_t rows, int knn_degree,
                                    const uint32_t* list, const uint32_t* table_keys,
                                    const uint32_t* table_positions, uint32_t mask, int r, int s,
                                    SetBit set_bit) {
  const uint32_t u = list[r];
  if (!IsNode(u, rows)) return;
  const uint32_t w =
      knn[static_cast<uint64_t>(u) * static_cast<uint64_t>(knn_degree) + static_cast<uint64_t>(s)];
  if (!IsNode(w, rows)) return;
  const int lowest = (r > s ? r : s) + 1;
  const int words = WordsPerRow(knn_degree);
  for (uint32_t slot = TableStart(w, mask); table_keys[slot] != kNoNode; slot = (slot + 1) & mask) {
    if (table_keys[slot] != w) continue;
    const int j = static_cast<int>(table_positions[slot]);
    if (j >= lowest) set_bit(j * words + r / 32, 1u << (r % 32));
  }
}

VLAKE_HD inline int DetourCountFromBits(const uint32_t* bits, int knn_degree, int j) {
  const int words = WordsPerRow(knn_degree);
  int count = 0;
  for (int w = 0; w < words; ++w) count += PopCount(bits[j * words + w]);
  return count;
}

// ---- (a) ordering ----

// Sort key of entry j: its detour count, or K for no node (after every node).
VLAKE_HD inline int PruneKey(uint32_t v, uint64_t rows, int knn_degree, int detours) {
  return IsNode(v, rows) ? detours : knn_degree;
}

// Position of entry j in the order by (key, j): the entries before it. A permutation of
// 0..K-1 over j; pruned(i)[PruneRank(j)] = N(i)[j] when it is < degree.
VLAKE_HD inline int PruneRank(const int* keys, int knn_degree, int j) {
  const int key = keys[j];
  int rank = 0;
  for (int t = 0; t < knn_degree; ++t) {
    rank += (keys[t] < key || (keys[t] == key && t < j)) ? 1 : 0;
  }
  return rank;
}

// ---- (c) merge of one node ----

VLAKE_HD inline bool Contains(const uint32_t* row, int count, uint32_t v) {
  for (int t = 0; t < count; ++t) {
    if (row[t] == v) return true;
  }
  return false;
}

// out (degree entries) from pruned(i) (degree entries, possibly padded) and rev(i)
// (rev_count <= degree entries).
VLAKE_HD inline void MergeNode(const uint32_t* pruned, const uint32_t* rev, int rev_count,
                               int degree, uint64_t rows, uint32_t* out) {
  int n = 0;
  const int half = degree / 2;
  for (int t = 0; t < half && n < degree; ++t) {
    const uint32_t v = pruned[t];
    if (IsNode(v, rows) && !Contains(out, n, v)) out[n++] = v;
  }
  for (int t = 0; t < rev_count && n < degree; ++t) {
    const uint32_t v = rev[t];
    if (IsNode(v, rows) && !Contains(out, n, v)) out[n++] = v;
  }
  for (int t = half; t < degree && n < degree; ++t) {
    const uint32_t v = pruned[t];
    if (IsNode(v, rows) && !Contains(out, n, v)) out[n++] = v;
  }
  for (; n < degree; ++n) out[n] = kNoNode;
}

}  // namespace vlake::gpu::cagra_rules

namespace vlake::gpu {

struct BuildStats;

// Steps (a)-(c) on the GPU for a kNN graph in host memory (rows x knn_degree, no self loops;
// kNoNeighbor pads short rows): the rows x degree graph BuildCagra returns for that kNN
// input. Exposed for the parity test against vector::CagraOptimize; BuildCagra calls it.
// Implemented in cagra.cu (kUnavailable without a GPU); fills stats->optimize_seconds.
Result<std::vector<uint32_t>> OptimizeCagraGraph(const uint32_t* knn_graph, int64_t rows,
                                                 int knn_degree, int degree,
                                                 BuildStats* stats = nullptr);

}  // namespace vlake::gpu
