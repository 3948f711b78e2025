#include "vector/reference_build.h"

#include <faiss/utils/distances.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "vector/index.h"

namespace vlake::vector {
namespace {

Status Invalid(const std::string& what) { return Status(Code::kInvalidArgument, what); }

// The k nearest of ny rows y for each of nx rows x (FAISS brute force, OpenMP inside).
void Knn(Metric metric, const float* x, int64_t nx, const float* y, int64_t ny, int dim, int64_t k,
         float* distances, int64_t* labels) {
  if (metric == Metric::kL2) {
    faiss::knn_L2sqr(x, y, dim, nx, ny, k, distances, labels);
  } else {
    faiss::knn_inner_product(x, y, dim, nx, ny, k, distances, labels);
  }
}

// Nearest centroid of each row.
std::vector<int64_t> Assign(Metric metric, const float* x, int64_t n, int dim,
                            const float* centroids, int k) {
  std::vector<int64_t> labels(static_cast<size_t>(n));
  std::vector<float> distances(static_cast<size_t>(n));
  Knn(metric, x, n, centroids, k, dim, 1, distances.data(), labels.data());
  for (int64_t label : labels) VLAKE_CHECK(label >= 0 && label < k);  // finite inputs
  return labels;
}

void ScaleToUnit(float* row, int dim) {
  double s = 0;
  for (int j = 0; j < dim; ++j) s += double(row[j]) * row[j];
  if (s <= 0) return;
  double inv = 1.0 / std::sqrt(s);
  for (int j = 0; j < dim; ++j) row[j] = static_cast<float>(row[j] * inv);
}

// Rows `rows` of x gathered into a dense array.
std::vector<float> Gather(const float* x, int dim, const std::vector<int64_t>& rows) {
  std::vector<float> out(rows.size() * dim);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::copy_n(x + rows[i] * dim, dim, out.data() + i * dim);
  }
  return out;
}

// Columns [begin, begin + width) of n rows of width `dim`.
std::vector<float> Columns(const float* x, int64_t n, int dim, int begin, int width) {
  std::vector<float> out(static_cast<size_t>(n) * width);
  for (int64_t i = 0; i < n; ++i) std::copy_n(x + i * dim + begin, width, out.data() + i * width);
  return out;
}

}  // namespace

std::vector<int64_t> ReferenceDrawDistinct(int64_t n, int64_t m, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), int64_t{0});
  std::mt19937_64 rng(seed);
  for (int64_t i = 0; i < m; ++i) {
    int64_t j = i + static_cast<int64_t>(rng() % static_cast<uint64_t>(n - i));
    std::swap(p[i], p[j]);
  }
  p.resize(static_cast<size_t>(m));
  return p;
}

