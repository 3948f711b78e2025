// CAGRA on the GPU (algorithms.h, "CAGRA" and "Search on the GPU"): the kNN graph (brute force
// or IVF-PQ + exact refinement, through the public builders of brute_force.cu / ivf.cu), its
// optimization into the search graph (the deterministic rule of cagra_rules.h: rank-based
// detour pruning, reverse edges, merge), the entry point used for HNSW export, and the
// single-CTA beam search of UploadCagra's index.
//
// Determinism: every result here is a function of the inputs only — no atomics decide an order
// (bit sets, CAS into hash tables whose contents, not order, matter, and a stable radix sort
// for the reverse edges), floating-point sums run in a fixed order, and the search seeds each
// query's random start from the query's own bits, so a query gets the same answer alone or in
// a batch of 10000.
//
// Memory: the kNN graph (rows x intermediate_graph_degree uint32) and the optimize arrays live
// on the GPU when they fit in its free memory, else in pinned, mapped host memory that the
// kernels read over the bus (correct, slower). Host inputs are used in place when they fit,
// else streamed in batches by the callees (BruteForceKnn, BuildIvf) or here (GraphEntryPoint).
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gpu/algorithms.h"
#include "gpu/cagra_rules.h"
#include "gpu/cuda_util.cuh"

namespace vlake::gpu {
namespace {

namespace rules = cagra_rules;
static_assert(rules::kNoNode == vector::kNoNeighbor, "cagra_rules.h and index_parts.h disagree");

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Status Invalid(std::string message) { return Status(Code::kInvalidArgument, std::move(message)); }

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

uint32_t NextPow2(uint32_t x) {
  uint32_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

// Node ids are uint32 with kNoNeighbor reserved; the search also keeps a flag in bit 31.
constexpr int64_t kMaxGraphRows = 0x7ffffffe;
constexpr int kMaxKnnDegree = kMaxGpuTopK - 1;  // the kNN query asks for degree + 1 (self)

// ---- Device resources ----

struct DeviceLimits {
  int device = 0;
  int sms = 0;
  int smem_optin = 0;  // bytes of shared memory one block may opt in to (227 KB on sm_90)
};

Result<DeviceLimits> QueryLimits() {
  DeviceLimits l;
  VLAKE_CUDA_RETURN(cudaGetDevice(&l.device));
  VLAKE_CUDA_RETURN(cudaDeviceGetAttribute(&l.sms, cudaDevAttrMultiProcessorCount, l.device));
  VLAKE_CUDA_RETURN(
      cudaDeviceGetAttribute(&l.smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, l.device));
  return l;
}

// Free device memory minus a reserve for the CUDA context, cuBLAS and fragmentation.
Result<size_t> DeviceBudgetBytes() {
  size_t free_bytes = 0, total_bytes = 0;
  VLAKE_CUDA_RETURN(cudaMemGetInfo(&free_bytes, &total_bytes));
  const size_t reserve = std::max<size_t>(size_t{256} << 20, total_bytes / 50);
  return free_bytes > reserve ? free_bytes - reserve : 0;
}

// Waits for the stream when the scope ends. Declared after the buffers a stream's work uses,
// it keeps them alive until that work is done on every path, error paths included.
class SyncOnExit {
 public:
  explicit SyncOnExit(const Stream& stream) : stream_(stream) {}
  ~SyncOnExit() {
    if (stream_.get() != nullptr) cudaStreamSynchronize(stream_.get());
  }
  SyncOnExit(const SyncOnExit&) = delete;
  SyncOnExit& operator=(const SyncOnExit&) = delete;

 private:
  const Stream& stream_;
};

// `count` T that kernels can address: device memory when it fits the budget, else pinned host
// memory mapped into the device address space (zero-copy; every access crosses the bus).
template <typename T>
class AccessibleArray {
 public:
  Status Allocate(size_t count, size_t* budget_bytes) {
    const size_t bytes = count * sizeof(T);
    if (bytes <= *budget_bytes) {
      Status s = device_.Allocate(count);
      if (s.ok()) {
        *budget_bytes -= bytes;
        ptr_ = device_.get();
        return Status::Ok();
      }
      cudaGetLastError();  // out of memory after all: fall back to host memory
    }
    VLAKE_RETURN_IF_ERROR(host_.Allocate(count));
    void* mapped = nullptr;
    VLAKE_CUDA_RETURN(cudaHostGetDevicePointer(&mapped, host_.get(), 0));
    ptr_ = static_cast<T*>(mapped);
    return Status::Ok();
  }
  T* get() const { return ptr_; }
  bool on_device() const { return device_.get() != nullptr; }
  void Reset() {
    device_.Reset();
    host_.Reset();
    ptr_ = nullptr;
  }

 private:
  DeviceArray<T> device_;
  PinnedArray<T> host_;
  T* ptr_ = nullptr;
};

// Pageable host memory pinned and mapped in place (cudaHostRegister) for the life of the
// object: how a host array too large for the GPU becomes kernel-readable without a copy.
class HostRegistration {
 public:
  HostRegistration() = default;
  ~HostRegistration() {
    if (host_ != nullptr) cudaHostUnregister(host_);
  }
  HostRegistration(const HostRegistration&) = delete;
  HostRegistration& operator=(const HostRegistration&) = delete;

  Status Register(const void* host, size_t bytes, const void** device) {
    void* p = const_cast<void*>(host);
    VLAKE_CUDA_RETURN(
        cudaHostRegister(p, bytes, cudaHostRegisterMapped | cudaHostRegisterPortable));
    host_ = p;
    void* mapped = nullptr;
    VLAKE_CUDA_RETURN(cudaHostGetDevicePointer(&mapped, p, 0));
    *device = mapped;
    return Status::Ok();
  }

 private:
  void* host_ = nullptr;
};

// Makes `device` current for the scope and restores the caller's device after.
class DeviceScope {
 public:
  DeviceScope() = default;
  ~DeviceScope() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;
  Status Enter(int device) {
    int current = 0;
    VLAKE_CUDA_RETURN(cudaGetDevice(&current));
    if (current != device) {
      VLAKE_CUDA_RETURN(cudaSetDevice(device));
      previous_ = current;
    }
    return Status::Ok();
  }

 private:
  int previous_ = -1;
};

// ---- Optimize (a): rank-based detour pruning, one block per node ----

constexpr int kPruneThreads = 256;

struct SharedOr {
  uint32_t* bits;
  __device__ void operator()(int word, uint32_t mask) const { atomicOr(&bits[word], mask); }
};

// Shared memory of PruneKernel, in 4-byte words: list[K], table keys[H], table positions[H],
// detour bits[K * words], sort keys[K].
size_t PruneSharedBytes(int knn_degree, uint32_t table_size) {
  const size_t k = static_cast<size_t>(knn_degree);
  return 4 *
         (k + 2 * size_t{table_size} + k * static_cast<size_t>(rules::WordsPerRow(knn_degree)) + k);
}

__global__ void __launch_bounds__(kPruneThreads)
    PruneKernel(const uint32_t* __restrict__ knn, uint64_t rows, int knn_degree, int degree,
                uint32_t table_mask, uint32_t* __restrict__ pruned) {
  extern __shared__ uint32_t prune_smem[];
  const int k = knn_degree;
  const int table_size = static_cast<int>(table_mask) + 1;
  const int words = rules::WordsPerRow(k);
  uint32_t* list = prune_smem;
  uint32_t* table_keys = list + k;
  uint32_t* table_pos = table_keys + table_size;
  uint32_t* bits = table_pos + table_size;
  int* keys = reinterpret_cast<int*>(bits + k * words);
  const int tid = static_cast<int>(threadIdx.x);
  const int nthreads = static_cast<int>(blockDim.x);
  // Only ranks r, s <= K-2 can precede some j (j > max(r, s)).
  const int span = k - 1;
  const int pairs = span * span;

  for (uint64_t node = blockIdx.x; node < rows; node += gridDim.x) {
    const uint32_t* row = knn + node * static_cast<uint64_t>(k);
    for (int t = tid; t < k; t += nthreads) list[t] = row[t];
    for (int t = tid; t < table_size; t += nthreads) table_keys[t] = rules::kNoNode;
    for (int t = tid; t < k * words; t += nthreads) bits[t] = 0;
    __syncthreads();
    for (int j = tid; j < k; j += nthreads) {
      const uint32_t v = list[j];
      if (!rules::IsNode(v, rows)) continue;
      uint32_t slot = rules::TableStart(v, table_mask);
      while (atomicCAS(&table_keys[slot], rules::kNoNode, v) != rules::kNoNode) {
        slot = (slot + 1) & table_mask;
      }
      table_pos[slot] = static_cast<uint32_t>(j);
    }
    __syncthreads();
    for (int t = tid; t < pairs; t += nthreads) {
      rules::MarkDetourPair(knn, rows, k, list, table_keys, table_pos, table_mask, t / span,
                            t % span, SharedOr{bits});
    }
    __syncthreads();
    for (int j = tid; j < k; j += nthreads) {
      keys[j] = rules::PruneKey(list[j], rows, k, rules::DetourCountFromBits(bits, k, j));
    }
    __syncthreads();
    for (int j = tid; j < k; j += nthreads) {
      const int rank = rules::PruneRank(keys, k, j);
      if (rank < degree) {
        const uint32_t v = list[j];
        pruned[node * static_cast<uint64_t>(degree) + static_cast<uint64_t>(rank)] =
            rules::IsNode(v, rows) ? v : rules::kNoNode;
      }
    }
    __syncthreads();  // the next node overwrites the shared arrays
  }
}

// ---- Optimize (b): reverse edges, one stable sort per pruned position ----

__device__ inline uint64_t GlobalThread() {
  return static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline uint64_t GlobalStride() { return static_cast<uint64_t>(gridDim.x) * blockDim.x; }

// keys[i] = pruned(i)[p] (rows for no node, sorting after every node), values[i] = i.
__global__ void GatherColumnKernel(const uint32_t* __restrict__ pruned, uint64_t rows, int degree,
                                   int p, uint32_t* __restrict__ keys,
                                   uint32_t* __restrict__ values) {
  for (uint64_t i = GlobalThread(); i < rows; i += GlobalStride()) {
    const uint32_t v = pruned[i * static_cast<uint64_t>(degree) + static_cast<uint64_t>(p)];
    keys[i] = rules::IsNode(v, rows) ? v : static_cast<uint32_t>(rows);
    values[i] = static_cast<uint32_t>(i);
  }
}

// First index in [lo, hi) whose key is >= v (LowerBound) or > v (UpperBound).
__device__ inline uint64_t LowerBound(const uint32_t* keys, uint64_t lo, uint64_t hi, uint32_t v) {
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (keys[mid] < v) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}
__device__ inline uint64_t UpperBound(const uint32_t* keys, uint64_t lo, uint64_t hi, uint32_t v) {
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    if (keys[mid] <= v) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// After the stable sort by v, the i with pruned(i)[p] == v form one run in ascending i; the
// t-th of them goes to rev(v)[count(v) + t] while that is < degree — exactly the serial
// "append in ascending i while rev(v) has room".
__global__ void PlaceReverseKernel(const uint32_t* __restrict__ keys,
                                   const uint32_t* __restrict__ values, uint64_t rows, int degree,
                                   const uint32_t* __restrict__ counts,
                                   uint32_t* __restrict__ rev) {
  for (uint64_t t = GlobalThread(); t < rows; t += GlobalStride()) {
    const uint32_t v = keys[t];
    if (v >= rows) continue;
    const uint64_t start = LowerBound(keys, 0, t, v);
    const uint64_t pos = counts[v] + (t - start);
    if (pos < static_cast<uint64_t>(degree)) {
      rev[static_cast<uint64_t>(v) * static_cast<uint64_t>(degree) + pos] = values[t];
    }
  }
}

// The first thread of each run updates count(v) (a separate kernel: PlaceReverseKernel reads
// the counts of the previous positions).
__global__ void UpdateCountsKernel(const uint32_t* __restrict__ keys, uint64_t rows, int degree,
                                   uint32_t* __restrict__ counts) {
  for (uint64_t t = GlobalThread(); t < rows; t += GlobalStride()) {
    const uint32_t v = keys[t];
    if (v >= rows) continue;
    if (t > 0 && keys[t - 1] == v) continue;
    const uint64_t run = UpperBound(keys, t, rows, v) - t;
    const uint64_t total = counts[v] + run;
    counts[v] = static_cast<uint32_t>(total < static_cast<uint64_t>(degree) ? total : degree);
  }
}

// ---- Optimize (c): merge, one thread per node, output in node batches ----

__global__ void MergeKernel(const uint32_t* __restrict__ pruned, const uint32_t* __restrict__ rev,
                            const uint32_t* __restrict__ counts, uint64_t rows, int degree,
                            uint64_t begin, uint64_t end, uint32_t* __restrict__ out) {
  const uint64_t d = static_cast<uint64_t>(degree);
  for (uint64_t i = begin + GlobalThread(); i < end; i += GlobalStride()) {
    rules::MergeNode(pruned + i * d, rev + i * d, static_cast<int>(counts[i]), degree, rows,
                     out + (i - begin) * d);
  }
}

// Lets `kernel` use all the shared memory a block may opt in to; returns the dynamic bytes
// allowed (the opt-in maximum less the kernel's static shared memory). The same value for
// every caller, so concurrent callers never shrink it under each other's launches.
template <typename Kernel>
Result<int> AllowMaxDynamicShared(Kernel* kernel, const DeviceLimits& limits) {
  cudaFuncAttributes attributes{};
  VLAKE_CUDA_RETURN(cudaFuncGetAttributes(&attributes, kernel));
  const int allowed = limits.smem_optin - static_cast<int>(attributes.sharedSizeBytes);
  VLAKE_CUDA_RETURN(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, allowed));
  return allowed;
}

int GridFor(uint64_t items, int threads, const DeviceLimits& limits) {
  const uint64_t blocks = (items + static_cast<uint64_t>(threads) - 1) / threads;
  const uint64_t cap = static_cast<uint64_t>(std::max(1, limits.sms)) * 32;
  return static_cast<int>(std::max<uint64_t>(1, std::min(blocks, cap)));
}

// ---- Entry point: the row closest to the mean ----

constexpr int kSumChunkRows = 1024;
constexpr int kSumThreads = 256;
constexpr int kScoreBlocks = 1024;
constexpr int kScoreThreads = 256;

// COSINE ranks the rows scaled to unit length exactly as vector::NormalizedCopy scales them
// (the float factor 1/sqrt(sum of squares in double), one float multiply per value; zero rows
// stay as they are), so the entry point is vector::ReferenceEntryPoint's.
__global__ void RowUnitScalesKernel(const float* __restrict__ x, int64_t n, int dim,
                                    float* __restrict__ scale) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t warps_total = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = static_cast<int64_t>(GlobalThread() / 32); r < n; r += warps_total) {
    double s = 0;
    for (int c = lane; c < dim; c += 32) {
      const double v = static_cast<double>(x[r * dim + c]);
      s += v * v;
    }
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) scale[r] = s > 0 ? static_cast<float>(1.0 / sqrt(s)) : 1.0f;
  }
}

// Value c of row r as the entry point ranks it: x[r][c], or scaled to unit length (COSINE).
__device__ inline double EntryValue(const float* x, const float* scale, int64_t r, int dim, int c) {
  const float v = x[r * dim + c];
  return static_cast<double>(scale != nullptr ? v * scale[r] : v);
}

// partial[b][c] = sum of column c over rows [b * kSumChunkRows, ...) of x (n rows), in row order.
__global__ void ColumnPartialSumsKernel(const float* __restrict__ x,
                                        const float* __restrict__ scale, int64_t n, int dim,
                                        double* __restrict__ partial) {
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kSumChunkRows;
  const int64_t r1 = r0 + kSumChunkRows < n ? r0 + kSumChunkRows : n;
  for (int c = static_cast<int>(threadIdx.x); c < dim; c += static_cast<int>(blockDim.x)) {
    double s = 0;
    for (int64_t r = r0; r < r1; ++r) s += EntryValue(x, scale, r, dim, c);
    partial[static_cast<int64_t>(blockIdx.x) * dim + c] = s;
  }
}

__global__ void AddPartialsKernel(const double* __restrict__ partial, int64_t chunks, int dim,
                                  double* __restrict__ sum) {
  for (uint64_t c = GlobalThread(); c < static_cast<uint64_t>(dim); c += GlobalStride()) {
    double s = sum[c];
    for (int64_t b = 0; b < chunks; ++b) s += partial[b * dim + static_cast<int64_t>(c)];
    sum[c] = s;
  }
}

__device__ inline bool ScoreBefore(double a, int64_t ra, double b, int64_t rb) {
  return a < b || (a == b && ra < rb);
}

// Per block, the best (score, row) of its rows: score = squared L2 distance to `center`
// (L2) or minus the inner product with it (IP/COSINE); a warp per row, in double.
__global__ void __launch_bounds__(kScoreThreads)
    EntryScoreKernel(const float* __restrict__ x, const float* __restrict__ scale, int64_t n,
                     int dim, int64_t row_offset, const double* __restrict__ center,
                     int inner_product, double* __restrict__ block_score,
                     int64_t* __restrict__ block_row) {
  __shared__ double warp_score[kScoreThreads / 32];
  __shared__ int64_t warp_row[kScoreThreads / 32];
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int64_t warps_total = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  double best = INFINITY;
  int64_t best_row = INT64_MAX;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + warp; r < n;
       r += warps_total) {
    double acc = 0;
    for (int c = lane; c < dim; c += 32) {
      const double v = EntryValue(x, scale, r, dim, c);
      if (inner_product) {
        acc -= v * center[c];
      } else {
        const double diff = v - center[c];
        acc += diff * diff;
      }
    }
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (isnan(acc)) acc = INFINITY;
    if (ScoreBefore(acc, row_offset + r, best, best_row)) {
      best = acc;
      best_row = row_offset + r;
    }
  }
  if (lane == 0) {
    warp_score[warp] = best;
    warp_row[warp] = best_row;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) {
      if (ScoreBefore(warp_score[w], warp_row[w], best, best_row)) {
        best = warp_score[w];
        best_row = warp_row[w];
      }
    }
    block_score[blockIdx.x] = best;
    block_row[blockIdx.x] = best_row;
  }
}

