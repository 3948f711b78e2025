// IVF_FLAT / IVF_PQ on the GPU: BuildIvf (parts in the CPU layout of vector/index_parts.h) and
// UploadIvf (search on the GPU).
//
// Build (why this shape):
// - Coarse centroids: KMeansFit on a seeded sample (FAISS trains on a sample too), spherical for
//   IP/COSINE as FAISS's IVF training is.
// - The algorithm, seeds included, is vector/reference_build.h's ReferenceBuildIvf with
//   seed = params.kmeans.seed: training sample SampleDistinct(n, n_train, seed) sorted, coarse
//   k-means seeded with seed + 1, codebook j with seed + 2 + j (unbalanced, no early stop);
//   COSINE rows are normalized on the device where they are read (the parts hold unit-length
//   vectors). Results may differ from the reference by float rounding (GEMM/TF32, summation
//   order), which can move a row to another list.
// - IVF_PQ codebooks: one 256-centroid L2 k-means per sub-space over the residuals of the
//   training sample (at most kMaxPqTrainingRows of them, a seeded subsample beyond that: the
//   only departure from the reference, which trains on the whole sample).
// - Add: one streamed pass over all rows: nearest list (GEMM + argmin), and for IVF_PQ the codes
//   of the residuals, computed on the GPU; the host appends each row to its list in row order,
//   so labels ascend within each list. IVF_FLAT lists copy the rows from the host input directly
//   (or from the batch brought back, for device input).
// - PQ encoding is exact FP32 whatever MathMode says: a code is the nearest of 256 entries, and a
//   TF32 near-tie would pick a worse one for no speed gain (encoding is not the bottleneck). It
//   uses kernel_math.h's PqEncodeSubvector, so a host re-encode gives the same byte.
//
// Search (why this shape):
// - Coarse step: GEMM of the queries against the centroids and a top-nprobe selection.
// - One thread block per (query, probed list) scans the list and keeps its top-k in a BlockTopK;
//   a block per pair rather than per query keeps the GPU busy with few queries; the nprobe
//   partial lists of a query are merged by MergeTopK.
//   IVF_FLAT: a group of lanes per row (as many as dim/4, up to a warp) computes the exact
//   distance with coalesced reads of the row, into a shared tile that the selector then reads.
//   IVF_PQ: the block first builds the query's look-up table in shared memory (m x 256 floats:
//   ||rq_j - e||^2 of the residual query rq = q - centroid for L2, which therefore is per list;
//   q_j . e for IP, plus q . centroid once per list), then each thread sums the table entries
//   its row's code selects (four code bytes per load when m % 4 == 0). Recomputing the table
//   per block costs 256 x dim FMAs, less than reading it from global memory would. When the
//   table does not fit shared memory (large m), entries are recomputed from the codebooks (in
//   L2 cache) per row instead, with the same arithmetic, so both paths give identical values.
// - Refine (IVF_PQ, refine_ratio > 1, raw vectors uploaded): the best refine_ratio x k
//   candidates by PQ distance are re-ranked by exact distance, like FAISS's IndexRefine.
#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gpu/algorithms.h"
#include "gpu/internal.h"
#include "gpu/kernel_math.h"
#include "gpu/topk.cuh"

