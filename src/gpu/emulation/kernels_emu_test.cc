// The top-k kernels of src/gpu (topk.cuh) run through the CPU EMULATION of the CUDA execution
// model in cuda_emu.h, against a sorted reference; the emulation's own checks (device memory
// that host code may not touch, guard pages, copy directions, launch limits, shared memory
// poison, warp masks) are tested to catch what a GPU would not tolerate; allocation and launch
// failures injected into every k-means, brute force, IVF and CAGRA call in turn must come back
// as errors and leave no allocation behind. The rest of the kernels (k-means, brute force, IVF
// build and search, CAGRA) are checked by algorithms_test.cc and cagra_test.cc, which
// gpu_emu_test compiles at small sizes (VLAKE_GPU_EMULATION) into the same binary.
//
// This tests the kernels' LOGIC only. It is NOT a GPU run: threads are fibers run one at a time
// (no real parallelism, so no races or memory-ordering bugs can show), cuBLAS is replaced by a
// host loop (cublas_emu.cc), and nothing is timed.
#include "gpu/emulation/cuda_emu.h"  // first: defines the CUDA keywords for topk.cuh

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <random>
#include <tuple>
#include <vector>

#include "gpu/algorithms.h"
#include "gpu/topk.cuh"
#include "vector/index_parts.h"
#include "vector/synthetic.h"

namespace vlake::gpu {
namespace {

// Every test of the binary (algorithms_test.cc and cagra_test.cc too) fails when the emulation
// saw a violation during it or when it left device, pinned or registered memory allocated.
class EmulationChecks : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override {
    EmuTakeViolations();
    live_ = EmuLiveAllocations();
  }
  void OnTestEnd(const ::testing::TestInfo&) override {
    EXPECT_EQ(EmuTakeViolations(), 0) << "CUDA emulation violations (EMU VIOLATION lines above)";
    EXPECT_EQ(EmuLiveAllocations(), live_) << "allocations left behind by the test";
    const cudaError_t pending = cudaGetLastError();
    EXPECT_EQ(pending, cudaSuccess) << "a CUDA error nobody read: " << cudaGetErrorString(pending);
  }
  long live_ = 0;
};
const bool kChecksInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new EmulationChecks);
  return true;
}();

