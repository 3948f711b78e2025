// The GPU kernels of src/gpu (top-k, k-means, brute force, IVF build and search) run through the
// CPU EMULATION of the CUDA execution model in cuda_emu.h, against CPU oracles: a sorted
// reference for top-k, FAISS for exact kNN and k-means inertia, vector::ReferenceKMeans and
// vector::ReferenceBuildIvf for the builders, and the CPU search of the same IVF parts.
//
// This tests the kernels' LOGIC only. It is NOT a GPU run: threads are fibers run one at a time
// (no real parallelism, so no races or memory-ordering bugs can show), cuBLAS is replaced by a
// host loop (stubs.cc), and nothing is timed. algorithms_test.cc is the same suite at full
// size for a real GPU; this copy uses small sizes so the whole binary runs in about a minute.
//
// Tolerances: the kernels compute distances by GEMM (||q||^2 + ||b||^2 - 2 q.b) in FP32 with
// another summation order than FAISS, so equal-within-rounding distances may swap ranks; a
// differing label is accepted only when its exact distance (in double) equals the CPU's at
// that rank within the tolerance.
#include "gpu/emulation/cuda_emu.h"  // first: defines the CUDA keywords for topk.cuh
#include "gpu/algorithms.h"

#include <cuda_runtime.h>
#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/utils/distances.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <random>
#include <tuple>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "common/testing.h"
#include "gpu/device.h"
#include "gpu/topk.cuh"
#include "vector/blas_env.h"
#include "vector/index.h"
#include "vector/index_parts.h"
#include "vector/reference_build.h"
#include "vector/synthetic.h"

