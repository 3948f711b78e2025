// k-means on the GPU: KMeansFit, KMeansPredict, MeasureGemmFlops, and the assignment helpers
// of internal.h that BuildIvf shares.
//
// Design (why):
// - Assignment is a GEMM (cuBLAS, FP32 or TF32 tensor cores) of a tile of rows against all
//   centroids, then one warp per row scans the tile for the best centroid (argmin of
//   ||c||^2 - 2 x.c, or argmax of x.c), so the n x k distance matrix never exists whole; tiles
//   are sized from the free memory.
// - The centroid update is fused into that scan: the warp that picked row x's centroid adds x
//   into the centroid's sum with atomicAdd per (cluster, coordinate), in double. No sort, one
//   pass over the rows; double sums make the result independent of the atomics' order except in
//   the last bits of a double, which the float centroids do not see (the order is otherwise
//   nondeterministic, so bit-exact reproducibility is "almost always", not guaranteed).
// - Counts, inertia and the small re-seeding plan are the only host round trip per iteration
//   (k counters); the balanced re-seeding rule is sequential by definition (each pick halves
//   the largest cluster's bookkept size), so the host plans it (kernel_math.h PlanReseeds) and
//   one kernel applies it, one thread per coordinate since coordinates are independent.
// - Host input is uploaded once when it fits the memory budget, else streamed in batch_rows
//   batches through pinned buffers every iteration (RowBatcher).
// - Hierarchical fits (k > hierarchical_above_k): ~sqrt(k) mesoclusters, each split into a
//   share of k proportional to its size, then a few fine iterations over all rows: the cost of a
//   fit drops from O(n k) per iteration to about O(n sqrt(k)) for most iterations.
//
// The algorithm is vector/reference_build.h's ReferenceKMeans (init, update, unit scaling for
// IP/COSINE, the balanced re-seeding rule of kernel_math.h after every update, COSINE rows
// normalized where they are read), plus what the reference does not have: the relative
// `tolerance` early stop, k-means++ init, subsampling and the hierarchical mode.
//
// Seeds: kRandomSample takes training row SampleDistinct(n, k, seed)[c] as centroid c (the
// reference's draw); the max_training_rows subsample is SampleDistinct(rows, max_training_rows,
// seed + 1) sorted ascending; k-means++ runs over SampleDistinct(n, m, seed + 2) sorted,
// m = min(n, max(32 k, 16384)), first centre at subsample row mt19937_64(seed + 3)() % m and the
// D^2 draws from the same engine; hierarchical level-2 fits use seed + 101 + mesocluster.
#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gpu/algorithms.h"
#include "gpu/internal.h"
#include "gpu/kernel_math.h"

namespace vlake::gpu {
namespace {

constexpr int kWarp = 32;
constexpr int kBlock = 256;
constexpr int kWarpsPerBlock = kBlock / kWarp;
constexpr int64_t kMaxTileBytes = 1ll << 30;  // one GEMM output tile

bool IsSpherical(vector::Metric metric) { return metric != vector::Metric::kL2; }

// ---- Kernels ----

struct AssignArgs {
  const float* dots;  // rows x k, x . c
  int64_t rows;
  int k;
  const float* c_norms;  // k
  const float* x_norms;  // rows
  bool inner_product;    // argmax x.c instead of argmin ||x - c||^2
  const float* x;        // rows x dim (accumulate only)
  int dim;
  int32_t* labels;             // rows, nullable
  double* sums;                // k x dim (accumulate only)
  unsigned long long* counts;  // k (accumulate only)
  double* inertia;             // 1 (accumulate only)
};

// One warp per row: lanes stride over the centroids (coalesced reads of the row of the tile),
// then a shuffle reduction under the (score, index) order, so ties go to the smaller centroid
// whatever the lane layout.
template <bool kAccumulate>
__global__ __launch_bounds__(kBlock) void AssignKernel(AssignArgs a) {
  __shared__ double warp_inertia[kWarpsPerBlock];
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;
  double my_inertia = 0.0;
  if (row < a.rows) {  // uniform per warp
    const float* d = a.dots + row * a.k;
    float best = INFINITY;
    int best_j = INT_MAX;
    for (int j = lane; j < a.k; j += kWarp) {
      float s = a.inner_product ? -d[j] : a.c_norms[j] - 2.0f * d[j];
      if (s < best) {  // NaN never wins
        best = s;
        best_j = j;
      }
    }
    for (int o = kWarp / 2; o > 0; o >>= 1) {
      float os = __shfl_xor_sync(0xffffffffu, best, o);
      int oj = __shfl_xor_sync(0xffffffffu, best_j, o);
      if (os < best || (os == best && oj < best_j)) {
        best = os;
        best_j = oj;
      }
    }
    if (best_j >= a.k) best_j = 0;  // every score NaN
    if (lane == 0) {
      if (a.labels != nullptr) a.labels[row] = best_j;
      my_inertia = math::L2FromDot(a.x_norms[row], a.c_norms[best_j], d[best_j]);
    }
    if constexpr (kAccumulate) {
      const float* x = a.x + row * a.dim;
      double* sum = a.sums + static_cast<int64_t>(best_j) * a.dim;
      for (int j = lane; j < a.dim; j += kWarp) atomicAdd(sum + j, static_cast<double>(x[j]));
      if (lane == 0) atomicAdd(a.counts + best_j, 1ull);
    }
  }
  if constexpr (kAccumulate) {
    if (lane == 0) warp_inertia[warp] = my_inertia;
    __syncthreads();
    if (threadIdx.x == 0) {
      double s = 0;
      for (int w = 0; w < kWarpsPerBlock; ++w) s += warp_inertia[w];
      atomicAdd(a.inertia, s);
    }
  }
}

// Centroid = sum / count, then (spherical) scaled to unit length as ReferenceKMeans's
// ScaleToUnit does (norm in double, product in double); clusters without rows keep their
// centroid untouched. One warp per centroid.
__global__ __launch_bounds__(kBlock) void UpdateCentroidsKernel(float* c, const double* sums,
                                                                const unsigned long long* counts,
                                                                int k, int dim, bool spherical) {
  const int cluster = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (cluster >= k) return;  // whole warps
  const unsigned long long n = counts[cluster];
  if (n == 0) return;
  float* row = c + static_cast<int64_t>(cluster) * dim;
  const double* sum = sums + static_cast<int64_t>(cluster) * dim;
  double norm = 0.0;
  for (int j = lane; j < dim; j += kWarp) {
    const float v = static_cast<float>(sum[j] / static_cast<double>(n));
    row[j] = v;
    norm += static_cast<double>(v) * v;
  }
  if (!spherical) return;
  for (int o = kWarp / 2; o > 0; o >>= 1) norm += __shfl_xor_sync(0xffffffffu, norm, o);
  if (norm <= 0.0) return;
  const double inv = 1.0 / sqrt(norm);
  for (int j = lane; j < dim; j += kWarp) row[j] = static_cast<float>(row[j] * inv);
}

// The device twin of math::ApplyReseeds: thread j owns coordinate j of every centroid and walks
// the plan in order.
__global__ void ApplyReseedsKernel(float* c, int dim, const math::Reseed* plan, int count) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= dim) return;
  for (int p = 0; p < count; ++p) {
    float* dst = c + static_cast<int64_t>(plan[p].cluster) * dim;
    float* src = c + static_cast<int64_t>(plan[p].source) * dim;
    float base = src[j];
    dst[j] = base * math::ReseedScale(j, math::ReseedSide::kNewCluster);
    src[j] = base * math::ReseedScale(j, math::ReseedSide::kSourceCluster);
  }
}

