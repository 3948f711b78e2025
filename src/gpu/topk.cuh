// Top-k selection on the GPU, private to src/gpu (.cu files only): the block-wide selector
// BlockTopK that any kernel can embed (IVF list scans, CAGRA), and two launchers built on it,
// SelectTopK (row-wise top-k of a matrix, e.g. a GEMM's distance tile) and MergeTopK (merge
// of partial top-k lists, e.g. per base batch or per probed list).
//
// Order. Everything ranks by the total order of kernel_math.h's PairLess on (key, position):
// smaller key first, ties to the smaller position (column of the row, or place in the
// concatenated partial lists). So results do not depend on thread timing, a row split into
// slices and merged equals the single selection, and merged lists break ties by list order:
// when partial lists are concatenated in ascending label order (base batches), ties go to the
// smaller label, as a stable CPU sort would. NaN values rank after every number.
//
// Empty slots (fewer than k valid entries) come out as label -1 with distance +FLT_MAX when
// selecting the smallest and -FLT_MAX when selecting the largest, as FAISS fills its heaps.
//
// Design (why): one thread block per row (or row slice). Each thread keeps the k-th best
// entry seen so far in a register as a threshold and appends only entries that beat it to a
// shared-memory candidate buffer; when the buffer could overflow in the next round, the block
// bitonic-sorts the candidates and merges them into the sorted shared top list (the "min of A[i]
// and B[K-1-i]" trick turns two sorted lists into one bitonic sequence holding the K smallest,
// which a bitonic merge sorts in log K steps). After the first K entries the threshold rejects
// all but ~K ln(n/K) of n random entries, so the cost is one coalesced read of the row plus a
// few sorts; shared memory is (K + C) x 8 bytes (24 KB at K = 1024), so several blocks share an
// SM. Rows too few to fill the GPU are split into slices whose partial lists are merged by a
// second launch. Radix select would read the row several times and a warp-queue select
// (FAISS's WarpSelect) needs registers proportional to k; this design handles k = 1..1024 with
// one code path.
//
// Thread-safety: launchers only enqueue on the given stream; they allocate their scratch
// stream-ordered (cudaMallocAsync), so they are safe from several host threads on different
// streams.
#pragma once

#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "gpu/kernel_math.h"
#include "vlake/status.h"

