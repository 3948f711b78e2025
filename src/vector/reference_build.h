// CPU reference builders: the k-means, IVF and CAGRA-graph algorithms the GPU builders of
// src/gpu implement, written plainly on the CPU (FAISS brute-force kernels for the distance
// work). They are the oracles of the GPU tests and usable as CPU builders of our own: their
// output goes through IndexFromIvfParts / IndexFromGraphParts (index_parts.h) like the GPU's.
//
// The algorithm descriptions below are the contract the GPU side implements; the same text,
// shortened, is in docs/format/index.md ("Index parts (GPU-built indexes)"). CagraOptimize is
// exact and deterministic (GPU tests demand equality); the k-means based builders are
// deterministic for a given seed on the CPU, and a GPU may differ by float rounding (TF32,
// summation order) in which rows end up in which list.
//
// Inputs are row-major n x dim float arrays (finite values: callers reject NaN/Inf first).
// Metric kCosine: the builders and ReferenceKMeans normalize a copy of the rows to unit length
// and then work by inner product, so their parts hold unit-length vectors (the index_parts.h
// convention); ReferenceEntryPoint ranks by cosine similarity. kIP works on the rows as given.
//
// Thread-safety: pure functions of their arguments; they use OpenMP/BLAS threads inside and
// may be called from several threads at once.
#pragma once

#include <cstdint>
#include <vector>

#include "vector/index_parts.h"
#include "vector/types.h"
#include "vlake/status.h"