// k-means++: min_dist[i] = min(min_dist[i], ||s_i - centre||^2) for the rows of a chunk of
// kPlusPlusChunk rows per block, and the chunk's sum of min_dist (in a fixed order, so the draw
// below is deterministic).
constexpr int kPlusPlusChunk = 1024;

__global__ __launch_bounds__(kBlock) void MinDistKernel(const float* s, int64_t m, int dim,
                                                        const float* centre, bool first,
                                                        double* min_dist, double* chunk_sums) {
  __shared__ double warp_sums[kWarpsPerBlock];
  const int warp = threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kPlusPlusChunk;
  const int64_t end = min(m, begin + kPlusPlusChunk);
  double acc = 0.0;
  for (int64_t i = begin + warp; i < end; i += kWarpsPerBlock) {
    const float* x = s + i * dim;
    float d = 0.0f;
    for (int j = lane; j < dim; j += kWarp) {
      float t = x[j] - centre[j];
      d = fmaf(t, t, d);
    }
    for (int o = kWarp / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
    if (lane == 0) {
      double v = first ? static_cast<double>(d) : fmin(min_dist[i], static_cast<double>(d));
      min_dist[i] = v;
      acc += v;
    }
  }
  if (lane == 0) warp_sums[warp] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    double t = 0;
    for (int w = 0; w < kWarpsPerBlock; ++w) t += warp_sums[w];
    chunk_sums[blockIdx.x] = t;
  }
}

// D^2 draw: the first row whose running sum of min_dist exceeds u * total. One thread: the walk
// is over chunk sums then one chunk, about 2 x 1024 steps.
__global__ void PickKernel(const double* min_dist, const double* chunk_sums, int64_t m,
                           int64_t chunks, double u, int64_t* chosen) {
  if (threadIdx.x != 0) return;
  double total = 0;
  for (int64_t c = 0; c < chunks; ++c) total += chunk_sums[c];
  int64_t pick = min(m - 1, static_cast<int64_t>(u * static_cast<double>(m)));
  if (total > 0) {
    double target = u * total, run = 0;
    int64_t c = 0;
    for (; c < chunks - 1 && run + chunk_sums[c] <= target; ++c) run += chunk_sums[c];
    int64_t i = c * kPlusPlusChunk;
    const int64_t end = min(m, i + kPlusPlusChunk);
    for (; i < end - 1 && run + min_dist[i] <= target; ++i) run += min_dist[i];
    pick = i;
  }
  *chosen = pick;
}

__global__ void CopyChosenKernel(const float* s, int dim, const int64_t* chosen, float* dst) {
  const float* src = s + (*chosen) * dim;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) dst[j] = src[j];
}

__global__ void FillKernel(float* x, int64_t n, uint32_t salt) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ salt;
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  x[i] = static_cast<float>(h & 0xffff) / 32768.0f - 1.0f;
}

unsigned Blocks(int64_t n, int threads) { return static_cast<unsigned>(CeilDiv(n, threads)); }

// ---- Device access to the rows k-means runs over ----

enum class Residency : uint8_t {
  kUploadIfFits,  // several passes: upload host rows once when they fit half the budget
  kStream,        // one pass: stream host rows in batches
};

