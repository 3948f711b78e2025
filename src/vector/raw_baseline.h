// The raw libraries, called directly with the parameters vlake would use: the reference that
// `vlake bench index` measures vlake's adaptors against (goal: <= 10% overhead). Not used by
// the database itself. COSINE callers pass unit-normalized vectors, as a raw user would.
#pragma once

#include <cstdint>
#include <memory>

#include "vector/index.h"

namespace vlake::vector {

struct RawTiming {
  double train_s = 0;
  double add_s = 0;
};

class RawIndex {
 public:
  virtual ~RawIndex() = default;
  // nprobe_or_ef: IVF nprobe or HNSW ef (0 = the same default vlake uses).
  virtual Status Search(const float* queries, int64_t nq, int64_t k, int64_t nprobe_or_ef,
                        int64_t* labels, float* distances) = 0;
};

// FAISS: index_factory with FaissFactoryString(spec), train, add. HNSW: hnswlib's
// HierarchicalNSW with addPoint from an OpenMP loop.
Result<std::unique_ptr<RawIndex>> RawBuild(const IndexSpec& spec, Metric metric, int dim,
                                           const float* x, int64_t n, RawTiming* timing);

// The FAISS factory string vlake uses for a FAISS-backed spec ("IVF1024,PQ16x8").
std::string FaissFactoryString(const IndexSpec& spec);

// Internal to src/vector.
Result<std::unique_ptr<RawIndex>> RawHnswBuild(const IndexSpec& spec, Metric metric, int dim,
                                               const float* x, int64_t n, RawTiming* timing);

}  // namespace vlake::vector