// Device copies of host vectors, and back.
template <typename T>
class DeviceVector {
 public:
  explicit DeviceVector(const std::vector<T>& host) : n_(host.size()) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p_), n_ * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  // Uninitialized (the emulation fills it with garbage).
  explicit DeviceVector(size_t n) : n_(n) {
    EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&p_), n_ * sizeof(T)), cudaSuccess);
  }
  ~DeviceVector() { cudaFree(p_); }
  DeviceVector(const DeviceVector&) = delete;
  DeviceVector& operator=(const DeviceVector&) = delete;
  T* get() const { return p_; }
  std::vector<T> ToHost() const {
    std::vector<T> h(n_);
    EXPECT_EQ(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }

 private:
  size_t n_;
  T* p_ = nullptr;
};

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
  if (nans && !v.empty())
    for (int i = 0; i < 5; ++i) v[rng() % v.size()] = NAN;
  for (auto& x : col_add) x = u(rng);
  for (auto& x : row_add) x = u(rng);
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = (rng() % 7 == 0 && label_mode == 2) ? -1 : int64_t(i) * 3 + 1;
  DeviceVector<float> dv(v), dcol_add(col_add), drow_add(row_add);
  DeviceVector<int64_t> dlabels(labels);
  TopKInput in;
  in.values = dv.get();
  in.rows = rows;
  in.cols = cols;
  in.ld = ld;
  in.col_add = use_col_add ? dcol_add.get() : nullptr;
  if (label_mode == 1) {
    in.labels = dlabels.get();
    in.labels_ld = 0;
  }
  if (label_mode == 2) {
    in.labels = dlabels.get();
    in.labels_ld = ld;
  }
  in.label_offset = 100;
  DeviceVector<float> dod(rows * (k + 2));
  DeviceVector<int64_t> dol(rows * (k + 2));
  TopKOutput out;
  out.distances = dod.get();
  out.labels = dol.get();
  out.ld = k + 2;
  out.row_add = drow_add.get();
  out.clamp_at_zero = (rng() % 2) == 0;
  // expected
  std::vector<float> ed(rows * k);
  std::vector<int64_t> el(rows * k);
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
    std::sort(e.begin(), e.end(), [](auto& a, auto& b) {
      return std::get<0>(a) < std::get<0>(b) ||
             (std::get<0>(a) == std::get<0>(b) && std::get<1>(a) < std::get<1>(b));
    });
    for (int j = 0; j < k; ++j) {
      if (j < (int)e.size()) {
        float d = order == SelectOrder::kLargest ? -std::get<0>(e[j]) : std::get<0>(e[j]);
        d += row_add[r];
        if (out.clamp_at_zero) d = std::fmax(d, 0.0f);
        ed[r * k + j] = d;
        el[r * k + j] = std::get<2>(e[j]);
      } else {
        ed[r * k + j] = order == SelectOrder::kLargest ? -FLT_MAX : FLT_MAX;
        el[r * k + j] = -1;
      }
    }
  }
  Status st = SelectTopK(in, k, order, out, nullptr);
  Check(st.ok(), "status", 0, 0);
  const std::vector<float> od = dod.ToHost();
  const std::vector<int64_t> ol = dol.ToHost();
  for (int64_t r = 0; r < rows; ++r)
    for (int j = 0; j < k; ++j) {
      bool ok = ol[r * (k + 2) + j] == el[r * k + j] &&
                (od[r * (k + 2) + j] == ed[r * k + j] ||
                 (std::isnan(od[r * (k + 2) + j]) && std::isnan(ed[r * k + j])) ||
                 (std::isinf(ed[r * k + j]) && std::isinf(od[r * (k + 2) + j])));
      Check(ok, "entry", int(r), j);
      if (!ok && failures < 5)
        std::printf("  got %ld %g want %ld %g (rows %ld cols %ld k %d order %d lm %d)\n",
                    (long)ol[r * (k + 2) + j], od[r * (k + 2) + j], (long)el[r * k + j],
                    ed[r * k + j], (long)rows, (long)cols, k, (int)order, label_mode);
    }
  if (inplace_merge) {
    // Merge two copies of the output in place: [A | A] -> top-k of the concatenation.
    int64_t mld = 2 * k;
    std::vector<float> md(rows * mld);
    std::vector<int64_t> ml(rows * mld);
    for (int64_t r = 0; r < rows; ++r)
      for (int j = 0; j < k; ++j) {
        md[r * mld + j] = md[r * mld + k + j] = od[r * (k + 2) + j];
        ml[r * mld + j] = ml[r * mld + k + j] = ol[r * (k + 2) + j];
      }
    DeviceVector<float> dmd(md);
    DeviceVector<int64_t> dml(ml);
    TopKOutput mo;
    mo.distances = dmd.get();
    mo.labels = dml.get();
    mo.ld = mld;
    Status s2 = MergeTopK(dmd.get(), dml.get(), rows, 2, k, mld, k, order, mo, nullptr);
    Check(s2.ok(), "merge status", 0, 0);
    ml = dml.ToHost();
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<std::tuple<float, int64_t, int64_t>> e;
      for (int p = 0; p < 2 * k; ++p) {
        int j = p % k;
        if (ol[r * (k + 2) + j] < 0) continue;
        float key = order == SelectOrder::kLargest ? -od[r * (k + 2) + j] : od[r * (k + 2) + j];
        if (std::isnan(key)) key = INFINITY;
        e.emplace_back(key, p, ol[r * (k + 2) + j]);
      }
      std::sort(e.begin(), e.end(), [](auto& a, auto& b) {
        return std::get<0>(a) < std::get<0>(b) ||
               (std::get<0>(a) == std::get<0>(b) && std::get<1>(a) < std::get<1>(b));
      });
      std::vector<int64_t> want;
      for (auto& t : e)
        if ((int)want.size() < k) want.push_back(std::get<2>(t));
      while ((int)want.size() < k) want.push_back(-1);
      for (int j = 0; j < k; ++j) Check(ml[r * mld + j] == want[j], "merge", int(r), j);
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
      RunTopKCase(rng, 1 + rng() % 3, cols, k, order, rng() % 2, rng() % 3, rng() % 2,
                  rng() % 4 == 0, rng() % 2);
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

// ---- the emulation's own checks: each misuse a GPU would not tolerate is a violation ----

__global__ void CopyKernel(const float* in, float* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = in[i];
}

// Reads a shared value no thread wrote: the poison, not a zero.
__global__ void UnwrittenSharedKernel(float* out) {
  static char site;
  auto& cell = EmuShared<float[4]>(&site);
  out[threadIdx.x] = cell[threadIdx.x % 4];
}

TEST(Emulation, CatchesWhatAGpuWouldNotTolerate) {
  std::vector<float> host(64, 1.0f);
  DeviceVector<float> in(host), out(size_t{64});
  // A kernel handed pageable host memory.
  EmuLaunch("CopyKernel", CopyKernel, dim3(1), dim3(64), 0, nullptr,
            static_cast<const float*>(host.data()), out.get(), 64);
  EXPECT_EQ(EmuTakeViolations(), 1);
  // Copies whose kind contradicts where the pointers are, or that run past an allocation.
  std::vector<float> back(64);
  EXPECT_NE(cudaMemcpy(back.data(), out.get(), 256, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_NE(cudaMemcpy(out.get(), in.get(), 256, cudaMemcpyHostToDevice), cudaSuccess);
  EXPECT_NE(cudaMemcpy(back.data(), out.get(), 260, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(EmuTakeViolations(), 3);
  cudaGetLastError();
  // Launches a GPU refuses: they do not run and cudaGetLastError reports them, once.
  EmuLaunch("CopyKernel", CopyKernel, dim3(1), dim3(2048), 0, nullptr,
            static_cast<const float*>(in.get()), out.get(), 64);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EmuLaunch("CopyKernel", CopyKernel, dim3(0), dim3(64), 0, nullptr,
            static_cast<const float*>(in.get()), out.get(), 64);
  EmuLaunch("CopyKernel", CopyKernel, dim3(1), dim3(64), 64 * 1024, nullptr,
            static_cast<const float*>(in.get()), out.get(), 64);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(EmuTakeViolations(), 3);
  // An injected launch failure: reported by cudaGetLastError, nothing written.
  EmuFailLaunchAfter(0);
  EmuLaunch("CopyKernel", CopyKernel, dim3(1), dim3(64), 0, nullptr,
            static_cast<const float*>(in.get()), out.get(), 64);
  EXPECT_TRUE(EmuInjectedLaunchFailed());
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EmuFailLaunchAfter(-1);
  // Device memory is garbage until written, and static shared memory is poison at block start.
  DeviceVector<float> fresh(size_t{64});
  for (float v : fresh.ToHost()) EXPECT_TRUE(std::isnan(v) || v > 1e38f) << "fresh memory: " << v;
  EmuLaunch("UnwrittenSharedKernel", UnwrittenSharedKernel, dim3(1), dim3(64), 0, nullptr,
            out.get());
  for (float v : out.ToHost()) EXPECT_TRUE(std::isnan(v) || v > 1e38f) << v;
  // Allocation failure, injected and past the emulated capacity; neither leaks.
  const long live = EmuLiveAllocations();
  void* p = nullptr;
  EmuFailAllocationAfter(0);
  EXPECT_EQ(cudaMalloc(&p, 16), cudaErrorMemoryAllocation);
  EXPECT_TRUE(EmuInjectedAllocationFailed());
  EXPECT_EQ(cudaMalloc(&p, kEmuDeviceBytes + 1), cudaErrorMemoryAllocation);
  EXPECT_EQ(EmuLiveAllocations(), live);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  // Freeing what is not an allocation.
  EXPECT_NE(cudaFree(reinterpret_cast<char*>(out.get()) + 4), cudaSuccess);
  EXPECT_EQ(EmuTakeViolations(), 1);
  cudaGetLastError();
}

using EmulationDeathTest = ::testing::Test;
TEST_F(EmulationDeathTest, HostAccessOverrunAndUseAfterFreeFault) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        DeviceVector<float> d(size_t{16});
        volatile float x = d.get()[0];
        (void)x;
      },
      "host code touched device memory");
  EXPECT_DEATH(
      {
        DeviceVector<float> d(size_t{64});  // 256 bytes: the guard page follows at once
        EmuDeviceScope open;
        volatile float x = d.get()[64];
        (void)x;
      },
      "past the end of a 256-byte device allocation");
  EXPECT_DEATH(
      {
        float* p = nullptr;
        cudaMalloc(reinterpret_cast<void**>(&p), 64);
        cudaFree(p);
        EmuDeviceScope open;
        volatile float x = p[0];
        (void)x;
      },
      "use after free");
}

// ---- fault injection: every allocation, then every launch, of a call fails in turn ----

struct Sweep {
  long allocations = 0;  // calls swept
  long launches = 0;
};

// Runs op() (a Result of something comparable) once cleanly, then with allocation n failing
// for every n, then with launch n failing (every n, or at most ~`max_launch_runs` evenly over
// them): each failure must answer an error or — where the code has a fallback — the clean
// result, and must leave no allocation behind.
template <class Op>
Sweep SweepFailures(const char* what, Op op, long max_launch_runs = 24) {
  Sweep sweep;
  const unsigned long long launches_before = g_emu_launches;
  auto clean = op();
  EXPECT_TRUE(clean.ok()) << what << ": " << clean.error().ToString();
  if (!clean.ok()) return sweep;
  const long launches = static_cast<long>(g_emu_launches - launches_before);
  for (long n = 0; n < 100000; ++n) {
    const long live = EmuLiveAllocations();
    EmuFailAllocationAfter(n);
    auto r = op();
    const bool injected = EmuInjectedAllocationFailed();
    EmuFailAllocationAfter(-1);
    cudaGetLastError();
    EXPECT_EQ(EmuLiveAllocations(), live) << what << ": allocation " << n << " failed";
    if (!injected) break;
    ++sweep.allocations;
    if (r.ok()) {
      EXPECT_TRUE(*r == *clean) << what << ": allocation " << n
                                << " failed, yet the call answered OK with another result";
    } else {
      EXPECT_NE(r.error().message().find("memory"), std::string::npos)
          << what << ": allocation " << n << ": " << r.error().ToString();
    }
  }
  const long step = std::max<long>(1, launches / max_launch_runs);
  for (long n = 0; n < launches; n += step) {
    const long live = EmuLiveAllocations();
    EmuFailLaunchAfter(n);
    auto r = op();
    const bool injected = EmuInjectedLaunchFailed();
    EmuFailLaunchAfter(-1);
    cudaGetLastError();
    EXPECT_TRUE(injected) << what << ": launch " << n << " of " << launches << " never happened";
    EXPECT_FALSE(r.ok()) << what << ": launch " << n << " of " << launches
                         << " failed, yet the call answered OK";
    EXPECT_EQ(EmuLiveAllocations(), live) << what << ": launch " << n << " failed";
    ++sweep.launches;
  }
  return sweep;
}

struct FaultData {
  static constexpr int64_t kQueries = 4;
  vector::ClusteredSpec spec{.rows = 300, .dim = 8, .clusters = 6, .seed = 5};
  std::vector<float> x = vector::GenerateClustered(spec);
  std::vector<float> q = vector::GenerateQueries(spec, kQueries);
  MatrixView base() const { return MatrixView{x.data(), spec.rows, spec.dim, Memory::kHost}; }
  MatrixView queries() const { return MatrixView{q.data(), kQueries, spec.dim, Memory::kHost}; }
};

// Uploads (upload() -> Result<unique_ptr<DeviceIndex>>) and searches the fault data's queries
// at k 10: the labels, or the first error.
template <class Upload>
Result<std::vector<int64_t>> UploadAndSearch(const FaultData& d, Upload upload,
                                             const GpuSearchParams& sp) {
  auto index = upload();
  if (!index.ok()) return index.error();
  std::vector<int64_t> labels(FaultData::kQueries * sp.k);
  std::vector<float> dist(FaultData::kQueries * sp.k);
  Status s = (*index)->Search(d.queries(), sp, labels.data(), dist.data());
  if (!s.ok()) return s;
  return labels;
}

TEST(EmulationFaults, KMeansAndBruteForceReportEveryFailure) {
  FaultData d;
  KMeansParams p;
  p.k = 8;
  p.max_iterations = 3;
  Sweep km = SweepFailures("KMeansFit", [&] { return KMeansFit(p, vector::Metric::kL2, d.base()); });
  Sweep bf = SweepFailures("BruteForceKnn", [&]() -> Result<std::vector<int64_t>> {
    std::vector<int64_t> labels(FaultData::kQueries * 10);
    std::vector<float> dist(FaultData::kQueries * 10);
    Status s = BruteForceKnn(vector::Metric::kL2, d.base(), d.queries(), 10, MathMode::kFp32,
                             labels.data(), dist.data());
    if (!s.ok()) return s;
    return labels;
  });
  EXPECT_GT(km.allocations, 0);
  EXPECT_GT(km.launches, 0);
  EXPECT_GT(bf.allocations, 0);
  EXPECT_GT(bf.launches, 0);
}

TEST(EmulationFaults, IvfBuildUploadAndSearchReportEveryFailure) {
  FaultData d;
  for (int pq_m : {0, 2}) {
    IvfBuildParams p;
    p.nlist = 4;
    p.pq_m = pq_m;
    p.kmeans.max_iterations = 3;
    p.pq_kmeans_iterations = 2;
    p.max_training_rows = 300;
    Sweep sweep = SweepFailures(pq_m ? "BuildIvf PQ" : "BuildIvf FLAT",
                                [&]() -> Result<std::vector<std::vector<int64_t>>> {
      auto parts = BuildIvf(p, vector::Metric::kL2, d.base());
      if (!parts.ok()) return parts.error();
      return parts->list_ids;
    });
    EXPECT_GT(sweep.allocations, 0);
    auto parts = BuildIvf(p, vector::Metric::kL2, d.base());
    ASSERT_TRUE(parts.ok()) << parts.error().ToString();
    GpuSearchParams sp;
    sp.nprobe = 2;
    sp.refine_ratio = 2;
    sweep = SweepFailures("UploadIvf + Search", [&] {
      return UploadAndSearch(d, [&] { return UploadIvf(*parts, d.base()); }, sp);
    });
    EXPECT_GT(sweep.launches, 0);
  }
}

TEST(EmulationFaults, CagraBuildAndSearchReportEveryFailure) {
  FaultData d;
  CagraBuildParams p;
  p.graph_degree = 32;
  p.intermediate_graph_degree = 48;
  p.knn = CagraKnnBuild::kExact;
  Sweep sweep = SweepFailures("BuildCagra", [&]() -> Result<std::vector<uint32_t>> {
    auto g = BuildCagra(p, vector::Metric::kL2, d.base());
    if (!g.ok()) return g.error();
    return g->graph;
  });
  EXPECT_GT(sweep.allocations, 0);
  auto g = BuildCagra(p, vector::Metric::kL2, d.base());
  ASSERT_TRUE(g.ok()) << g.error().ToString();
  GpuSearchParams sp;
  sp.itopk = 32;
  sweep = SweepFailures("UploadCagra + Search", [&] {
    return UploadAndSearch(d, [&] { return UploadCagra(*g, d.base()); }, sp);
  });
  EXPECT_GT(sweep.launches, 0);
}

}  // namespace
}  // namespace vlake::gpu