namespace vlake::vector {

// ---- k-means ----

// The first m entries of a seeded permutation of 0..n-1: partial Fisher-Yates with
// std::mt19937_64(seed), j = i + rng() % (n - i). The draw every reference builder (and the GPU
// code's SampleDistinct) uses for initial centroids and training samples.
std::vector<int64_t> ReferenceDrawDistinct(int64_t n, int64_t m, uint64_t seed);

struct ReferenceKMeansParams {
  int k = 1024;          // clusters; 1 <= k <= n
  int iterations = 20;   // Lloyd iterations (assign + update), no early stop
  uint64_t seed = 1234;  // initial centroids
  // Re-seed clusters smaller than balance_min_fraction x n/k after every update: keeps IVF
  // lists from being empty or tiny (search time follows the longest lists) at the cost of
  // splitting large natural clusters.
  bool balanced = true;
  double balance_min_fraction = 0.25;
};

// k x dim centroids. Algorithm:
//  1. Init: k distinct rows by a partial Fisher-Yates shuffle of 0..n-1 driven by
//     std::mt19937_64(seed): for i = 0..k-1 { j = i + rng() % (n - i); swap(p[i], p[j]) };
//     centroid i = row p[i].
//  2. Each iteration:
//     a. assign every row to its nearest centroid (L2: smallest squared distance; kIP and
//        kCosine: largest inner product);
//     b. centroid c = mean of its rows (accumulated in double); a cluster without rows keeps
//        its centroid; kIP/kCosine: then scaled to unit length unless zero (spherical k-means);
//     c. balanced only: with size[] the row counts of (a), for c = 0..k-1 in order, if
//        size[c] < balance_min_fraction * n / k: L = the cluster with the largest size[]
//        (smallest index on ties); centroid c = centroid L with coordinate d multiplied by
//        (1 + 1/1024) for even d and (1 - 1/1024) for odd d, and centroid L multiplied by the
//        opposite factors; then size[c] = size[L] / 2 (integer division), size[L] -= size[c].
//     Step (c) also runs after the last update, so no returned centroid is a dead one.
//     Re-seeded kIP/kCosine centroids are not re-normalized (they are within 1/512 of unit
//     length). Exact copies of one row always fall on the same side, so a largest cluster
//     made only of identical rows cannot be split and the small cluster may stay empty.
// Preconditions (checked, abort): 1 <= k <= n, dim >= 1, iterations >= 0.
std::vector<float> ReferenceKMeans(const ReferenceKMeansParams& params, Metric metric,
                                   const float* x, int64_t n, int dim);

// ---- IVF_FLAT / IVF_PQ ----

struct ReferenceIvfParams {
  int nlist = 1024;  // inverted lists (coarse centroids)
  int pq_m = 0;      // 0 = IVF_FLAT; else IVF_PQ with pq_m sub-quantizers (must divide dim)
  int pq_nbits = 8;  // bits per PQ code; only 8
  int kmeans_iterations = 20;     // coarse k-means iterations (balanced)
  int pq_kmeans_iterations = 25;  // per-subspace codebook k-means iterations (unbalanced)
  // Rows that train the coarse k-means and the codebooks; 0 = min(n, 256 * nlist). More rows
  // cost training time linearly and rarely improve the lists beyond ~256 per list.
  int64_t max_training_rows = 0;
  uint64_t seed = 1234;
};

// IVF parts (index_parts.h) of the n rows. Algorithm:
//  1. Training sample: all rows if max_training_rows (0 -> min(n, 256 * nlist)) >= n, else
//     that many distinct rows chosen by the partial Fisher-Yates shuffle above with
//     std::mt19937_64(seed), sorted ascending.
//  2. Coarse centroids = ReferenceKMeans({k = nlist, iterations = kmeans_iterations,
//     seed = seed + 1, balanced}) of the sample.
//  3. Every row goes to the list of its nearest centroid (the metric's rule); list_ids are
//     row numbers, ascending within a list. IVF_FLAT: list_vectors are the rows.
//  4. IVF_PQ: residuals (row - its centroid) of the sample rows; for sub-quantizer j (columns
//     j*dsub .. j*dsub+dsub-1, dsub = dim/pq_m) an L2, unbalanced ReferenceKMeans with
//     k = 256, iterations = pq_kmeans_iterations, seed = seed + 2 + j; code byte j of a row =
//     the nearest (L2) codebook entry to its residual's sub-vector j.
// InvalidArgument: n < nlist, nlist < 1, pq_m not dividing dim, pq_nbits != 8, or IVF_PQ with
// fewer than 256 training rows.
Result<IvfParts> ReferenceBuildIvf(const ReferenceIvfParams& params, Metric metric, const float* x,
                                   int64_t n, int dim);

// ---- CAGRA graph ----

struct ReferenceCagraParams {
  int graph_degree = 64;  // out-degree of the final graph (even, >= 4 to export to HNSW)
  // Degree of the exact kNN graph that is pruned; larger finds better detour-free edges at
  // quadratic cost in the pruning step. Must be >= graph_degree.
  int intermediate_graph_degree = 128;
};

// The CAGRA graph of the rows: the exact kNN graph of intermediate_graph_degree (self
// excluded; ties by FAISS brute force order; rows beyond n-1 neighbours padded with
// kNoNeighbor), then CagraOptimize to graph_degree. InvalidArgument for degrees out of order.
Result<GraphParts> ReferenceBuildCagra(const ReferenceCagraParams& params, Metric metric,
                                       const float* x, int64_t n, int dim);

// CAGRA's graph optimization of a kNN graph (knn: n x knn_degree, rank 0 = nearest) to
// n x degree. An entry is a node when it is < n; anything else (kNoNeighbor padding of short
// rows, n <= knn_degree) is "no node". Exactly, with N(i) = the kNN row of i:
//  (a) Rank-based detour pruning: for j = 0..knn_degree-1, v = N(i)[j]: detours(i, j) = the
//      number of ranks r < j such that u = N(i)[r] has v in N(u) at a rank s < j (that is,
//      max(r, s) < j). pruned(i) = the first `degree` entries of N(i) ordered by
//      (detours ascending, j ascending), with no-node entries sorting after every node
//      (key knn_degree) and written as kNoNeighbor.
//  (b) Reverse edges: for p = 0..degree-1 (outer), for i = 0..n-1 ascending (inner):
//      v = pruned(i)[p]; unless v is kNoNeighbor, append i to rev(v) if rev(v) has fewer
//      than `degree` entries.
//  (c) Merge: out(i) = the first degree/2 entries of pruned(i); then the entries of rev(i) in
//      order; then the remaining entries of pruned(i) (positions degree/2..) in order; each
//      phase skips kNoNeighbor and entries already in out(i), until out(i) has `degree`
//      entries; kNoNeighbor pads what is still short.
// The rule is total (the GPU's src/gpu/cagra_rules.h states the same conventions): no-node
// entries never count as a detour and contribute none as u; a node listed twice in N(i) is two
// entries j; a node repeated in N(u) counts once per (r, j). A kNN graph whose rows hold
// distinct nodes other than the row itself gives rows without self loops or duplicates.
// Precondition (checked, abort): 1 <= degree <= knn_degree, n < kNoNeighbor.
std::vector<uint32_t> CagraOptimize(const uint32_t* knn, int64_t n, int knn_degree, int degree);

// The HNSW entry point of a graph over these rows: the row closest to the mean row (L2:
// smallest squared distance; kIP: largest inner product with the unit-scaled mean; kCosine:
// largest cosine with the mean of the unit-scaled rows); ties -> smallest row. Distances are
// computed in double. Returns 0 for n == 0.
uint32_t ReferenceEntryPoint(Metric metric, const float* x, int64_t n, int dim);

}  // namespace vlake::vector
