// VectorIndex: the one polymorphic index interface of vlake, created from a factory string.
//
// Data is row-major: n vectors of dim() floats. Labels are row numbers within the indexed
// segment (0..n-1), so a filter or tombstone Bitset over the segment applies directly.
// Every implementation (FAISS-backed FLAT/IVF_*, hnswlib-backed HNSW, and later GPU builders
// that write one of these formats) serializes into the index file format of
// docs/format/index.md, which LoadIndex reads back whatever built it.
//
// Factory strings (docs/format/index.md#factory-strings), parameters optional:
//   FLAT
//   IVF_FLAT:nlist=1024          IVF_SQ8:nlist=1024          IVF_PQ:nlist=1024,m=16,nbits=8
//   HNSW:M=16,efConstruction=200
//
// Thread-safety: Train/Add are not thread-safe and must finish before Search; once built or
// loaded, Search is const and safe from many threads at once (per-request parameters travel in
// SearchParams, never in index state). Implementations may use OpenMP/threads internally.
// Exceptions from the libraries are caught inside and returned as Status.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vector/bitset.h"
#include "vector/types.h"
#include "vlake/status.h"

namespace vlake::vector {

// A parsed factory string: TYPE[:key=value[,key=value...]].
struct IndexSpec {
  std::string type;                           // FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW
  std::map<std::string, int64_t> params;      // e.g. nlist, m, nbits, M, efConstruction

  static Result<IndexSpec> Parse(std::string_view factory);
  std::string ToString() const;  // canonical: type, then params in key order with defaults filled
  int64_t Get(const std::string& key, int64_t fallback) const;
};

struct SearchParams {
  int64_t k = 10;        // results per query, 1..kMaxTopK
  int64_t nprobe = 0;    // IVF_*: lists probed; 0 = index default (min(nlist, 16))
  int64_t ef = 0;        // HNSW: search beam width; 0 = max(k, 64)
  // Rows allowed to match (size == index size); nullptr = all rows.
  const Bitset* allowed = nullptr;
  // Range search: keep only results with distance < radius (L2) or > radius (IP/COSINE), and
  // >= range_filter (L2) / <= range_filter (IP/COSINE) when set. The top-k within the radius
  // is exactly "the k nearest, cut at the radius", so no separate code path is needed.
  std::optional<float> radius;
  std::optional<float> range_filter;
};

inline constexpr int64_t kMaxTopK = 16384;

// Results for nq queries, k slots each, best first; empty slots have label -1.
struct SearchResult {
  int64_t nq = 0;
  int64_t k = 0;
  std::vector<int64_t> labels;
  std::vector<float> distances;
  void Resize(int64_t queries, int64_t topk);
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  const IndexSpec& spec() const { return spec_; }
  int dim() const { return dim_; }
  Metric metric() const { return metric_; }
  virtual int64_t size() const = 0;
  virtual bool needs_training() const = 0;
  // Fewest vectors Train accepts (IVF: nlist; IVF_PQ: also 2^nbits); 0 when untrained types.
  virtual int64_t min_training_rows() const { return 0; }

  // Trains on n sample vectors (IVF quantizers; no-op for FLAT/HNSW).
  virtual Status Train(const float* x, int64_t n) = 0;
  // Adds n vectors; they get labels size()..size()+n-1. NaN/Inf are the caller's to reject.
  virtual Status Add(const float* x, int64_t n) = 0;
  virtual Status Search(const float* queries, int64_t nq, const SearchParams& params,
                        SearchResult* out) const = 0;
  // The library's own serialized bytes (the index file payload; see SerializeIndexFile).
  virtual Result<std::string> SerializePayload() const = 0;
  // Bytes of memory the index holds (approximate).
  virtual int64_t memory_bytes() const = 0;

 protected:
  VectorIndex(IndexSpec spec, int dim, Metric metric)
      : spec_(std::move(spec)), dim_(dim), metric_(metric) {}

  IndexSpec spec_;
  int dim_;
  Metric metric_;
};

// Creates an empty index. InvalidArgument for an unknown type or out-of-range parameter.
Result<std::unique_ptr<VectorIndex>> MakeIndex(std::string_view factory, int dim, Metric metric);

// The index file (docs/format/index.md): header with spec, metric, dim, row count and a
// caller-supplied metadata string (the vectordb records the segment it indexes there), the
// payload, and a CRC32C over everything.
struct IndexFileInfo {
  IndexSpec spec;
  Metric metric = Metric::kL2;
  int dim = 0;
  int64_t rows = 0;
  std::string metadata;
};
Result<std::string> SerializeIndexFile(const VectorIndex& index, std::string_view metadata);
// Reads only the header (cheap; validates the checksum of the whole file).
Result<IndexFileInfo> ReadIndexFileInfo(std::string_view file);
Result<std::unique_ptr<VectorIndex>> LoadIndexFile(std::string_view file,
                                                   IndexFileInfo* info = nullptr);

// Exact search over n row-major vectors (the FLAT path for unindexed and growing rows). For
// COSINE the base rows must already be unit length; queries are normalized here.
Status BruteForceSearch(Metric metric, const float* base, int64_t n, int dim,
                        const float* queries, int64_t nq, const SearchParams& params,
                        SearchResult* out);

// Helpers shared by implementations and the brute-force paths.
// Copies x and normalizes each row to unit length (rows of zeros stay zero).
std::vector<float> NormalizedCopy(const float* x, int64_t n, int dim);
// True if every value is finite.
bool AllFinite(const float* x, int64_t count);
// Applies params.radius/range_filter to a result in place (dropped slots become label -1).
void ApplyRange(Metric metric, const SearchParams& params, SearchResult* result);

}  // namespace vlake::vector
