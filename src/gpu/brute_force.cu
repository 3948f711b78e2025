// Exact k-nearest-neighbour search on the GPU: BruteForceKnn and UploadFlat.
//
// Design (why): a GEMM computes a tile of -2 q.b (L2) or q.b (IP) for a batch of queries
// against a tile of base rows; SelectTopK ranks the tile with ||b||^2 added per column (the
// ||q||^2 term is constant per row, so it is added to the k outputs only) and writes the tile's
// top-k next to the running top-k of the batch ([running k | tile k] per row), and an in-place
// MergeTopK folds them. The full nq x nb distance matrix never exists; tiles are sized from the
// free memory. Base rows that do not fit are streamed tile by tile through pinned buffers
// (RowBatcher), once per query batch, so query batches are made as large as memory allows then.
//
// Distances: squared L2 = ||q||^2 + ||b||^2 - 2 q.b clamped at 0 (FAISS's GEMM path does the
// same), or inner product. COSINE is inner product over the caller's data: the caller
// normalizes base and queries (the vectordb stores COSINE vectors normalized).
// Tie order: by distance, then by smaller label (topk.cuh).
#include <algorithm>
#include <cfloat>
#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "gpu/algorithms.h"
#include "gpu/internal.h"
#include "gpu/topk.cuh"