namespace vlake::gpu {

enum class SelectOrder : uint8_t {
  kSmallest,  // L2 distances
  kLargest,   // inner products / cosine similarities
};

// Capacity of the selectors; algorithms.h's kMaxGpuTopK.
inline constexpr int kTopKMax = 1024;

// ---- Launchers (host) ----

// Row-wise top-k of a device matrix. Entry (r, c) has value values[r * ld + c]; it is ranked by
// value + col_add[c] (col_add nullable), its label is label_offset + c when labels == nullptr,
// else labels[r * labels_ld + c] (labels_ld == 0: one label row shared by all rows), and an
// entry with a negative label is skipped (an empty slot of an earlier top-k).
struct TopKInput {
  const float* values = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;  // < 2^31
  int64_t ld = 0;    // >= cols
  const float* col_add = nullptr;
  const int64_t* labels = nullptr;
  int64_t labels_ld = 0;
  int64_t label_offset = 0;
};

// Row r's results go to distances/labels[r * ld + j], j < k, best first. The distance written
// is the ranked value (value + col_add) plus row_add[r] (nullable; it does not change the
// order, e.g. ||q||^2 of an L2 GEMM tile), clamped at 0 when clamp_at_zero (L2 from a GEMM).
// Outputs may alias the input values/labels (an in-place merge): each block reads its row
// completely before writing it.
struct TopKOutput {
  float* distances = nullptr;
  int64_t* labels = nullptr;
  int64_t ld = 0;  // >= k
  const float* row_add = nullptr;
  bool clamp_at_zero = false;
};

// 1 <= k <= kTopKMax. InvalidArgument for bad shapes; errors of the CUDA calls otherwise.
Status SelectTopK(const TopKInput& in, int k, SelectOrder order, const TopKOutput& out,
                  cudaStream_t stream);

// Merges `lists` partial top-k lists per row into one: row r's entries are
// distances/labels[r * ld + i], i < lists * in_k (the lists concatenated; ld >= lists * in_k),
// label -1 = empty. Equivalent to SelectTopK over those entries with per-entry labels; listed
// separately because it is the common case (batched base rows, probed lists, slices).
Status MergeTopK(const float* distances, const int64_t* labels, int64_t rows, int64_t lists,
                 int in_k, int64_t ld, int k, SelectOrder order, const TopKOutput& out,
                 cudaStream_t stream);

// Power-of-two capacity a selector needs for k (>= 32, the smallest instantiated).
inline int TopKCapacity(int k) {
  int cap = 32;
  while (cap < k) cap <<= 1;
  return cap;
}

#ifdef __CUDACC__

// ---- Device side ----

// The sentinel of empty slots inside selectors.
inline constexpr int32_t kTopKNoIndex = 0x7fffffff;

// Rank key of a value: smaller is better. NaN becomes +inf so it ranks after every number.
__device__ __forceinline__ float TopKKey(float value, SelectOrder order) {
  float key = order == SelectOrder::kLargest ? -value : value;
  return isnan(key) ? INFINITY : key;
}
// The value a key stands for (negation is exact, so keys round-trip).
__device__ __forceinline__ float TopKValue(float key, SelectOrder order) {
  return order == SelectOrder::kLargest ? -key : key;
}
// Distance of an empty slot (FAISS's heap neutral value).
__device__ __forceinline__ float TopKEmptyValue(SelectOrder order) {
  return order == SelectOrder::kLargest ? -FLT_MAX : FLT_MAX;
}

// Block-wide selection of the k smallest (key, index) pairs among those offered.
//
//   kCapacity  power of two >= k, 32..1024 (TopKCapacity(k))
//   kThreads   the block size (every thread of the block takes part)
//   kPerThread most Offer calls a thread may make between two Commit calls
//
// Usage, by every thread of the block:
//
//   __shared__ typename BlockTopK<K, T, E>::Storage storage;
//   BlockTopK<K, T, E> top(storage, k);              // collective
//   for (each round) {
//     for (e < E) if (have entry) top.Offer(key, index);   // key: smaller is better (TopKKey)
//     top.Commit();                                   // collective
//   }
//   top.Finish();                                     // collective
//   for (int j = threadIdx.x; j < k; j += T) use(top.key(j), top.index(j));  // index
//                                                     // kTopKNoIndex = empty slot
//
// index is any int32 below kTopKNoIndex that identifies the entry (usually its position); it
// breaks ties, so make it increase with the label when ties must go to the smaller label.
// Offer needs no synchronization; Commit costs two __syncthreads, plus a sort when the
// candidate buffer is nearly full. Storage is (kCapacity + kCandidates) * 8 bytes.
template <int kCapacity, int kThreads, int kPerThread>
class BlockTopK {
 public:
  static_assert(kCapacity >= 32 && kCapacity <= kTopKMax && (kCapacity & (kCapacity - 1)) == 0,
                "capacity must be a power of two in 32..1024");
  static constexpr int kPerRound = kThreads * kPerThread;
  static constexpr int RoundUpPow2(int v) {
    int p = 1;
    while (p < v) p <<= 1;
    return p;
  }
  // Room for at least one full round beyond the flush point, and at least kCapacity.
  static constexpr int kCandidates =
      RoundUpPow2(2 * kPerRound > kCapacity ? 2 * kPerRound : kCapacity);
  static constexpr int kFlushAbove = kCandidates - kPerRound;

  struct Storage {
    float top_key[kCapacity];
    int32_t top_index[kCapacity];
    float cand_key[kCandidates];
    int32_t cand_index[kCandidates];
    int count;
  };

  __device__ BlockTopK(Storage& storage, int k) : s_(storage), k_(k) {
    for (int i = threadIdx.x; i < kCapacity; i += kThreads) {
      s_.top_key[i] = INFINITY;
      s_.top_index[i] = kTopKNoIndex;
    }
    if (threadIdx.x == 0) s_.count = 0;
    thr_key_ = INFINITY;
    thr_index_ = kTopKNoIndex;
    __syncthreads();
  }