std::vector<float> ReferenceKMeans(const ReferenceKMeansParams& params, Metric metric,
                                   const float* x, int64_t n, int dim) {
  const int k = params.k;
  VLAKE_CHECK(k >= 1 && k <= n && dim >= 1 && params.iterations >= 0);
  std::vector<float> normalized;
  if (metric == Metric::kCosine) {
    normalized = NormalizedCopy(x, n, dim);
    x = normalized.data();
  }
  const bool spherical = metric != Metric::kL2;

  std::vector<float> centroids(static_cast<size_t>(k) * dim);
  std::vector<int64_t> init = ReferenceDrawDistinct(n, k, params.seed);
  for (int c = 0; c < k; ++c) std::copy_n(x + init[c] * dim, dim, centroids.data() + c * dim);

  std::vector<double> sums(static_cast<size_t>(k) * dim);
  std::vector<int64_t> size(k);
  constexpr double kEps = 1.0 / 1024;
  for (int it = 0; it < params.iterations; ++it) {
    std::vector<int64_t> labels = Assign(metric, x, n, dim, centroids.data(), k);
    // Sequential accumulation: the result does not depend on the thread count, and it costs
    // ~1/k of the assignment.
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(size.begin(), size.end(), 0);
    for (int64_t i = 0; i < n; ++i) {
      double* s = sums.data() + labels[i] * dim;
      const float* row = x + i * dim;
      for (int j = 0; j < dim; ++j) s[j] += row[j];
      ++size[labels[i]];
    }
    for (int c = 0; c < k; ++c) {
      if (size[c] == 0) continue;
      float* centroid = centroids.data() + static_cast<size_t>(c) * dim;
      const double* s = sums.data() + static_cast<size_t>(c) * dim;
      for (int j = 0; j < dim; ++j) centroid[j] = static_cast<float>(s[j] / size[c]);
      if (spherical) ScaleToUnit(centroid, dim);
    }
    if (!params.balanced) continue;
    const double min_size = params.balance_min_fraction * static_cast<double>(n) / k;
    for (int c = 0; c < k; ++c) {
      if (static_cast<double>(size[c]) >= min_size) continue;
      int largest = static_cast<int>(std::max_element(size.begin(), size.end()) - size.begin());
      if (largest == c) continue;  // every cluster is below the bar: fraction > 1
      float* to = centroids.data() + static_cast<size_t>(c) * dim;
      float* from = centroids.data() + static_cast<size_t>(largest) * dim;
      for (int j = 0; j < dim; ++j) {
        float v = from[j];
        to[j] = static_cast<float>(v * (j % 2 == 0 ? 1 + kEps : 1 - kEps));
        from[j] = static_cast<float>(v * (j % 2 == 0 ? 1 - kEps : 1 + kEps));
      }
      size[c] = size[largest] / 2;
      size[largest] -= size[c];
    }
  }
  return centroids;
}