namespace vlake::gpu {
namespace {

SelectOrder OrderOf(vector::Metric metric) {
  return metric == vector::Metric::kL2 ? SelectOrder::kSmallest : SelectOrder::kLargest;
}

void FillEmpty(vector::Metric metric, int64_t count, int64_t* labels, float* distances) {
  std::fill(labels, labels + count, int64_t{-1});
  std::fill(distances, distances + count, metric == vector::Metric::kL2 ? FLT_MAX : -FLT_MAX);
}

Status CheckKnnArgs(const MatrixView& base, const MatrixView& queries, int k, int64_t* labels,
                    float* distances) {
  VLAKE_RETURN_IF_ERROR(CheckView(base, "base"));
  VLAKE_RETURN_IF_ERROR(CheckView(queries, "queries"));
  if (base.dim != queries.dim) {
    return Status(Code::kInvalidArgument, "queries have dim " + std::to_string(queries.dim) +
                                              ", base has " + std::to_string(base.dim));
  }
  if (k < 1 || k > kMaxGpuTopK) {
    return Status(Code::kInvalidArgument,
                  "k must be in 1.." + std::to_string(kMaxGpuTopK) + ", got " + std::to_string(k));
  }
  if (queries.rows > 0 && (labels == nullptr || distances == nullptr)) {
    return Status(Code::kInvalidArgument, "null output arrays");
  }
  return Status::Ok();
}

// The search itself. `base` is a device matrix (with its squared norms in base_norms, or
// nullptr to compute them per tile) or a host matrix to stream.
Status KnnSearch(const GpuContext& ctx, vector::Metric metric, const MatrixView& base,
                 const float* base_norms, const MatrixView& queries, int k, MathMode math,
                 int64_t* labels, float* distances, int64_t budget) {
  const int64_t nq = queries.rows;
  const int64_t nb = base.rows;
  const int dim = base.dim;
  const bool l2 = metric == vector::Metric::kL2;
  const SelectOrder order = OrderOf(metric);
  const bool streaming = base.memory == Memory::kHost;
  const cudaStream_t stream = ctx.stream();

  // Query batch: running results [k | k] x 12 bytes, the queries and their norms, within an
  // eighth of the budget; capped when the base is resident (a larger batch only shrinks tiles).
  const int64_t per_query = 2ll * k * 12 + static_cast<int64_t>(dim) * 4 + 8;
  int64_t qb = RowsWithin(budget / 8, per_query, nq);
  if (!streaming) qb = std::min<int64_t>(qb, 8192);
  // Base tile: the GEMM output (qb x tile) within a quarter of the budget (at most 1 GiB); a
  // streamed tile's two staging buffers within another eighth.
  const int64_t tile_bytes = std::clamp<int64_t>(budget / 4, 1 << 20, 1ll << 30);
  int64_t tile = RowsWithin(tile_bytes, qb * 4, nb);
  if (streaming) tile = std::min(tile, RowsWithin(budget / 16, static_cast<int64_t>(dim) * 4, nb));
  tile = std::min<int64_t>(tile, INT_MAX / 4);

  AsyncBuffer<float> q_buf, q_norms, b_norms, dist, res_d;
  AsyncBuffer<int64_t> res_l;
  if (queries.memory == Memory::kHost) {
    VLAKE_RETURN_IF_ERROR(q_buf.Allocate(static_cast<size_t>(qb) * dim, stream));
  }
  VLAKE_RETURN_IF_ERROR(q_norms.Allocate(static_cast<size_t>(qb), stream));
  if (base_norms == nullptr) {
    VLAKE_RETURN_IF_ERROR(b_norms.Allocate(static_cast<size_t>(tile), stream));
  }
  VLAKE_RETURN_IF_ERROR(dist.Allocate(static_cast<size_t>(qb) * tile, stream));
  VLAKE_RETURN_IF_ERROR(res_d.Allocate(static_cast<size_t>(qb) * 2 * k, stream));
  VLAKE_RETURN_IF_ERROR(res_l.Allocate(static_cast<size_t>(qb) * 2 * k, stream));
  RowBatcher batcher;
  VLAKE_RETURN_IF_ERROR(batcher.Init(base, tile, stream));

  const int64_t res_ld = 2ll * k;
  for (int64_t q0 = 0; q0 < nq; q0 += qb) {
    const int64_t nqb = std::min(qb, nq - q0);
    const float* q = queries.data + q0 * dim;
    if (queries.memory == Memory::kHost) {
      VLAKE_CUDA_RETURN(cudaMemcpyAsync(q_buf.get(), q, static_cast<size_t>(nqb) * dim * 4,
                                        cudaMemcpyHostToDevice, stream));
      q = q_buf.get();
    }
    if (l2) VLAKE_RETURN_IF_ERROR(RowSquaredNorms(q, nqb, dim, q_norms.get(), stream));
    for (int64_t b0 = 0; b0 < nb; b0 += tile) {
      const int64_t nbt = std::min(tile, nb - b0);
      VLAKE_ASSIGN_OR_RETURN(const float* b, batcher.Get(b0, nbt));
      const float* bn = nullptr;
      if (l2) {
        if (base_norms != nullptr) {
          bn = base_norms + b0;
        } else {
          VLAKE_RETURN_IF_ERROR(RowSquaredNorms(b, nbt, dim, b_norms.get(), stream));
          bn = b_norms.get();
        }
      }
      VLAKE_RETURN_IF_ERROR(GemmNT(ctx.blas(), math, nqb, nbt, dim, q, dim, b, dim,
                                   l2 ? -2.0f : 1.0f, 0.0f, dist.get(), nbt));
      const bool first = b0 == 0;
      TopKInput in;
      in.values = dist.get();
      in.rows = nqb;
      in.cols = nbt;
      in.ld = nbt;
      in.col_add = bn;
      in.label_offset = b0;
      TopKOutput out;
      out.distances = res_d.get() + (first ? 0 : k);
      out.labels = res_l.get() + (first ? 0 : k);
      out.ld = res_ld;
      out.row_add = l2 ? q_norms.get() : nullptr;
      out.clamp_at_zero = l2;
      VLAKE_RETURN_IF_ERROR(SelectTopK(in, k, order, out, stream));
      if (!first) {
        TopKOutput merged;
        merged.distances = res_d.get();
        merged.labels = res_l.get();
        merged.ld = res_ld;
        VLAKE_RETURN_IF_ERROR(
            MergeTopK(res_d.get(), res_l.get(), nqb, 2, k, res_ld, k, order, merged, stream));
      }
    }
    // Pageable destinations: these copies complete before the calls return.
    VLAKE_CUDA_RETURN(cudaMemcpy2DAsync(distances + q0 * k, static_cast<size_t>(k) * 4, res_d.get(),
                                        static_cast<size_t>(res_ld) * 4, static_cast<size_t>(k) * 4,
                                        static_cast<size_t>(nqb), cudaMemcpyDeviceToHost, stream));
    VLAKE_CUDA_RETURN(cudaMemcpy2DAsync(labels + q0 * k, static_cast<size_t>(k) * 8, res_l.get(),
                                        static_cast<size_t>(res_ld) * 8, static_cast<size_t>(k) * 8,
                                        static_cast<size_t>(nqb), cudaMemcpyDeviceToHost, stream));
  }
  return ctx.Sync();
}

// UploadFlat's index: the base rows and their squared norms on one GPU.
class FlatDeviceIndex final : public DeviceIndex {
 public:
  FlatDeviceIndex(vector::Metric metric, int device, int64_t rows, int dim, DeviceArray<float> base,
                  DeviceArray<float> norms)
      : metric_(metric),
        device_(device),
        rows_(rows),
        dim_(dim),
        base_(std::move(base)),
        norms_(std::move(norms)) {}