  // Offers one entry; cheap when it does not beat the current k-th best.
  __device__ __forceinline__ void Offer(float key, int32_t index) {
    if (isnan(key)) key = INFINITY;
    if (Less(key, index, thr_key_, thr_index_)) {
      int slot = atomicAdd(&s_.count, 1);
      s_.cand_key[slot] = key;
      s_.cand_index[slot] = index;
    }
  }

  __device__ void Commit() {
    __syncthreads();
    int count = s_.count;
    __syncthreads();  // everyone has read count before anyone appends or resets it
    if (count > kFlushAbove) Flush(count);
  }

  __device__ void Finish() {
    __syncthreads();
    int count = s_.count;
    __syncthreads();
    if (count > 0) Flush(count);
  }

  __device__ float key(int i) const { return s_.top_key[i]; }
  __device__ int32_t index(int i) const { return s_.top_index[i]; }

 private:
  __device__ static __forceinline__ bool Less(float ka, int32_t ia, float kb, int32_t ib) {
    return ka < kb || (ka == kb && ia < ib);
  }

  // Puts the pair at a before the one at b when `ascending` (after it otherwise).
  __device__ static __forceinline__ void CompareSwap(float* keys, int32_t* idx, int a, int b,
                                                     bool ascending) {
    float ka = keys[a], kb = keys[b];
    int32_t ia = idx[a], ib = idx[b];
    if (Less(kb, ib, ka, ia) == ascending) {
      keys[a] = kb;
      keys[b] = ka;
      idx[a] = ib;
      idx[b] = ia;
    }
  }

  // Collective: sorts the `count` candidates and merges them into the top list.
  __device__ void Flush(int count) {
    if (threadIdx.x == 0) s_.count = 0;  // read by everyone before Flush (see Commit)
    int n = 2;
    while (n < count) n <<= 1;  // n <= kCandidates since count <= kCandidates
    for (int i = count + threadIdx.x; i < n; i += kThreads) {
      s_.cand_key[i] = INFINITY;
      s_.cand_index[i] = kTopKNoIndex;
    }
    __syncthreads();
    // Bitonic sort of cand[0, n), ascending.
    for (int size = 2; size <= n; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        for (int t = threadIdx.x; t < n / 2; t += kThreads) {
          int lo = 2 * t - (t & (stride - 1));
          CompareSwap(s_.cand_key, s_.cand_index, lo, lo + stride, (lo & size) == 0);
        }
        __syncthreads();
      }
    }
    // top[i] = min(top[i], cand[K-1-i]): a bitonic sequence holding the K smallest of both.
    for (int i = threadIdx.x; i < kCapacity; i += kThreads) {
      int j = kCapacity - 1 - i;
      if (j < n) {
        float ck = s_.cand_key[j];
        int32_t ci = s_.cand_index[j];
        if (Less(ck, ci, s_.top_key[i], s_.top_index[i])) {
          s_.top_key[i] = ck;
          s_.top_index[i] = ci;
        }
      }
    }
    __syncthreads();
    // Bitonic merge of top[0, K) ascending.
    for (int stride = kCapacity >> 1; stride > 0; stride >>= 1) {
      for (int t = threadIdx.x; t < kCapacity / 2; t += kThreads) {
        int lo = 2 * t - (t & (stride - 1));
        CompareSwap(s_.top_key, s_.top_index, lo, lo + stride, true);
      }
      __syncthreads();
    }
    thr_key_ = s_.top_key[k_ - 1];
    thr_index_ = s_.top_index[k_ - 1];
  }

  Storage& s_;
  int k_;
  float thr_key_;
  int32_t thr_index_;
};

// Calls f.template operator()<K>() with the selector capacity K for k (1..kTopKMax), so a
// launcher instantiates one kernel per capacity.
template <typename F>
__host__ Status DispatchTopKCapacity(int k, F&& f) {
  switch (TopKCapacity(k)) {
    case 32:
      return f.template operator()<32>();
    case 64:
      return f.template operator()<64>();
    case 128:
      return f.template operator()<128>();
    case 256:
      return f.template operator()<256>();
    case 512:
      return f.template operator()<512>();
    case 1024:
      return f.template operator()<1024>();
    default:
      return Status(Code::kInvalidArgument, "top-k: k must be in 1..1024");
  }
}

#endif  // __CUDACC__

}  // namespace vlake::gpu