namespace vlake::gpu {
namespace {

using vector::Metric;

const bool kBlasReady = (vector::EnsureOpenBlasCoreType(), true);

#define SKIP_WITHOUT_GPU()                                                  \
  do {                                                                      \
    Result<std::vector<DeviceInfo>> devices_ = ListDevices();               \
    if (!devices_.ok()) GTEST_SKIP() << devices_.status().message();        \
  } while (0)

// ---- SelectTopK / MergeTopK against a sorted reference (ties by column, NaN last, empty
// slots -1 / +-FLT_MAX, per-column and per-row additions, shared and per-entry labels, the
// sliced path for long rows, and an in-place merge of two copies of the output).

int failures = 0;
void Check(bool ok, const char* what, int a, int b) {
  if (!ok && failures++ < 20) std::printf("FAIL %s %d %d\n", what, a, b);
}

void RunTopKCase(std::mt19937_64& rng, int64_t rows, int64_t cols, int k, SelectOrder order,
             bool use_col_add, int label_mode, bool ties, bool nans, bool inplace_merge) {
  int64_t ld = cols + (rng() % 3);
  std::vector<float> v(rows * ld), col_add(cols), row_add(rows);
  std::vector<int64_t> labels(label_mode == 2 ? rows * ld : cols);
  std::uniform_real_distribution<float> u(-10, 10);
  for (auto& x : v) x = ties ? float(int(u(rng))) : u(rng);
  if (nans && !v.empty()) for (int i = 0; i < 5; ++i) v[rng() % v.size()] = NAN;
  for (auto& x : col_add) x = u(rng);
  for (auto& x : row_add) x = u(rng);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = (rng() % 7 == 0 && label_mode == 2) ? -1 : int64_t(i) * 3 + 1;
  TopKInput in;
  in.values = v.data(); in.rows = rows; in.cols = cols; in.ld = ld;
  in.col_add = use_col_add ? col_add.data() : nullptr;
  if (label_mode == 1) { in.labels = labels.data(); in.labels_ld = 0; }
  if (label_mode == 2) { in.labels = labels.data(); in.labels_ld = ld; }
  in.label_offset = 100;
  std::vector<float> od(rows * (k + 2)); std::vector<int64_t> ol(rows * (k + 2));
  TopKOutput out; out.distances = od.data(); out.labels = ol.data(); out.ld = k + 2;
  out.row_add = row_add.data(); out.clamp_at_zero = (rng() % 2) == 0;
  // expected
  std::vector<float> ed(rows * k); std::vector<int64_t> el(rows * k);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<std::tuple<float, int64_t, int64_t>> e;
    for (int64_t c = 0; c < cols; ++c) {
      int64_t lab = label_mode == 0 ? 100 + c : label_mode == 1 ? labels[c] : labels[r * ld + c];
      if (label_mode == 2 && lab < 0) continue;
      float x = v[r * ld + c];
      if (use_col_add) x += col_add[c];
      float key = order == SelectOrder::kLargest ? -x : x;
      if (std::isnan(key)) key = INFINITY;
      e.emplace_back(key, c, lab);
    }
    std::sort(e.begin(), e.end(), [](auto& a, auto& b) { return std::get<0>(a) < std::get<0>(b) || (std::get<0>(a) == std::get<0>(b) && std::get<1>(a) < std::get<1>(b)); });
    for (int j = 0; j < k; ++j) {
      if (j < (int)e.size()) {
        float d = order == SelectOrder::kLargest ? -std::get<0>(e[j]) : std::get<0>(e[j]);
        d += row_add[r];
        if (out.clamp_at_zero) d = std::fmax(d, 0.0f);
        ed[r * k + j] = d; el[r * k + j] = std::get<2>(e[j]);
      } else {
        ed[r * k + j] = order == SelectOrder::kLargest ? -FLT_MAX : FLT_MAX; el[r * k + j] = -1;
      }
    }
  }
  Status st = SelectTopK(in, k, order, out, nullptr);
  Check(st.ok(), "status", 0, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < k; ++j) {
      bool ok = ol[r * (k + 2) + j] == el[r * k + j] &&
                (od[r * (k + 2) + j] == ed[r * k + j] || (std::isnan(od[r*(k+2)+j]) && std::isnan(ed[r*k+j])) ||
                 (std::isinf(ed[r*k+j]) && std::isinf(od[r*(k+2)+j])));
      Check(ok, "entry", int(r), j);
      if (!ok && failures < 5) std::printf("  got %ld %g want %ld %g (rows %ld cols %ld k %d order %d lm %d)\n", (long)ol[r*(k+2)+j], od[r*(k+2)+j], (long)el[r*k+j], ed[r*k+j], (long)rows, (long)cols, k, (int)order, label_mode);
    }
  if (inplace_merge) {
    // Merge two copies of the output in place: [A | A] -> top-k of the concatenation.
    int64_t mld = 2 * k;
    std::vector<float> md(rows * mld); std::vector<int64_t> ml(rows * mld);
    for (int64_t r = 0; r < rows; ++r) for (int j = 0; j < k; ++j) {
      md[r*mld+j] = md[r*mld+k+j] = od[r*(k+2)+j]; ml[r*mld+j] = ml[r*mld+k+j] = ol[r*(k+2)+j];
    }
    TopKOutput mo; mo.distances = md.data(); mo.labels = ml.data(); mo.ld = mld;
    Status s2 = MergeTopK(md.data(), ml.data(), rows, 2, k, mld, k, order, mo, nullptr);
    Check(s2.ok(), "merge status", 0, 0);
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<std::tuple<float, int64_t, int64_t>> e;
      for (int p = 0; p < 2 * k; ++p) {
        int j = p % k;
        if (ol[r*(k+2)+j] < 0) continue;
        float key = order == SelectOrder::kLargest ? -od[r*(k+2)+j] : od[r*(k+2)+j];
        if (std::isnan(key)) key = INFINITY;
        e.emplace_back(key, p, ol[r*(k+2)+j]);
      }
      std::sort(e.begin(), e.end(), [](auto& a, auto& b) { return std::get<0>(a) < std::get<0>(b) || (std::get<0>(a) == std::get<0>(b) && std::get<1>(a) < std::get<1>(b)); });
      std::vector<int64_t> want;
      for (auto& t : e) if ((int)want.size() < k) want.push_back(std::get<2>(t));
      while ((int)want.size() < k) want.push_back(-1);
      for (int j = 0; j < k; ++j) Check(ml[r*mld+j] == want[j], "merge", int(r), j);
    }
  }
}