// Rows of a matrix on the device: in place (device input), one upload (or device copy, when
// they must be normalized), or streamed batches.
class DeviceRows {
 public:
  Status Init(const GpuContext& ctx, const MatrixView& view, int64_t batch_rows, int64_t budget,
              Residency residency, RowTransform transform, double* h2d_seconds) {
    view_ = view;
    MatrixView src = view;
    const int64_t row_bytes = static_cast<int64_t>(view.dim) * 4;
    const bool normalize = transform == RowTransform::kNormalize;
    const bool copy_whole = residency == Residency::kUploadIfFits &&
                            (view.memory == Memory::kHost || normalize) &&
                            view.rows * row_bytes <= budget / 2;
    if (copy_whole) {
      const double t0 = NowSeconds();
      VLAKE_RETURN_IF_ERROR(
          copy_.Allocate(static_cast<size_t>(view.rows) * view.dim, ctx.stream()));
      if (view.rows > 0) {
        VLAKE_CUDA_RETURN(cudaMemcpyAsync(
            copy_.get(), view.data, static_cast<size_t>(view.rows * row_bytes),
            view.memory == Memory::kHost ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice,
            ctx.stream()));
      }
      if (normalize) {
        VLAKE_RETURN_IF_ERROR(NormalizeRows(copy_.get(), view.rows, view.dim, ctx.stream()));
      }
      if (h2d_seconds != nullptr && view.memory == Memory::kHost) {
        *h2d_seconds += NowSeconds() - t0;
      }
      src.data = copy_.get();
      src.memory = Memory::kDevice;
      transform = RowTransform::kNone;
    }
    // Two batch buffers of copied batches take at most a quarter of the budget.
    batch_rows_ = std::max<int64_t>(1, std::min(batch_rows, view.rows));
    if (src.memory == Memory::kHost || transform != RowTransform::kNone) {
      batch_rows_ = std::min(batch_rows_, RowsWithin(budget / 8, row_bytes, view.rows));
    }
    h2d_seconds_ = h2d_seconds;
    return batcher_.Init(src, batch_rows_, ctx.stream(), transform);
  }
  Result<const float*> Get(int64_t begin, int64_t rows) {
    double before = batcher_.h2d_seconds();
    auto r = batcher_.Get(begin, rows);
    if (h2d_seconds_ != nullptr && view_.memory == Memory::kHost) {
      *h2d_seconds_ += batcher_.h2d_seconds() - before;
    }
    return r;
  }
  int64_t rows() const { return view_.rows; }
  int dim() const { return view_.dim; }
  int64_t batch_rows() const { return batch_rows_; }

 private:
  MatrixView view_;
  AsyncBuffer<float> copy_;
  RowBatcher batcher_;  // after copy_: destroyed (synchronized) first
  int64_t batch_rows_ = 1;
  double* h2d_seconds_ = nullptr;
};

// What an assignment pass produces besides the labels.
struct Accumulators {
  double* sums = nullptr;                // k x dim
  unsigned long long* counts = nullptr;  // k
  double* inertia = nullptr;             // 1
};

// Labels of device rows x (rows x dim), in GEMM tiles; writes device labels (nullable) and, when
// acc is given, accumulates sums/counts/inertia.
Status AssignTiles(const GpuContext& ctx, vector::Metric metric, MathMode math, const float* x,
                   int64_t rows, int dim, const float* centroids, const float* c_norms, int k,
                   int32_t* labels, const Accumulators* acc, int64_t budget) {
  if (rows <= 0) return Status::Ok();
  const int64_t tile_bytes = std::max<int64_t>(std::min(kMaxTileBytes, budget / 4), 1 << 20);
  const int64_t tile = RowsWithin(tile_bytes, static_cast<int64_t>(k) * 4 + 4, rows);
  AsyncBuffer<float> dots, x_norms;
  VLAKE_RETURN_IF_ERROR(dots.Allocate(static_cast<size_t>(tile) * k, ctx.stream()));
  VLAKE_RETURN_IF_ERROR(x_norms.Allocate(static_cast<size_t>(tile), ctx.stream()));
  for (int64_t t0 = 0; t0 < rows; t0 += tile) {
    const int64_t nt = std::min(tile, rows - t0);
    const float* xt = x + t0 * dim;
    VLAKE_RETURN_IF_ERROR(RowSquaredNorms(xt, nt, dim, x_norms.get(), ctx.stream()));
    VLAKE_RETURN_IF_ERROR(
        GemmNT(ctx.blas(), math, nt, k, dim, xt, dim, centroids, dim, 1.0f, 0.0f, dots.get(), k));
    AssignArgs a{};
    a.dots = dots.get();
    a.rows = nt;
    a.k = k;
    a.c_norms = c_norms;
    a.x_norms = x_norms.get();
    a.inner_product = metric != vector::Metric::kL2;
    a.x = xt;
    a.dim = dim;
    a.labels = labels != nullptr ? labels + t0 : nullptr;
    const unsigned grid = Blocks(nt, kWarpsPerBlock);
    if (acc != nullptr) {
      a.sums = acc->sums;
      a.counts = acc->counts;
      a.inertia = acc->inertia;
      AssignKernel<true><<<grid, kBlock, 0, ctx.stream()>>>(a);
    } else {
      AssignKernel<false><<<grid, kBlock, 0, ctx.stream()>>>(a);
    }
    VLAKE_CUDA_RETURN(cudaGetLastError());
  }
  return Status::Ok();
}

