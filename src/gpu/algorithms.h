// GPU vector algorithms: k-means, brute force, IVF_FLAT/IVF_PQ and CAGRA, as free functions
// over aggregate parameter structs (../shared/style.md #6), on the CUDA runtime and cuBLAS.
//
// Builders return the CPU engine's index parts (vector/index_parts.h), so what a GPU builds is
// written in the CPU formats (FAISS IVF, hnswlib HNSW) and serves from CPU-only nodes; the
// Device*Index classes hold the same parts in GPU memory for search on the GPU.
//
// Inputs are MatrixViews in host or device memory. Host inputs larger than the GPU's free
// memory are streamed in batches (`batch_rows`) through pinned buffers; device inputs are used
// in place. Outputs are host arrays unless stated otherwise. A call plans its device memory
// within 85% of the free memory, capped by the environment variable
// VLAKE_GPU_MEMORY_BUDGET_BYTES when set (tests use it to force the streaming paths).
//
// COSINE: the builders (KMeansFit, BuildIvf) normalize the rows to unit length where they read
// them, like the CPU reference builders (vector/reference_build.h), so their output holds
// unit-length vectors; searches (BruteForceKnn, Device*Index::Search) rank COSINE by inner
// product over the vectors as given: the caller normalizes queries (and the base of
// BruteForceKnn), as the vectordb does on insert and search.
//
// Private helpers: kernel_math.h (arithmetic shared with host code: PQ encoding, LUT entries,
// the re-seeding rule, seeded draws), topk.cuh (block-wide top-k, row-wise select and merge
// launchers), internal.h (context, memory budget, GEMM, row batching).
//
// Without CUDA (built without nvcc, or no driver/GPU at run time) every function returns
// Code::kUnavailable with the reason; nothing here aborts for lack of a GPU.
//
// This header never includes CUDA headers (style #7). Thread-safety: functions may be called
// from several threads; each call uses its own stream and cuBLAS handle on the current device.
// A Device*Index is immutable after Upload and its Search is safe from several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vector/index_parts.h"
#include "vector/types.h"
#include "vlake/status.h"