TEST(TopK, SelectAndMergeMatchTheSortedReference) {
  failures = 0;
  std::mt19937_64 rng(7);
  int cases = 0;
  for (int k : {1, 5, 10, 32, 33, 100, 256, 700, 1024}) {
    for (int64_t cols : {int64_t(0), int64_t(1), int64_t(7), int64_t(1000), int64_t(5000)}) {
      SelectOrder order = (rng() % 2) ? SelectOrder::kLargest : SelectOrder::kSmallest;
      RunTopKCase(rng, 1 + rng() % 3, cols, k, order, rng() % 2, rng() % 3, rng() % 2, rng() % 4 == 0, rng() % 2);
      ++cases;
    }
  }
  // sliced path: cols >= 32768, rows < 2 * sms
  for (int k : {10, 1024}) {
    RunTopKCase(rng, 2, 40000, k, SelectOrder::kSmallest, true, 0, false, false, false);
    RunTopKCase(rng, 1, 70000, k, SelectOrder::kLargest, false, 2, true, false, false);
    cases += 2;
  }
  EXPECT_EQ(failures, 0) << "in " << cases << " cases (first failures printed above)";
}


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
    s += metric == Metric::kL2 ? (double(a[j]) - b[j]) * (double(a[j]) - b[j])
                               : double(a[j]) * b[j];
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
  vector::ClusteredSpec spec{.rows = 2000, .dim = 32, .clusters = 16, .spread = 0.15f, .seed = 3};
  std::vector<float> base = vector::GenerateClustered(spec);
  int64_t nq = 120;
  std::vector<float> queries = vector::GenerateQueries(spec, nq);
};
const KnnData& Knn() {
  static const KnnData* d = new KnnData();
  return *d;
}

// ---- Brute force ----

class BruteForce : public ::testing::TestWithParam<Metric> {};