  int64_t size() const override { return rows_; }
  int dim() const override { return dim_; }
  int64_t device_bytes() const override {
    return static_cast<int64_t>(base_.bytes() + norms_.bytes());
  }

  Status Search(const MatrixView& queries, const GpuSearchParams& params, int64_t* labels,
                float* distances) const override {
    MatrixView base{base_.get(), rows_, dim_, Memory::kDevice};
    VLAKE_RETURN_IF_ERROR(CheckKnnArgs(base, queries, params.k, labels, distances));
    if (queries.rows == 0) return Status::Ok();
    if (rows_ == 0) {
      FillEmpty(metric_, queries.rows * params.k, labels, distances);
      return Status::Ok();
    }
    GpuContext ctx;
    VLAKE_RETURN_IF_ERROR(ctx.InitOn(device_));
    VLAKE_ASSIGN_OR_RETURN(int64_t budget, MemoryBudgetBytes());
    // Search is exact FP32: TF32 would reorder near neighbours.
    return KnnSearch(ctx, metric_, base, metric_ == vector::Metric::kL2 ? norms_.get() : nullptr,
                     queries, params.k, MathMode::kFp32, labels, distances, budget);
  }

 private:
  vector::Metric metric_;
  int device_;
  int64_t rows_;
  int dim_;
  DeviceArray<float> base_;
  DeviceArray<float> norms_;
};

}  // namespace

Status BruteForceKnn(vector::Metric metric, const MatrixView& base, const MatrixView& queries,
                     int k, MathMode math, int64_t* labels, float* distances) {
  VLAKE_RETURN_IF_ERROR(CheckKnnArgs(base, queries, k, labels, distances));
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  if (queries.rows == 0) return Status::Ok();
  if (base.rows == 0) {
    FillEmpty(metric, queries.rows * k, labels, distances);
    return Status::Ok();
  }
  GpuContext ctx;
  VLAKE_RETURN_IF_ERROR(ctx.Init());
  VLAKE_ASSIGN_OR_RETURN(int64_t budget, MemoryBudgetBytes());
  MatrixView b = base;
  AsyncBuffer<float> copy, norms;
  const int64_t base_bytes = base.rows * static_cast<int64_t>(base.dim) * 4;
  if (base.memory == Memory::kHost && base_bytes <= budget / 2) {
    VLAKE_RETURN_IF_ERROR(copy.Allocate(static_cast<size_t>(base.rows) * base.dim, ctx.stream()));
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(copy.get(), base.data, static_cast<size_t>(base_bytes),
                                      cudaMemcpyHostToDevice, ctx.stream()));
    b.data = copy.get();
    b.memory = Memory::kDevice;
    budget -= base_bytes;
  }
  if (b.memory == Memory::kDevice && metric == vector::Metric::kL2) {
    VLAKE_RETURN_IF_ERROR(norms.Allocate(static_cast<size_t>(b.rows), ctx.stream()));
    VLAKE_RETURN_IF_ERROR(RowSquaredNorms(b.data, b.rows, b.dim, norms.get(), ctx.stream()));
  }
  return KnnSearch(ctx, metric, b, norms.get(), queries, k, math, labels, distances, budget);
}

Result<std::unique_ptr<DeviceIndex>> UploadFlat(vector::Metric metric, const MatrixView& base) {
  VLAKE_RETURN_IF_ERROR(CheckView(base, "base"));
  GpuContext ctx;
  VLAKE_RETURN_IF_ERROR(ctx.Init());
  DeviceArray<float> data, norms;
  const size_t count = static_cast<size_t>(base.rows) * base.dim;
  VLAKE_RETURN_IF_ERROR(data.Allocate(count));
  VLAKE_RETURN_IF_ERROR(norms.Allocate(static_cast<size_t>(base.rows)));
  if (count > 0) {
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(
        data.get(), base.data, count * sizeof(float),
        base.memory == Memory::kHost ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice,
        ctx.stream()));
    VLAKE_RETURN_IF_ERROR(
        RowSquaredNorms(data.get(), base.rows, base.dim, norms.get(), ctx.stream()));
  }
  VLAKE_RETURN_IF_ERROR(ctx.Sync());
  return std::unique_ptr<DeviceIndex>(new FlatDeviceIndex(metric, ctx.device(), base.rows, base.dim,
                                                          std::move(data), std::move(norms)));
}

}  // namespace vlake::gpu