// Rows of `data` per pass: all of device data (bounded by the partial sums), or a staging
// buffer of at most 256 MiB for host data.
int64_t EntryBatchRows(const MatrixView& data) {
  const int64_t by_partials =
      std::max<int64_t>(1, (int64_t{64} << 20) / (8 * data.dim)) * kSumChunkRows;
  int64_t batch = std::min(data.rows, by_partials);
  if (data.memory == Memory::kHost) {
    batch = std::min(batch, std::max<int64_t>(1, (int64_t{256} << 20) / (4 * data.dim)));
  }
  return std::max<int64_t>(1, batch);
}

Result<uint32_t> EntryPointOnStream(vector::Metric metric, const MatrixView& data,
                                    const Stream& stream) {
  const int64_t rows = data.rows;
  const int dim = data.dim;
  const int64_t batch = EntryBatchRows(data);
  const int64_t max_chunks = CeilDiv(batch, kSumChunkRows);
  DeviceArray<float> staging, unit_scale;
  DeviceArray<double> partial, sum, center, block_score;
  DeviceArray<int64_t> block_row;
  SyncOnExit sync(stream);
  if (data.memory == Memory::kHost) {
    VLAKE_RETURN_IF_ERROR(staging.Allocate(static_cast<size_t>(batch) * dim));
  }
  const bool cosine = metric == vector::Metric::kCosine;
  if (cosine) VLAKE_RETURN_IF_ERROR(unit_scale.Allocate(static_cast<size_t>(batch)));
  VLAKE_RETURN_IF_ERROR(partial.Allocate(static_cast<size_t>(max_chunks) * dim));
  VLAKE_RETURN_IF_ERROR(sum.Allocate(dim));
  VLAKE_RETURN_IF_ERROR(center.Allocate(dim));
  VLAKE_RETURN_IF_ERROR(block_score.Allocate(kScoreBlocks));
  VLAKE_RETURN_IF_ERROR(block_row.Allocate(kScoreBlocks));
  VLAKE_CUDA_RETURN(cudaMemsetAsync(sum.get(), 0, sum.bytes(), stream.get()));

  // The rows [start, start + n) of data on the device, and their unit scales (COSINE).
  auto batch_on_device = [&](int64_t start, int64_t n, const float** out) -> Status {
    const float* src = data.data + start * dim;
    if (data.memory == Memory::kDevice) {
      *out = src;
    } else {
      VLAKE_CUDA_RETURN(cudaMemcpyAsync(staging.get(), src,
                                        static_cast<size_t>(n) * dim * sizeof(float),
                                        cudaMemcpyHostToDevice, stream.get()));
      *out = staging.get();
    }
    if (cosine) {
      const int blocks = static_cast<int>(std::min<int64_t>(CeilDiv(n, 8), 4096));
      RowUnitScalesKernel<<<blocks, 256, 0, stream.get()>>>(*out, n, dim, unit_scale.get());
      VLAKE_CUDA_RETURN(cudaGetLastError());
    }
    return Status::Ok();
  };

  // Pass 1: the column sums, in a fixed order.
  for (int64_t start = 0; start < rows; start += batch) {
    const int64_t n = std::min(batch, rows - start);
    const float* x = nullptr;
    VLAKE_RETURN_IF_ERROR(batch_on_device(start, n, &x));
    const int64_t chunks = CeilDiv(n, kSumChunkRows);
    ColumnPartialSumsKernel<<<static_cast<unsigned>(chunks), kSumThreads, 0, stream.get()>>>(
        x, unit_scale.get(), n, dim, partial.get());
    VLAKE_CUDA_RETURN(cudaGetLastError());
    AddPartialsKernel<<<static_cast<unsigned>(CeilDiv(dim, kSumThreads)), kSumThreads, 0,
                        stream.get()>>>(partial.get(), chunks, dim, sum.get());
    VLAKE_CUDA_RETURN(cudaGetLastError());
  }
  std::vector<double> mean(dim);
  VLAKE_CUDA_RETURN(
      cudaMemcpyAsync(mean.data(), sum.get(), sum.bytes(), cudaMemcpyDeviceToHost, stream.get()));
  VLAKE_RETURN_IF_ERROR(stream.Sync());
  double norm2 = 0;
  for (double& m : mean) {
    m /= static_cast<double>(rows);
    norm2 += m * m;
  }
  const bool inner_product = vector::LargerIsCloser(metric);
  if (inner_product && norm2 > 0) {
    const double norm = std::sqrt(norm2);
    for (double& m : mean) m /= norm;
  }
  VLAKE_CUDA_RETURN(cudaMemcpyAsync(center.get(), mean.data(), center.bytes(),
                                    cudaMemcpyHostToDevice, stream.get()));

  // Pass 2: the best-scoring row; ties go to the smallest row (a total order, so the
  // reduction's order does not matter).
  double best = std::numeric_limits<double>::infinity();
  int64_t best_row = std::numeric_limits<int64_t>::max();
  std::vector<double> scores(kScoreBlocks);
  std::vector<int64_t> score_rows(kScoreBlocks);
  for (int64_t start = 0; start < rows; start += batch) {
    const int64_t n = std::min(batch, rows - start);
    const float* x = nullptr;
    VLAKE_RETURN_IF_ERROR(batch_on_device(start, n, &x));
    EntryScoreKernel<<<kScoreBlocks, kScoreThreads, 0, stream.get()>>>(
        x, unit_scale.get(), n, dim, start, center.get(), inner_product ? 1 : 0, block_score.get(),
        block_row.get());
    VLAKE_CUDA_RETURN(cudaGetLastError());
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(scores.data(), block_score.get(), block_score.bytes(),
                                      cudaMemcpyDeviceToHost, stream.get()));
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(score_rows.data(), block_row.get(),
                                      kScoreBlocks * sizeof(int64_t), cudaMemcpyDeviceToHost,
                                      stream.get()));
    VLAKE_RETURN_IF_ERROR(stream.Sync());
    for (int b = 0; b < kScoreBlocks; ++b) {
      if (scores[b] < best || (scores[b] == best && score_rows[b] < best_row)) {
        best = scores[b];
        best_row = score_rows[b];
      }
    }
  }
  if (best_row < 0 || best_row >= rows) best_row = 0;  // every score NaN/inf
  return static_cast<uint32_t>(best_row);
}