namespace vlake::gpu {

enum class Memory : uint8_t { kHost, kDevice };

// rows x dim float32, row-major, `data` in `memory`.
struct MatrixView {
  const float* data = nullptr;
  int64_t rows = 0;
  int dim = 0;
  Memory memory = Memory::kHost;
};

// GEMM precision for distance computations: kTf32 uses tensor cores (about 8x the FP32 rate
// on Hopper, 10-bit mantissa products) — fine for clustering, where assignments tolerate it;
// kFp32 is exact IEEE single precision.
enum class MathMode : uint8_t { kFp32, kTf32 };

enum class KMeansInit : uint8_t {
  // k distinct rows drawn uniformly: centroid c = row SampleDistinct(n, k, seed)[c]
  // (kernel_math.h: a partial Fisher-Yates shuffle driven by std::mt19937_64(seed), the CPU
  // reference's draw). Cheap; the default.
  kRandomSample,
  // k-means++ (sequential D^2 sampling, on the GPU) over a seeded subsample of
  // min(n, max(32 k, 16384)) rows: better starting points for k sequential steps.
  kKMeansPlusPlus,
};

struct KMeansParams {
  int k = 1024;             // clusters
  int max_iterations = 20;  // Lloyd iterations per level
  double tolerance = 1e-4;  // stop when the relative inertia change falls below this; 0: never
  MathMode math = MathMode::kTf32;
  KMeansInit init = KMeansInit::kRandomSample;
  // Balanced: after each iteration's update, clusters with fewer than `balance_min_fraction` x
  // the average size are re-seeded as perturbed copies of the largest cluster's centroid (the
  // exact rule: kernel_math.h, "Balanced k-means re-seeding"), so no list ends up empty and
  // list lengths stay even (IVF search time is set by the longest). Unbalanced fits leave an
  // empty cluster at its last centroid, as the CPU reference does.
  bool balanced = true;
  double balance_min_fraction = 0.25;
  // Hierarchical: for k above this, first cluster into ~sqrt(k) mesoclusters, split each into
  // a share of k proportional to its size, then run a few fine iterations on all k.
  int hierarchical_above_k = 4096;
  int64_t max_training_rows = 0;  // 0 = all rows; else SampleDistinct(rows, max, seed + 1)
  uint64_t seed = 1234;
  // Rows per batch of a pass over the data: the unit in which host rows that do not fit the
  // GPU are streamed (each distance GEMM tile is further bounded by the memory budget).
  int64_t batch_rows = 1 << 18;
};

struct KMeansStats {
  int iterations = 0;  // Lloyd iterations run, summed over the levels of a hierarchical fit
  double seconds = 0;
  double gemm_flops = 0;  // 2*n*k*dim per assignment pass, summed
  double inertia = 0;     // sum of squared distances to the assigned centroid (L2)
};

// Centroids (k x dim). For kIP/kCosine the centroids are re-normalized each iteration
// (spherical k-means), matching FAISS's IVF training for inner product. Without hierarchy,
// subsampling or k-means++ this is vector/reference_build.h's ReferenceKMeans (same seeds,
// same re-seeding), up to float rounding and the `tolerance` early stop.
// InvalidArgument: k < 1, k above the (training) rows, max_iterations < 1, batch_rows < 1.
Result<std::vector<float>> KMeansFit(const KMeansParams& params, vector::Metric metric,
                                     const MatrixView& data, KMeansStats* stats = nullptr);

// Nearest centroid of each row (labels[i] in 0..k-1) under `metric`, ties to the smaller
// centroid; labels has data.rows entries (host).
Status KMeansPredict(vector::Metric metric, const float* centroids_host, int k,
                     const MatrixView& data, MathMode math, int32_t* labels);

// cuBLAS SGEMM rate on this GPU (FLOP/s) for an m x n x k problem, best of `repeats` — the
// reference k-means throughput is reported against.
Result<double> MeasureGemmFlops(int64_t m, int64_t n, int64_t k, MathMode math, int repeats = 5);

// ---- Brute force (GPU_BRUTE_FORCE) ----

// Exact k nearest rows of `base` for each query: distances by GEMM (||q||^2 - 2 q.b + ||b||^2
// for L2, clamped at 0; q.b for IP/COSINE, best = largest) then top-k selection. labels/
// distances are queries.rows x k host arrays, best first, ties to the smaller label; distances
// are squared L2 (like FAISS) or inner products; slots beyond base.rows get label -1 and
// distance FLT_MAX (L2) or -FLT_MAX (IP/COSINE), FAISS's empty-slot values.
// 1 <= k <= kMaxGpuTopK. COSINE is IP over the caller's (normalized) vectors. Base rows beyond
// GPU memory are streamed in batches and the per-batch top-k merged. kTf32 trades the
// exactness of the ranking for GEMM speed.
inline constexpr int kMaxGpuTopK = 1024;
Status BruteForceKnn(vector::Metric metric, const MatrixView& base, const MatrixView& queries,
                     int k, MathMode math, int64_t* labels, float* distances);

// ---- IVF_FLAT / IVF_PQ ----

// The build is vector/reference_build.h's ReferenceBuildIvf with seed = kmeans.seed (training
// sample SampleDistinct(rows, n_train, seed) sorted; coarse k-means seeded seed + 1; codebook j
// seeded seed + 2 + j, unbalanced, all pq_kmeans_iterations), up to float rounding; the coarse
// k-means takes the rest of `kmeans` (math, balance, tolerance, init, hierarchy). Rows are
// assigned to lists with kmeans.math; PQ codes are always computed in exact FP32.
struct IvfBuildParams {
  int nlist = 1024;     // 0 = about sqrt(rows)
  KMeansParams kmeans;  // kmeans.k and kmeans.max_training_rows are ignored
  // 0 = min(rows, 256 * nlist) sampled rows train the coarse k-means and the codebooks (at
  // most 2^20 of them the codebooks); InvalidArgument below nlist (or 256 for IVF_PQ).
  int64_t max_training_rows = 0;
  int pq_m = 0;                   // 0 = IVF_FLAT; else IVF_PQ with pq_m sub-quantizers
  int pq_nbits = 8;               // only 8
  int pq_kmeans_iterations = 25;  // per-subspace codebook training iterations
  int64_t batch_rows = 1 << 20;   // rows per assign/encode batch (streamed from host)
};

inline IvfBuildParams AutoIvfPq() {
  IvfBuildParams p;
  p.nlist = 0;
  p.pq_m = 0;
  return p;
}

struct BuildStats {
  double train_seconds = 0;     // coarse k-means (+ PQ codebooks)
  double add_seconds = 0;       // assign + encode + list building
  double graph_seconds = 0;     // CAGRA: kNN graph
  double optimize_seconds = 0;  // CAGRA: pruning + reverse edges
  double h2d_seconds = 0;       // host->device copies of the data
  KMeansStats kmeans;
};

Result<vector::IvfParts> BuildIvf(const IvfBuildParams& params, vector::Metric metric,
                                  const MatrixView& data, BuildStats* stats = nullptr);

// ---- CAGRA (GPU_CAGRA) ----

enum class CagraKnnBuild : uint8_t {
  kAuto,   // exact below exact_below_rows, else IVF-PQ
  kExact,  // brute-force kNN graph
  kIvfPq,  // IVF-PQ search with refinement on the raw vectors
};

struct CagraBuildParams {
  int graph_degree = 64;                // final out-degree (32 or 64)
  int intermediate_graph_degree = 128;  // kNN graph degree before pruning (>= graph_degree)
  CagraKnnBuild knn = CagraKnnBuild::kAuto;
  int64_t exact_below_rows = 200'000;
  // kIvfPq: the index searched to build the kNN graph, and its search effort. nlist 0 =
  // about sqrt(rows); pq_m 0 = dim/2 (rounded down to a divisor of dim).
  IvfBuildParams ivf_pq = AutoIvfPq();
  int knn_nprobe = 64;
  int knn_refine_ratio = 2;  // candidates re-ranked exactly = refine_ratio x intermediate degree
  MathMode math = MathMode::kTf32;
};

// The pruned graph (rank-based detour pruning of the kNN graph, then reverse edges merged in,
// as CAGRA does). GraphParts.degree == params.graph_degree.
Result<vector::GraphParts> BuildCagra(const CagraBuildParams& params, vector::Metric metric,
                                      const MatrixView& data, BuildStats* stats = nullptr);

// A node whose vector is closest to the data's mean: the entry point handed to
// vector::IndexFromGraphParts (used there only when the drawn HNSW hierarchy is empty, i.e. on
// tiny inputs; otherwise the export's top-level node is the entry).
Result<uint32_t> GraphEntryPoint(vector::Metric metric, const MatrixView& data);

// ---- Search on the GPU ----

struct GpuSearchParams {
  int k = 10;       // 1..kMaxGpuTopK
  int nprobe = 16;  // IVF: 1..kMaxGpuTopK, capped at nlist
  // IVF_PQ: re-rank min(refine_ratio * k, kMaxGpuTopK) PQ candidates by exact distance on the
  // raw vectors (ignored without them); the distances returned are then exact.
  int refine_ratio = 1;
  int itopk = 64;          // CAGRA: internal top-k list size (>= k)
  int search_width = 1;    // CAGRA: parents expanded per iteration
  int max_iterations = 0;  // CAGRA: 0 = automatic
};

// Results are host arrays nq x k, best first, label -1 for empty slots.
class DeviceIndex {
 public:
  virtual ~DeviceIndex() = default;
  virtual int64_t size() const = 0;
  virtual int dim() const = 0;
  // Queries in host or device memory; batches of any size (split internally).
  virtual Status Search(const MatrixView& queries, const GpuSearchParams& params, int64_t* labels,
                        float* distances) const = 0;
  virtual int64_t device_bytes() const = 0;
};

// Brute force over a copy of `base` on the GPU.
Result<std::unique_ptr<DeviceIndex>> UploadFlat(vector::Metric metric, const MatrixView& base);
// IVF_FLAT or IVF_PQ lists on the GPU; `raw` (optional, may be empty; rows x dim indexed by
// label) enables IVF_PQ refine: host rows are copied to the GPU, device rows are used in place
// and must outlive the index. The parts are checked with IvfParts::Validate.
Result<std::unique_ptr<DeviceIndex>> UploadIvf(const vector::IvfParts& parts,
                                               const MatrixView& raw = {});
// CAGRA graph + vectors on the GPU.
Result<std::unique_ptr<DeviceIndex>> UploadCagra(const vector::GraphParts& graph,
                                                 const MatrixView& vectors);

}  // namespace vlake::gpu
