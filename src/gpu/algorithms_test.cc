// GPU algorithms (algorithms.h) against CPU oracles: FAISS (exact kNN, k-means, IVF indexes built
// by the vector module), the vector module's brute force and the CPU reference builders
// (vector/reference_build.h). Every test skips cleanly without a GPU. Labels: gpu, slow.
//
// Tolerances: the GPU computes distances by GEMM (||q||^2 + ||b||^2 - 2 q.b) in FP32 with
// another summation order than FAISS, so equal-within-rounding distances may swap ranks; a
// differing label is accepted only when its exact distance (in double) equals the CPU's at
// that rank within the tolerance.
#include "gpu/algorithms.h"

#include <cuda_runtime.h>
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/utils/distances.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "common/testing.h"
#include "gpu/device.h"
#include "gpu/gpu_testing.h"
#include "vector/blas_env.h"
#include "vector/index.h"
#include "vector/index_parts.h"
#include "vector/reference_build.h"
#include "vector/synthetic.h"

namespace vlake::gpu {
namespace {

using vector::Metric;

const bool kBlasReady = (vector::EnsureOpenBlasCoreType(), true);

MatrixView Host(const std::vector<float>& x, int dim) {
  return MatrixView{x.data(), static_cast<int64_t>(x.size()) / dim, dim, Memory::kHost};
}

// A device copy of host rows, freed on destruction.
class DeviceCopy {
 public:
  explicit DeviceCopy(const std::vector<float>& x) {
    size_t bytes = x.size() * sizeof(float);
    if (cudaMalloc(&ptr_, bytes) != cudaSuccess) ptr_ = nullptr;
    if (ptr_ != nullptr) cudaMemcpy(ptr_, x.data(), bytes, cudaMemcpyHostToDevice);
  }
  ~DeviceCopy() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
  MatrixView View(int64_t rows, int dim) const {
    return MatrixView{static_cast<const float*>(ptr_), rows, dim, Memory::kDevice};
  }
  bool ok() const { return ptr_ != nullptr; }