Status ValidateMatrix(const MatrixView& m, const char* what) {
  if (m.rows < 0 || m.dim < 1 || m.dim > vector::kMaxDim) {
    return Invalid(std::string(what) + ": bad shape " + std::to_string(m.rows) + " x " +
                   std::to_string(m.dim));
  }
  if (m.rows > 0 && m.data == nullptr) return Invalid(std::string(what) + ": null data");
  return Status::Ok();
}

// ---- kNN graph ----

// The kNN list of row q from its k' = knn_degree + 1 (or fewer) results, best first: q itself
// dropped wherever it ranks (when it is missing — an approximate search, or duplicates of q
// tying with it — the last result falls off instead), empty/invalid labels dropped, the rest
// padded with kNoNeighbor.
void AppendKnnRows(const int64_t* labels, int64_t n, int kq, int64_t first_row, int64_t rows,
                   int knn_degree, uint32_t* knn) {
  for (int64_t b = 0; b < n; ++b) {
    const int64_t q = first_row + b;
    const int64_t* l = labels + b * kq;
    uint32_t* out = knn + q * knn_degree;
    int count = 0;
    for (int t = 0; t < kq && count < knn_degree; ++t) {
      const int64_t label = l[t];
      if (label < 0 || label >= rows || label == q) continue;
      out[count++] = static_cast<uint32_t>(label);
    }
    for (; count < knn_degree; ++count) out[count] = vector::kNoNeighbor;
  }
}

