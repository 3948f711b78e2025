#include "vector/synthetic.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_set>

namespace vlake::vector {
namespace {

std::vector<float> Centers(const ClusteredSpec& spec) {
  std::mt19937_64 rng(spec.seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> c(static_cast<size_t>(spec.clusters) * spec.dim);
  for (float& v : c) v = u(rng);
  return c;
}

// Fills rows [0, n) from per-block seeded streams so the result does not depend on threads.
std::vector<float> Sample(const ClusteredSpec& spec, int64_t n, uint64_t stream) {
  std::vector<float> centers = Centers(spec);
  std::vector<float> out(static_cast<size_t>(n) * spec.dim);
  constexpr int64_t kBlock = 4096;
  int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t b = 0; b < blocks; ++b) {
    std::mt19937_64 rng(spec.seed * 0x9E3779B97F4A7C15ull + stream * 1000003 + b);
    std::normal_distribution<float> noise(0.0f, spec.spread);
    std::uniform_int_distribution<int> pick(0, spec.clusters - 1);
    for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) {
      const float* c = centers.data() + static_cast<size_t>(pick(rng)) * spec.dim;
      float* row = out.data() + i * spec.dim;
      for (int j = 0; j < spec.dim; ++j) row[j] = c[j] + noise(rng);
    }
  }
  return out;
}

}  // namespace

std::vector<float> GenerateClustered(const ClusteredSpec& spec) {
  return Sample(spec, spec.rows, 1);
}

std::vector<float> GenerateQueries(const ClusteredSpec& spec, int64_t nq) {
  return Sample(spec, nq, 2);
}

std::vector<int64_t> GroundTruth(Metric metric, const float* base, int64_t n, int dim,
                                 const float* queries, int64_t nq, int64_t k) {
  SearchParams p;
  p.k = k;
  SearchResult r;
  std::vector<float> normalized;
  if (metric == Metric::kCosine) {
    normalized = NormalizedCopy(base, n, dim);
    base = normalized.data();
  }
  Status st = BruteForceSearch(metric, base, n, dim, queries, nq, p, &r);
  VLAKE_CHECK(st.ok());
  return r.labels;
}

double TieAwareRecallAtK(Metric metric, const float* base, int64_t n, int dim,
                         const float* queries, int64_t nq, const std::vector<int64_t>& found,
                         int64_t found_stride, int64_t k) {
  if (nq == 0 || k == 0) return 1.0;
  std::vector<float> normalized;
  if (metric == Metric::kCosine) {
    normalized = NormalizedCopy(base, n, dim);
    base = normalized.data();
  }
  const bool larger = LargerIsCloser(metric);
  // Closeness as a number where smaller is closer: L2 distance, or minus the inner product.
  auto closeness = [&](const float* q, int64_t row) {
    const float* b = base + row * dim;
    double acc = 0;
    for (int j = 0; j < dim; ++j) {
      acc += larger ? double(q[j]) * b[j] : (double(q[j]) - b[j]) * (double(q[j]) - b[j]);
    }
    return larger ? -acc : acc;
  };
  double sum = 0;
  std::vector<double> all(n);
  for (int64_t q = 0; q < nq; ++q) {
    const float* query = queries + q * dim;
    for (int64_t i = 0; i < n; ++i) all[i] = closeness(query, i);
    const int64_t kk = std::min<int64_t>(k, n);
    std::nth_element(all.begin(), all.begin() + (kk - 1), all.end());
    const double kth = all[kk - 1];
    const double slack = 1e-5 * std::max(1.0, std::abs(kth));
    std::unordered_set<int64_t> seen;
    int64_t hit = 0;
    for (int64_t i = 0; i < k; ++i) {
      int64_t row = found[q * found_stride + i];
      if (row < 0 || row >= n || !seen.insert(row).second) continue;
      if (closeness(query, row) <= kth + slack) ++hit;
    }
    sum += static_cast<double>(hit) / k;
  }
  return sum / nq;
}

double RecallAtK(const std::vector<int64_t>& found, int64_t found_stride,
                 const std::vector<int64_t>& truth, int64_t truth_stride, int64_t nq, int64_t k) {
  if (nq == 0 || k == 0) return 1.0;
  double sum = 0;
  for (int64_t q = 0; q < nq; ++q) {
    std::unordered_set<int64_t> t(truth.begin() + q * truth_stride,
                                  truth.begin() + q * truth_stride + k);
    int64_t hit = 0;
    for (int64_t i = 0; i < k; ++i) hit += t.count(found[q * found_stride + i]) ? 1 : 0;
    sum += static_cast<double>(hit) / k;
  }
  return sum / nq;
}

}  // namespace vlake::vector