// Copies device label batches to a host array through two pinned buffers, one batch behind, so
// the host never waits for the batch it just enqueued.
class LabelDrain {
 public:
  ~LabelDrain() {
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  }
  Status Init(int64_t max_rows, cudaStream_t stream, int32_t* host) {
    stream_ = stream;
    host_ = host;
    for (int i = 0; i < 2; ++i) {
      VLAKE_RETURN_IF_ERROR(device_[i].Allocate(static_cast<size_t>(max_rows), stream));
      VLAKE_RETURN_IF_ERROR(pinned_[i].Allocate(static_cast<size_t>(max_rows)));
      VLAKE_RETURN_IF_ERROR(done_[i].Create());
    }
    return Status::Ok();
  }
  // The device buffer for rows [begin, begin + rows); drains what the slot held before.
  Result<int32_t*> Slot(int64_t begin, int64_t rows) {
    slot_ ^= 1;
    VLAKE_RETURN_IF_ERROR(Drain(slot_));
    begin_[slot_] = begin;
    rows_[slot_] = rows;
    return device_[slot_].get();
  }
  // After the kernels filling the current slot.
  Status Enqueue() {
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(pinned_[slot_].get(), device_[slot_].get(),
                                      static_cast<size_t>(rows_[slot_]) * sizeof(int32_t),
                                      cudaMemcpyDeviceToHost, stream_));
    VLAKE_CUDA_RETURN(cudaEventRecord(done_[slot_].get(), stream_));
    pending_[slot_] = true;
    return Status::Ok();
  }
  Status Finish() {
    VLAKE_RETURN_IF_ERROR(Drain(slot_ ^ 1));
    return Drain(slot_);
  }

 private:
  Status Drain(int s) {
    if (!pending_[s]) return Status::Ok();
    VLAKE_CUDA_RETURN(cudaEventSynchronize(done_[s].get()));
    std::copy(pinned_[s].get(), pinned_[s].get() + rows_[s], host_ + begin_[s]);
    pending_[s] = false;
    return Status::Ok();
  }

  cudaStream_t stream_ = nullptr;
  int32_t* host_ = nullptr;
  AsyncBuffer<int32_t> device_[2];
  PinnedArray<int32_t> pinned_[2];
  Event done_[2];
  int64_t begin_[2] = {0, 0};
  int64_t rows_[2] = {0, 0};
  bool pending_[2] = {false, false};
  int slot_ = 1;
};

// One assignment pass over all rows: host labels and/or accumulators.
Status AssignPass(const GpuContext& ctx, DeviceRows& rows, vector::Metric metric, MathMode math,
                  const float* centroids, const float* c_norms, int k, int32_t* host_labels,
                  const Accumulators* acc, int64_t budget) {
  const int64_t n = rows.rows();
  const int64_t batch = rows.batch_rows();
  LabelDrain drain;
  if (host_labels != nullptr) VLAKE_RETURN_IF_ERROR(drain.Init(batch, ctx.stream(), host_labels));
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t nb = std::min(batch, n - b0);
    VLAKE_ASSIGN_OR_RETURN(const float* x, rows.Get(b0, nb));
    int32_t* labels = nullptr;
    if (host_labels != nullptr) {
      VLAKE_ASSIGN_OR_RETURN(labels, drain.Slot(b0, nb));
    }
    VLAKE_RETURN_IF_ERROR(AssignTiles(ctx, metric, math, x, nb, rows.dim(), centroids, c_norms, k,
                                      labels, acc, budget));
    if (host_labels != nullptr) VLAKE_RETURN_IF_ERROR(drain.Enqueue());
  }
  if (host_labels != nullptr) VLAKE_RETURN_IF_ERROR(drain.Finish());
  return Status::Ok();
}

// ---- Fitting ----

struct FitConfig {
  int k = 0;
  int iterations = 0;
  double tolerance = 0;
  MathMode math = MathMode::kTf32;
  KMeansInit init = KMeansInit::kRandomSample;
  bool balanced = true;
  double balance_min_fraction = 0.25;
  int hierarchical_above_k = 0;
  uint64_t seed = 0;
  int64_t batch_rows = 1;
  // COSINE over rows not known to be unit length: normalize every row where it is read.
  bool normalize_rows = false;
};

RowTransform TransformOf(const FitConfig& cfg) {
  return cfg.normalize_rows ? RowTransform::kNormalize : RowTransform::kNone;
}