int LargestDivisorAtMost(int n, int limit) {
  for (int m = std::max(1, std::min(n, limit)); m > 1; --m) {
    if (n % m == 0) return m;
  }
  return 1;
}

// Query batch for the kNN searches: bounds the host result arrays (~768 MiB).
int64_t KnnBatchRows(int64_t rows, int kq) {
  return std::max<int64_t>(1, std::min<int64_t>(rows, (int64_t{1} << 26) / kq));
}

// Runs `search` (kq neighbours per query, self included) over every row of `data` as queries,
// in batches, and appends the results to the kNN graph `knn` (rows x knn_degree).
template <typename Search>
Status BatchedKnn(const MatrixView& data, int kq, int knn_degree, std::vector<uint32_t>* knn,
                  Search&& search) {
  const int64_t batch = KnnBatchRows(data.rows, kq);
  std::vector<int64_t> labels(static_cast<size_t>(batch) * kq);
  std::vector<float> distances(static_cast<size_t>(batch) * kq);
  for (int64_t start = 0; start < data.rows; start += batch) {
    const int64_t n = std::min(batch, data.rows - start);
    MatrixView queries{data.data + start * data.dim, n, data.dim, data.memory};
    VLAKE_RETURN_IF_ERROR(search(queries, labels.data(), distances.data()));
    AppendKnnRows(labels.data(), n, kq, start, data.rows, knn_degree, knn->data());
  }
  return Status::Ok();
}

Status ExactKnn(const CagraBuildParams& params, vector::Metric metric, const MatrixView& data,
                int knn_degree, std::vector<uint32_t>* knn) {
  const int kq = static_cast<int>(std::min<int64_t>(knn_degree + 1, data.rows));
  return BatchedKnn(
      data, kq, knn_degree, knn, [&](const MatrixView& queries, int64_t* labels, float* distances) {
        return BruteForceKnn(metric, data, queries, kq, params.math, labels, distances);
      });
}

Status IvfPqKnn(const CagraBuildParams& params, vector::Metric metric, const MatrixView& data,
                int knn_degree, std::vector<uint32_t>* knn, BuildStats* stats) {
  IvfBuildParams ivf = params.ivf_pq;
  if (ivf.nlist <= 0) {
    const auto root = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(data.rows))));
    ivf.nlist = static_cast<int>(std::clamp<int64_t>(root, 1, data.rows));
  }
  if (ivf.pq_m <= 0) ivf.pq_m = LargestDivisorAtMost(data.dim, std::max(1, data.dim / 2));
  std::unique_ptr<DeviceIndex> index;
  {
    BuildStats ivf_stats;
    VLAKE_ASSIGN_OR_RETURN(vector::IvfParts parts, BuildIvf(ivf, metric, data, &ivf_stats));
    stats->train_seconds += ivf_stats.train_seconds;
    stats->add_seconds += ivf_stats.add_seconds;
    stats->h2d_seconds += ivf_stats.h2d_seconds;
    stats->kmeans = ivf_stats.kmeans;
    VLAKE_ASSIGN_OR_RETURN(index, UploadIvf(parts, data));
  }  // the host lists are freed here; the GPU copy searches
  const int kq = static_cast<int>(std::min<int64_t>(knn_degree + 1, data.rows));
  GpuSearchParams search;
  search.k = kq;
  search.nprobe = std::max(1, std::min(params.knn_nprobe, ivf.nlist));
  // refine_ratio x k candidates must stay within the GPU top-k limit.
  search.refine_ratio = std::max(1, std::min(params.knn_refine_ratio, kMaxGpuTopK / kq));
  VLAKE_RETURN_IF_ERROR(BatchedKnn(
      data, kq, knn_degree, knn, [&](const MatrixView& queries, int64_t* labels, float* distances) {
        return index->Search(queries, search, labels, distances);
      }));
  return Status::Ok();
}

// ---- Search: single-CTA beam search, one block per query ----

constexpr int kSearchThreads = 256;
constexpr int kSearchWarps = kSearchThreads / 32;
constexpr int kMinItopk = 32;
constexpr int kMaxItopk = 1024;
constexpr int kMaxCandidates = 4096;        // search_width x degree, rounded up to a power of two
constexpr int kPreferredHashSlots = 8192;   // 32 KiB: six 256-thread blocks per SM still fit
constexpr uint32_t kVisited = 0x80000000u;  // itopk id flag: expanded as a parent
constexpr uint32_t kNodeMask = 0x7fffffffu;
constexpr uint32_t kEmptyNode = 0x7fffffffu;  // > every node (rows <= kMaxGraphRows)
constexpr uint32_t kEmptySlot = 0xffffffffu;  // hash table

struct SearchArgs {
  const float* vectors;
  const uint32_t* graph;
  uint32_t rows;
  int dim;
  int degree;
  const float* queries;  // nq x dim, device
  int nq;
  int k;
  int itopk;           // L: power of two in [32, 1024]
  int width;           // parents per iteration
  int candidates;      // C: power of two >= width * degree
  uint32_t hash_mask;  // H - 1, H >= 2 * (L + C)
  int max_iterations;
  int init_rounds;
  int team;  // lanes per distance: power of two <= 32
  int query_in_smem;
  int cosine;
  uint32_t entry;   // first initial candidate (kEmptyNode: none)
  int64_t* labels;  // nq x k, device
  float* distances;
};

// 4-byte words of shared memory: query (rounded to 4 for float4), itopk 2 x (dist, id) x L,
// candidates (dist, id) x C, hash table H, parents, scratch (per-warp hash and norm, the
// parent count).
constexpr int kSearchScratchWords = 2 * kSearchWarps + 1;
size_t SearchSharedBytes(int query_words, int itopk, int candidates, uint32_t hash_size,
                         int width) {
  return 4 * (static_cast<size_t>(query_words) + 4 * static_cast<size_t>(itopk) +
              2 * static_cast<size_t>(candidates) + hash_size + static_cast<size_t>(width) +
              kSearchScratchWords);
}

__device__ inline bool KeyLess(float da, uint32_t ia, float db, uint32_t ib) {
  return da < db || (da == db && (ia & kNodeMask) < (ib & kNodeMask));
}

// Elements of the sorted list (d, id)[0, n) before key: strictly less (CountLess) or <= key.
__device__ inline int CountLess(const float* d, const uint32_t* id, int n, float kd, uint32_t ki) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (KeyLess(d[mid], id[mid], kd, ki)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}
__device__ inline int CountLessEq(const float* d, const uint32_t* id, int n, float kd,
                                  uint32_t ki) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (!KeyLess(kd, ki, d[mid], id[mid])) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

// True when key was not in the table (and is now).
__device__ inline bool HashInsert(uint32_t* table, uint32_t mask, uint32_t key) {
  uint32_t slot = rules::TableStart(key, mask);
  while (true) {
    const uint32_t prev = atomicCAS(&table[slot], kEmptySlot, key);
    if (prev == kEmptySlot) return true;
    if (prev == key) return false;
    slot = (slot + 1) & mask;
  }
}

__device__ inline uint32_t RandomNode(uint64_t seed, uint64_t index, uint32_t rows) {
  uint64_t z = seed + (index + 1) * 0x9e3779b97f4a7c15ull;  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return static_cast<uint32_t>(z % rows);
}

// Ascending bitonic sort of n (a power of two) pairs by (dist, node).
__device__ void BitonicSort(float* d, uint32_t* id, int n) {
  for (int size = 2; size <= n; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int t = static_cast<int>(threadIdx.x); t < n / 2; t += static_cast<int>(blockDim.x)) {
        const int lo = 2 * t - (t & (stride - 1));
        const int hi = lo + stride;
        const bool ascending = (lo & size) == 0;
        const float dl = d[lo], dh = d[hi];
        const uint32_t il = id[lo], ih = id[hi];
        const bool swap = ascending ? KeyLess(dh, ih, dl, il) : KeyLess(dl, il, dh, ih);
        if (swap) {
          d[lo] = dh;
          d[hi] = dl;
          id[lo] = ih;
          id[hi] = il;
        }
      }
      __syncthreads();
    }
  }
}

