// Validation of index parts and the engine-neutral half of IndexFromIvfParts /
// IndexFromGraphParts: the FAISS half lives in faiss_index.cc and the hnswlib half in
// hnsw_index.cc (the only translation unit allowed to include hnswlib).
#include "vector/index_parts.h"

#include <cmath>
#include <string>

#include "vector/index_impl.h"

namespace vlake::vector {
namespace {

Status Invalid(const std::string& what) { return Status(Code::kInvalidArgument, what); }

std::string Str(int64_t v) { return std::to_string(v); }

bool ValidMetric(Metric m) { return m == Metric::kL2 || m == Metric::kIP || m == Metric::kCosine; }

// COSINE parts hold unit-length vectors; rows of zeros (a zero vector normalizes to itself)
// are allowed. The tolerance covers float rounding of a normalization at any dim.
constexpr double kUnitTolerance = 1e-3;

bool UnitOrZero(const float* row, int dim) {
  double s = 0;
  for (int j = 0; j < dim; ++j) s += double(row[j]) * row[j];
  return s == 0 || std::abs(s - 1.0) <= kUnitTolerance;
}

}  // namespace

int64_t IvfParts::rows() const {
  int64_t n = 0;
  for (const auto& ids : list_ids) n += static_cast<int64_t>(ids.size());
  return n;
}

Status IvfParts::Validate() const {
  if (!ValidMetric(metric)) {
    return Invalid("ivf parts: unknown metric " + Str(static_cast<int>(metric)));
  }
  if (dim < 1 || dim > kMaxDim) return Invalid("ivf parts: dim " + Str(dim) + " out of range");
  if (nlist < 1 || nlist > (1 << 20)) {
    return Invalid("ivf parts: nlist " + Str(nlist) + " out of range 1..1048576");
  }
  if (centroids.size() != static_cast<size_t>(nlist) * dim) {
    return Invalid("ivf parts: centroids has " + Str(centroids.size()) + " floats, want nlist " +
                   "x dim = " + Str(int64_t{nlist} * dim));
  }
  if (!AllFinite(centroids.data(), static_cast<int64_t>(centroids.size()))) {
    return Invalid("ivf parts: centroids hold NaN or Inf");
  }
  if (list_ids.size() != static_cast<size_t>(nlist)) {
    return Invalid("ivf parts: list_ids has " + Str(list_ids.size()) +
                   " lists, want nlist = " + Str(nlist));
  }
  auto all_empty = [](const auto& lists) {
    for (const auto& l : lists) {
      if (!l.empty()) return false;
    }
    return true;
  };
  if (pq_m < 0) return Invalid("ivf parts: pq_m " + Str(pq_m) + " is negative");
  if (!is_pq()) {
    if (!pq_codebooks.empty() || !all_empty(list_codes)) {
      return Invalid("ivf parts: IVF_FLAT parts (pq_m = 0) carry PQ codebooks or codes");
    }
    if (list_vectors.size() != static_cast<size_t>(nlist)) {
      return Invalid("ivf parts: list_vectors has " + Str(list_vectors.size()) +
                     " lists, want nlist = " + Str(nlist));
    }
    for (int l = 0; l < nlist; ++l) {
      const std::vector<float>& v = list_vectors[l];
      if (v.size() != list_ids[l].size() * dim) {
        return Invalid("ivf parts: list " + Str(l) + " has " + Str(list_ids[l].size()) +
                       " ids but " + Str(v.size()) + " floats, want ids x dim");
      }
      if (!AllFinite(v.data(), static_cast<int64_t>(v.size()))) {
        return Invalid("ivf parts: list " + Str(l) + " vectors hold NaN or Inf");
      }
      if (metric == Metric::kCosine) {
        for (size_t i = 0; i < list_ids[l].size(); ++i) {
          if (!UnitOrZero(v.data() + i * dim, dim)) {
            return Invalid("ivf parts: COSINE list " + Str(l) + " vector of id " +
                           Str(list_ids[l][i]) + " is not unit length");
          }
        }
      }
    }
  } else {
    if (!all_empty(list_vectors)) {
      return Invalid("ivf parts: IVF_PQ parts carry raw list vectors");
    }
    if (dim % pq_m != 0) {
      return Invalid("ivf parts: pq_m " + Str(pq_m) + " does not divide dim " + Str(dim));
    }
    if (pq_nbits != 8) {
      return Invalid("ivf parts: pq_nbits " + Str(pq_nbits) + " is not supported (only 8)");
    }
    size_t want = (size_t{1} << pq_nbits) * dim;  // pq_m x 2^nbits x dim/pq_m
    if (pq_codebooks.size() != want) {
      return Invalid("ivf parts: pq_codebooks has " + Str(pq_codebooks.size()) +
                     " floats, want pq_m x 2^pq_nbits x dim/pq_m = " + Str(want));
    }
    if (!AllFinite(pq_codebooks.data(), static_cast<int64_t>(pq_codebooks.size()))) {
      return Invalid("ivf parts: pq_codebooks hold NaN or Inf");
    }
    if (list_codes.size() != static_cast<size_t>(nlist)) {
      return Invalid("ivf parts: list_codes has " + Str(list_codes.size()) +
                     " lists, want nlist = " + Str(nlist));
    }
    for (int l = 0; l < nlist; ++l) {
      if (list_codes[l].size() != list_ids[l].size() * pq_m) {
        return Invalid("ivf parts: list " + Str(l) + " has " + Str(list_ids[l].size()) +
                       " ids but " + Str(list_codes[l].size()) + " code bytes, want ids x pq_m");
      }
    }
  }
  // Ids: a permutation of 0..rows-1 spread over the lists.
  const int64_t n = rows();
  std::vector<bool> seen(static_cast<size_t>(n), false);
  for (int l = 0; l < nlist; ++l) {
    for (int64_t id : list_ids[l]) {
      if (id < 0 || id >= n) {
        return Invalid("ivf parts: list " + Str(l) + " holds id " + Str(id) + ", outside 0.." +
                       Str(n - 1));
      }
      if (seen[id]) return Invalid("ivf parts: id " + Str(id) + " appears twice");
      seen[id] = true;
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<VectorIndex>> IndexFromIvfParts(const IvfParts& parts) {
  VLAKE_RETURN_IF_ERROR(parts.Validate());
  std::string factory = parts.is_pq()
                            ? "IVF_PQ:nlist=" + Str(parts.nlist) + ",m=" + Str(parts.pq_m) +
                                  ",nbits=" + Str(parts.pq_nbits)
                            : "IVF_FLAT:nlist=" + Str(parts.nlist);
  VLAKE_ASSIGN_OR_RETURN(IndexSpec spec, IndexSpec::Parse(factory));
  return FaissIndexFromIvfParts(std::move(spec), parts);
}

Result<std::unique_ptr<VectorIndex>> IndexFromGraphParts(const GraphParts& parts,
                                                         const float* vectors,
                                                         uint32_t entry_point) {
  if (!ValidMetric(parts.metric)) {
    return Invalid("graph parts: unknown metric " + Str(static_cast<int>(parts.metric)));
  }
  if (parts.dim < 1 || parts.dim > kMaxDim) {
    return Invalid("graph parts: dim " + Str(parts.dim) + " out of range");
  }
  // hnswlib keeps maxM0 = 2*M links on layer 0, M in the HNSW spec range 2..2048.
  if (parts.degree < 4 || parts.degree > 4096 || parts.degree % 2 != 0) {
    return Invalid("graph parts: degree " + Str(parts.degree) +
                   " must be even and in 4..4096 (HNSW M = degree/2)");
  }
  if (parts.rows < 0 || parts.rows >= int64_t{kNoNeighbor}) {
    return Invalid("graph parts: rows " + Str(parts.rows) + " out of range");
  }
  if (parts.graph.size() != static_cast<size_t>(parts.rows) * parts.degree) {
    return Invalid("graph parts: graph has " + Str(parts.graph.size()) +
                   " entries, want rows x degree = " + Str(parts.rows * parts.degree));
  }
  for (size_t e = 0; e < parts.graph.size(); ++e) {
    uint32_t v = parts.graph[e];
    if (v != kNoNeighbor && v >= static_cast<uint64_t>(parts.rows)) {
      return Invalid("graph parts: node " + Str(static_cast<int64_t>(e / parts.degree)) +
                     " links to " + Str(v) + ", outside 0.." + Str(parts.rows - 1));
    }
  }
  if (parts.rows > 0) {
    if (vectors == nullptr) return Invalid("graph parts: no vectors");
    if (!AllFinite(vectors, parts.rows * parts.dim)) {
      return Invalid("graph parts: vectors hold NaN or Inf");
    }
    if (entry_point >= parts.rows) {
      return Invalid("graph parts: entry point " + Str(entry_point) + " outside 0.." +
                     Str(parts.rows - 1));
    }
  }
  VLAKE_ASSIGN_OR_RETURN(IndexSpec spec, IndexSpec::Parse("HNSW:M=" + Str(parts.degree / 2)));
  return HnswIndexFromGraphParts(std::move(spec), parts, vectors, entry_point);
}

}  // namespace vlake::vector
