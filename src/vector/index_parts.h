// Index parts: the arrays an IVF or graph index is made of, in one layout that every builder
// (the GPU builders of src/gpu, the CPU reference builders of reference_build.h) produces and
// that IndexFromIvfParts / IndexFromGraphParts turn into the CPU engine's own indexes
// (FAISS IVF_FLAT / IVF_PQ, hnswlib HNSW). That is how an index built on a GPU node serves
// from CPU-only nodes: the index file is the CPU format (docs/format/index.md), whatever
// built it. How parts map onto the FAISS / hnswlib payloads: docs/format/index.md, section
// "Index parts (GPU-built indexes)".
//
// Parts cross a module (and possibly process) boundary, so they are validated before use:
// malformed parts give InvalidArgument with a message naming the offending field, never a
// crash or an abort.
//
// Conventions (all row-major, little-endian host order):
// - Metric kCosine means vectors are already unit length (rows of zeros allowed) and compared
//   by inner product (the vectordb normalizes COSINE vectors on insert; the reference
//   builders normalize their input). Centroids are unit length too (spherical k-means), but
//   that is not checked.
// - Labels are row numbers of the indexed segment (0..rows-1), as everywhere in VectorIndex.
// - IVF_PQ encodes residuals (vector - its list's centroid) with `pq_m` sub-quantizers of
//   2^pq_nbits centroids each over consecutive dim/pq_m-wide sub-vectors; code byte j of a
//   vector is the nearest centroid of sub-quantizer j (FAISS IndexIVFPQ, by_residual = true).
//
// Plain values; no thread-safety concerns beyond those of std::vector.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "vector/index.h"
#include "vector/types.h"
#include "vlake/status.h"

namespace vlake::vector {

struct IvfParts {
  Metric metric = Metric::kL2;
  int dim = 0;
  int nlist = 0;
  std::vector<float> centroids;  // nlist x dim
  // Per list: the labels of its rows, in list order.
  std::vector<std::vector<int64_t>> list_ids;
  // IVF_FLAT: per list, list_ids[l].size() x dim floats (the raw vectors).
  std::vector<std::vector<float>> list_vectors;
  // IVF_PQ (pq_m > 0): the codebooks and the codes.
  int pq_m = 0;      // sub-quantizers; divides dim
  int pq_nbits = 8;  // bits per code; only 8 is produced today
  // pq_m x 2^pq_nbits x (dim / pq_m) floats: codebook j, centroid c at
  // pq_codebooks[(j * 2^nbits + c) * dsub].
  std::vector<float> pq_codebooks;
  // Per list, list_ids[l].size() x pq_m code bytes.
  std::vector<std::vector<uint8_t>> list_codes;

  bool is_pq() const { return pq_m > 0; }
  // Total ids over all lists.
  int64_t rows() const;
  // InvalidArgument unless: a known metric, 1 <= dim <= kMaxDim, 1 <= nlist <= 2^20, every
  // array sized as documented above, pq_m dividing dim and pq_nbits == 8 (IVF_PQ), no data in
  // the other variant's fields, all floats finite, kCosine IVF_FLAT vectors unit length
  // (|norm^2 - 1| <= 1e-3) or zero, and the ids a permutation of 0..rows()-1.
  Status Validate() const;
};

// A fixed-degree proximity graph (CAGRA): node i's neighbours are
// graph[i * degree .. i * degree + degree), best first; kNoNeighbor pads short rows.
inline constexpr uint32_t kNoNeighbor = 0xffffffffu;

struct GraphParts {
  Metric metric = Metric::kL2;
  int dim = 0;
  int64_t rows = 0;
  int degree = 0;
  std::vector<uint32_t> graph;  // rows x degree
};

// The FAISS IVF_FLAT (parts.pq_m == 0) or IVF_PQ index holding exactly these lists, as a
// VectorIndex whose spec is IVF_FLAT:nlist=.. or IVF_PQ:nlist=..,m=..,nbits=.. — searched,
// serialized and loaded like one FAISS built.
Result<std::unique_ptr<VectorIndex>> IndexFromIvfParts(const IvfParts& parts);

// The hnswlib HNSW index (spec HNSW:M=degree/2,efConstruction=200) whose base layer is this
// graph over `vectors` (rows x dim, copied; normalized for kCosine as Add would), with upper
// layers built on the CPU as hnswlib builds them (cuVS's CPU hierarchy for its CAGRA -> HNSW
// export): every row draws a level by hnswlib's rule from a fixed seed (about rows/M rows reach
// level >= 1, rows/M^2 level >= 2, ...), and those rows are linked on their upper levels by
// hnswlib's insertion algorithm; level 0 stays exactly the graph, labels stay row numbers. The
// entry point is the first row of the top level; `entry_point` (see ReferenceEntryPoint) is used
// only when no row is drawn above level 0 (tiny inputs). The upper layers are what lets a
// search reach every cluster of clustered data whose kNN graph has no edges between clusters
// (with the base layer alone, only the entry point's cluster was found). Exact rule:
// docs/format/index.md, "Graph parts -> HNSW payload". Deterministic: the same parts give the
// same index bytes. Cost: the upper layers are built on one thread (the links depend on
// insertion order), about 0.5 ms per upper-layer row at M = 32, dim 96 (1M rows: ~16 s).
// hnswlib 0.6.2 keeps up to 2*M links on layer 0, so degree must be even (4..4096). kNoNeighbor
// entries are dropped wherever they are. InvalidArgument for a bad metric/dim/degree, a graph of
// the wrong size, a neighbour id >= rows, null or non-finite vectors, or entry_point >= rows
// (checked even when unused). rows == 0 gives an empty index.
Result<std::unique_ptr<VectorIndex>> IndexFromGraphParts(const GraphParts& parts,
                                                         const float* vectors,
                                                         uint32_t entry_point);

}  // namespace vlake::vector
