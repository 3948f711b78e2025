// GPU CAGRA (cagra.cu): the GPU optimization equals the CPU reference rule exactly, build +
// GPU search reaches brute-force recall, the exported HNSW graph searches on the CPU as well
// as a CPU-built HNSW, and a query's answer does not depend on its batch. Every test skips
// cleanly without a GPU.
//
// Data: seeded Gaussian mixtures with fewer points per cluster than the kNN degree. (With
// more, e.g. the ClusteredSpec defaults at 10000+ rows, the clusters are so far apart that no
// kNN list leaves its cluster: the graph falls apart into one component per cluster, which
// no single-layer graph search — CAGRA's own — can cross; the HNSW export adds upper layers
// for that, vector/interop_test.cc covers it.)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "common/testing.h"
#include "gpu/algorithms.h"
#include "gpu/cagra_rules.h"
#include "gpu/device.h"
#include "gpu/gpu_testing.h"
#include "vector/index.h"
#include "vector/index_parts.h"
#include "vector/reference_build.h"
#include "vector/synthetic.h"

namespace vlake::gpu {
namespace {

using vector::Metric;

vector::ClusteredSpec TestSpec(int64_t rows) {
  vector::ClusteredSpec spec;
  spec.rows = rows;
  spec.dim = 32;
  spec.clusters = 256;
  spec.spread = 0.3f;
  spec.seed = 42;
  return spec;
}

MatrixView HostView(const std::vector<float>& x, int dim) {
  return MatrixView{x.data(), static_cast<int64_t>(x.size()) / dim, dim, Memory::kHost};
}

// The CPU reference of the optimize rule (src/vector/reference_build.h), in one place so a
// change of its signature is a one-line change here.
std::vector<uint32_t> CpuOptimize(const std::vector<uint32_t>& knn, int64_t rows, int knn_degree,
                                  int degree) {
  return vector::CagraOptimize(knn.data(), rows, knn_degree, degree);
}

// Exact kNN lists on the CPU (FAISS brute force), self excluded, padded with kNoNeighbor.
std::vector<uint32_t> CpuKnnGraph(const std::vector<float>& x, int64_t rows, int dim, int k) {
  vector::SearchParams params;
  params.k = std::min<int64_t>(k + 1, rows);
  vector::SearchResult result;
  EXPECT_OK(
      vector::BruteForceSearch(Metric::kL2, x.data(), rows, dim, x.data(), rows, params, &result));
  std::vector<uint32_t> knn(static_cast<size_t>(rows) * k, vector::kNoNeighbor);
  for (int64_t i = 0; i < rows; ++i) {
    int count = 0;
    for (int64_t t = 0; t < params.k && count < k; ++t) {
      const int64_t label = result.labels[i * params.k + t];
      if (label >= 0 && label != i) knn[i * k + count++] = static_cast<uint32_t>(label);
    }
  }
  return knn;
}

void ExpectWellFormed(const vector::GraphParts& parts, int64_t rows, int degree) {
  ASSERT_EQ(parts.rows, rows);
  ASSERT_EQ(parts.degree, degree);
  ASSERT_EQ(parts.graph.size(), static_cast<size_t>(rows) * degree);
  for (int64_t i = 0; i < rows; ++i) {
    std::vector<uint32_t> row(parts.graph.begin() + i * degree,
                              parts.graph.begin() + (i + 1) * degree);
    for (uint32_t v : row) {
      ASSERT_TRUE(v == vector::kNoNeighbor || v < rows) << "node " << i;
      ASSERT_NE(v, static_cast<uint32_t>(i)) << "self loop at " << i;
    }
    std::sort(row.begin(), row.end());
    for (size_t t = 1; t < row.size(); ++t) {
      ASSERT_FALSE(row[t] == row[t - 1] && row[t] != vector::kNoNeighbor)
          << "node " << row[t] << " twice in row " << i;
    }
  }
}

// ---- Optimize parity with the CPU reference ----

TEST(CagraGpuTest, OptimizeEqualsCpuReferenceOnClusteredKnn) {
  VLAKE_SKIP_WITHOUT_GPU();
  const vector::ClusteredSpec spec = TestSpec(FULL_OR_EMU(5000, 1500));
  const std::vector<float> x = vector::GenerateClustered(spec);
  for (auto [knn_degree, degree] : {std::pair{64, 32}, std::pair{128, 64}}) {
    const std::vector<uint32_t> knn = CpuKnnGraph(x, spec.rows, spec.dim, knn_degree);
    ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> gpu,
                         OptimizeCagraGraph(knn.data(), spec.rows, knn_degree, degree));
    const std::vector<uint32_t> cpu = CpuOptimize(knn, spec.rows, knn_degree, degree);
    ASSERT_EQ(gpu.size(), cpu.size());
    int64_t first_diff = -1;
    for (size_t t = 0; t < gpu.size() && first_diff < 0; ++t) {
      if (gpu[t] != cpu[t]) first_diff = static_cast<int64_t>(t);
    }
    EXPECT_EQ(first_diff, -1) << "K " << knn_degree << " degree " << degree << ": node "
                              << first_diff / degree << " slot " << first_diff % degree;
  }
}

// Random kNN lists (distinct, no self): many detours and reverse-edge collisions.
TEST(CagraGpuTest, OptimizeEqualsCpuReferenceOnRandomKnn) {
  VLAKE_SKIP_WITHOUT_GPU();
  const int64_t rows = FULL_OR_EMU(3000, 1000);
  const int knn_degree = 32, degree = 16;
  std::mt19937_64 rng(5);
  std::vector<uint32_t> knn(rows * knn_degree);
  for (int64_t i = 0; i < rows; ++i) {
    std::vector<uint32_t> picked;
    while (static_cast<int>(picked.size()) < knn_degree) {
      const auto v = static_cast<uint32_t>(rng() % 100);  // a small pool: dense overlaps
      const uint32_t node = static_cast<uint32_t>((i + 1 + v) % rows);
      if (node != i && std::find(picked.begin(), picked.end(), node) == picked.end()) {
        picked.push_back(node);
      }
    }
    std::copy(picked.begin(), picked.end(), knn.begin() + i * knn_degree);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> gpu,
                       OptimizeCagraGraph(knn.data(), rows, knn_degree, degree));
  EXPECT_EQ(gpu, CpuOptimize(knn, rows, knn_degree, degree));
}

// Fewer rows than the kNN degree: every list is padded with kNoNeighbor.
TEST(CagraGpuTest, OptimizeEqualsCpuReferenceWithPaddedLists) {
  VLAKE_SKIP_WITHOUT_GPU();
  const vector::ClusteredSpec spec = TestSpec(40);
  const std::vector<float> x = vector::GenerateClustered(spec);
  const std::vector<uint32_t> knn = CpuKnnGraph(x, spec.rows, spec.dim, 64);
  ASSERT_OK_AND_ASSIGN(std::vector<uint32_t> gpu,
                       OptimizeCagraGraph(knn.data(), spec.rows, 64, 32));
  EXPECT_EQ(gpu, CpuOptimize(knn, spec.rows, 64, 32));
}

// ---- Build + search ----

struct Built {
  std::vector<float> base;
  std::vector<float> queries;
  vector::GraphParts parts;
};

// Fewer rows than clusters x degree either way (see the top of the file).
constexpr int64_t kRows = FULL_OR_EMU(20000, 1500);
constexpr int64_t kQueries = FULL_OR_EMU(1000, 100);
constexpr int kK = 10;

void BuildClustered(Metric metric, CagraKnnBuild knn, int64_t rows, Built* out) {
  const vector::ClusteredSpec spec = TestSpec(rows);
  out->base = vector::GenerateClustered(spec);
  out->queries = vector::GenerateQueries(spec, kQueries);
  if (metric == Metric::kCosine) {
    out->base = vector::NormalizedCopy(out->base.data(), rows, spec.dim);
  }
  CagraBuildParams params;  // degree 64, intermediate 128
  params.knn = knn;
  BuildStats stats;
  ASSERT_OK_AND_ASSIGN(out->parts,
                       BuildCagra(params, metric, HostView(out->base, spec.dim), &stats));
  ExpectWellFormed(out->parts, rows, params.graph_degree);
  EXPECT_EQ(out->parts.metric, metric);
  EXPECT_EQ(out->parts.dim, spec.dim);
  EXPECT_GT(stats.graph_seconds, 0);
  EXPECT_GT(stats.optimize_seconds, 0);
}

// The L2 exact-kNN build of kRows rows, built once for the tests that only search it.
const Built& L2ExactBuild() {
  static const Built built = [] {
    Built b;
    BuildClustered(Metric::kL2, CagraKnnBuild::kExact, kRows, &b);
    return b;
  }();
  return built;
}

double GpuRecall(const Built& b, Metric metric, int itopk) {
  const int dim = b.parts.dim;
  auto index = UploadCagra(b.parts, HostView(b.base, dim));
  EXPECT_OK(index);
  if (!index.ok()) return 0;
  GpuSearchParams params;
  params.k = kK;
  params.itopk = itopk;
  const int64_t rows = b.parts.rows;
  std::vector<int64_t> labels(kQueries * kK);
  std::vector<float> distances(kQueries * kK);
  EXPECT_OK((*index)->Search(HostView(b.queries, dim), params, labels.data(), distances.data()));
  // Best first, and the distances are the metric's (squared L2 / inner product, normalized
  // query for COSINE).
  for (int64_t q = 0; q < kQueries; ++q) {
    for (int r = 0; r < kK; ++r) {
      const int64_t label = labels[q * kK + r];
      if (label < 0) continue;
      double want = 0, qq = 0;
      for (int d = 0; d < dim; ++d) {
        const double qv = b.queries[q * dim + d], xv = b.base[label * dim + d];
        want += metric == Metric::kL2 ? (qv - xv) * (qv - xv) : qv * xv;
        qq += qv * qv;
      }
      if (metric == Metric::kCosine && qq > 0) want /= std::sqrt(qq);
      EXPECT_NEAR(distances[q * kK + r], want, 1e-3 * std::max(1.0, std::abs(want)));
      if (r > 0) {
        if (vector::LargerIsCloser(metric)) {
          EXPECT_LE(distances[q * kK + r], distances[q * kK + r - 1]);
        } else {
          EXPECT_GE(distances[q * kK + r], distances[q * kK + r - 1]);
        }
      }
    }
  }
  const std::vector<int64_t> truth =
      vector::GroundTruth(metric, b.base.data(), rows, dim, b.queries.data(), kQueries, kK);
  return vector::RecallAtK(labels, kK, truth, kK, kQueries, kK);
}

TEST(CagraGpuTest, ExactKnnBuildAndSearchRecall) {
  VLAKE_SKIP_WITHOUT_GPU();
  const Built& b = L2ExactBuild();
  ASSERT_FALSE(b.parts.graph.empty());
  const double recall = GpuRecall(b, Metric::kL2, 64);
  std::printf("CAGRA exact-kNN build, GPU search itopk 64: recall@10 %.4f\n", recall);
  EXPECT_GE(recall, 0.95);
}

TEST(CagraGpuTest, IvfPqKnnBuildAndSearchRecall) {
  VLAKE_SKIP_WITHOUT_GPU();
  // Fewer rows emulated: the kNN graph is an IVF-PQ search of every row.
  Built b;
  ASSERT_NO_FATAL_FAILURE(
      BuildClustered(Metric::kL2, CagraKnnBuild::kIvfPq, FULL_OR_EMU(kRows, 500), &b));
  const double recall = GpuRecall(b, Metric::kL2, 64);
  std::printf("CAGRA IVF-PQ-kNN build, GPU search itopk 64: recall@10 %.4f\n", recall);
  EXPECT_GE(recall, 0.95);
}

TEST(CagraGpuTest, CosineBuildAndSearchRecall) {
  VLAKE_SKIP_WITHOUT_GPU();
  Built b;
  ASSERT_NO_FATAL_FAILURE(BuildClustered(Metric::kCosine, CagraKnnBuild::kExact, kRows, &b));
  const double recall = GpuRecall(b, Metric::kCosine, 64);
  std::printf("CAGRA COSINE, GPU search itopk 64: recall@10 %.4f\n", recall);
  EXPECT_GE(recall, 0.95);
}

// The graph exported as the HNSW base layer (upper layers built on the CPU) searched on the CPU at
// ef 128, against hnswlib's own graph at the same layer-0 degree (M = 32 -> 64 links).
TEST(CagraGpuTest, ExportedGraphSearchesLikeCpuHnsw) {
  VLAKE_SKIP_WITHOUT_GPU();
  const Built& b = L2ExactBuild();
  ASSERT_FALSE(b.parts.graph.empty());
  const int dim = b.parts.dim;
  ASSERT_OK_AND_ASSIGN(uint32_t entry, GraphEntryPoint(Metric::kL2, HostView(b.base, dim)));
  ASSERT_OK_AND_ASSIGN(auto exported, vector::IndexFromGraphParts(b.parts, b.base.data(), entry));
  ASSERT_OK_AND_ASSIGN(auto hnsw,
                       vector::MakeIndex("HNSW:M=32,efConstruction=200", dim, Metric::kL2));
  ASSERT_OK(hnsw->Add(b.base.data(), kRows));
  vector::SearchParams params;
  params.k = kK;
  params.ef = 128;
  vector::SearchResult from_cagra, from_hnsw;
  ASSERT_OK(exported->Search(b.queries.data(), kQueries, params, &from_cagra));
  ASSERT_OK(hnsw->Search(b.queries.data(), kQueries, params, &from_hnsw));
  const std::vector<int64_t> truth =
      vector::GroundTruth(Metric::kL2, b.base.data(), kRows, dim, b.queries.data(), kQueries, kK);
  const double cagra_recall = vector::RecallAtK(from_cagra.labels, kK, truth, kK, kQueries, kK);
  const double hnsw_recall = vector::RecallAtK(from_hnsw.labels, kK, truth, kK, kQueries, kK);
  std::printf("ef 128 recall@10: exported CAGRA %.4f, CPU HNSW %.4f\n", cagra_recall, hnsw_recall);
  EXPECT_GE(cagra_recall, 0.95);
  EXPECT_GE(cagra_recall, hnsw_recall - 0.01);
}

// One query alone or among 10000 (150 emulated): the same labels and the same distances, bit for bit.
TEST(CagraGpuTest, BatchSizeDoesNotChangeResults) {
  VLAKE_SKIP_WITHOUT_GPU();
  const Built& b = L2ExactBuild();
  ASSERT_FALSE(b.parts.graph.empty());
  const int dim = b.parts.dim;
  const int64_t nq = FULL_OR_EMU(10000, 150);
  const std::vector<float> queries = vector::GenerateQueries(TestSpec(kRows), nq);
  ASSERT_OK_AND_ASSIGN(auto index, UploadCagra(b.parts, HostView(b.base, dim)));
  GpuSearchParams params;
  params.k = kK;
  params.itopk = 64;
  std::vector<int64_t> labels(nq * kK);
  std::vector<float> distances(nq * kK);
  ASSERT_OK(index->Search(HostView(queries, dim), params, labels.data(), distances.data()));
  for (int64_t q = 0; q < nq; q += FULL_OR_EMU(50, 15)) {
    std::vector<int64_t> one_label(kK);
    std::vector<float> one_distance(kK);
    MatrixView one{queries.data() + q * dim, 1, dim, Memory::kHost};
    ASSERT_OK(index->Search(one, params, one_label.data(), one_distance.data()));
    for (int r = 0; r < kK; ++r) {
      ASSERT_EQ(one_label[r], labels[q * kK + r]) << "query " << q << " rank " << r;
      ASSERT_EQ(one_distance[r], distances[q * kK + r]) << "query " << q << " rank " << r;
    }
  }
}

TEST(CagraGpuTest, SearchRejectsBadParameters) {
  VLAKE_SKIP_WITHOUT_GPU();
  const Built& b = L2ExactBuild();
  ASSERT_FALSE(b.parts.graph.empty());
  const int dim = b.parts.dim;
  ASSERT_OK_AND_ASSIGN(auto index, UploadCagra(b.parts, HostView(b.base, dim)));
  std::vector<int64_t> labels(kMaxGpuTopK);
  std::vector<float> distances(kMaxGpuTopK);
  MatrixView one{b.queries.data(), 1, dim, Memory::kHost};
  GpuSearchParams params;
  params.k = 0;
  EXPECT_CODE(index->Search(one, params, labels.data(), distances.data()), Code::kInvalidArgument);
  params.k = kMaxGpuTopK + 1;
  EXPECT_CODE(index->Search(one, params, labels.data(), distances.data()), Code::kInvalidArgument);
  params.k = 10;
  params.itopk = 2048;
  EXPECT_CODE(index->Search(one, params, labels.data(), distances.data()), Code::kInvalidArgument);
  // k = 1024 forces itopk 1024: still fine.
  params.k = kMaxGpuTopK;
  params.itopk = 64;
  EXPECT_OK(index->Search(one, params, labels.data(), distances.data()));
  MatrixView wrong_dim{b.queries.data(), 1, dim - 1, Memory::kHost};
  params.k = 10;
  EXPECT_CODE(index->Search(wrong_dim, params, labels.data(), distances.data()),
              Code::kInvalidArgument);
}

// ---- Entry point ----

// GraphEntryPoint = vector::ReferenceEntryPoint (both score in double; only the summation
// order of the mean differs, far below the gaps between the best rows of random data).
TEST(CagraGpuTest, EntryPointEqualsCpuReference) {
  VLAKE_SKIP_WITHOUT_GPU();
  const vector::ClusteredSpec spec = TestSpec(FULL_OR_EMU(30000, 3000));
  std::vector<float> x = vector::GenerateClustered(spec);
  for (Metric metric : {Metric::kL2, Metric::kIP, Metric::kCosine}) {
    // COSINE rows are unit length by convention (index_parts.h).
    const std::vector<float> rows =
        metric == Metric::kCosine ? vector::NormalizedCopy(x.data(), spec.rows, spec.dim) : x;
    ASSERT_OK_AND_ASSIGN(uint32_t entry, GraphEntryPoint(metric, HostView(rows, spec.dim)));
    EXPECT_EQ(entry, vector::ReferenceEntryPoint(metric, rows.data(), spec.rows, spec.dim))
        << vector::MetricName(metric);
  }
}

}  // namespace
}  // namespace vlake::gpu