Result<IvfParts> ReferenceBuildIvf(const ReferenceIvfParams& params, Metric metric, const float* x,
                                   int64_t n, int dim) {
  if (dim < 1 || dim > kMaxDim) return Invalid("ivf build: dim " + std::to_string(dim));
  if (params.nlist < 1) return Invalid("ivf build: nlist must be >= 1");
  if (n < params.nlist) {
    return Invalid("ivf build: needs at least nlist=" + std::to_string(params.nlist) +
                   " rows, got " + std::to_string(n));
  }
  if (params.pq_m < 0 || (params.pq_m > 0 && dim % params.pq_m != 0)) {
    return Invalid("ivf build: pq_m=" + std::to_string(params.pq_m) +
                   " must divide dim=" + std::to_string(dim));
  }
  if (params.pq_m > 0 && params.pq_nbits != 8) {
    return Invalid("ivf build: only pq_nbits=8 is supported");
  }
  if (params.kmeans_iterations < 0 || params.pq_kmeans_iterations < 0) {
    return Invalid("ivf build: negative iteration count");
  }
  const int64_t max_train =
      params.max_training_rows > 0 ? params.max_training_rows : int64_t{256} * params.nlist;
  const int64_t m = std::min(n, max_train);
  if (m < params.nlist) {
    return Invalid("ivf build: max_training_rows=" + std::to_string(m) + " is below nlist");
  }
  constexpr int kKsub = 256;
  if (params.pq_m > 0 && m < kKsub) {
    return Invalid("ivf build: IVF_PQ needs at least 256 training rows, got " + std::to_string(m));
  }
  try {
    std::vector<float> normalized;
    if (metric == Metric::kCosine) {
      normalized = NormalizedCopy(x, n, dim);
      x = normalized.data();
    }
    // Rows are unit length from here on for COSINE, which then is inner product.
    const Metric work = metric == Metric::kCosine ? Metric::kIP : metric;

    std::vector<int64_t> sample_rows;
    if (m < n) {
      sample_rows = ReferenceDrawDistinct(n, m, params.seed);
      std::sort(sample_rows.begin(), sample_rows.end());
    } else {
      sample_rows.resize(static_cast<size_t>(n));
      std::iota(sample_rows.begin(), sample_rows.end(), int64_t{0});
    }
    std::vector<float> sample_copy;
    const float* sample = x;
    if (m < n) {
      sample_copy = Gather(x, dim, sample_rows);
      sample = sample_copy.data();
    }

    IvfParts parts;
    parts.metric = metric;
    parts.dim = dim;
    parts.nlist = params.nlist;
    ReferenceKMeansParams coarse;
    coarse.k = params.nlist;
    coarse.iterations = params.kmeans_iterations;
    coarse.seed = params.seed + 1;
    coarse.balanced = true;
    parts.centroids = ReferenceKMeans(coarse, work, sample, m, dim);

    std::vector<int64_t> labels = Assign(work, x, n, dim, parts.centroids.data(), params.nlist);
    parts.list_ids.resize(params.nlist);
    for (int64_t i = 0; i < n; ++i) parts.list_ids[labels[i]].push_back(i);

    if (params.pq_m == 0) {
      parts.list_vectors.resize(params.nlist);
      for (int l = 0; l < params.nlist; ++l) {
        parts.list_vectors[l] = Gather(x, dim, parts.list_ids[l]);
      }
      return parts;
    }

    // IVF_PQ: codebooks from the sample's residuals, then every row's residual encoded.
    parts.pq_m = params.pq_m;
    parts.pq_nbits = params.pq_nbits;
    const int dsub = dim / params.pq_m;
    auto residuals_of = [&](const int64_t* rows, int64_t count) {
      std::vector<float> r(static_cast<size_t>(count) * dim);
      for (int64_t i = 0; i < count; ++i) {
        const float* row = x + rows[i] * dim;
        const float* c = parts.centroids.data() + labels[rows[i]] * dim;
        for (int j = 0; j < dim; ++j) r[i * dim + j] = row[j] - c[j];
      }
      return r;
    };
    std::vector<float> train_residuals = residuals_of(sample_rows.data(), m);
    parts.pq_codebooks.resize(static_cast<size_t>(kKsub) * dim);
    for (int j = 0; j < params.pq_m; ++j) {
      std::vector<float> sub = Columns(train_residuals.data(), m, dim, j * dsub, dsub);
      ReferenceKMeansParams pq;
      pq.k = kKsub;
      pq.iterations = params.pq_kmeans_iterations;
      pq.seed = params.seed + 2 + static_cast<uint64_t>(j);
      pq.balanced = false;
      std::vector<float> book = ReferenceKMeans(pq, Metric::kL2, sub.data(), m, dsub);
      std::copy(book.begin(), book.end(),
                parts.pq_codebooks.begin() + static_cast<size_t>(j) * kKsub * dsub);
    }
    std::vector<uint8_t> codes(static_cast<size_t>(n) * params.pq_m);
    constexpr int64_t kBatch = 1 << 16;
    std::vector<int64_t> batch_rows;
    for (int64_t b0 = 0; b0 < n; b0 += kBatch) {
      int64_t nb = std::min(kBatch, n - b0);
      batch_rows.resize(static_cast<size_t>(nb));
      std::iota(batch_rows.begin(), batch_rows.end(), b0);
      std::vector<float> res = residuals_of(batch_rows.data(), nb);
      for (int j = 0; j < params.pq_m; ++j) {
        std::vector<float> sub = Columns(res.data(), nb, dim, j * dsub, dsub);
        std::vector<int64_t> code =
            Assign(Metric::kL2, sub.data(), nb, dsub,
                   parts.pq_codebooks.data() + static_cast<size_t>(j) * kKsub * dsub, kKsub);
        for (int64_t i = 0; i < nb; ++i) {
          codes[(b0 + i) * params.pq_m + j] = static_cast<uint8_t>(code[i]);
        }
      }
    }
    parts.list_codes.resize(params.nlist);
    for (int l = 0; l < params.nlist; ++l) {
      std::vector<uint8_t>& lc = parts.list_codes[l];
      lc.reserve(parts.list_ids[l].size() * params.pq_m);
      for (int64_t id : parts.list_ids[l]) {
        const uint8_t* c = codes.data() + id * params.pq_m;
        lc.insert(lc.end(), c, c + params.pq_m);
      }
    }
    return parts;
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("ivf build: ") + e.what());
  }
}