// Distance keys (smaller = better: squared L2, or minus the inner product) of the C
// candidates; a team of `team` lanes per candidate, reduced with shuffles in a fixed order.
template <bool kVec4, bool kInnerProduct>
__device__ void CandidateDistances(const SearchArgs& a, const float* q, float q_scale,
                                   const uint32_t* cand_id, float* cand_dist) {
  const int team = a.team;
  const int lane = static_cast<int>(threadIdx.x) & (team - 1);
  const int team_id = static_cast<int>(threadIdx.x) / team;
  const int teams = static_cast<int>(blockDim.x) / team;
  for (int base = 0; base < a.candidates; base += teams) {  // uniform trip count
    const int c = base + team_id;
    const uint32_t node = c < a.candidates ? cand_id[c] : kEmptyNode;
    const bool valid = node < a.rows;
    float acc = 0.0f;
    if (valid) {
      const float* x = a.vectors + static_cast<uint64_t>(node) * static_cast<uint64_t>(a.dim);
      if constexpr (kVec4) {
        const float4* x4 = reinterpret_cast<const float4*>(x);
        const float4* q4 = reinterpret_cast<const float4*>(q);
        for (int d = lane; d < a.dim / 4; d += team) {
          const float4 xv = __ldg(x4 + d);
          const float4 qv = q4[d];
          if constexpr (kInnerProduct) {
            acc += qv.x * xv.x;
            acc += qv.y * xv.y;
            acc += qv.z * xv.z;
            acc += qv.w * xv.w;
          } else {
            const float dx = qv.x - xv.x, dy = qv.y - xv.y, dz = qv.z - xv.z, dw = qv.w - xv.w;
            acc += dx * dx;
            acc += dy * dy;
            acc += dz * dz;
            acc += dw * dw;
          }
        }
      } else {
        for (int d = lane; d < a.dim; d += team) {
          const float xv = __ldg(x + d);
          if constexpr (kInnerProduct) {
            acc += q[d] * xv;
          } else {
            const float diff = q[d] - xv;
            acc += diff * diff;
          }
        }
      }
    }
    for (int off = team / 2; off > 0; off >>= 1)
      acc += __shfl_xor_sync(0xffffffffu, acc, off, team);
    if (c < a.candidates && lane == 0) {
      float key = INFINITY;
      if (valid) key = kInnerProduct ? -(acc * q_scale) : acc;
      if (isnan(key)) key = INFINITY;
      cand_dist[c] = key;
    }
  }
  __syncthreads();
}

template <bool kVec4, bool kInnerProduct>
__global__ void __launch_bounds__(kSearchThreads) CagraSearchKernel(SearchArgs a) {
  extern __shared__ __align__(16) uint32_t search_smem[];
  const int q_index = static_cast<int>(blockIdx.x);
  if (q_index >= a.nq) return;
  const int tid = static_cast<int>(threadIdx.x);
  const int nthreads = static_cast<int>(blockDim.x);
  const int lane = tid % 32;
  const int warp = tid / 32;
  const int L = a.itopk;
  const int C = a.candidates;
  const int G = a.degree;
  const uint32_t H = a.hash_mask + 1;

  const int query_words = a.query_in_smem ? (a.dim + 3) / 4 * 4 : 0;
  float* q_smem = reinterpret_cast<float*>(search_smem);
  float* topk_dist = q_smem + query_words;                                // 2 x L
  uint32_t* topk_id = reinterpret_cast<uint32_t*>(topk_dist + 2 * L);     // 2 x L
  float* cand_dist = reinterpret_cast<float*>(topk_id + 2 * L);           // C
  uint32_t* cand_id = reinterpret_cast<uint32_t*>(cand_dist + C);         // C
  uint32_t* table = cand_id + C;                                          // H
  uint32_t* parents = table + H;                                          // width
  uint32_t* warp_hash = parents + a.width;                                // warps
  float* warp_norm = reinterpret_cast<float*>(warp_hash + kSearchWarps);  // warps
  int* num_parents = reinterpret_cast<int*>(warp_norm + kSearchWarps);    // 1

  // The query; its hash seeds the random start (so the start depends on the query, not on its
  // place in a batch) and its norm scales inner products for COSINE.
  const float* q_global = a.queries + static_cast<int64_t>(q_index) * a.dim;
  uint32_t hash = 0;
  float norm2 = 0.0f;
  for (int d = tid; d < a.dim; d += nthreads) {
    const float x = q_global[d];
    if (a.query_in_smem) q_smem[d] = x;
    hash ^= rules::TableStart(__float_as_uint(x) ^ (static_cast<uint32_t>(d) * 0x9e3779b9u),
                              0xffffffffu);
    norm2 += x * x;
  }
  for (int off = 16; off > 0; off >>= 1) {
    hash ^= __shfl_xor_sync(0xffffffffu, hash, off);
    norm2 += __shfl_xor_sync(0xffffffffu, norm2, off);
  }
  if (lane == 0) {
    warp_hash[warp] = hash;
    warp_norm[warp] = norm2;
  }
  for (int t = tid; t < 2 * L; t += nthreads) {
    topk_dist[t] = INFINITY;
    topk_id[t] = kEmptyNode;
  }
  for (uint32_t t = static_cast<uint32_t>(tid); t < H; t += static_cast<uint32_t>(nthreads)) {
    table[t] = kEmptySlot;
  }
  __syncthreads();
  hash = 0;
  norm2 = 0.0f;
  for (int w = 0; w < nthreads / 32; ++w) {  // same order in every thread
    hash ^= warp_hash[w];
    norm2 += warp_norm[w];
  }
  const uint64_t seed =
      (static_cast<uint64_t>(hash) << 32) | rules::TableStart(hash ^ 0x5bd1e995u, 0xffffffffu);
  const float q_scale = (a.cosine && norm2 > 0.0f) ? 1.0f / sqrtf(norm2) : 1.0f;
  const float* q = a.query_in_smem ? q_smem : q_global;

  int cur = 0;
  int table_used = 0;  // inserts since the last reset (an upper bound on the occupancy)
  // Keeps the load factor <= 1/2: clears the table and re-inserts the itopk nodes, so a node
  // in the list can never be added twice (a node dropped from the list cannot come back: the
  // list only improves).
  auto make_room = [&](int incoming) {
    if (table_used + incoming <= static_cast<int>(H / 2)) return;
    for (uint32_t t = static_cast<uint32_t>(tid); t < H; t += static_cast<uint32_t>(nthreads)) {
      table[t] = kEmptySlot;
    }
    __syncthreads();
    for (int t = tid; t < L; t += nthreads) {
      const uint32_t node = topk_id[cur * L + t] & kNodeMask;
      if (node != kEmptyNode) HashInsert(table, a.hash_mask, node);
    }
    __syncthreads();
    table_used = L;
  };
  // Sorts the candidates and merges them into the itopk list (double-buffered).
  auto merge_candidates = [&]() {
    CandidateDistances<kVec4, kInnerProduct>(a, q, q_scale, cand_id, cand_dist);
    BitonicSort(cand_dist, cand_id, C);
    const float* old_d = topk_dist + cur * L;
    const uint32_t* old_i = topk_id + cur * L;
    float* new_d = topk_dist + (cur ^ 1) * L;
    uint32_t* new_i = topk_id + (cur ^ 1) * L;
    for (int e = tid; e < L + C; e += nthreads) {
      float kd;
      uint32_t ki;
      int pos;
      if (e < L) {
        kd = old_d[e];
        ki = old_i[e];
        pos = e + CountLess(cand_dist, cand_id, C, kd, ki);
      } else {
        const int b = e - L;
        kd = cand_dist[b];
        ki = cand_id[b];
        pos = b + CountLessEq(old_d, old_i, L, kd, ki);
      }
      if (pos < L) {
        new_d[pos] = kd;
        new_i[pos] = ki;
      }
    }
    __syncthreads();
    cur ^= 1;
  };

  // Random start: init_rounds x C seeded random nodes, the entry point first.
  for (int round = 0; round < a.init_rounds; ++round) {
    make_room(C);
    for (int t = tid; t < C; t += nthreads) {
      uint32_t node = (round == 0 && t == 0 && a.entry < a.rows)
                          ? a.entry
                          : RandomNode(seed, static_cast<uint64_t>(round) * C + t, a.rows);
      cand_id[t] = HashInsert(table, a.hash_mask, node) ? node : kEmptyNode;
    }
    table_used += C;
    __syncthreads();
    merge_candidates();
  }

  for (int iter = 0; iter < a.max_iterations; ++iter) {
    // The best `width` unvisited entries become parents (warp 0, in list order).
    if (warp == 0) {
      uint32_t* ids = topk_id + cur * L;
      int found = 0;
      for (int base = 0; base < L && found < a.width; base += 32) {
        const int idx = base + lane;
        const uint32_t id = ids[idx];
        const bool open = (id & kVisited) == 0 && (id & kNodeMask) != kEmptyNode;
        const unsigned ballot = __ballot_sync(0xffffffffu, open);
        const int rank = found + __popc(ballot & ((1u << lane) - 1u));
        if (open && rank < a.width) {
          parents[rank] = id & kNodeMask;
          ids[idx] = id | kVisited;
        }
        found += __popc(ballot);
      }
      if (lane == 0) *num_parents = found < a.width ? found : a.width;
    }
    __syncthreads();
    const int np = *num_parents;
    if (np == 0) break;  // every node of the list has been expanded
    const int incoming = np * G;
    make_room(incoming);
    for (int t = tid; t < C; t += nthreads) {
      uint32_t node = kEmptyNode;
      if (t < incoming) {
        const uint32_t parent = parents[t / G];
        const uint32_t v = a.graph[static_cast<uint64_t>(parent) * static_cast<uint64_t>(G) +
                                   static_cast<uint64_t>(t % G)];
        if (v < a.rows && HashInsert(table, a.hash_mask, v)) node = v;
      }
      cand_id[t] = node;
    }
    table_used += incoming;
    __syncthreads();
    merge_candidates();
  }

  const float* best_d = topk_dist + cur * L;
  const uint32_t* best_i = topk_id + cur * L;
  for (int r = tid; r < a.k; r += nthreads) {
    const uint32_t node = best_i[r] & kNodeMask;
    const int64_t out = static_cast<int64_t>(q_index) * a.k + r;
    if (node < a.rows) {
      a.labels[out] = node;
      a.distances[out] = kInnerProduct ? -best_d[r] : best_d[r];
    } else {
      a.labels[out] = -1;
      a.distances[out] = kInnerProduct ? -FLT_MAX : FLT_MAX;  // as BruteForceKnn, FAISS
    }
  }
}