 private:
  void* ptr_ = nullptr;
};

// Sets VLAKE_GPU_MEMORY_BUDGET_BYTES for a scope: forces the streaming paths.
class ScopedBudget {
 public:
  explicit ScopedBudget(int64_t bytes) {
    setenv("VLAKE_GPU_MEMORY_BUDGET_BYTES", std::to_string(bytes).c_str(), 1);
  }
  ~ScopedBudget() { unsetenv("VLAKE_GPU_MEMORY_BUDGET_BYTES"); }
};

double ExactDistance(Metric metric, const float* a, const float* b, int dim) {
  double s = 0;
  for (int j = 0; j < dim; ++j) {
    s +=
        metric == Metric::kL2 ? (double(a[j]) - b[j]) * (double(a[j]) - b[j]) : double(a[j]) * b[j];
  }
  return s;
}

// GPU top-k == CPU top-k up to rank swaps between equal (within tol) distances.
void ExpectSameTopK(Metric metric, const std::vector<float>& base, const std::vector<float>& q,
                    int dim, int64_t nq, int k, const std::vector<int64_t>& gpu_labels,
                    const std::vector<float>& gpu_dist, const std::vector<int64_t>& cpu_labels,
                    const std::vector<float>& cpu_dist, int64_t cpu_k) {
  int bad = 0;
  for (int64_t i = 0; i < nq && bad < 10; ++i) {
    std::set<int64_t> seen;
    for (int j = 0; j < k; ++j) {
      const int64_t g = gpu_labels[i * k + j], c = cpu_labels[i * cpu_k + j];
      const float cd = cpu_dist[i * cpu_k + j];
      const double tol = 1e-4 * (1 + std::fabs(cd));
      ASSERT_GE(g, 0);
      EXPECT_TRUE(seen.insert(g).second) << "duplicate label " << g << " query " << i;
      if (std::fabs(gpu_dist[i * k + j] - cd) > tol) {
        ADD_FAILURE() << "query " << i << " rank " << j << ": distance " << gpu_dist[i * k + j]
                      << " vs " << cd;
        ++bad;
      } else if (g != c) {
        double exact = ExactDistance(metric, q.data() + i * dim, base.data() + g * dim, dim);
        if (std::fabs(exact - cd) > tol) {
          ADD_FAILURE() << "query " << i << " rank " << j << ": label " << g << " (" << exact
                        << ") vs " << c << " (" << cd << ")";
          ++bad;
        }
      }
    }
  }
}

struct KnnData {
  vector::ClusteredSpec spec{.rows = FULL_OR_EMU(20000, 2000),
                             .dim = 32,
                             .clusters = FULL_OR_EMU(64, 16),
                             .spread = 0.15f,
                             .seed = 3};
  std::vector<float> base = vector::GenerateClustered(spec);
  int64_t nq = FULL_OR_EMU(10000, 120);
  std::vector<float> queries = vector::GenerateQueries(spec, nq);
};
const KnnData& Knn() {
  static const KnnData* d = new KnnData();
  return *d;
}

// ---- Brute force ----

class BruteForce : public ::testing::TestWithParam<Metric> {};

TEST_P(BruteForce, MatchesFaissExactTopK) {
  VLAKE_SKIP_WITHOUT_GPU();
  const Metric metric = GetParam();
  const KnnData& d = Knn();
  const int dim = d.spec.dim;
  // The CPU oracle once at k = 1024 for all queries; smaller k compare with its prefix.
  constexpr int kMax = 1024;
  std::vector<int64_t> cpu_labels(d.nq * kMax);
  std::vector<float> cpu_dist(d.nq * kMax);
  if (metric == Metric::kL2) {
    faiss::knn_L2sqr(d.queries.data(), d.base.data(), dim, d.nq, d.spec.rows, kMax, cpu_dist.data(),
                     cpu_labels.data());
  } else {
    faiss::knn_inner_product(d.queries.data(), d.base.data(), dim, d.nq, d.spec.rows, kMax,
                             cpu_dist.data(), cpu_labels.data());
  }
  for (int k : {1, 10, 1024}) {
    for (int64_t nq : {int64_t{1}, int64_t{7}, int64_t{100}, int64_t{FULL_OR_EMU(10000, 120)}}) {
      SCOPED_TRACE("k=" + std::to_string(k) + " nq=" + std::to_string(nq));
      std::vector<int64_t> labels(nq * k);
      std::vector<float> dist(nq * k);
      MatrixView qv{d.queries.data(), nq, dim, Memory::kHost};
      ASSERT_OK(BruteForceKnn(metric, Host(d.base, dim), qv, k, MathMode::kFp32, labels.data(),
                              dist.data()));
      ExpectSameTopK(metric, d.base, d.queries, dim, nq, k, labels, dist, cpu_labels, cpu_dist,
                     kMax);
    }
  }
}

TEST_P(BruteForce, DeviceInputsStreamingAndUploadFlatAgree) {
  VLAKE_SKIP_WITHOUT_GPU();
  const Metric metric = GetParam();
  const KnnData& d = Knn();
  const int dim = d.spec.dim;
  const int64_t nq = FULL_OR_EMU(500, 60);
  const int k = 100;
  MatrixView qv{d.queries.data(), nq, dim, Memory::kHost};
  std::vector<int64_t> ref_l(nq * k), l(nq * k);
  std::vector<float> ref_d(nq * k), dd(nq * k);
  ASSERT_OK(
      BruteForceKnn(metric, Host(d.base, dim), qv, k, MathMode::kFp32, ref_l.data(), ref_d.data()));
  DeviceCopy base_dev(d.base), q_dev(d.queries);
  ASSERT_TRUE(base_dev.ok() && q_dev.ok());
  ASSERT_OK(BruteForceKnn(metric, base_dev.View(d.spec.rows, dim), q_dev.View(nq, dim), k,
                          MathMode::kFp32, l.data(), dd.data()));
  ExpectSameTopK(metric, d.base, d.queries, dim, nq, k, l, dd, ref_l, ref_d, k);
  {
    // 1 MB: the base (2.5 MB) is streamed from the host in small tiles, results merged.
    ScopedBudget budget(FULL_OR_EMU(1 << 20, 100000));
    ASSERT_OK(
        BruteForceKnn(metric, Host(d.base, dim), qv, k, MathMode::kFp32, l.data(), dd.data()));
    ExpectSameTopK(metric, d.base, d.queries, dim, nq, k, l, dd, ref_l, ref_d, k);
  }
  ASSERT_OK_AND_ASSIGN(auto index, UploadFlat(metric, Host(d.base, dim)));
  EXPECT_EQ(index->size(), d.spec.rows);
  EXPECT_EQ(index->dim(), dim);
  EXPECT_GE(index->device_bytes(), d.spec.rows * dim * 4);
  GpuSearchParams sp;
  sp.k = k;
  ASSERT_OK(index->Search(qv, sp, l.data(), dd.data()));
  ExpectSameTopK(metric, d.base, d.queries, dim, nq, k, l, dd, ref_l, ref_d, k);
}

TEST_P(BruteForce, FewerRowsThanKPadsWithEmptySlots) {
  VLAKE_SKIP_WITHOUT_GPU();
  const Metric metric = GetParam();
  const KnnData& d = Knn();
  const int dim = d.spec.dim, k = 20;
  std::vector<float> base(d.base.begin(), d.base.begin() + 5 * dim);
  std::vector<int64_t> l(2 * k);
  std::vector<float> dd(2 * k);
  ASSERT_OK(BruteForceKnn(metric, Host(base, dim), MatrixView{d.queries.data(), 2, dim}, k,
                          MathMode::kFp32, l.data(), dd.data()));
  for (int i = 0; i < 2; ++i) {
    std::set<int64_t> got(l.begin() + i * k, l.begin() + i * k + 5);
    EXPECT_EQ(got, (std::set<int64_t>{0, 1, 2, 3, 4}));
    for (int j = 5; j < k; ++j) {
      EXPECT_EQ(l[i * k + j], -1);
      EXPECT_EQ(dd[i * k + j], metric == Metric::kL2 ? FLT_MAX : -FLT_MAX);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, BruteForce, ::testing::Values(Metric::kL2, Metric::kIP),
                         [](const auto& p) { return std::string(MetricName(p.param)); });

TEST(BruteForceErrors, RejectsBadArguments) {
  VLAKE_SKIP_WITHOUT_GPU();
  std::vector<float> x(64, 1.0f);
  std::vector<int64_t> l(8);
  std::vector<float> dd(8);
  EXPECT_CODE(
      BruteForceKnn(Metric::kL2, Host(x, 8), Host(x, 8), 0, MathMode::kFp32, l.data(), dd.data()),
      Code::kInvalidArgument);
  EXPECT_CODE(BruteForceKnn(Metric::kL2, Host(x, 8), Host(x, 8), kMaxGpuTopK + 1, MathMode::kFp32,
                            l.data(), dd.data()),
              Code::kInvalidArgument);
  EXPECT_CODE(
      BruteForceKnn(Metric::kL2, Host(x, 8), Host(x, 4), 1, MathMode::kFp32, l.data(), dd.data()),
      Code::kInvalidArgument);
}

// ---- k-means ----

struct KMeansData {
  vector::ClusteredSpec spec{.rows = FULL_OR_EMU(50000, 800),
                             .dim = FULL_OR_EMU(32, 16),
                             .clusters = FULL_OR_EMU(64, 16),
                             .spread = 0.2f,
                             .seed = 8};
  std::vector<float> x = vector::GenerateClustered(spec);
};
const KMeansData& KmData() {
  static const KMeansData* d = new KMeansData();
  return *d;
}

// Sum over rows of the squared distance to the nearest centroid (FAISS, exact).
double Inertia(const std::vector<float>& x, int dim, const std::vector<float>& centroids) {
  const int64_t n = static_cast<int64_t>(x.size()) / dim;
  const int64_t k = static_cast<int64_t>(centroids.size()) / dim;
  std::vector<float> d(n);
  std::vector<int64_t> l(n);
  faiss::knn_L2sqr(x.data(), centroids.data(), dim, n, k, 1, d.data(), l.data());
  double s = 0;
  for (float v : d) s += v;
  return s;
}

std::vector<float> FaissKMeans(const std::vector<float>& x, int dim, int k, int iterations) {
  faiss::ClusteringParameters cp;
  cp.niter = iterations;
  cp.seed = 1234;
  cp.max_points_per_centroid = 1 << 30;  // no subsampling: the same data as the GPU
  faiss::Clustering clus(dim, k, cp);
  faiss::IndexFlatL2 index(dim);
  clus.train(static_cast<faiss::Index::idx_t>(x.size() / dim), x.data(), index);
  return clus.centroids;
}

TEST(KMeans, InertiaWithinTwoPercentOfFaiss) {
  VLAKE_SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim, k = FULL_OR_EMU(100, 48);
  const double faiss_inertia = Inertia(d.x, dim, FaissKMeans(d.x, dim, k, 20));
  for (MathMode math : {MathMode::kFp32, MathMode::kTf32}) {
    for (bool balanced : {false, true}) {
      KMeansParams p;
      p.k = k;
      p.max_iterations = 20;
      p.math = math;
      p.balanced = balanced;
      KMeansStats stats;
      ASSERT_OK_AND_ASSIGN(std::vector<float> c, KMeansFit(p, Metric::kL2, Host(d.x, dim), &stats));
      ASSERT_EQ(c.size(), static_cast<size_t>(k) * dim);
      const double inertia = Inertia(d.x, dim, c);
      EXPECT_LE(inertia, faiss_inertia * 1.02)
          << "math " << int(math) << " balanced " << balanced << " faiss " << faiss_inertia;
      EXPECT_GT(stats.iterations, 0);
      EXPECT_LE(stats.iterations, 20);
      EXPECT_DOUBLE_EQ(stats.gemm_flops, 2.0 * d.spec.rows * k * dim * stats.iterations);
      EXPECT_GT(stats.seconds, 0);
      // The reported inertia is that of the last assignment: close to the final centroids'.
      EXPECT_NEAR(stats.inertia, inertia, 0.05 * inertia);
    }
  }
}

TEST(KMeans, BalancedLeavesNoEmptyCluster) {
  VLAKE_SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim;
  // 1000 clusters over 64 true clusters: plain Lloyd leaves many dead or tiny clusters.
  KMeansParams p;
  p.k = FULL_OR_EMU(1000, 24);
  p.max_iterations = 15;
  p.balanced = true;
  ASSERT_OK_AND_ASSIGN(std::vector<float> c, KMeansFit(p, Metric::kL2, Host(d.x, dim)));
  std::vector<int32_t> labels(d.spec.rows);
  ASSERT_OK(
      KMeansPredict(Metric::kL2, c.data(), p.k, Host(d.x, dim), MathMode::kFp32, labels.data()));
  std::vector<int64_t> sizes(p.k);
  for (int32_t l : labels) {
    ASSERT_GE(l, 0);
    ASSERT_LT(l, p.k);
    ++sizes[l];
  }
  EXPECT_GT(*std::min_element(sizes.begin(), sizes.end()), 0);
}

TEST(KMeans, MatchesTheCpuReference) {
  VLAKE_SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim;
  for (Metric metric : {Metric::kL2, Metric::kIP, Metric::kCosine}) {
    SCOPED_TRACE(std::string(MetricName(metric)));
    vector::ReferenceKMeansParams rp;
    rp.k = FULL_OR_EMU(64, 16);
    rp.iterations = 10;
    rp.seed = 99;
    std::vector<float> ref = vector::ReferenceKMeans(rp, metric, d.x.data(), d.spec.rows, dim);
    KMeansParams p;
    p.k = rp.k;
    p.max_iterations = rp.iterations;
    p.tolerance = 0;  // the reference has no early stop
    p.seed = rp.seed;
    p.math = MathMode::kFp32;
    ASSERT_OK_AND_ASSIGN(std::vector<float> c, KMeansFit(p, metric, Host(d.x, dim)));
    // Same algorithm and seeds: only float rounding differs, which can move a near-tie row.
    std::vector<float> x =
        metric == Metric::kCosine ? vector::NormalizedCopy(d.x.data(), d.spec.rows, dim) : d.x;
    EXPECT_NEAR(Inertia(x, dim, c), Inertia(x, dim, ref), 0.005 * Inertia(x, dim, ref));
    if (metric != Metric::kL2) {
      for (int i = 0; i < p.k; ++i) {
        double norm = 0;
        for (int j = 0; j < dim; ++j) norm += double(c[i * dim + j]) * c[i * dim + j];
        EXPECT_NEAR(norm, 1.0, 1e-2);  // spherical (re-seeded ones are off by ~2^-10)
      }
    }
  }
}

TEST(KMeans, PlusPlusHierarchicalAndSubsampledFitsAreSound) {
  VLAKE_SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim, k = FULL_OR_EMU(400, 24);
  KMeansParams flat;
  flat.k = k;
  flat.max_iterations = 10;
  ASSERT_OK_AND_ASSIGN(std::vector<float> c0, KMeansFit(flat, Metric::kL2, Host(d.x, dim)));
  const double base = Inertia(d.x, dim, c0);
  KMeansParams pp = flat;
  pp.init = KMeansInit::kKMeansPlusPlus;
  KMeansParams hier = flat;
  hier.hierarchical_above_k = FULL_OR_EMU(100, 8);  // ~20 (~8) mesoclusters
  KMeansParams sub = flat;
  sub.max_training_rows = FULL_OR_EMU(20000, 400);
  for (const KMeansParams& p : {pp, hier, sub}) {
    KMeansStats stats;
    ASSERT_OK_AND_ASSIGN(std::vector<float> c, KMeansFit(p, Metric::kL2, Host(d.x, dim), &stats));
    // A sanity bound: seeds alone move it ~5%.
    EXPECT_LE(Inertia(d.x, dim, c), base * FULL_OR_EMU(1.10, 1.05));
    EXPECT_GT(stats.iterations, 0);
  }
}

TEST(KMeans, PredictIsTheExactNearestCentroid) {
  VLAKE_SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim;
  KMeansParams p;
  p.k = FULL_OR_EMU(50, 20);
  p.max_iterations = 5;
  ASSERT_OK_AND_ASSIGN(std::vector<float> c, KMeansFit(p, Metric::kL2, Host(d.x, dim)));
  for (Metric metric : {Metric::kL2, Metric::kIP}) {
    std::vector<int32_t> labels(d.spec.rows);
    DeviceCopy dev(d.x);
    ASSERT_TRUE(dev.ok());
    ASSERT_OK(KMeansPredict(metric, c.data(), p.k, dev.View(d.spec.rows, dim), MathMode::kFp32,
                            labels.data()));
    std::vector<float> cd(d.spec.rows);
    std::vector<int64_t> cl(d.spec.rows);
    if (metric == Metric::kL2) {
      faiss::knn_L2sqr(d.x.data(), c.data(), dim, d.spec.rows, p.k, 1, cd.data(), cl.data());
    } else {
      faiss::knn_inner_product(d.x.data(), c.data(), dim, d.spec.rows, p.k, 1, cd.data(),
                               cl.data());
    }
    int64_t differ = 0;
    for (int64_t i = 0; i < d.spec.rows; ++i) {
      if (labels[i] == cl[i]) continue;
      const float* row = d.x.data() + i * dim;
      double a = ExactDistance(metric, row, c.data() + labels[i] * dim, dim);
      double b = ExactDistance(metric, row, c.data() + cl[i] * dim, dim);
      if (std::fabs(a - b) > 1e-4 * (1 + std::fabs(b))) ++differ;
    }
    EXPECT_EQ(differ, 0) << MetricName(metric);
  }
}

TEST(KMeans, StreamedInSmallBatchesMatchesOneBatch) {
  VLAKE_SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim;
  KMeansParams p;
  p.k = FULL_OR_EMU(64, 16);
  p.max_iterations = 10;
  p.math = MathMode::kFp32;
  KMeansStats one, many;
  ASSERT_OK_AND_ASSIGN(std::vector<float> c1, KMeansFit(p, Metric::kL2, Host(d.x, dim), &one));
  p.batch_rows = FULL_OR_EMU(777, 177);
  std::vector<float> c2;
  {
    // The rows (6.4 MB; 51 KB emulated) no longer fit: streamed every pass.
    ScopedBudget budget(FULL_OR_EMU(4 << 20, 20000));
    ASSERT_OK_AND_ASSIGN(c2, KMeansFit(p, Metric::kL2, Host(d.x, dim), &many));
  }
  EXPECT_EQ(one.iterations, many.iterations);
  EXPECT_NEAR(one.inertia, many.inertia, 1e-4 * one.inertia);
  double max_diff = 0;
  for (size_t i = 0; i < c1.size(); ++i)
    max_diff = std::max<double>(max_diff, std::fabs(c1[i] - c2[i]));
  EXPECT_LT(max_diff, 1e-3);
}

#ifndef VLAKE_GPU_EMULATION  // it measures speed, which the emulation does not model
TEST(KMeans, MeasureGemmFlopsIsPlausible) {
  VLAKE_SKIP_WITHOUT_GPU();
  ASSERT_OK_AND_ASSIGN(double fp32, MeasureGemmFlops(4096, 4096, 4096, MathMode::kFp32, 3));
  ASSERT_OK_AND_ASSIGN(double tf32, MeasureGemmFlops(4096, 4096, 4096, MathMode::kTf32, 3));
  EXPECT_GT(fp32, 1e12);
  EXPECT_GT(tf32, fp32);
  EXPECT_CODE(MeasureGemmFlops(0, 1, 1, MathMode::kFp32), Code::kInvalidArgument);
}
#endif

// ---- IVF ----

struct IvfData {
  vector::ClusteredSpec spec{.rows = FULL_OR_EMU(30000, 1200),
                             .dim = FULL_OR_EMU(32, 16),
                             .clusters = FULL_OR_EMU(64, 16),
                             .spread = 0.15f,
                             .seed = 17};
  std::vector<float> base = vector::GenerateClustered(spec);
  int64_t nq = FULL_OR_EMU(500, 60);
  std::vector<float> queries = vector::GenerateQueries(spec, nq);
};
const IvfData& Ivf() {
  static const IvfData* d = new IvfData();
  return *d;
}

double CpuRecall(const vector::VectorIndex& index, const IvfData& d, int nprobe,
                 const std::vector<int64_t>& truth) {
  vector::SearchParams sp;
  sp.k = 10;
  sp.nprobe = nprobe;
  vector::SearchResult r;
  Status st = index.Search(d.queries.data(), d.nq, sp, &r);
  EXPECT_OK(st);
  return vector::RecallAtK(r.labels, r.k, truth, 10, d.nq, 10);
}

struct IvfCase {
  int pq_m;
  int nprobe;
};

class IvfBuild : public ::testing::TestWithParam<std::tuple<Metric, IvfCase>> {};

TEST_P(IvfBuild, RecallMatchesFaissAndGpuSearchMatchesCpu) {
  VLAKE_SKIP_WITHOUT_GPU();
  const auto [metric, c] = GetParam();
  const IvfData& d = Ivf();
  const int dim = d.spec.dim;
  const int nlist = FULL_OR_EMU(64, 16);
  std::vector<int64_t> truth =
      vector::GroundTruth(metric, d.base.data(), d.spec.rows, dim, d.queries.data(), d.nq, 10);

  // FAISS-built index at equal parameters (nlist, m, nbits; FAISS's own k-means).
  std::string factory = c.pq_m == 0 ? "IVF_FLAT:nlist=" + std::to_string(nlist)
                                    : "IVF_PQ:nlist=" + std::to_string(nlist) +
                                          ",m=" + std::to_string(c.pq_m) + ",nbits=8";
  ASSERT_OK_AND_ASSIGN(auto faiss_index, vector::MakeIndex(factory, dim, metric));
  ASSERT_OK(faiss_index->Train(d.base.data(), d.spec.rows));
  ASSERT_OK(faiss_index->Add(d.base.data(), d.spec.rows));
  const double faiss_recall = CpuRecall(*faiss_index, d, c.nprobe, truth);

  IvfBuildParams p;
  p.nlist = nlist;
  p.pq_m = c.pq_m;
  p.kmeans.max_iterations = 10;  // FAISS's IVF training default
  BuildStats stats;
  ASSERT_OK_AND_ASSIGN(vector::IvfParts parts, BuildIvf(p, metric, Host(d.base, dim), &stats));
  ASSERT_OK(parts.Validate());
  EXPECT_EQ(parts.rows(), d.spec.rows);
  EXPECT_GT(stats.train_seconds, 0);
  EXPECT_GT(stats.add_seconds, 0);
  for (const auto& ids : parts.list_ids) EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  ASSERT_OK_AND_ASSIGN(auto cpu_index, vector::IndexFromIvfParts(parts));
  const double ours = CpuRecall(*cpu_index, d, c.nprobe, truth);
  EXPECT_GE(ours, faiss_recall - 0.01) << factory << " nprobe " << c.nprobe;

  // The same parts searched on the GPU.
  ASSERT_OK_AND_ASSIGN(auto gpu_index, UploadIvf(parts, Host(d.base, dim)));
  EXPECT_EQ(gpu_index->size(), d.spec.rows);
  GpuSearchParams gp;
  gp.k = 10;
  gp.nprobe = c.nprobe;
  std::vector<int64_t> labels(d.nq * 10);
  std::vector<float> dist(d.nq * 10);
  ASSERT_OK(gpu_index->Search(Host(d.queries, dim), gp, labels.data(), dist.data()));
  const double gpu_recall = vector::RecallAtK(labels, 10, truth, 10, d.nq, 10);
  EXPECT_NEAR(gpu_recall, ours, 0.01);
  for (int64_t i = 0; i < d.nq; ++i) {  // best first
    for (int j = 1; j < 10 && labels[i * 10 + j] >= 0; ++j) {
      if (metric == Metric::kL2) {
        EXPECT_LE(dist[i * 10 + j - 1], dist[i * 10 + j]);
      } else {
        EXPECT_GE(dist[i * 10 + j - 1], dist[i * 10 + j]);
      }
    }
  }
  if (c.pq_m > 0) {  // exact re-ranking of 4k PQ candidates can only help
    gp.refine_ratio = 4;
    ASSERT_OK(gpu_index->Search(Host(d.queries, dim), gp, labels.data(), dist.data()));
    EXPECT_GE(vector::RecallAtK(labels, 10, truth, 10, d.nq, 10), gpu_recall - 0.005);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, IvfBuild,
                         ::testing::Combine(::testing::Values(Metric::kL2, Metric::kIP),
                                            ::testing::Values(IvfCase{0, 8}, IvfCase{8, 16})),
                         [](const auto& p) {
                           const IvfCase& c = std::get<1>(p.param);
                           return std::string(MetricName(std::get<0>(p.param))) +
                                  (c.pq_m ? "_PQ" : "_FLAT");
                         });

TEST(IvfBuildParity, MatchesTheCpuReferenceBuild) {
  VLAKE_SKIP_WITHOUT_GPU();
  const IvfData& d = Ivf();
  const int dim = d.spec.dim;
  for (Metric metric : {Metric::kL2, Metric::kCosine}) {
    SCOPED_TRACE(std::string(MetricName(metric)));
    vector::ReferenceIvfParams rp;
    rp.nlist = FULL_OR_EMU(32, 16);
    rp.pq_m = 8;
    rp.kmeans_iterations = 8;
    rp.pq_kmeans_iterations = 8;
    rp.seed = 5;
    ASSERT_OK_AND_ASSIGN(vector::IvfParts ref,
                         vector::ReferenceBuildIvf(rp, metric, d.base.data(), d.spec.rows, dim));
    IvfBuildParams p;
    p.nlist = rp.nlist;
    p.pq_m = rp.pq_m;
    p.kmeans.max_iterations = rp.kmeans_iterations;
    p.kmeans.tolerance = 0;
    p.kmeans.math = MathMode::kFp32;
    p.kmeans.seed = rp.seed;
    p.pq_kmeans_iterations = rp.pq_kmeans_iterations;
    ASSERT_OK_AND_ASSIGN(vector::IvfParts parts, BuildIvf(p, metric, Host(d.base, dim)));
    // Same algorithm and seeds; float rounding may move a few near-tie rows.
    int64_t same = 0;
    std::vector<int> list_of(d.spec.rows, -1);
    for (int l = 0; l < rp.nlist; ++l) {
      for (int64_t id : ref.list_ids[l]) list_of[id] = l;
    }
    for (int l = 0; l < rp.nlist; ++l) {
      for (int64_t id : parts.list_ids[l]) same += list_of[id] == l;
    }
    EXPECT_GE(same, d.spec.rows * 99 / 100);
  }
}

TEST(IvfBuildStreaming, SmallBatchesAndStreamedHostRowsGiveTheSameParts) {
  VLAKE_SKIP_WITHOUT_GPU();
  const IvfData& d = Ivf();
  const int dim = d.spec.dim;
  IvfBuildParams p;
  p.nlist = FULL_OR_EMU(64, 16);
  p.pq_m = 8;
  p.kmeans.math = MathMode::kFp32;
  ASSERT_OK_AND_ASSIGN(vector::IvfParts one, BuildIvf(p, Metric::kL2, Host(d.base, dim)));
  p.batch_rows = FULL_OR_EMU(1000, 300);
  p.kmeans.batch_rows = FULL_OR_EMU(999, 299);
  vector::IvfParts many;
  {
    // The rows (3.8 MB; 77 KB emulated): every pass streams from the host.
    ScopedBudget budget(FULL_OR_EMU(2 << 20, 30000));
    ASSERT_OK_AND_ASSIGN(many, BuildIvf(p, Metric::kL2, Host(d.base, dim)));
  }
  ASSERT_EQ(one.centroids.size(), many.centroids.size());
  double max_diff = 0;
  for (size_t i = 0; i < one.centroids.size(); ++i) {
    max_diff = std::max<double>(max_diff, std::fabs(one.centroids[i] - many.centroids[i]));
  }
  EXPECT_LT(max_diff, 1e-3);
  // Rows in the same list and with the same code, but for rare rounding near-ties.
  std::vector<int> list_of(d.spec.rows, -1);
  std::vector<const uint8_t*> code_of(d.spec.rows, nullptr);
  for (int l = 0; l < one.nlist; ++l) {
    for (size_t i = 0; i < one.list_ids[l].size(); ++i) {
      list_of[one.list_ids[l][i]] = l;
      code_of[one.list_ids[l][i]] = one.list_codes[l].data() + i * p.pq_m;
    }
  }
  int64_t same_list = 0, same_code = 0;
  for (int l = 0; l < many.nlist; ++l) {
    for (size_t i = 0; i < many.list_ids[l].size(); ++i) {
      const int64_t id = many.list_ids[l][i];
      if (list_of[id] != l) continue;
      ++same_list;
      same_code +=
          std::equal(code_of[id], code_of[id] + p.pq_m, many.list_codes[l].data() + i * p.pq_m);
    }
  }
  EXPECT_GE(same_list, d.spec.rows * 999 / 1000);
  EXPECT_GE(same_code, d.spec.rows * 99 / 100);
}

TEST(IvfBuildErrors, RejectsBadParameters) {
  VLAKE_SKIP_WITHOUT_GPU();
  const IvfData& d = Ivf();
  IvfBuildParams p;
  p.nlist = 16;
  p.pq_m = 5;  // does not divide 32
  EXPECT_CODE(BuildIvf(p, Metric::kL2, Host(d.base, d.spec.dim)), Code::kInvalidArgument);
  p.pq_m = 0;
  p.nlist = static_cast<int>(d.spec.rows) + 1;
  EXPECT_CODE(BuildIvf(p, Metric::kL2, Host(d.base, d.spec.dim)), Code::kInvalidArgument);
}

}  // namespace
}  // namespace vlake::gpu