Result<GraphParts> ReferenceBuildCagra(const ReferenceCagraParams& params, Metric metric,
                                       const float* x, int64_t n, int dim) {
  if (dim < 1 || dim > kMaxDim) return Invalid("cagra build: dim " + std::to_string(dim));
  if (params.graph_degree < 1 || params.intermediate_graph_degree < params.graph_degree) {
    return Invalid(
        "cagra build: want 1 <= graph_degree=" + std::to_string(params.graph_degree) +
        " <= intermediate_graph_degree=" + std::to_string(params.intermediate_graph_degree));
  }
  if (n < 0 || n >= int64_t{kNoNeighbor}) {
    return Invalid("cagra build: rows " + std::to_string(n) + " out of range");
  }
  try {
    std::vector<float> normalized;
    if (metric == Metric::kCosine) {
      normalized = NormalizedCopy(x, n, dim);
      x = normalized.data();
    }
    const Metric work = metric == Metric::kCosine ? Metric::kIP : metric;
    const int degree_knn = params.intermediate_graph_degree;
    // One extra neighbour to drop the row itself.
    const int64_t kk = std::min<int64_t>(degree_knn + 1, n);
    std::vector<uint32_t> knn(static_cast<size_t>(n) * degree_knn, kNoNeighbor);
    constexpr int64_t kBatch = 4096;
    std::vector<float> distances;
    std::vector<int64_t> labels;
    for (int64_t b0 = 0; b0 < n; b0 += kBatch) {
      int64_t nb = std::min(kBatch, n - b0);
      distances.resize(static_cast<size_t>(nb * kk));
      labels.resize(static_cast<size_t>(nb * kk));
      Knn(work, x + b0 * dim, nb, x, n, dim, kk, distances.data(), labels.data());
      for (int64_t q = 0; q < nb; ++q) {
        const int64_t row = b0 + q;
        uint32_t* out = knn.data() + row * degree_knn;
        int filled = 0;
        for (int64_t t = 0; t < kk && filled < degree_knn; ++t) {
          int64_t id = labels[q * kk + t];
          if (id < 0 || id == row) continue;
          out[filled++] = static_cast<uint32_t>(id);
        }
      }
    }
    GraphParts parts;
    parts.metric = metric;
    parts.dim = dim;
    parts.rows = n;
    parts.degree = params.graph_degree;
    parts.graph = CagraOptimize(knn.data(), n, degree_knn, params.graph_degree);
    return parts;
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("cagra build: ") + e.what());
  }
}