using SearchKernelFn = void (*)(SearchArgs);

SearchKernelFn PickSearchKernel(bool vec4, bool inner_product) {
  if (vec4) {
    return inner_product ? CagraSearchKernel<true, true> : CagraSearchKernel<true, false>;
  }
  return inner_product ? CagraSearchKernel<false, true> : CagraSearchKernel<false, false>;
}

class DeviceCagraIndex final : public DeviceIndex {
 public:
  DeviceCagraIndex(vector::Metric metric, int64_t rows, int dim, int degree, uint32_t entry,
                   int device, int smem_allowed, DeviceArray<float> vectors,
                   DeviceArray<uint32_t> graph)
      : metric_(metric),
        rows_(rows),
        dim_(dim),
        degree_(degree),
        entry_(entry),
        device_(device),
        smem_allowed_(smem_allowed),
        vectors_(std::move(vectors)),
        graph_(std::move(graph)) {}

  int64_t size() const override { return rows_; }
  int dim() const override { return dim_; }
  int64_t device_bytes() const override {
    return static_cast<int64_t>(vectors_.bytes() + graph_.bytes());
  }

  Status Search(const MatrixView& queries, const GpuSearchParams& params, int64_t* labels,
                float* distances) const override;

 private:
  vector::Metric metric_;
  int64_t rows_;
  int dim_;
  int degree_;
  uint32_t entry_;
  int device_;        // the GPU holding the arrays; Search runs there
  int smem_allowed_;  // dynamic shared memory bytes a search block may use
  DeviceArray<float> vectors_;
  DeviceArray<uint32_t> graph_;
};

Status DeviceCagraIndex::Search(const MatrixView& queries, const GpuSearchParams& params,
                                int64_t* labels, float* distances) const {
  VLAKE_RETURN_IF_ERROR(ValidateMatrix(queries, "CAGRA queries"));
  if (queries.dim != dim_) {
    return Invalid("CAGRA queries have dim " + std::to_string(queries.dim) + ", index " +
                   std::to_string(dim_));
  }
  if (params.k < 1 || params.k > kMaxGpuTopK) {
    return Invalid("k must be in 1.." + std::to_string(kMaxGpuTopK));
  }
  if (params.search_width < 1) return Invalid("search_width must be >= 1");
  if (params.max_iterations < 0) return Invalid("max_iterations must be >= 0");
  if (params.itopk > kMaxItopk) return Invalid("itopk must be <= " + std::to_string(kMaxItopk));
  if (static_cast<int64_t>(params.search_width) * degree_ > kMaxCandidates) {
    return Invalid("search_width x graph degree must be <= " + std::to_string(kMaxCandidates));
  }
  const int64_t nq = queries.rows;
  if (nq == 0) return Status::Ok();
  if (labels == nullptr || distances == nullptr) return Invalid("null result arrays");
  const int k = params.k;
  if (rows_ == 0) {
    std::fill(labels, labels + nq * k, int64_t{-1});
    std::fill(distances, distances + nq * k, vector::LargerIsCloser(metric_) ? -FLT_MAX : FLT_MAX);
    return Status::Ok();
  }

  DeviceScope device_scope;
  VLAKE_RETURN_IF_ERROR(device_scope.Enter(device_));

  const int L =
      static_cast<int>(NextPow2(static_cast<uint32_t>(std::max({params.itopk, k, kMinItopk}))));
  if (L > kMaxItopk) return Invalid("itopk rounds up beyond " + std::to_string(kMaxItopk));
  const int W = params.search_width;
  const int C =
      static_cast<int>(std::max<uint32_t>(32, NextPow2(static_cast<uint32_t>(W * degree_))));
  const bool inner_product = vector::LargerIsCloser(metric_);
  // Auto iterations: enough for every itopk entry to be expanded once, plus slack for the list
  // to settle; the search usually stops earlier, when no unvisited parent is left.
  const int max_iterations =
      params.max_iterations > 0 ? params.max_iterations : static_cast<int>(CeilDiv(L, W)) + 32;

  const int init_rounds = static_cast<int>(std::max<int64_t>(1, CeilDiv(L, C)));

  // Shared memory. The table must keep >= 2(L + C) slots (load <= 1/2 right after a reset);
  // beyond that, room for every insert of the search (up to kPreferredHashSlots) avoids
  // resets, each of which makes the search recompute distances of nodes it had already seen
  // (3x the distance computations at itopk 64 in a host simulation). The query goes on chip
  // when it fits.
  const uint32_t min_hash = NextPow2(static_cast<uint32_t>(2 * (L + C)));
  const int64_t inserts = int64_t{init_rounds} * C + int64_t{max_iterations} * W * degree_;
  uint32_t hash_size = std::max(
      NextPow2(static_cast<uint32_t>(4 * (L + C))),
      NextPow2(static_cast<uint32_t>(std::min<int64_t>(2 * inserts, kPreferredHashSlots))));
  const size_t limit = static_cast<size_t>(smem_allowed_);
  const int query_words = (dim_ + 3) / 4 * 4;
  while (hash_size > min_hash && SearchSharedBytes(query_words, L, C, hash_size, W) > limit) {
    hash_size /= 2;
  }
  const bool query_in_smem = SearchSharedBytes(query_words, L, C, hash_size, W) <= limit;
  const size_t smem = SearchSharedBytes(query_in_smem ? query_words : 0, L, C, hash_size, W);
  if (smem > limit) {
    return Invalid("CAGRA search: itopk " + std::to_string(L) + " and " + std::to_string(C) +
                   " candidates need " + std::to_string(smem) + " bytes of shared memory");
  }

  // Query batches: bounded device result and staging arrays.
  int64_t batch = std::min<int64_t>(nq, 65535);
  batch = std::min<int64_t>(batch, std::max<int64_t>(1, (int64_t{1} << 24) / k));
  if (queries.memory == Memory::kHost) {
    batch = std::min<int64_t>(batch, std::max<int64_t>(1, (int64_t{1} << 26) / dim_));
  }

  Stream stream;
  VLAKE_RETURN_IF_ERROR(stream.Create());
  DeviceArray<float> staging, out_dist;
  DeviceArray<int64_t> out_labels;
  SyncOnExit sync(stream);
  if (queries.memory == Memory::kHost) {
    VLAKE_RETURN_IF_ERROR(staging.Allocate(static_cast<size_t>(batch) * dim_));
  }
  VLAKE_RETURN_IF_ERROR(out_labels.Allocate(static_cast<size_t>(batch) * k));
  VLAKE_RETURN_IF_ERROR(out_dist.Allocate(static_cast<size_t>(batch) * k));

  // float4 loads need dim % 4 == 0 and 16-byte aligned rows: ours are (cudaMalloc), the
  // query is when it sits in shared memory or in our staging buffer.
  const bool aligned_queries =
      queries.memory == Memory::kHost || reinterpret_cast<uintptr_t>(queries.data) % 16 == 0;
  const bool vec4 = dim_ % 4 == 0 && (query_in_smem || aligned_queries);
  const SearchKernelFn kernel = PickSearchKernel(vec4, inner_product);

  int team = static_cast<int>(NextPow2(static_cast<uint32_t>(vec4 ? dim_ / 4 : dim_)));
  team = std::clamp(team, 1, 32);

  SearchArgs args{};
  args.vectors = vectors_.get();
  args.graph = graph_.get();
  args.rows = static_cast<uint32_t>(rows_);
  args.dim = dim_;
  args.degree = degree_;
  args.k = k;
  args.itopk = L;
  args.width = W;
  args.candidates = C;
  args.hash_mask = hash_size - 1;
  args.max_iterations = max_iterations;
  args.init_rounds = init_rounds;
  args.team = team;
  args.query_in_smem = query_in_smem ? 1 : 0;
  args.cosine = metric_ == vector::Metric::kCosine ? 1 : 0;
  args.entry = entry_ < rows_ ? entry_ : kEmptyNode;
  args.labels = out_labels.get();
  args.distances = out_dist.get();

  for (int64_t start = 0; start < nq; start += batch) {
    const int64_t n = std::min(batch, nq - start);
    const float* src = queries.data + start * dim_;
    if (queries.memory == Memory::kHost) {
      VLAKE_CUDA_RETURN(cudaMemcpyAsync(staging.get(), src,
                                        static_cast<size_t>(n) * dim_ * sizeof(float),
                                        cudaMemcpyHostToDevice, stream.get()));
      args.queries = staging.get();
    } else {
      args.queries = src;
    }
    args.nq = static_cast<int>(n);
    kernel<<<static_cast<unsigned>(n), kSearchThreads, smem, stream.get()>>>(args);
    VLAKE_CUDA_RETURN(cudaGetLastError());
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(labels + start * k, out_labels.get(),
                                      static_cast<size_t>(n) * k * sizeof(int64_t),
                                      cudaMemcpyDeviceToHost, stream.get()));
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(distances + start * k, out_dist.get(),
                                      static_cast<size_t>(n) * k * sizeof(float),
                                      cudaMemcpyDeviceToHost, stream.get()));
    VLAKE_RETURN_IF_ERROR(stream.Sync());
  }
  return Status::Ok();
}

}  // namespace