TEST_P(BruteForce, MatchesFaissExactTopK) {
  SKIP_WITHOUT_GPU();
  const Metric metric = GetParam();
  const KnnData& d = Knn();
  const int dim = d.spec.dim;
  // The CPU oracle once at k = 1024 for all queries; smaller k compare with its prefix.
  constexpr int kMax = 1024;
  std::vector<int64_t> cpu_labels(d.nq * kMax);
  std::vector<float> cpu_dist(d.nq * kMax);
  if (metric == Metric::kL2) {
    faiss::knn_L2sqr(d.queries.data(), d.base.data(), dim, d.nq, d.spec.rows, kMax,
                     cpu_dist.data(), cpu_labels.data());
  } else {
    faiss::knn_inner_product(d.queries.data(), d.base.data(), dim, d.nq, d.spec.rows, kMax,
                             cpu_dist.data(), cpu_labels.data());
  }
  for (int k : {1, 10, 1024}) {
    for (int64_t nq : {int64_t{1}, int64_t{7}, int64_t{100}, int64_t{120}}) {
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
  SKIP_WITHOUT_GPU();
  const Metric metric = GetParam();
  const KnnData& d = Knn();
  const int dim = d.spec.dim;
  const int64_t nq = 60;
  const int k = 100;
  MatrixView qv{d.queries.data(), nq, dim, Memory::kHost};
  std::vector<int64_t> ref_l(nq * k), l(nq * k);
  std::vector<float> ref_d(nq * k), dd(nq * k);
  ASSERT_OK(BruteForceKnn(metric, Host(d.base, dim), qv, k, MathMode::kFp32, ref_l.data(),
                          ref_d.data()));
  DeviceCopy base_dev(d.base), q_dev(d.queries);
  ASSERT_TRUE(base_dev.ok() && q_dev.ok());
  ASSERT_OK(BruteForceKnn(metric, base_dev.View(d.spec.rows, dim), q_dev.View(nq, dim), k,
                          MathMode::kFp32, l.data(), dd.data()));
  ExpectSameTopK(metric, d.base, d.queries, dim, nq, k, l, dd, ref_l, ref_d, k);
  {
    // 1 MB: the base (2.5 MB) is streamed from the host in small tiles, results merged.
    ScopedBudget budget(100000);
    ASSERT_OK(BruteForceKnn(metric, Host(d.base, dim), qv, k, MathMode::kFp32, l.data(),
                            dd.data()));
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
  SKIP_WITHOUT_GPU();
  const Metric metric = GetParam();
  const KnnData& d = Knn();
  const int dim = d.spec.dim, k = 20;
  std::vector<float> base(d.base.begin(), d.base.begin() + 5 * dim);
  std::vector<int64_t> l(2 * k);
  std::vector<float> dd(2 * k);
  ASSERT_OK(BruteForceKnn(metric, Host(base, dim), MatrixView{d.queries.data(), 2, dim},
                          k, MathMode::kFp32, l.data(), dd.data()));
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
  SKIP_WITHOUT_GPU();
  std::vector<float> x(64, 1.0f);
  std::vector<int64_t> l(8);
  std::vector<float> dd(8);
  EXPECT_CODE(BruteForceKnn(Metric::kL2, Host(x, 8), Host(x, 8), 0, MathMode::kFp32, l.data(),
                            dd.data()),
              Code::kInvalidArgument);
  EXPECT_CODE(BruteForceKnn(Metric::kL2, Host(x, 8), Host(x, 8), kMaxGpuTopK + 1,
                            MathMode::kFp32, l.data(), dd.data()),
              Code::kInvalidArgument);
  EXPECT_CODE(BruteForceKnn(Metric::kL2, Host(x, 8), Host(x, 4), 1, MathMode::kFp32, l.data(),
                            dd.data()),
              Code::kInvalidArgument);
}

// ---- k-means ----

struct KMeansData {
  vector::ClusteredSpec spec{.rows = 800, .dim = 16, .clusters = 16, .spread = 0.2f, .seed = 8};
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
  SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim, k = 48;
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
  SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim;
  // 1000 clusters over 64 true clusters: plain Lloyd leaves many dead or tiny clusters.
  KMeansParams p;
  p.k = 24;
  p.max_iterations = 15;
  p.balanced = true;
  ASSERT_OK_AND_ASSIGN(std::vector<float> c, KMeansFit(p, Metric::kL2, Host(d.x, dim)));
  std::vector<int32_t> labels(d.spec.rows);
  ASSERT_OK(KMeansPredict(Metric::kL2, c.data(), p.k, Host(d.x, dim), MathMode::kFp32,
                          labels.data()));
  std::vector<int64_t> sizes(p.k);
  for (int32_t l : labels) {
    ASSERT_GE(l, 0);
    ASSERT_LT(l, p.k);
    ++sizes[l];
  }
  EXPECT_GT(*std::min_element(sizes.begin(), sizes.end()), 0);
}

TEST(KMeans, MatchesTheCpuReference) {
  SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim;
  for (Metric metric : {Metric::kL2, Metric::kIP, Metric::kCosine}) {
    SCOPED_TRACE(std::string(MetricName(metric)));
    vector::ReferenceKMeansParams rp;
    rp.k = 16;
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
    std::vector<float> x = metric == Metric::kCosine
                               ? vector::NormalizedCopy(d.x.data(), d.spec.rows, dim)
                               : d.x;
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
  SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim, k = 24;
  KMeansParams flat;
  flat.k = k;
  flat.max_iterations = 10;
  ASSERT_OK_AND_ASSIGN(std::vector<float> c0, KMeansFit(flat, Metric::kL2, Host(d.x, dim)));
  const double base = Inertia(d.x, dim, c0);
  KMeansParams pp = flat;
  pp.init = KMeansInit::kKMeansPlusPlus;
  KMeansParams hier = flat;
  hier.hierarchical_above_k = 8;  // ~8 mesoclusters
  KMeansParams sub = flat;
  sub.max_training_rows = 400;
  for (const KMeansParams& p : {pp, hier, sub}) {
    KMeansStats stats;
    ASSERT_OK_AND_ASSIGN(std::vector<float> c, KMeansFit(p, Metric::kL2, Host(d.x, dim), &stats));
    EXPECT_LE(Inertia(d.x, dim, c), base * 1.05);
    EXPECT_GT(stats.iterations, 0);
  }
}

TEST(KMeans, PredictIsTheExactNearestCentroid) {
  SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim;
  KMeansParams p;
  p.k = 20;
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
  SKIP_WITHOUT_GPU();
  const KMeansData& d = KmData();
  const int dim = d.spec.dim;
  KMeansParams p;
  p.k = 16;
  p.max_iterations = 10;
  p.math = MathMode::kFp32;
  KMeansStats one, many;
  ASSERT_OK_AND_ASSIGN(std::vector<float> c1, KMeansFit(p, Metric::kL2, Host(d.x, dim), &one));
  p.batch_rows = 177;
  std::vector<float> c2;
  {
    ScopedBudget budget(20000);  // the 51 KB of rows no longer fit: streamed every pass
    ASSERT_OK_AND_ASSIGN(c2, KMeansFit(p, Metric::kL2, Host(d.x, dim), &many));
  }
  EXPECT_EQ(one.iterations, many.iterations);
  EXPECT_NEAR(one.inertia, many.inertia, 1e-4 * one.inertia);
  double max_diff = 0;
  for (size_t i = 0; i < c1.size(); ++i) max_diff = std::max<double>(max_diff, std::fabs(c1[i] - c2[i]));
  EXPECT_LT(max_diff, 1e-3);
}

// MeasureGemmFlops is left out: it measures speed, which the emulation does not model.

// ---- IVF ----

struct IvfData {
  vector::ClusteredSpec spec{.rows = 1200, .dim = 16, .clusters = 16, .spread = 0.15f, .seed = 17};
  std::vector<float> base = vector::GenerateClustered(spec);
  int64_t nq = 60;
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
  SKIP_WITHOUT_GPU();
  const auto [metric, c] = GetParam();
  const IvfData& d = Ivf();
  const int dim = d.spec.dim;
  const int nlist = 16;
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
  ASSERT_OK_AND_ASSIGN(vector::IvfParts parts,
                       BuildIvf(p, metric, Host(d.base, dim), &stats));
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

INSTANTIATE_TEST_SUITE_P(
    Cases, IvfBuild,
    ::testing::Combine(::testing::Values(Metric::kL2, Metric::kIP),
                       ::testing::Values(IvfCase{0, 8}, IvfCase{8, 16})),
    [](const auto& p) {
      const IvfCase& c = std::get<1>(p.param);
      return std::string(MetricName(std::get<0>(p.param))) + (c.pq_m ? "_PQ" : "_FLAT");
    });

TEST(IvfBuildParity, MatchesTheCpuReferenceBuild) {
  SKIP_WITHOUT_GPU();
  const IvfData& d = Ivf();
  const int dim = d.spec.dim;
  for (Metric metric : {Metric::kL2, Metric::kCosine}) {
    SCOPED_TRACE(std::string(MetricName(metric)));
    vector::ReferenceIvfParams rp;
    rp.nlist = 16;
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
  SKIP_WITHOUT_GPU();
  const IvfData& d = Ivf();
  const int dim = d.spec.dim;
  IvfBuildParams p;
  p.nlist = 16;
  p.pq_m = 8;
  p.kmeans.math = MathMode::kFp32;
  ASSERT_OK_AND_ASSIGN(vector::IvfParts one, BuildIvf(p, Metric::kL2, Host(d.base, dim)));
  p.batch_rows = 300;
  p.kmeans.batch_rows = 299;
  vector::IvfParts many;
  {
    ScopedBudget budget(30000);  // 77 KB of rows: every pass streams from the host
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
      same_code += std::equal(code_of[id], code_of[id] + p.pq_m,
                              many.list_codes[l].data() + i * p.pq_m);
    }
  }
  EXPECT_GE(same_list, d.spec.rows * 999 / 1000);
  EXPECT_GE(same_code, d.spec.rows * 99 / 100);
}

TEST(IvfBuildErrors, RejectsBadParameters) {
  SKIP_WITHOUT_GPU();
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