std::vector<uint32_t> CagraOptimize(const uint32_t* knn, int64_t n, int knn_degree, int degree) {
  const int K = knn_degree;
  VLAKE_CHECK(degree >= 1 && degree <= K && n >= 0 && n < int64_t{kNoNeighbor});
  auto is_node = [n](uint32_t v) { return static_cast<int64_t>(v) < n; };

  // (a) Rank-based detour pruning.
  std::vector<uint32_t> pruned(static_cast<size_t>(n) * degree, kNoNeighbor);
#pragma omp parallel
  {
    // Ranks of each node in N(i): first_rank[v], then next_rank[j] chains its repeats.
    std::vector<int32_t> first_rank(static_cast<size_t>(n), -1);
    std::vector<int32_t> next_rank(K, -1);
    std::vector<int> counted_for_r(K);  // a node repeated in N(u) counts once per (r, j)
    std::vector<int> key(K);
    std::vector<int> order(K);
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t* ni = knn + i * K;
      for (int j = K - 1; j >= 0; --j) {
        if (!is_node(ni[j])) continue;
        next_rank[j] = first_rank[ni[j]];
        first_rank[ni[j]] = j;
      }
      std::fill(key.begin(), key.end(), 0);
      std::fill(counted_for_r.begin(), counted_for_r.end(), -1);
      for (int r = 0; r < K; ++r) {
        if (!is_node(ni[r])) continue;
        const uint32_t* nu = knn + static_cast<int64_t>(ni[r]) * K;
        for (int s = 0; s < K; ++s) {
          if (!is_node(nu[s])) continue;
          for (int j = first_rank[nu[s]]; j != -1; j = next_rank[j]) {
            if (j > r && j > s && counted_for_r[j] != r) {
              counted_for_r[j] = r;
              ++key[j];
            }
          }
        }
      }
      for (int j = 0; j < K; ++j) {
        if (!is_node(ni[j])) key[j] = K;  // after every node: detours(i, j) < j < K
      }
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key[a] < key[b]; });
      for (int p = 0; p < degree; ++p) {
        uint32_t v = ni[order[p]];
        pruned[i * degree + p] = is_node(v) ? v : kNoNeighbor;
      }
      for (int j = 0; j < K; ++j) {
        if (is_node(ni[j])) first_rank[ni[j]] = -1;
      }
    }
  }

  // (b) Reverse edges, rank by rank so every node's nearest in-edges come first.
  std::vector<uint32_t> rev(static_cast<size_t>(n) * degree);
  std::vector<int> rev_count(static_cast<size_t>(n), 0);
  for (int p = 0; p < degree; ++p) {
    for (int64_t i = 0; i < n; ++i) {
      uint32_t v = pruned[i * degree + p];
      if (v == kNoNeighbor || rev_count[v] >= degree) continue;  // pruned holds nodes or padding
      rev[static_cast<int64_t>(v) * degree + rev_count[v]++] = static_cast<uint32_t>(i);
    }
  }

  // (c) Merge: half pruned, then reverse edges, then the rest of pruned.
  std::vector<uint32_t> out(static_cast<size_t>(n) * degree, kNoNeighbor);
  const int half = degree / 2;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    uint32_t* o = out.data() + i * degree;
    int count = 0;
    auto add = [&](uint32_t v) {
      if (v == kNoNeighbor || count == degree) return;
      if (std::find(o, o + count, v) != o + count) return;
      o[count++] = v;
    };
    const uint32_t* pi = pruned.data() + i * degree;
    for (int p = 0; p < half; ++p) add(pi[p]);
    const uint32_t* ri = rev.data() + i * degree;
    for (int p = 0; p < rev_count[i]; ++p) add(ri[p]);
    for (int p = half; p < degree; ++p) add(pi[p]);
  }
  return out;
}

uint32_t ReferenceEntryPoint(Metric metric, const float* x, int64_t n, int dim) {
  if (n <= 0) return 0;
  std::vector<float> normalized;
  if (metric == Metric::kCosine) {
    normalized = NormalizedCopy(x, n, dim);
    x = normalized.data();
  }
  std::vector<double> mean(dim, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int j = 0; j < dim; ++j) mean[j] += x[i * dim + j];
  }
  for (double& v : mean) v /= static_cast<double>(n);
  const bool l2 = metric == Metric::kL2;
  if (!l2) {
    double s = 0;
    for (double v : mean) s += v * v;
    if (s > 0) {
      for (double& v : mean) v /= std::sqrt(s);
    }
  }
  int64_t best = 0;
  double best_score = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * dim;
    double score = 0;
    if (l2) {
      for (int j = 0; j < dim; ++j) {
        double d = row[j] - mean[j];
        score -= d * d;  // larger is closer, like the inner product
      }
    } else {
      for (int j = 0; j < dim; ++j) score += row[j] * mean[j];
    }
    if (i == 0 || score > best_score) {
      best = i;
      best_score = score;
    }
  }
  return static_cast<uint32_t>(best);
}

}  // namespace vlake::vector