// ---- Public entry points ----

Result<std::vector<uint32_t>> OptimizeCagraGraph(const uint32_t* knn_graph, int64_t rows,
                                                 int knn_degree, int degree, BuildStats* stats) {
  if (rows < 1 || rows > kMaxGraphRows) {
    return Invalid("CAGRA optimize: rows must be in 1.." + std::to_string(kMaxGraphRows));
  }
  if (knn_degree < 1 || knn_degree > kMaxKnnDegree + 1) {
    return Invalid("CAGRA optimize: kNN degree must be in 1.." + std::to_string(kMaxKnnDegree + 1));
  }
  if (degree < 1 || degree > knn_degree) {
    return Invalid("CAGRA optimize: degree must be in 1..kNN degree");
  }
  if (knn_graph == nullptr) return Invalid("CAGRA optimize: null kNN graph");
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  const auto t0 = Clock::now();
  VLAKE_ASSIGN_OR_RETURN(const DeviceLimits limits, QueryLimits());

  const uint64_t n = static_cast<uint64_t>(rows);
  const size_t knn_count = static_cast<size_t>(rows) * static_cast<size_t>(knn_degree);
  const size_t graph_count = static_cast<size_t>(rows) * static_cast<size_t>(degree);
  const uint32_t table_size = NextPow2(static_cast<uint32_t>(2 * knn_degree));
  const size_t prune_smem = PruneSharedBytes(knn_degree, table_size);
  VLAKE_ASSIGN_OR_RETURN(const int prune_smem_allowed, AllowMaxDynamicShared(PruneKernel, limits));
  if (prune_smem > static_cast<size_t>(prune_smem_allowed)) {
    return Invalid("CAGRA optimize: kNN degree " + std::to_string(knn_degree) + " needs " +
                   std::to_string(prune_smem) + " bytes of shared memory per block");
  }

  // Every buffer before the stream guard, so queued work never outlives them.
  DeviceArray<uint32_t> knn_device;
  HostRegistration knn_registration;
  AccessibleArray<uint32_t> pruned, rev;
  DeviceArray<uint32_t> counts, keys_in, keys_out, values_in, values_out, out_batch;
  DeviceArray<unsigned char> sort_temp;
  Stream stream;
  VLAKE_RETURN_IF_ERROR(stream.Create());
  SyncOnExit sync(stream);

  // (a) The kNN graph where kernels can read it: on the GPU, or mapped in place.
  VLAKE_ASSIGN_OR_RETURN(size_t budget, DeviceBudgetBytes());
  const uint32_t* knn = nullptr;
  if (knn_count * sizeof(uint32_t) <= budget && knn_device.Allocate(knn_count).ok()) {
    budget -= knn_count * sizeof(uint32_t);
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(knn_device.get(), knn_graph, knn_count * sizeof(uint32_t),
                                      cudaMemcpyHostToDevice, stream.get()));
    knn = knn_device.get();
  } else {
    cudaGetLastError();
    const void* mapped = nullptr;
    VLAKE_RETURN_IF_ERROR(
        knn_registration.Register(knn_graph, knn_count * sizeof(uint32_t), &mapped));
    knn = static_cast<const uint32_t*>(mapped);
  }
  VLAKE_RETURN_IF_ERROR(pruned.Allocate(graph_count, &budget));

  int blocks_per_sm = 0;
  VLAKE_CUDA_RETURN(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, PruneKernel,
                                                                  kPruneThreads, prune_smem));
  const uint64_t prune_grid = std::min<uint64_t>(
      n, static_cast<uint64_t>(std::max(1, limits.sms)) * std::max(1, blocks_per_sm) * 4);
  PruneKernel<<<static_cast<unsigned>(prune_grid), kPruneThreads, prune_smem, stream.get()>>>(
      knn, n, knn_degree, degree, table_size - 1, pruned.get());
  VLAKE_CUDA_RETURN(cudaGetLastError());
  VLAKE_RETURN_IF_ERROR(stream.Sync());
  if (knn_device.get() != nullptr) budget += knn_device.bytes();
  knn_device.Reset();  // the kNN graph is no longer needed
  knn = nullptr;

  // (b) Reverse edges: per position p, a stable sort of (pruned(i)[p], i) by node.
  VLAKE_RETURN_IF_ERROR(counts.Allocate(n));
  VLAKE_RETURN_IF_ERROR(keys_in.Allocate(n));
  VLAKE_RETURN_IF_ERROR(keys_out.Allocate(n));
  VLAKE_RETURN_IF_ERROR(values_in.Allocate(n));
  VLAKE_RETURN_IF_ERROR(values_out.Allocate(n));
  budget -= std::min(budget, 5 * n * sizeof(uint32_t));
  VLAKE_RETURN_IF_ERROR(rev.Allocate(graph_count, &budget));
  VLAKE_CUDA_RETURN(cudaMemsetAsync(counts.get(), 0, counts.bytes(), stream.get()));
  int end_bit = 1;  // keys are <= rows
  while (end_bit < 32 && (uint64_t{1} << end_bit) <= n) ++end_bit;
  size_t temp_bytes = 0;
  VLAKE_CUDA_RETURN(cub::DeviceRadixSort::SortPairs(
      nullptr, temp_bytes, keys_in.get(), keys_out.get(), values_in.get(), values_out.get(),
      static_cast<int64_t>(n), 0, end_bit, stream.get()));
  VLAKE_RETURN_IF_ERROR(sort_temp.Allocate(std::max<size_t>(temp_bytes, 1)));
  const int grid = GridFor(n, 256, limits);
  for (int p = 0; p < degree; ++p) {
    GatherColumnKernel<<<grid, 256, 0, stream.get()>>>(pruned.get(), n, degree, p, keys_in.get(),
                                                       values_in.get());
    VLAKE_CUDA_RETURN(cudaGetLastError());
    VLAKE_CUDA_RETURN(cub::DeviceRadixSort::SortPairs(
        sort_temp.get(), temp_bytes, keys_in.get(), keys_out.get(), values_in.get(),
        values_out.get(), static_cast<int64_t>(n), 0, end_bit, stream.get()));
    PlaceReverseKernel<<<grid, 256, 0, stream.get()>>>(keys_out.get(), values_out.get(), n, degree,
                                                       counts.get(), rev.get());
    VLAKE_CUDA_RETURN(cudaGetLastError());
    UpdateCountsKernel<<<grid, 256, 0, stream.get()>>>(keys_out.get(), n, degree, counts.get());
    VLAKE_CUDA_RETURN(cudaGetLastError());
  }
  keys_in.Reset();
  keys_out.Reset();
  values_in.Reset();
  values_out.Reset();
  sort_temp.Reset();

  // (c) Merge, in node batches copied out to the host graph.
  std::vector<uint32_t> graph(graph_count);
  const uint64_t batch = std::min<uint64_t>(n, uint64_t{1} << 18);
  VLAKE_RETURN_IF_ERROR(out_batch.Allocate(static_cast<size_t>(batch) * degree));
  for (uint64_t begin = 0; begin < n; begin += batch) {
    const uint64_t end = std::min(n, begin + batch);
    MergeKernel<<<GridFor(end - begin, 128, limits), 128, 0, stream.get()>>>(
        pruned.get(), rev.get(), counts.get(), n, degree, begin, end, out_batch.get());
    VLAKE_CUDA_RETURN(cudaGetLastError());
    VLAKE_CUDA_RETURN(
        cudaMemcpyAsync(graph.data() + begin * static_cast<uint64_t>(degree), out_batch.get(),
                        (end - begin) * static_cast<uint64_t>(degree) * sizeof(uint32_t),
                        cudaMemcpyDeviceToHost, stream.get()));
    VLAKE_RETURN_IF_ERROR(stream.Sync());
  }
  if (stats != nullptr) stats->optimize_seconds = SecondsSince(t0);
  return graph;
}

