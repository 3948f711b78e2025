// Seeded synthetic data and recall, shared by tests and benchmarks.
//
// Clustered data is a Gaussian mixture: `clusters` centers drawn uniformly in [-1, 1]^dim,
// each point a center plus N(0, spread^2) noise; queries are drawn the same way from the same
// centers, so they have true near neighbours (as real embedding queries do).
#pragma once

#include <cstdint>
#include <vector>

#include "vector/index.h"

namespace vlake::vector {

struct ClusteredSpec {
  int64_t rows = 10000;
  int dim = 32;
  int clusters = 64;
  float spread = 0.15f;
  uint64_t seed = 42;
};

// rows*dim floats. Generation is parallel but deterministic for a given spec.
std::vector<float> GenerateClustered(const ClusteredSpec& spec);
// Queries from the same mixture (same centers, different noise stream).
std::vector<float> GenerateQueries(const ClusteredSpec& spec, int64_t nq);

// Exact top-k labels (nq*k) by brute force.
std::vector<int64_t> GroundTruth(Metric metric, const float* base, int64_t n, int dim,
                                 const float* queries, int64_t nq, int64_t k);

// Recall@k that does not depend on floating-point rounding: a found row counts when its exact
// distance (computed in double) is at least as close as the exact k-th nearest row's, within
// a relative 1e-5. Rows at a near-tie with the k-th may come in either order on another CPU's
// kernels; label-set recall would then move, this does not. Distinct rows only; kCosine
// compares against unit-length base rows.
double TieAwareRecallAtK(Metric metric, const float* base, int64_t n, int dim,
                         const float* queries, int64_t nq, const std::vector<int64_t>& found,
                         int64_t found_stride, int64_t k);

// Mean over queries of |found ∩ truth| / k, looking at the first k entries of each.
double RecallAtK(const std::vector<int64_t>& found, int64_t found_stride,
                 const std::vector<int64_t>& truth, int64_t truth_stride, int64_t nq, int64_t k);

}  // namespace vlake::vector