namespace vlake::gpu {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / kWarp;
constexpr int kPerThread = 4;
constexpr int kKsub = 256;
constexpr int64_t kMaxPqTrainingRows = 1 << 20;
// Shared memory a scan kernel may take beyond its static BlockTopK storage; below the 227 KB
// per-block opt-in limit of sm_90 with room for the static part (24.6 KB at k = 1024).
constexpr int kMaxDynamicSmem = 190 * 1024;
constexpr int kDefaultDynamicSmem = 48 * 1024;

SelectOrder OrderOf(vector::Metric metric) {
  return metric == vector::Metric::kL2 ? SelectOrder::kSmallest : SelectOrder::kLargest;
}

unsigned Blocks(int64_t n, int threads) { return static_cast<unsigned>(CeilDiv(n, threads)); }

template <typename Kernel>
Status AllowDynamicSmem(Kernel kernel, int bytes) {
  if (bytes > kDefaultDynamicSmem) {
    VLAKE_CUDA_RETURN(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  }
  return Status::Ok();
}

// ---- Build kernels ----

// out[i] = x[i] - centroids[labels[i]], one block per row.
__global__ __launch_bounds__(kThreads) void ResidualKernel(const float* x, int dim,
                                                           const int32_t* labels,
                                                           const float* centroids, float* out) {
  const int64_t row = blockIdx.x;
  const float* xr = x + row * dim;
  const float* c = centroids + static_cast<int64_t>(labels[row]) * dim;
  float* o = out + row * dim;
  for (int j = threadIdx.x; j < dim; j += kThreads) o[j] = xr[j] - c[j];
}

constexpr int kEncodeRows = 128;  // rows per encode block, one per thread

// codes[row * m + j] = nearest entry of codebook j to slice j of (x[row] - centroid[label]).
// blockIdx.y = j. kStaged: the codebook and the block's residual slices are staged in shared
// memory (slices padded to dsub + 1 floats so that threads reading "their" slice hit distinct
// banks); otherwise both are read from global memory (very wide sub-spaces).
template <bool kStaged>
__global__ __launch_bounds__(kEncodeRows) void PqEncodeKernel(
    const float* x, int64_t rows, int dim, const int32_t* labels, const float* centroids,
    const float* codebooks, int m, int dsub, float* residual_scratch, uint8_t* codes) {
  extern __shared__ float smem[];
  const int j = blockIdx.y;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kEncodeRows;
  const int64_t row = row0 + threadIdx.x;
  const float* cb = codebooks + static_cast<int64_t>(j) * kKsub * dsub;
  if constexpr (kStaged) {
    float* s_cb = smem;
    float* s_res = smem + kKsub * dsub;
    for (int i = threadIdx.x; i < kKsub * dsub; i += kEncodeRows) s_cb[i] = cb[i];
    for (int i = threadIdx.x; i < kEncodeRows * dsub; i += kEncodeRows) {
      const int r = i / dsub, d = i % dsub;
      const int64_t gr = row0 + r;
      if (gr < rows) {
        const int64_t col = static_cast<int64_t>(j) * dsub + d;
        s_res[r * (dsub + 1) + d] =
            x[gr * dim + col] - centroids[static_cast<int64_t>(labels[gr]) * dim + col];
      }
    }
    __syncthreads();
    if (row < rows) {
      codes[row * m + j] = static_cast<uint8_t>(
          math::PqEncodeSubvector(s_res + threadIdx.x * (dsub + 1), s_cb, kKsub, dsub));
    }
  } else {
    if (row >= rows) return;
    float* res = residual_scratch + row * dim + static_cast<int64_t>(j) * dsub;
    const float* xr = x + row * dim + static_cast<int64_t>(j) * dsub;
    const float* c =
        centroids + static_cast<int64_t>(labels[row]) * dim + static_cast<int64_t>(j) * dsub;
    for (int d = 0; d < dsub; ++d) res[d] = xr[d] - c[d];
    codes[row * m + j] = static_cast<uint8_t>(math::PqEncodeSubvector(res, cb, kKsub, dsub));
  }
}

// ---- Search kernels ----

struct ScanArgs {
  const float* queries;  // nq x dim
  int dim;
  const int64_t* probes;  // nq x nprobe list ids (-1: none)
  int nprobe;
  const int64_t* offsets;  // nlist + 1
  const int64_t* ids;
  const float* vectors;    // IVF_FLAT: rows x dim
  const uint8_t* codes;    // IVF_PQ: rows x m
  const float* codebooks;  // IVF_PQ: m x 256 x dsub
  const float* centroids;  // nlist x dim
  int m;
  int dsub;
  int k;
  SelectOrder order;
  float* out_d;  // (nq * nprobe) x k
  int64_t* out_l;
};

// Writes a block's selection (positions within the list) as labels and distances.
template <typename Top>
__device__ void WriteListResults(const Top& top, const ScanArgs& a, int64_t begin, int64_t slot) {
  float* od = a.out_d + slot * a.k;
  int64_t* ol = a.out_l + slot * a.k;
  for (int j = threadIdx.x; j < a.k; j += kThreads) {
    const int32_t idx = top.index(j);
    if (idx == kTopKNoIndex) {
      od[j] = TopKEmptyValue(a.order);
      ol[j] = -1;
    } else {
      od[j] = TopKValue(top.key(j), a.order);
      ol[j] = a.ids[begin + idx];
    }
  }
}

// IVF_FLAT: one block per (query, probed list). Dynamic shared memory: the distance tile
// (kPerRound floats) then the query (dim floats).
template <int K>
__global__ __launch_bounds__(kThreads) void IvfFlatScanKernel(ScanArgs a) {
  using Top = BlockTopK<K, kThreads, kPerThread>;
  __shared__ typename Top::Storage storage;
  extern __shared__ float smem[];
  float* tile = smem;
  float* query = smem + Top::kPerRound;
  const int64_t slot = blockIdx.x;
  const int64_t q = slot / a.nprobe;
  const int64_t list = a.probes[slot];
  const int dim = a.dim;
  for (int j = threadIdx.x; j < dim; j += kThreads) query[j] = a.queries[q * dim + j];
  const int64_t begin = list >= 0 ? a.offsets[list] : 0;
  const int64_t len = list >= 0 ? a.offsets[list + 1] - begin : 0;
  const bool l2 = a.order == SelectOrder::kSmallest;
  Top top(storage, a.k);  // its barrier also publishes the query

  // Lanes per row: enough for ~4 floats each, so short vectors still fill the warp.
  int group = 32;
  while (group > 1 && group * 4 > dim) group >>= 1;
  const int rows_per_warp = kWarp / group;
  const int lane = threadIdx.x % kWarp;
  const int warp = threadIdx.x / kWarp;
  const int sub = lane / group;
  const int sl = lane % group;
  for (int64_t base = 0; base < len; base += Top::kPerRound) {
    const int64_t left = len - base;
    const int n = static_cast<int>(left < Top::kPerRound ? left : Top::kPerRound);
    for (int r0 = warp * rows_per_warp; r0 < n; r0 += kWarps * rows_per_warp) {  // warp-uniform
      const int r = r0 + sub;
      float acc = 0.0f;
      if (r < n) {
        const float* x = a.vectors + (begin + base + r) * dim;
        if (l2) {
          for (int d = sl; d < dim; d += group) {
            float t = query[d] - x[d];
            acc = fmaf(t, t, acc);
          }
        } else {
          for (int d = sl; d < dim; d += group) acc = fmaf(query[d], x[d], acc);
        }
      }
      for (int o = group / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
      if (r < n && sl == 0) tile[r] = acc;
    }
    __syncthreads();
#pragma unroll
    for (int e = 0; e < kPerThread; ++e) {
      const int i = e * kThreads + threadIdx.x;
      if (i < n) top.Offer(TopKKey(tile[i], a.order), static_cast<int32_t>(base + i));
    }
    top.Commit();  // its first barrier also ends the reads of the tile
  }
  top.Finish();
  WriteListResults(top, a, begin, slot);
}

// Sum of lut[j][code[j]] over j, left to right like math::PqDistance, reading four code bytes
// per load when the codes are 4-byte aligned (m % 4 == 0).
__device__ __forceinline__ float PqLutSum(const float* lut, const uint8_t* code, int m) {
  float acc = 0.0f;
  if ((m & 3) == 0) {
    const uint32_t* w = reinterpret_cast<const uint32_t*>(code);
    for (int j = 0; j < m; j += 4) {
      const uint32_t v = w[j >> 2];
      acc += lut[(j + 0) * kKsub + (v & 0xff)];
      acc += lut[(j + 1) * kKsub + ((v >> 8) & 0xff)];
      acc += lut[(j + 2) * kKsub + ((v >> 16) & 0xff)];
      acc += lut[(j + 3) * kKsub + (v >> 24)];
    }
  } else {
    for (int j = 0; j < m; ++j) acc += lut[j * kKsub + code[j]];
  }
  return acc;
}

// IVF_PQ: one block per (query, probed list). Dynamic shared memory: the (residual) query, then
// the look-up table when kLut.
template <int K, bool kLut>
__global__ __launch_bounds__(kThreads) void IvfPqScanKernel(ScanArgs a) {
  using Top = BlockTopK<K, kThreads, kPerThread>;
  __shared__ typename Top::Storage storage;
  __shared__ float warp_dots[kWarps];
  extern __shared__ float smem[];
  float* rq = smem;
  float* lut = smem + a.dim;
  const int64_t slot = blockIdx.x;
  const int64_t q = slot / a.nprobe;
  const int64_t list = a.probes[slot];
  const int dim = a.dim;
  const bool ip = a.order == SelectOrder::kLargest;
  const math::DistanceKind kind = ip ? math::DistanceKind::kInnerProduct : math::DistanceKind::kL2;
  const float* qv = a.queries + q * dim;
  const float* c = a.centroids + (list > 0 ? list : 0) * dim;
  float dot = 0.0f;
  for (int j = threadIdx.x; j < dim; j += kThreads) {
    const float v = qv[j];
    rq[j] = ip ? v : v - c[j];
    dot = fmaf(v, c[j], dot);
  }
  for (int o = kWarp / 2; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
  if (threadIdx.x % kWarp == 0) warp_dots[threadIdx.x / kWarp] = dot;
  __syncthreads();
  float list_term = 0.0f;  // q . centroid for IP
  if (ip) {
    for (int w = 0; w < kWarps; ++w) list_term += warp_dots[w];
  }
  const int dsub = a.dsub;
  if constexpr (kLut) {
    for (int i = threadIdx.x; i < a.m * kKsub; i += kThreads) {
      const int j = i / kKsub;
      lut[i] =
          math::PqLutEntry(kind, rq + j * dsub, a.codebooks + static_cast<int64_t>(i) * dsub, dsub);
    }
  }
  const int64_t begin = list >= 0 ? a.offsets[list] : 0;
  const int64_t len = list >= 0 ? a.offsets[list + 1] - begin : 0;
  Top top(storage, a.k);  // its barrier also publishes rq and the table

  for (int64_t base = 0; base < len; base += Top::kPerRound) {
#pragma unroll
    for (int e = 0; e < kPerThread; ++e) {
      const int64_t i = base + e * kThreads + threadIdx.x;
      if (i < len) {
        const uint8_t* code = a.codes + (begin + i) * a.m;
        float d;
        if constexpr (kLut) {
          d = PqLutSum(lut, code, a.m);
        } else {
          d = 0.0f;
          for (int j = 0; j < a.m; ++j) {
            d += math::PqLutEntry(kind, rq + j * dsub,
                                  a.codebooks + (static_cast<int64_t>(j) * kKsub + code[j]) * dsub,
                                  dsub);
          }
        }
        top.Offer(TopKKey(d + list_term, a.order), static_cast<int32_t>(i));
      }
    }
    top.Commit();
  }
  top.Finish();
  WriteListResults(top, a, begin, slot);
}

// Exact distances of each query to its candidates (refine): one block per query, a warp per
// candidate. Candidates with label -1 get no value (the selection that follows skips them).
__global__ __launch_bounds__(kThreads) void RefineKernel(const float* queries, int dim,
                                                         const int64_t* cand, int kc,
                                                         const float* raw, bool l2, float* out) {
  const int64_t q = blockIdx.x;
  const float* qv = queries + q * dim;
  const int lane = threadIdx.x % kWarp;
  for (int j = threadIdx.x / kWarp; j < kc; j += kWarps) {
    const int64_t label = cand[q * kc + j];
    if (label < 0) continue;  // warp-uniform
    const float* x = raw + label * dim;
    float acc = 0.0f;
    if (l2) {
      for (int d = lane; d < dim; d += kWarp) {
        float t = qv[d] - x[d];
        acc = fmaf(t, t, acc);
      }
    } else {
      for (int d = lane; d < dim; d += kWarp) acc = fmaf(qv[d], x[d], acc);
    }
    for (int o = kWarp / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) out[q * kc + j] = acc;
  }
}

// ---- UploadIvf's index ----

class IvfDeviceIndex final : public DeviceIndex {
 public:
  vector::Metric metric = vector::Metric::kL2;
  int device = 0;
  int dim_ = 0;
  int nlist = 0;
  int64_t rows = 0;
  int pq_m = 0;
  int dsub = 0;
  DeviceArray<float> centroids;
  DeviceArray<float> centroid_norms;
  DeviceArray<int64_t> offsets;
  DeviceArray<int64_t> ids;
  DeviceArray<float> vectors;
  DeviceArray<uint8_t> codes;
  DeviceArray<float> codebooks;
  DeviceArray<float> raw_copy;
  const float* raw = nullptr;  // raw_copy, or the caller's device rows
  int64_t raw_rows = 0;

  int64_t size() const override { return rows; }
  int dim() const override { return dim_; }
  int64_t device_bytes() const override {
    return static_cast<int64_t>(centroids.bytes() + centroid_norms.bytes() + offsets.bytes() +
                                ids.bytes() + vectors.bytes() + codes.bytes() + codebooks.bytes() +
                                raw_copy.bytes());
  }

  Status Search(const MatrixView& queries, const GpuSearchParams& params, int64_t* labels,
                float* distances) const override;

 private:
  Status ScanLists(const GpuContext& ctx, const ScanArgs& a, int64_t blocks, int kc) const;
};

Status IvfDeviceIndex::ScanLists(const GpuContext& ctx, const ScanArgs& a, int64_t blocks,
                                 int kc) const {
  return DispatchTopKCapacity(kc, [&]<int K>() -> Status {
    const unsigned grid = static_cast<unsigned>(blocks);
    if (pq_m == 0) {
      const int smem = (BlockTopK<K, kThreads, kPerThread>::kPerRound + dim_) * 4;
      VLAKE_RETURN_IF_ERROR(AllowDynamicSmem(IvfFlatScanKernel<K>, smem));
      IvfFlatScanKernel<K><<<grid, kThreads, smem, ctx.stream()>>>(a);
    } else {
      const int lut_bytes = pq_m * kKsub * 4;
      const bool use_lut = lut_bytes <= 128 * 1024 && dim_ * 4 + lut_bytes <= kMaxDynamicSmem;
      if (use_lut) {
        const int smem = dim_ * 4 + lut_bytes;
        VLAKE_RETURN_IF_ERROR(AllowDynamicSmem(IvfPqScanKernel<K, true>, smem));
        IvfPqScanKernel<K, true><<<grid, kThreads, smem, ctx.stream()>>>(a);
      } else {
        const int smem = dim_ * 4;
        VLAKE_RETURN_IF_ERROR(AllowDynamicSmem(IvfPqScanKernel<K, false>, smem));
        IvfPqScanKernel<K, false><<<grid, kThreads, smem, ctx.stream()>>>(a);
      }
    }
    VLAKE_CUDA_RETURN(cudaGetLastError());
    return Status::Ok();
  });
}

Status IvfDeviceIndex::Search(const MatrixView& queries, const GpuSearchParams& params,
                              int64_t* labels, float* distances) const {
  VLAKE_RETURN_IF_ERROR(CheckView(queries, "queries"));
  if (queries.dim != dim_) {
    return Status(Code::kInvalidArgument, "queries have dim " + std::to_string(queries.dim) +
                                              ", index has " + std::to_string(dim_));
  }
  const int k = params.k;
  if (k < 1 || k > kMaxGpuTopK) {
    return Status(Code::kInvalidArgument, "k must be in 1.." + std::to_string(kMaxGpuTopK));
  }
  if (params.nprobe < 1 || params.nprobe > kMaxGpuTopK) {
    return Status(Code::kInvalidArgument, "nprobe must be in 1.." + std::to_string(kMaxGpuTopK));
  }
  if (params.refine_ratio < 1) {
    return Status(Code::kInvalidArgument, "refine_ratio must be >= 1");
  }
  const int64_t nq = queries.rows;
  if (nq == 0) return Status::Ok();
  if (labels == nullptr || distances == nullptr) {
    return Status(Code::kInvalidArgument, "null output arrays");
  }
  const SelectOrder order = OrderOf(metric);
  const bool l2 = metric == vector::Metric::kL2;
  const int nprobe = std::min(params.nprobe, nlist);
  const bool refine = pq_m > 0 && params.refine_ratio > 1 && raw != nullptr;
  // Candidates kept per list and per query before the (optional) refine.
  const int kc =
      refine ? static_cast<int>(std::min<int64_t>(kMaxGpuTopK, int64_t{params.refine_ratio} * k))
             : k;

  GpuContext ctx;
  VLAKE_RETURN_IF_ERROR(ctx.InitOn(device));
  VLAKE_ASSIGN_OR_RETURN(int64_t budget, MemoryBudgetBytes());
  const cudaStream_t stream = ctx.stream();

  // Per query: coarse row, probes, nprobe partial lists, merged candidates, refine values,
  // final results, the query itself.
  const int64_t per_query = static_cast<int64_t>(nlist) * 4 + int64_t{nprobe} * 12 +
                            int64_t{nprobe} * kc * 12 + int64_t{kc} * 16 + int64_t{k} * 12 +
                            int64_t{dim_} * 4;
  int64_t qb = RowsWithin(budget / 4, per_query, nq);
  qb = std::min<int64_t>(qb, std::max<int64_t>(1, (INT_MAX / 2) / nprobe));

  AsyncBuffer<float> q_buf, coarse, probe_d, part_d, cand_d, refined, final_d;
  AsyncBuffer<int64_t> probe_l, part_l, cand_l, final_l;
  if (queries.memory == Memory::kHost) {
    VLAKE_RETURN_IF_ERROR(q_buf.Allocate(static_cast<size_t>(qb) * dim_, stream));
  }
  VLAKE_RETURN_IF_ERROR(coarse.Allocate(static_cast<size_t>(qb) * nlist, stream));
  VLAKE_RETURN_IF_ERROR(probe_d.Allocate(static_cast<size_t>(qb) * nprobe, stream));
  VLAKE_RETURN_IF_ERROR(probe_l.Allocate(static_cast<size_t>(qb) * nprobe, stream));
  VLAKE_RETURN_IF_ERROR(part_d.Allocate(static_cast<size_t>(qb) * nprobe * kc, stream));
  VLAKE_RETURN_IF_ERROR(part_l.Allocate(static_cast<size_t>(qb) * nprobe * kc, stream));
  VLAKE_RETURN_IF_ERROR(cand_d.Allocate(static_cast<size_t>(qb) * kc, stream));
  VLAKE_RETURN_IF_ERROR(cand_l.Allocate(static_cast<size_t>(qb) * kc, stream));
  if (refine) {
    VLAKE_RETURN_IF_ERROR(refined.Allocate(static_cast<size_t>(qb) * kc, stream));
    VLAKE_RETURN_IF_ERROR(final_d.Allocate(static_cast<size_t>(qb) * k, stream));
    VLAKE_RETURN_IF_ERROR(final_l.Allocate(static_cast<size_t>(qb) * k, stream));
  }

  for (int64_t q0 = 0; q0 < nq; q0 += qb) {
    const int64_t nqb = std::min(qb, nq - q0);
    const float* q = queries.data + q0 * dim_;
    if (queries.memory == Memory::kHost) {
      VLAKE_CUDA_RETURN(cudaMemcpyAsync(q_buf.get(), q, static_cast<size_t>(nqb) * dim_ * 4,
                                        cudaMemcpyHostToDevice, stream));
      q = q_buf.get();
    }
    // Coarse: rank lists by ||c||^2 - 2 q.c (L2) or q.c (IP), exact FP32.
    VLAKE_RETURN_IF_ERROR(GemmNT(ctx.blas(), MathMode::kFp32, nqb, nlist, dim_, q, dim_,
                                 centroids.get(), dim_, l2 ? -2.0f : 1.0f, 0.0f, coarse.get(),
                                 nlist));
    TopKInput cin;
    cin.values = coarse.get();
    cin.rows = nqb;
    cin.cols = nlist;
    cin.ld = nlist;
    cin.col_add = l2 ? centroid_norms.get() : nullptr;
    TopKOutput probes;
    probes.distances = probe_d.get();
    probes.labels = probe_l.get();
    probes.ld = nprobe;
    VLAKE_RETURN_IF_ERROR(SelectTopK(cin, nprobe, order, probes, stream));

    ScanArgs a{};
    a.queries = q;
    a.dim = dim_;
    a.probes = probe_l.get();
    a.nprobe = nprobe;
    a.offsets = offsets.get();
    a.ids = ids.get();
    a.vectors = vectors.get();
    a.codes = codes.get();
    a.codebooks = codebooks.get();
    a.centroids = centroids.get();
    a.m = pq_m;
    a.dsub = dsub;
    a.k = kc;
    a.order = order;
    a.out_d = part_d.get();
    a.out_l = part_l.get();
    VLAKE_RETURN_IF_ERROR(ScanLists(ctx, a, nqb * nprobe, kc));

    TopKOutput merged;
    merged.distances = cand_d.get();
    merged.labels = cand_l.get();
    merged.ld = kc;
    VLAKE_RETURN_IF_ERROR(MergeTopK(part_d.get(), part_l.get(), nqb, nprobe, kc,
                                    int64_t{nprobe} * kc, kc, order, merged, stream));
    const float* res_d = cand_d.get();
    const int64_t* res_l = cand_l.get();
    int64_t res_ld = kc;
    if (refine) {
      RefineKernel<<<static_cast<unsigned>(nqb), kThreads, 0, stream>>>(q, dim_, cand_l.get(), kc,
                                                                        raw, l2, refined.get());
      VLAKE_CUDA_RETURN(cudaGetLastError());
      TopKInput rin;
      rin.values = refined.get();
      rin.rows = nqb;
      rin.cols = kc;
      rin.ld = kc;
      rin.labels = cand_l.get();
      rin.labels_ld = kc;
      TopKOutput rout;
      rout.distances = final_d.get();
      rout.labels = final_l.get();
      rout.ld = k;
      VLAKE_RETURN_IF_ERROR(SelectTopK(rin, k, order, rout, stream));
      res_d = final_d.get();
      res_l = final_l.get();
      res_ld = k;
    }
    // Pageable destinations: complete before the calls return.
    VLAKE_CUDA_RETURN(cudaMemcpy2DAsync(distances + q0 * k, static_cast<size_t>(k) * 4, res_d,
                                        static_cast<size_t>(res_ld) * 4, static_cast<size_t>(k) * 4,
                                        static_cast<size_t>(nqb), cudaMemcpyDeviceToHost, stream));
    VLAKE_CUDA_RETURN(cudaMemcpy2DAsync(labels + q0 * k, static_cast<size_t>(k) * 8, res_l,
                                        static_cast<size_t>(res_ld) * 8, static_cast<size_t>(k) * 8,
                                        static_cast<size_t>(nqb), cudaMemcpyDeviceToHost, stream));
  }
  return ctx.Sync();
}

template <typename T>
Status Upload(const std::vector<T>& host, DeviceArray<T>* dev, cudaStream_t stream) {
  VLAKE_RETURN_IF_ERROR(dev->Allocate(host.size()));
  if (!host.empty()) {
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(dev->get(), host.data(), host.size() * sizeof(T),
                                      cudaMemcpyHostToDevice, stream));
  }
  return Status::Ok();
}

// ---- BuildIvf pieces ----

Status CheckBuild(const IvfBuildParams& params, const MatrixView& data, int nlist) {
  VLAKE_RETURN_IF_ERROR(CheckView(data, "IVF data"));
  if (nlist < 1 || nlist > data.rows) {
    return Status(Code::kInvalidArgument, "IVF: nlist=" + std::to_string(nlist) +
                                              " must be in 1..rows (" + std::to_string(data.rows) +
                                              ")");
  }
  if (params.batch_rows < 1) return Status(Code::kInvalidArgument, "IVF: batch_rows must be >= 1");
  if (params.pq_m < 0) return Status(Code::kInvalidArgument, "IVF: pq_m must be >= 0");
  if (params.pq_m > 0) {
    if (data.dim % params.pq_m != 0) {
      return Status(Code::kInvalidArgument, "IVF_PQ: m=" + std::to_string(params.pq_m) +
                                                " must divide dim=" + std::to_string(data.dim));
    }
    if (params.pq_nbits != 8) return Status(Code::kInvalidArgument, "IVF_PQ: only nbits=8");
    if (params.pq_kmeans_iterations < 1) {
      return Status(Code::kInvalidArgument, "IVF_PQ: pq_kmeans_iterations must be >= 1");
    }
  }
  return Status::Ok();
}

// Trains the m codebooks (m x 256 x dsub, device) on the residuals of `train` rows.
Status TrainCodebooks(const GpuContext& ctx, const IvfBuildParams& params, vector::Metric metric,
                      const MatrixView& train, RowScale scale, const float* centroids, int nlist,
                      int64_t budget, AsyncBuffer<float>* codebooks, double* h2d_seconds) {
  const int dim = train.dim;
  const int m = params.pq_m;
  const int dsub = dim / m;
  const int64_t n = std::min<int64_t>(train.rows, kMaxPqTrainingRows);
  std::vector<int64_t> rows;
  if (n < train.rows) {
    rows = math::SampleDistinct(train.rows, n, params.kmeans.seed ^ 0x9e3779b97f4a7c15ull);
    std::sort(rows.begin(), rows.end());
  } else {
    rows.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) rows[i] = i;
  }
  AsyncBuffer<float> x, c_norms, residuals, sub;
  AsyncBuffer<int32_t> labels;
  VLAKE_RETURN_IF_ERROR(GatherRows(train, rows, ctx.stream(), &x));
  if (metric == vector::Metric::kCosine && scale == RowScale::kAsGiven) {
    VLAKE_RETURN_IF_ERROR(NormalizeRows(x.get(), n, dim, ctx.stream()));
  }
  VLAKE_RETURN_IF_ERROR(c_norms.Allocate(static_cast<size_t>(nlist), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(RowSquaredNorms(centroids, nlist, dim, c_norms.get(), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(labels.Allocate(static_cast<size_t>(n), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(AssignNearest(ctx, metric, params.kmeans.math, x.get(), n, dim, centroids,
                                      c_norms.get(), nlist, labels.get(), budget));
  VLAKE_RETURN_IF_ERROR(residuals.Allocate(static_cast<size_t>(n) * dim, ctx.stream()));
  if (n > INT_MAX) return Status(Code::kInternal, "IVF_PQ: too many training rows");
  ResidualKernel<<<static_cast<unsigned>(n), kThreads, 0, ctx.stream()>>>(
      x.get(), dim, labels.get(), centroids, residuals.get());
  VLAKE_CUDA_RETURN(cudaGetLastError());
  x.Reset();

  VLAKE_RETURN_IF_ERROR(codebooks->Allocate(static_cast<size_t>(m) * kKsub * dsub, ctx.stream()));
  VLAKE_RETURN_IF_ERROR(sub.Allocate(static_cast<size_t>(n) * dsub, ctx.stream()));
  KMeansParams kp;
  kp.k = kKsub;
  kp.max_iterations = params.pq_kmeans_iterations;
  kp.tolerance = 0;  // all pq_kmeans_iterations, like the reference and FAISS
  kp.math = params.kmeans.math;
  kp.init = KMeansInit::kRandomSample;
  kp.balanced = false;  // empty entries are still re-seeded; even code use does not matter
  kp.hierarchical_above_k = INT_MAX;
  kp.batch_rows = params.kmeans.batch_rows;
  for (int j = 0; j < m; ++j) {
    // Slice j of every residual, packed (n x dsub).
    VLAKE_CUDA_RETURN(cudaMemcpy2DAsync(
        sub.get(), static_cast<size_t>(dsub) * 4, residuals.get() + static_cast<int64_t>(j) * dsub,
        static_cast<size_t>(dim) * 4, static_cast<size_t>(dsub) * 4, static_cast<size_t>(n),
        cudaMemcpyDeviceToDevice, ctx.stream()));
    kp.seed = params.kmeans.seed + 2 + static_cast<uint64_t>(j);
    AsyncBuffer<float> cb;
    MatrixView view{sub.get(), n, dsub, Memory::kDevice};
    VLAKE_RETURN_IF_ERROR(FitCentroids(ctx, kp, vector::Metric::kL2, view, RowScale::kUnitLength,
                                       &cb, nullptr, h2d_seconds));
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(codebooks->get() + static_cast<int64_t>(j) * kKsub * dsub,
                                      cb.get(), static_cast<size_t>(kKsub) * dsub * 4,
                                      cudaMemcpyDeviceToDevice, ctx.stream()));
  }
  return ctx.Sync();
}

// PQ codes of `rows` device rows with their device list labels, into device `codes`.
Status EncodeRows(const GpuContext& ctx, const float* x, int64_t rows, int dim,
                  const int32_t* labels, const float* centroids, const float* codebooks, int m,
                  AsyncBuffer<float>* scratch, uint8_t* codes) {
  if (rows <= 0) return Status::Ok();
  const int dsub = dim / m;
  const int staged_smem = (kKsub * dsub + kEncodeRows * (dsub + 1)) * 4;
  const dim3 grid(Blocks(rows, kEncodeRows), static_cast<unsigned>(m));
  if (staged_smem <= kMaxDynamicSmem) {
    VLAKE_RETURN_IF_ERROR(AllowDynamicSmem(PqEncodeKernel<true>, staged_smem));
    PqEncodeKernel<true><<<grid, kEncodeRows, staged_smem, ctx.stream()>>>(
        x, rows, dim, labels, centroids, codebooks, m, dsub, nullptr, codes);
  } else {
    if (scratch->size() < static_cast<size_t>(rows) * dim) {
      VLAKE_RETURN_IF_ERROR(scratch->Allocate(static_cast<size_t>(rows) * dim, ctx.stream()));
    }
    PqEncodeKernel<false><<<grid, kEncodeRows, 0, ctx.stream()>>>(
        x, rows, dim, labels, centroids, codebooks, m, dsub, scratch->get(), codes);
  }
  VLAKE_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

}  // namespace

Result<vector::IvfParts> BuildIvf(const IvfBuildParams& params, vector::Metric metric,
                                  const MatrixView& data, BuildStats* stats) {
  VLAKE_RETURN_IF_ERROR(CheckView(data, "IVF data"));
  const int nlist = params.nlist > 0
                        ? params.nlist
                        : static_cast<int>(std::max<int64_t>(
                              1, std::llround(std::sqrt(static_cast<double>(data.rows)))));
  VLAKE_RETURN_IF_ERROR(CheckBuild(params, data, nlist));
  const bool pq = params.pq_m > 0;
  const int dim = data.dim;
  const int64_t n = data.rows;
  const int64_t n_train = params.max_training_rows > 0 ? std::min(n, params.max_training_rows)
                                                       : std::min<int64_t>(n, 256ll * nlist);
  if (n_train < nlist) {
    return Status(Code::kInvalidArgument,
                  "IVF: " + std::to_string(n_train) +
                      " training rows are fewer than nlist=" + std::to_string(nlist));
  }
  if (pq && n_train < kKsub) {
    return Status(Code::kInvalidArgument,
                  "IVF_PQ needs at least 256 training rows, got " + std::to_string(n_train));
  }
  const bool cosine = metric == vector::Metric::kCosine;

  GpuContext ctx;
  VLAKE_RETURN_IF_ERROR(ctx.Init());
  VLAKE_ASSIGN_OR_RETURN(int64_t budget, MemoryBudgetBytes());
  BuildStats local;
  const double t_train = NowSeconds();

  // ---- Train ----
  MatrixView train = data;
  RowScale train_scale = RowScale::kAsGiven;
  AsyncBuffer<float> train_dev;
  std::vector<float> train_host;
  if (n_train < n) {
    std::vector<int64_t> rows = math::SampleDistinct(n, n_train, params.kmeans.seed);
    std::sort(rows.begin(), rows.end());
    if (data.memory == Memory::kDevice || n_train * dim * 4 <= budget / 2) {
      const double t0 = NowSeconds();
      VLAKE_RETURN_IF_ERROR(GatherRows(data, rows, ctx.stream(), &train_dev));
      if (data.memory == Memory::kHost) local.h2d_seconds += NowSeconds() - t0;
      train = MatrixView{train_dev.get(), n_train, dim, Memory::kDevice};
      if (cosine) {
        VLAKE_RETURN_IF_ERROR(NormalizeRows(train_dev.get(), n_train, dim, ctx.stream()));
        train_scale = RowScale::kUnitLength;
      }
    } else {
      train_host.resize(static_cast<size_t>(n_train) * dim);
      for (int64_t i = 0; i < n_train; ++i) {
        std::copy_n(data.data + rows[i] * dim, dim, train_host.data() + i * dim);
      }
      train = MatrixView{train_host.data(), n_train, dim, Memory::kHost};
    }
  }
  KMeansParams kp = params.kmeans;
  kp.k = nlist;
  kp.max_training_rows = 0;
  kp.seed = params.kmeans.seed + 1;
  AsyncBuffer<float> centroids, c_norms, codebooks;
  VLAKE_RETURN_IF_ERROR(FitCentroids(ctx, kp, metric, train, train_scale, &centroids, &local.kmeans,
                                     &local.h2d_seconds));
  local.kmeans.seconds = NowSeconds() - t_train;
  VLAKE_RETURN_IF_ERROR(c_norms.Allocate(static_cast<size_t>(nlist), ctx.stream()));
  VLAKE_RETURN_IF_ERROR(RowSquaredNorms(centroids.get(), nlist, dim, c_norms.get(), ctx.stream()));
  if (pq) {
    VLAKE_RETURN_IF_ERROR(TrainCodebooks(ctx, params, metric, train, train_scale, centroids.get(),
                                         nlist, budget, &codebooks, &local.h2d_seconds));
  }
  train_dev.Reset();
  train_host = std::vector<float>();
  local.train_seconds = NowSeconds() - t_train;

  // ---- Add: one streamed pass ----
  const double t_add = NowSeconds();
  vector::IvfParts parts;
  parts.metric = metric;
  parts.dim = dim;
  parts.nlist = nlist;
  parts.centroids.resize(static_cast<size_t>(nlist) * dim);
  parts.list_ids.resize(static_cast<size_t>(nlist));
  const int m = params.pq_m;
  if (pq) {
    parts.pq_m = m;
    parts.pq_nbits = 8;
    parts.pq_codebooks.resize(static_cast<size_t>(m) * kKsub * (dim / m));
    parts.list_codes.resize(static_cast<size_t>(nlist));
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(parts.pq_codebooks.data(), codebooks.get(),
                                      parts.pq_codebooks.size() * 4, cudaMemcpyDeviceToHost,
                                      ctx.stream()));
  } else {
    parts.list_vectors.resize(static_cast<size_t>(nlist));
  }
  VLAKE_CUDA_RETURN(cudaMemcpyAsync(parts.centroids.data(), centroids.get(),
                                    parts.centroids.size() * 4, cudaMemcpyDeviceToHost,
                                    ctx.stream()));

  const int64_t row_bytes = static_cast<int64_t>(dim) * 4;
  int64_t batch = std::min(params.batch_rows, n);
  if (data.memory == Memory::kHost || cosine) {
    batch = std::min(batch, RowsWithin(budget / 8, row_bytes, n));
  }
  RowBatcher batcher;
  VLAKE_RETURN_IF_ERROR(batcher.Init(data, batch, ctx.stream(),
                                     cosine ? RowTransform::kNormalize : RowTransform::kNone));
  // IVF_FLAT lists copy the rows from the host input, or from the device batch when the input
  // is on the device or had to be normalized there.
  const bool rows_from_device = !pq && (data.memory == Memory::kDevice || cosine);
  AsyncBuffer<int32_t> d_labels;
  AsyncBuffer<uint8_t> d_codes;
  AsyncBuffer<float> encode_scratch;
  VLAKE_RETURN_IF_ERROR(d_labels.Allocate(static_cast<size_t>(batch), ctx.stream()));
  if (pq) VLAKE_RETURN_IF_ERROR(d_codes.Allocate(static_cast<size_t>(batch) * m, ctx.stream()));
  std::vector<int32_t> h_labels(static_cast<size_t>(batch));
  std::vector<uint8_t> h_codes(pq ? static_cast<size_t>(batch) * m : 0);
  std::vector<float> h_rows;  // the batch brought back (rows_from_device)
  if (rows_from_device) h_rows.resize(static_cast<size_t>(batch) * dim);

  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t nb = std::min(batch, n - b0);
    VLAKE_ASSIGN_OR_RETURN(const float* x, batcher.Get(b0, nb));
    VLAKE_RETURN_IF_ERROR(AssignNearest(ctx, metric, params.kmeans.math, x, nb, dim,
                                        centroids.get(), c_norms.get(), nlist, d_labels.get(),
                                        budget));
    if (pq) {
      VLAKE_RETURN_IF_ERROR(EncodeRows(ctx, x, nb, dim, d_labels.get(), centroids.get(),
                                       codebooks.get(), m, &encode_scratch, d_codes.get()));
      VLAKE_CUDA_RETURN(cudaMemcpyAsync(h_codes.data(), d_codes.get(), static_cast<size_t>(nb) * m,
                                        cudaMemcpyDeviceToHost, ctx.stream()));
    } else if (rows_from_device) {
      VLAKE_CUDA_RETURN(cudaMemcpyAsync(h_rows.data(), x, static_cast<size_t>(nb * row_bytes),
                                        cudaMemcpyDeviceToHost, ctx.stream()));
    }
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(h_labels.data(), d_labels.get(),
                                      static_cast<size_t>(nb) * sizeof(int32_t),
                                      cudaMemcpyDeviceToHost, ctx.stream()));
    VLAKE_RETURN_IF_ERROR(ctx.Sync());
    const float* rows_src = rows_from_device ? h_rows.data() : data.data + b0 * dim;
    for (int64_t i = 0; i < nb; ++i) {
      const int32_t l = h_labels[i];
      if (l < 0 || l >= nlist) return Status(Code::kInternal, "IVF: list label out of range");
      parts.list_ids[l].push_back(b0 + i);
      if (pq) {
        const uint8_t* c = h_codes.data() + i * m;
        parts.list_codes[l].insert(parts.list_codes[l].end(), c, c + m);
      } else {
        const float* r = rows_src + i * dim;
        parts.list_vectors[l].insert(parts.list_vectors[l].end(), r, r + dim);
      }
    }
  }
  local.h2d_seconds += batcher.h2d_seconds();
  local.add_seconds = NowSeconds() - t_add;
  if (stats != nullptr) *stats = local;
  return parts;
}

Result<std::unique_ptr<DeviceIndex>> UploadIvf(const vector::IvfParts& parts,
                                               const MatrixView& raw) {
  VLAKE_RETURN_IF_ERROR(parts.Validate());
  if (parts.dim < 1 || parts.nlist < 1) {
    return Status(Code::kInvalidArgument, "UploadIvf: empty quantizer");
  }
  if (parts.is_pq() && parts.pq_nbits != 8) {
    return Status(Code::kInvalidArgument, "UploadIvf: only 8-bit PQ codes");
  }
  const int64_t rows = parts.rows();
  if (raw.rows > 0) {
    VLAKE_RETURN_IF_ERROR(CheckView(raw, "raw vectors"));
    if (raw.dim != parts.dim || raw.rows < rows) {
      return Status(Code::kInvalidArgument,
                    "UploadIvf: raw vectors must be rows x dim of the index");
    }
  }
  GpuContext ctx;
  VLAKE_RETURN_IF_ERROR(ctx.Init());
  auto index = std::make_unique<IvfDeviceIndex>();
  index->metric = parts.metric;
  index->device = ctx.device();
  index->dim_ = parts.dim;
  index->nlist = parts.nlist;
  index->rows = rows;
  index->pq_m = parts.pq_m;
  index->dsub = parts.is_pq() ? parts.dim / parts.pq_m : 0;

  // Lists concatenated in list order; offsets[l] is list l's first row.
  std::vector<int64_t> offsets(static_cast<size_t>(parts.nlist) + 1, 0);
  for (int l = 0; l < parts.nlist; ++l) {
    const int64_t len = static_cast<int64_t>(parts.list_ids[l].size());
    if (len >= INT_MAX) return Status(Code::kInvalidArgument, "UploadIvf: list too long");
    offsets[l + 1] = offsets[l] + len;
  }
  std::vector<int64_t> ids;
  ids.reserve(static_cast<size_t>(rows));
  for (const auto& l : parts.list_ids) ids.insert(ids.end(), l.begin(), l.end());
  const cudaStream_t stream = ctx.stream();
  VLAKE_RETURN_IF_ERROR(Upload(parts.centroids, &index->centroids, stream));
  VLAKE_RETURN_IF_ERROR(index->centroid_norms.Allocate(static_cast<size_t>(parts.nlist)));
  VLAKE_RETURN_IF_ERROR(RowSquaredNorms(index->centroids.get(), parts.nlist, parts.dim,
                                        index->centroid_norms.get(), stream));
  VLAKE_RETURN_IF_ERROR(Upload(offsets, &index->offsets, stream));
  VLAKE_RETURN_IF_ERROR(Upload(ids, &index->ids, stream));
  ids = std::vector<int64_t>();
  if (parts.is_pq()) {
    std::vector<uint8_t> codes;
    codes.reserve(static_cast<size_t>(rows) * parts.pq_m);
    for (const auto& c : parts.list_codes) codes.insert(codes.end(), c.begin(), c.end());
    VLAKE_RETURN_IF_ERROR(Upload(codes, &index->codes, stream));
    VLAKE_RETURN_IF_ERROR(Upload(parts.pq_codebooks, &index->codebooks, stream));
    if (raw.rows > 0) {
      if (raw.memory == Memory::kDevice) {
        index->raw = raw.data;  // the caller keeps it alive (algorithms.h)
      } else {
        const size_t count = static_cast<size_t>(rows) * parts.dim;
        VLAKE_RETURN_IF_ERROR(index->raw_copy.Allocate(count));
        VLAKE_CUDA_RETURN(cudaMemcpyAsync(index->raw_copy.get(), raw.data, count * 4,
                                          cudaMemcpyHostToDevice, stream));
        index->raw = index->raw_copy.get();
      }
      index->raw_rows = rows;
    }
  } else {
    std::vector<float> vectors;
    vectors.reserve(static_cast<size_t>(rows) * parts.dim);
    for (const auto& v : parts.list_vectors) vectors.insert(vectors.end(), v.begin(), v.end());
    VLAKE_RETURN_IF_ERROR(Upload(vectors, &index->vectors, stream));
  }
  VLAKE_RETURN_IF_ERROR(ctx.Sync());
  return std::unique_ptr<DeviceIndex>(std::move(index));
}

}  // namespace vlake::gpu