Result<vector::GraphParts> BuildCagra(const CagraBuildParams& params, vector::Metric metric,
                                      const MatrixView& data, BuildStats* stats) {
  VLAKE_RETURN_IF_ERROR(ValidateMatrix(data, "CAGRA data"));
  if (data.rows < 1 || data.rows > kMaxGraphRows) {
    return Invalid("CAGRA: rows must be in 1.." + std::to_string(kMaxGraphRows));
  }
  const int degree = params.graph_degree;
  const int knn_degree = params.intermediate_graph_degree;
  if (degree < 1) return Invalid("CAGRA: graph_degree must be >= 1");
  if (knn_degree < degree || knn_degree > kMaxKnnDegree) {
    return Invalid("CAGRA: intermediate_graph_degree must be in graph_degree.." +
                   std::to_string(kMaxKnnDegree));
  }
  if (params.knn_nprobe < 1 || params.knn_refine_ratio < 1) {
    return Invalid("CAGRA: knn_nprobe and knn_refine_ratio must be >= 1");
  }
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  BuildStats local;

  // The data on the GPU once, when it fits comfortably; else the callees stream it.
  MatrixView view = data;
  DeviceArray<float> data_device;
  if (data.memory == Memory::kHost) {
    VLAKE_ASSIGN_OR_RETURN(const size_t budget, DeviceBudgetBytes());
    const size_t bytes = static_cast<size_t>(data.rows) * data.dim * sizeof(float);
    if (bytes <= budget / 2 && data_device.Allocate(bytes / sizeof(float)).ok()) {
      const auto t0 = Clock::now();
      VLAKE_CUDA_RETURN(cudaMemcpy(data_device.get(), data.data, bytes, cudaMemcpyHostToDevice));
      local.h2d_seconds += SecondsSince(t0);
      view = MatrixView{data_device.get(), data.rows, data.dim, Memory::kDevice};
    } else {
      cudaGetLastError();
    }
  }

  // (1) The kNN graph, self excluded.
  const auto t_graph = Clock::now();
  std::vector<uint32_t> knn(static_cast<size_t>(data.rows) * knn_degree);
  const bool exact = params.knn == CagraKnnBuild::kExact ||
                     (params.knn == CagraKnnBuild::kAuto && data.rows < params.exact_below_rows);
  if (exact) {
    VLAKE_RETURN_IF_ERROR(ExactKnn(params, metric, view, knn_degree, &knn));
  } else {
    VLAKE_RETURN_IF_ERROR(IvfPqKnn(params, metric, view, knn_degree, &knn, &local));
  }
  local.graph_seconds = SecondsSince(t_graph);
  data_device.Reset();  // optimize needs the memory, not the vectors

  // (2) Prune + reverse edges + merge.
  VLAKE_ASSIGN_OR_RETURN(std::vector<uint32_t> graph,
                         OptimizeCagraGraph(knn.data(), data.rows, knn_degree, degree, &local));
  vector::GraphParts parts;
  parts.metric = metric;
  parts.dim = data.dim;
  parts.rows = data.rows;
  parts.degree = degree;
  parts.graph = std::move(graph);
  if (stats != nullptr) *stats = local;
  return parts;
}

Result<uint32_t> GraphEntryPoint(vector::Metric metric, const MatrixView& data) {
  VLAKE_RETURN_IF_ERROR(ValidateMatrix(data, "entry point data"));
  if (data.rows < 1) return Invalid("entry point: no rows");
  if (data.rows > kMaxGraphRows) return Invalid("entry point: too many rows");
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  Stream stream;
  VLAKE_RETURN_IF_ERROR(stream.Create());
  return EntryPointOnStream(metric, data, stream);
}

Result<std::unique_ptr<DeviceIndex>> UploadCagra(const vector::GraphParts& graph,
                                                 const MatrixView& vectors) {
  VLAKE_RETURN_IF_ERROR(ValidateMatrix(vectors, "CAGRA vectors"));
  if (graph.rows != vectors.rows || graph.dim != vectors.dim) {
    return Invalid("CAGRA upload: graph is " + std::to_string(graph.rows) + " x " +
                   std::to_string(graph.dim) + ", vectors " + std::to_string(vectors.rows) + " x " +
                   std::to_string(vectors.dim));
  }
  if (graph.rows > kMaxGraphRows) return Invalid("CAGRA upload: too many rows");
  if (graph.degree < 1 || graph.degree > kMaxCandidates) {
    return Invalid("CAGRA upload: degree must be in 1.." + std::to_string(kMaxCandidates));
  }
  if (graph.graph.size() != static_cast<size_t>(graph.rows) * static_cast<size_t>(graph.degree)) {
    return Invalid("CAGRA upload: graph array is not rows x degree");
  }
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  VLAKE_ASSIGN_OR_RETURN(const DeviceLimits limits, QueryLimits());

  DeviceArray<float> vectors_device;
  DeviceArray<uint32_t> graph_device;
  Stream stream;
  VLAKE_RETURN_IF_ERROR(stream.Create());
  SyncOnExit sync(stream);
  const size_t vector_count = static_cast<size_t>(vectors.rows) * vectors.dim;
  VLAKE_RETURN_IF_ERROR(vectors_device.Allocate(vector_count));
  VLAKE_RETURN_IF_ERROR(graph_device.Allocate(graph.graph.size()));
  if (vector_count > 0) {
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(
        vectors_device.get(), vectors.data, vector_count * sizeof(float),
        vectors.memory == Memory::kHost ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice,
        stream.get()));
  }
  if (!graph.graph.empty()) {
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(graph_device.get(), graph.graph.data(),
                                      graph.graph.size() * sizeof(uint32_t), cudaMemcpyHostToDevice,
                                      stream.get()));
  }
  uint32_t entry = kEmptyNode;
  if (vectors.rows > 0) {
    MatrixView on_device{vectors_device.get(), vectors.rows, vectors.dim, Memory::kDevice};
    VLAKE_ASSIGN_OR_RETURN(entry, EntryPointOnStream(graph.metric, on_device, stream));
  }
  VLAKE_RETURN_IF_ERROR(stream.Sync());
  // Every search kernel may use the opt-in maximum, set once before any Search launches one.
  int smem_allowed = limits.smem_optin;
  for (bool vec4 : {false, true}) {
    for (bool ip : {false, true}) {
      VLAKE_ASSIGN_OR_RETURN(const int allowed,
                             AllowMaxDynamicShared(PickSearchKernel(vec4, ip), limits));
      smem_allowed = std::min(smem_allowed, allowed);
    }
  }
  return std::unique_ptr<DeviceIndex>(std::make_unique<DeviceCagraIndex>(
      graph.metric, graph.rows, graph.dim, graph.degree, entry, limits.device, smem_allowed,
      std::move(vectors_device), std::move(graph_device)));
}

}  // namespace vlake::gpu