// Lloyd iterations from the centroids in `centroids` (k x dim, device), updated in place.
Status RunLloyd(const GpuContext& ctx, DeviceRows& rows, vector::Metric metric,
                const FitConfig& cfg, int iterations, float* centroids, int64_t budget,
                KMeansStats* stats) {
  const int k = cfg.k;
  const int dim = rows.dim();
  const int64_t n = rows.rows();
  const int64_t total = static_cast<int64_t>(k) * dim;
  if (k > (1 << 30) / kWarpsPerBlock) return Status(Code::kInvalidArgument, "k-means: k too large");
  AsyncBuffer<float> c_norms;
  AsyncBuffer<double> sums;
  AsyncBuffer<unsigned long long> counts;
  AsyncBuffer<double> inertia;
  AsyncBuffer<math::Reseed> plan_dev;
  VLAKE_RETURN_IF_ERROR(c_norms.Allocate(static_cast<size_t>(k), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(sums.Allocate(static_cast<size_t>(total), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(counts.Allocate(static_cast<size_t>(k), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(inertia.Allocate(1, ctx.stream()));
  VLAKE_RETURN_IF_ERROR(plan_dev.Allocate(static_cast<size_t>(k), ctx.stream()));
  std::vector<unsigned long long> host_counts(static_cast<size_t>(k));
  std::vector<int64_t> sizes(static_cast<size_t>(k));
  const double threshold = cfg.balance_min_fraction * static_cast<double>(n) / k;
  double previous = -1.0;
  for (int it = 0; it < iterations; ++it) {
    VLAKE_CUDA_RETURN(cudaMemsetAsync(sums.get(), 0, sums.size() * sizeof(double), ctx.stream()));
    VLAKE_CUDA_RETURN(cudaMemsetAsync(counts.get(), 0, counts.size() * 8, ctx.stream()));
    VLAKE_CUDA_RETURN(cudaMemsetAsync(inertia.get(), 0, sizeof(double), ctx.stream()));
    VLAKE_RETURN_IF_ERROR(RowSquaredNorms(centroids, k, dim, c_norms.get(), ctx.stream()));
    Accumulators acc{sums.get(), counts.get(), inertia.get()};
    VLAKE_RETURN_IF_ERROR(AssignPass(ctx, rows, metric, cfg.math, centroids, c_norms.get(), k,
                                     nullptr, &acc, budget));
    double inertia_host = 0;
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(host_counts.data(), counts.get(), host_counts.size() * 8,
                                      cudaMemcpyDeviceToHost, ctx.stream()));
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(&inertia_host, inertia.get(), sizeof(double),
                                      cudaMemcpyDeviceToHost, ctx.stream()));
    VLAKE_RETURN_IF_ERROR(ctx.Sync());
    if (stats != nullptr) {
      stats->iterations += 1;
      stats->gemm_flops += 2.0 * static_cast<double>(n) * k * dim;
      stats->inertia = inertia_host;
    }
    const bool converged = previous >= 0 && std::fabs(previous - inertia_host) <=
                                                cfg.tolerance * std::max(inertia_host, 1e-30);
    previous = inertia_host;

    UpdateCentroidsKernel<<<Blocks(k, kWarpsPerBlock), kBlock, 0, ctx.stream()>>>(
        centroids, sums.get(), counts.get(), k, dim, IsSpherical(metric));
    VLAKE_CUDA_RETURN(cudaGetLastError());
    if (cfg.balanced) {
      for (int c = 0; c < k; ++c) sizes[c] = static_cast<int64_t>(host_counts[c]);
      std::vector<math::Reseed> plan = math::PlanReseeds(sizes, threshold);
      if (!plan.empty()) {
        // Pageable source: staged before the call returns, so `plan` may go out of scope.
        VLAKE_CUDA_RETURN(cudaMemcpyAsync(plan_dev.get(), plan.data(),
                                          plan.size() * sizeof(math::Reseed),
                                          cudaMemcpyHostToDevice, ctx.stream()));
        ApplyReseedsKernel<<<Blocks(dim, kBlock), kBlock, 0, ctx.stream()>>>(
            centroids, dim, plan_dev.get(), static_cast<int>(plan.size()));
        VLAKE_CUDA_RETURN(cudaGetLastError());
      }
    }
    if (converged) break;
  }
  return ctx.Sync();
}

// k-means++ (D^2 sampling) over a subsample, on the device; writes k centroids.
Status InitPlusPlus(const GpuContext& ctx, const MatrixView& train, const FitConfig& cfg,
                    float* centroids) {
  const int dim = train.dim;
  const int64_t m = std::min<int64_t>(train.rows, std::max<int64_t>(32ll * cfg.k, 16384));
  std::vector<int64_t> rows = math::SampleDistinct(train.rows, m, cfg.seed + 2);
  std::sort(rows.begin(), rows.end());
  AsyncBuffer<float> s;
  VLAKE_RETURN_IF_ERROR(GatherRows(train, rows, ctx.stream(), &s));
  if (cfg.normalize_rows) VLAKE_RETURN_IF_ERROR(NormalizeRows(s.get(), m, dim, ctx.stream()));
  const int64_t chunks = CeilDiv(m, kPlusPlusChunk);
  if (chunks > INT_MAX) return Status(Code::kInternal, "k-means++: subsample too large");
  AsyncBuffer<double> min_dist, chunk_sums;
  AsyncBuffer<int64_t> chosen;
  VLAKE_RETURN_IF_ERROR(min_dist.Allocate(static_cast<size_t>(m), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(chunk_sums.Allocate(static_cast<size_t>(chunks), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(chosen.Allocate(static_cast<size_t>(cfg.k), ctx.stream()));
  std::mt19937_64 rng(cfg.seed + 3);
  const int64_t first = static_cast<int64_t>(rng() % static_cast<uint64_t>(m));
  VLAKE_CUDA_RETURN(
      cudaMemcpyAsync(chosen.get(), &first, sizeof(first), cudaMemcpyHostToDevice, ctx.stream()));
  for (int r = 0; r < cfg.k; ++r) {
    float* centre = centroids + static_cast<int64_t>(r) * dim;
    if (r > 0) {
      const float* last = centroids + static_cast<int64_t>(r - 1) * dim;
      MinDistKernel<<<static_cast<unsigned>(chunks), kBlock, 0, ctx.stream()>>>(
          s.get(), m, dim, last, r == 1, min_dist.get(), chunk_sums.get());
      const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
      PickKernel<<<1, kWarp, 0, ctx.stream()>>>(min_dist.get(), chunk_sums.get(), m, chunks, u,
                                                chosen.get() + r);
    }
    CopyChosenKernel<<<1, kBlock, 0, ctx.stream()>>>(s.get(), dim, chosen.get() + r, centre);
    VLAKE_CUDA_RETURN(cudaGetLastError());
  }
  return ctx.Sync();  // `first` lives on this stack frame until the copy is done
}

// Initial centroids into `centroids` (k x dim device, allocated here).
Status InitCentroids(const GpuContext& ctx, const MatrixView& train, const FitConfig& cfg,
                     AsyncBuffer<float>* centroids) {
  if (cfg.init == KMeansInit::kKMeansPlusPlus) {
    VLAKE_RETURN_IF_ERROR(
        centroids->Allocate(static_cast<size_t>(cfg.k) * train.dim, ctx.stream()));
    return InitPlusPlus(ctx, train, cfg, centroids->get());
  }
  std::vector<int64_t> rows = math::SampleDistinct(train.rows, cfg.k, cfg.seed);
  VLAKE_RETURN_IF_ERROR(GatherRows(train, rows, ctx.stream(), centroids));
  if (cfg.normalize_rows) {
    VLAKE_RETURN_IF_ERROR(NormalizeRows(centroids->get(), cfg.k, train.dim, ctx.stream()));
  }
  return Status::Ok();
}

// Splits k fine clusters over mesoclusters of the given sizes: proportional shares by largest
// remainder, each non-empty mesocluster at least 1 and at most its size. sum(sizes) >= k.
std::vector<int> ShareClusters(const std::vector<int64_t>& sizes, int k) {
  const int m = static_cast<int>(sizes.size());
  int64_t n = 0;
  for (int64_t s : sizes) n += s;
  std::vector<int> share(static_cast<size_t>(m), 0);
  std::vector<double> target(static_cast<size_t>(m), 0.0);
  int64_t assigned = 0;
  for (int i = 0; i < m; ++i) {
    if (sizes[i] == 0) continue;
    target[i] = static_cast<double>(k) * static_cast<double>(sizes[i]) / static_cast<double>(n);
    share[i] = static_cast<int>(
        std::min<int64_t>(sizes[i], std::max<int64_t>(1, static_cast<int64_t>(target[i]))));
    assigned += share[i];
  }
  while (assigned < k) {  // give to the most under-served that can take one
    int best = -1;
    for (int i = 0; i < m; ++i) {
      if (share[i] < sizes[i] && (best < 0 || target[i] - share[i] > target[best] - share[best])) {
        best = i;
      }
    }
    if (best < 0) break;  // cannot happen when sum(sizes) >= k
    ++share[best];
    ++assigned;
  }
  while (assigned > k) {  // take from the most over-served that keeps at least one
    int best = -1;
    for (int i = 0; i < m; ++i) {
      if (share[i] > 1 && (best < 0 || target[i] - share[i] < target[best] - share[best])) {
        best = i;
      }
    }
    if (best < 0) break;
    --share[best];
    --assigned;
  }
  return share;
}

Status FitFlat(const GpuContext& ctx, const MatrixView& train, vector::Metric metric,
               const FitConfig& cfg, int64_t budget, AsyncBuffer<float>* centroids,
               KMeansStats* stats, double* h2d_seconds) {
  DeviceRows rows;
  VLAKE_RETURN_IF_ERROR(rows.Init(ctx, train, cfg.batch_rows, budget, Residency::kUploadIfFits,
                                  TransformOf(cfg), h2d_seconds));
  VLAKE_RETURN_IF_ERROR(InitCentroids(ctx, train, cfg, centroids));
  return RunLloyd(ctx, rows, metric, cfg, cfg.iterations, centroids->get(), budget, stats);
}

Status FitHierarchical(const GpuContext& ctx, const MatrixView& train, vector::Metric metric,
                       const FitConfig& cfg, int64_t budget, AsyncBuffer<float>* centroids,
                       KMeansStats* stats, double* h2d_seconds) {
  const int k = cfg.k;
  const int dim = train.dim;
  const int meso_k =
      std::clamp(static_cast<int>(std::lround(std::sqrt(static_cast<double>(k)))), 2, k);
  // Level 1: mesoclusters and the training rows' mesocluster labels.
  FitConfig meso_cfg = cfg;
  meso_cfg.k = meso_k;
  AsyncBuffer<float> meso;
  VLAKE_RETURN_IF_ERROR(FitFlat(ctx, train, metric, meso_cfg, budget, &meso, stats, h2d_seconds));
  std::vector<int32_t> labels(static_cast<size_t>(train.rows));
  {
    AsyncBuffer<float> meso_norms;
    VLAKE_RETURN_IF_ERROR(meso_norms.Allocate(static_cast<size_t>(meso_k), ctx.stream()));
    VLAKE_RETURN_IF_ERROR(RowSquaredNorms(meso.get(), meso_k, dim, meso_norms.get(), ctx.stream()));
    DeviceRows rows;
    // Labels only: unit scaling does not change the nearest centroid under IP.
    VLAKE_RETURN_IF_ERROR(rows.Init(ctx, train, cfg.batch_rows, budget, Residency::kStream,
                                    RowTransform::kNone, h2d_seconds));
    VLAKE_RETURN_IF_ERROR(AssignPass(ctx, rows, metric, cfg.math, meso.get(), meso_norms.get(),
                                     meso_k, labels.data(), nullptr, budget));
  }
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(meso_k));
  for (int64_t i = 0; i < train.rows; ++i) members[labels[i]].push_back(i);
  std::vector<int64_t> sizes(static_cast<size_t>(meso_k));
  for (int i = 0; i < meso_k; ++i) sizes[i] = static_cast<int64_t>(members[i].size());
  std::vector<int> share = ShareClusters(sizes, k);

  // Level 2: split each mesocluster into its share.
  VLAKE_RETURN_IF_ERROR(centroids->Allocate(static_cast<size_t>(k) * dim, ctx.stream()));
  int64_t filled = 0;
  for (int i = 0; i < meso_k; ++i) {
    if (share[i] == 0) continue;
    AsyncBuffer<float> sub;
    VLAKE_RETURN_IF_ERROR(GatherRows(train, members[i], ctx.stream(), &sub));
    if (cfg.normalize_rows) {
      VLAKE_RETURN_IF_ERROR(NormalizeRows(sub.get(), sizes[i], dim, ctx.stream()));
    }
    MatrixView sub_view{sub.get(), sizes[i], dim, Memory::kDevice};
    FitConfig sub_cfg = cfg;
    sub_cfg.normalize_rows = false;
    sub_cfg.k = share[i];
    sub_cfg.seed = cfg.seed + 101 + static_cast<uint64_t>(i);
    AsyncBuffer<float> part;
    VLAKE_RETURN_IF_ERROR(
        FitFlat(ctx, sub_view, metric, sub_cfg, budget, &part, stats, h2d_seconds));
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(centroids->get() + filled * dim, part.get(),
                                      static_cast<size_t>(share[i]) * dim * sizeof(float),
                                      cudaMemcpyDeviceToDevice, ctx.stream()));
    filled += share[i];
  }
  if (filled != k) return Status(Code::kInternal, "hierarchical k-means: shares do not add up");

  // Fine iterations over all rows.
  DeviceRows rows;
  VLAKE_RETURN_IF_ERROR(rows.Init(ctx, train, cfg.batch_rows, budget, Residency::kUploadIfFits,
                                  TransformOf(cfg), h2d_seconds));
  const int fine = std::max(1, std::min(cfg.iterations, std::max(2, cfg.iterations / 4)));
  return RunLloyd(ctx, rows, metric, cfg, fine, centroids->get(), budget, stats);
}

Status CheckKMeansParams(const KMeansParams& p, const MatrixView& data) {
  VLAKE_RETURN_IF_ERROR(CheckView(data, "k-means data"));
  if (p.k < 1) return Status(Code::kInvalidArgument, "k-means: k must be >= 1");
  if (p.max_iterations < 1) {
    return Status(Code::kInvalidArgument, "k-means: max_iterations must be >= 1");
  }
  if (p.batch_rows < 1) return Status(Code::kInvalidArgument, "k-means: batch_rows must be >= 1");
  const int64_t usable =
      p.max_training_rows > 0 ? std::min(p.max_training_rows, data.rows) : data.rows;
  if (usable < p.k) {
    return Status(Code::kInvalidArgument, "k-means: k=" + std::to_string(p.k) +
                                              " exceeds the training rows (" +
                                              std::to_string(usable) + ")");
  }
  return Status::Ok();
}

}  // namespace

// ---- internal.h ----

Status AssignNearest(const GpuContext& ctx, vector::Metric metric, MathMode math, const float* x,
                     int64_t rows, int dim, const float* centroids, const float* centroid_norms,
                     int k, int32_t* labels, int64_t budget) {
  return AssignTiles(ctx, metric, math, x, rows, dim, centroids, centroid_norms, k, labels, nullptr,
                     budget);
}

Status PredictLabels(const GpuContext& ctx, vector::Metric metric, const float* centroids, int k,
                     const MatrixView& data, MathMode math, int64_t batch_rows, int32_t* labels,
                     double* h2d_seconds) {
  VLAKE_ASSIGN_OR_RETURN(int64_t budget, MemoryBudgetBytes());
  AsyncBuffer<float> c_norms;
  VLAKE_RETURN_IF_ERROR(c_norms.Allocate(static_cast<size_t>(k), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(RowSquaredNorms(centroids, k, data.dim, c_norms.get(), ctx.stream()));
  DeviceRows rows;
  VLAKE_RETURN_IF_ERROR(rows.Init(ctx, data, batch_rows, budget, Residency::kStream,
                                  RowTransform::kNone, h2d_seconds));
  return AssignPass(ctx, rows, metric, math, centroids, c_norms.get(), k, labels, nullptr, budget);
}

Status FitCentroids(const GpuContext& ctx, const KMeansParams& params, vector::Metric metric,
                    const MatrixView& data, RowScale scale, AsyncBuffer<float>* centroids,
                    KMeansStats* stats, double* h2d_seconds) {
  VLAKE_RETURN_IF_ERROR(CheckKMeansParams(params, data));
  VLAKE_ASSIGN_OR_RETURN(int64_t budget, MemoryBudgetBytes());
  FitConfig cfg;
  cfg.k = params.k;
  cfg.iterations = params.max_iterations;
  cfg.tolerance = params.tolerance;
  cfg.math = params.math;
  cfg.init = params.init;
  cfg.balanced = params.balanced;
  cfg.balance_min_fraction = params.balance_min_fraction;
  cfg.hierarchical_above_k = params.hierarchical_above_k;
  cfg.seed = params.seed;
  cfg.batch_rows = params.batch_rows;
  cfg.normalize_rows = metric == vector::Metric::kCosine && scale == RowScale::kAsGiven;

  // The training rows: all, or a seeded subsample gathered to the device (or, when it would
  // not fit, to host memory, to be streamed).
  MatrixView train = data;
  AsyncBuffer<float> sample_dev;
  std::vector<float> sample_host;
  if (params.max_training_rows > 0 && params.max_training_rows < data.rows) {
    std::vector<int64_t> rows =
        math::SampleDistinct(data.rows, params.max_training_rows, params.seed + 1);
    std::sort(rows.begin(), rows.end());
    const int64_t bytes = static_cast<int64_t>(rows.size()) * data.dim * 4;
    if (data.memory == Memory::kDevice || bytes <= budget / 2) {
      VLAKE_RETURN_IF_ERROR(GatherRows(data, rows, ctx.stream(), &sample_dev));
      train = MatrixView{sample_dev.get(), static_cast<int64_t>(rows.size()), data.dim,
                         Memory::kDevice};
      if (cfg.normalize_rows) {
        VLAKE_RETURN_IF_ERROR(NormalizeRows(sample_dev.get(), train.rows, train.dim, ctx.stream()));
        cfg.normalize_rows = false;
      }
    } else {
      sample_host.resize(rows.size() * static_cast<size_t>(data.dim));
      for (size_t i = 0; i < rows.size(); ++i) {
        std::copy_n(data.data + rows[i] * data.dim, data.dim,
                    sample_host.data() + i * static_cast<size_t>(data.dim));
      }
      train = MatrixView{sample_host.data(), static_cast<int64_t>(rows.size()), data.dim,
                         Memory::kHost};
    }
  }
  if (cfg.k > cfg.hierarchical_above_k && cfg.k > 4 && train.rows >= 2ll * cfg.k) {
    return FitHierarchical(ctx, train, metric, cfg, budget, centroids, stats, h2d_seconds);
  }
  return FitFlat(ctx, train, metric, cfg, budget, centroids, stats, h2d_seconds);
}

// ---- algorithms.h ----

Result<std::vector<float>> KMeansFit(const KMeansParams& params, vector::Metric metric,
                                     const MatrixView& data, KMeansStats* stats) {
  const double t0 = NowSeconds();
  VLAKE_RETURN_IF_ERROR(CheckKMeansParams(params, data));
  GpuContext ctx;
  VLAKE_RETURN_IF_ERROR(ctx.Init());
  KMeansStats local;
  AsyncBuffer<float> centroids;
  VLAKE_RETURN_IF_ERROR(
      FitCentroids(ctx, params, metric, data, RowScale::kAsGiven, &centroids, &local, nullptr));
  std::vector<float> out(static_cast<size_t>(params.k) * data.dim);
  VLAKE_CUDA_RETURN(cudaMemcpyAsync(out.data(), centroids.get(), out.size() * sizeof(float),
                                    cudaMemcpyDeviceToHost, ctx.stream()));
  VLAKE_RETURN_IF_ERROR(ctx.Sync());
  local.seconds = NowSeconds() - t0;
  if (stats != nullptr) *stats = local;
  return out;
}

Status KMeansPredict(vector::Metric metric, const float* centroids_host, int k,
                     const MatrixView& data, MathMode math, int32_t* labels) {
  VLAKE_RETURN_IF_ERROR(CheckView(data, "k-means data"));
  if (k < 1 || centroids_host == nullptr) {
    return Status(Code::kInvalidArgument, "k-means predict: need k >= 1 centroids");
  }
  if (data.rows > 0 && labels == nullptr) {
    return Status(Code::kInvalidArgument, "k-means predict: null labels");
  }
  GpuContext ctx;
  VLAKE_RETURN_IF_ERROR(ctx.Init());
  AsyncBuffer<float> centroids;
  const size_t count = static_cast<size_t>(k) * data.dim;
  VLAKE_RETURN_IF_ERROR(centroids.Allocate(count, ctx.stream()));
  VLAKE_CUDA_RETURN(cudaMemcpyAsync(centroids.get(), centroids_host, count * sizeof(float),
                                    cudaMemcpyHostToDevice, ctx.stream()));
  KMeansParams defaults;
  VLAKE_RETURN_IF_ERROR(PredictLabels(ctx, metric, centroids.get(), k, data, math,
                                      defaults.batch_rows, labels, nullptr));
  return ctx.Sync();
}

Result<double> MeasureGemmFlops(int64_t m, int64_t n, int64_t k, MathMode math, int repeats) {
  if (m < 1 || n < 1 || k < 1 || m > INT_MAX || n > INT_MAX || k > INT_MAX || repeats < 1) {
    return Status(Code::kInvalidArgument, "MeasureGemmFlops: bad shape or repeats");
  }
  GpuContext ctx;
  VLAKE_RETURN_IF_ERROR(ctx.Init());
  VLAKE_ASSIGN_OR_RETURN(int64_t budget, MemoryBudgetBytes());
  const int64_t bytes = (m * k + n * k + m * n) * 4;
  if (bytes > budget) {
    return Status(Code::kInvalidArgument, "MeasureGemmFlops: problem does not fit the GPU");
  }
  AsyncBuffer<float> a, b, c;
  VLAKE_RETURN_IF_ERROR(a.Allocate(static_cast<size_t>(m * k), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(b.Allocate(static_cast<size_t>(n * k), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(c.Allocate(static_cast<size_t>(m * n), ctx.stream()));
  FillKernel<<<Blocks(m * k, kBlock), kBlock, 0, ctx.stream()>>>(a.get(), m * k, 1u);
  FillKernel<<<Blocks(n * k, kBlock), kBlock, 0, ctx.stream()>>>(b.get(), n * k, 2u);
  VLAKE_CUDA_RETURN(cudaGetLastError());
  Event start, stop;
  VLAKE_RETURN_IF_ERROR(start.Create(cudaEventDefault));
  VLAKE_RETURN_IF_ERROR(stop.Create(cudaEventDefault));
  // Warm-up: cuBLAS picks and loads its kernel on the first call.
  VLAKE_RETURN_IF_ERROR(
      GemmNT(ctx.blas(), math, m, n, k, a.get(), k, b.get(), k, 1.0f, 0.0f, c.get(), n));
  double best_ms = 0;
  for (int r = 0; r < repeats; ++r) {
    VLAKE_CUDA_RETURN(cudaEventRecord(start.get(), ctx.stream()));
    VLAKE_RETURN_IF_ERROR(
        GemmNT(ctx.blas(), math, m, n, k, a.get(), k, b.get(), k, 1.0f, 0.0f, c.get(), n));
    VLAKE_CUDA_RETURN(cudaEventRecord(stop.get(), ctx.stream()));
    VLAKE_CUDA_RETURN(cudaEventSynchronize(stop.get()));
    float ms = 0;
    VLAKE_CUDA_RETURN(cudaEventElapsedTime(&ms, start.get(), stop.get()));
    if (r == 0 || ms < best_ms) best_ms = ms;
  }
  if (best_ms <= 0) return Status(Code::kInternal, "MeasureGemmFlops: zero elapsed time");
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) /
         (best_ms * 1e-3);
}

}  // namespace vlake::gpu
