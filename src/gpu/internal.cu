// Definitions of internal.h.
#include "gpu/internal.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

namespace vlake::gpu {
namespace {

constexpr int kWarp = 32;
constexpr int kRowThreads = 256;  // 8 warps, one row per warp
constexpr int64_t kStagingBytes = 32ll << 20;

__device__ __forceinline__ float WarpSum(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// One warp per row: lanes read consecutive floats, so each row is one coalesced sweep.
__global__ __launch_bounds__(kRowThreads) void RowSquaredNormsKernel(const float* x, int64_t rows,
                                                                     int dim, float* out) {
  int64_t row = static_cast<int64_t>(blockIdx.x) * (kRowThreads / kWarp) + threadIdx.x / kWarp;
  if (row >= rows) return;  // whole warps leave together
  int lane = threadIdx.x % kWarp;
  const float* r = x + row * dim;
  float acc = 0.0f;
  for (int j = lane; j < dim; j += kWarp) acc = fmaf(r[j], r[j], acc);
  acc = WarpSum(acc);
  if (lane == 0) out[row] = acc;
}

// vector::NormalizedCopy's arithmetic: squared norm in double, the row times the float
// 1/sqrt(norm) (the summation order differs, so the last bit of a coordinate may).
__global__ __launch_bounds__(kRowThreads) void NormalizeRowsKernel(float* x, int64_t rows,
                                                                   int dim) {
  int64_t row = static_cast<int64_t>(blockIdx.x) * (kRowThreads / kWarp) + threadIdx.x / kWarp;
  if (row >= rows) return;
  int lane = threadIdx.x % kWarp;
  float* r = x + row * dim;
  double acc = 0.0;
  for (int j = lane; j < dim; j += kWarp) acc += static_cast<double>(r[j]) * r[j];
  for (int o = kWarp / 2; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  if (acc > 0.0) {
    float inv = static_cast<float>(1.0 / sqrt(acc));
    for (int j = lane; j < dim; j += kWarp) r[j] *= inv;
  }
}

// blockIdx.x: destination row; threads stride over the row.
__global__ __launch_bounds__(kRowThreads) void GatherRowsKernel(const float* src, int dim,
                                                                const int64_t* rows, float* dst) {
  int64_t i = blockIdx.x;
  const float* s = src + rows[i] * dim;
  float* d = dst + i * dim;
  for (int j = threadIdx.x; j < dim; j += kRowThreads) d[j] = s[j];
}

unsigned RowGrid(int64_t rows) { return static_cast<unsigned>(CeilDiv(rows, kRowThreads / kWarp)); }

}  // namespace

Status GpuContext::Init() {
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  VLAKE_CUDA_RETURN(cudaGetDevice(&device_));
  VLAKE_CUDA_RETURN(cudaDeviceGetAttribute(&sms_, cudaDevAttrMultiProcessorCount, device_));
  VLAKE_RETURN_IF_ERROR(stream_.Create());
  VLAKE_RETURN_IF_ERROR(blas_.Create(stream_.get()));
  return Status::Ok();
}

Status GpuContext::InitOn(int device) {
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  VLAKE_RETURN_IF_ERROR(guard_.Set(device));
  return Init();
}

Result<int64_t> MemoryBudgetBytes() {
  size_t free_bytes = 0, total_bytes = 0;
  VLAKE_CUDA_RETURN(cudaMemGetInfo(&free_bytes, &total_bytes));
  int64_t budget = static_cast<int64_t>(static_cast<double>(free_bytes) * 0.85);
  if (const char* cap = std::getenv("VLAKE_GPU_MEMORY_BUDGET_BYTES"); cap != nullptr) {
    char* end = nullptr;
    long long v = std::strtoll(cap, &end, 10);
    if (end != cap && v > 0) budget = std::min<int64_t>(budget, v);
  }
  return budget;
}

Status CheckView(const MatrixView& view, const char* what) {
  if (view.rows < 0 || view.dim < 1 || view.dim > vector::kMaxDim) {
    return Status(Code::kInvalidArgument, std::string(what) + ": bad shape " +
                                              std::to_string(view.rows) + " x " +
                                              std::to_string(view.dim));
  }
  if (view.rows > 0 && view.data == nullptr) {
    return Status(Code::kInvalidArgument, std::string(what) + ": null data");
  }
  return Status::Ok();
}

Status GemmNT(cublasHandle_t blas, MathMode math, int64_t m, int64_t n, int64_t d, const float* a,
              int64_t lda, const float* b, int64_t ldb, float alpha, float beta, float* c,
              int64_t ldc) {
  if (m <= 0 || n <= 0) return Status::Ok();
  for (int64_t v : {m, n, d, lda, ldb, ldc}) {
    if (v > INT_MAX) return Status(Code::kInternal, "GEMM dimension exceeds cuBLAS's int range");
  }
  // Row-major C = A B^T is column-major C^T (n x m) = B (n x d, i.e. column-major d x n
  // transposed) times A^T (column-major d x m).
  cublasComputeType_t compute =
      math == MathMode::kTf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  VLAKE_CUBLAS_RETURN(cublasGemmEx(
      blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m), static_cast<int>(d),
      &alpha, b, CUDA_R_32F, static_cast<int>(ldb), a, CUDA_R_32F, static_cast<int>(lda), &beta, c,
      CUDA_R_32F, static_cast<int>(ldc), compute, CUBLAS_GEMM_DEFAULT));
  return Status::Ok();
}

Status RowSquaredNorms(const float* x, int64_t rows, int dim, float* out, cudaStream_t stream) {
  if (rows <= 0) return Status::Ok();
  RowSquaredNormsKernel<<<RowGrid(rows), kRowThreads, 0, stream>>>(x, rows, dim, out);
  VLAKE_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

Status NormalizeRows(float* x, int64_t rows, int dim, cudaStream_t stream) {
  if (rows <= 0) return Status::Ok();
  NormalizeRowsKernel<<<RowGrid(rows), kRowThreads, 0, stream>>>(x, rows, dim);
  VLAKE_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

Status GatherRowsDevice(const float* src, int dim, const int64_t* rows, int64_t count, float* dst,
                        cudaStream_t stream) {
  if (count <= 0) return Status::Ok();
  if (count > INT_MAX) return Status(Code::kInternal, "gather: too many rows for one launch");
  GatherRowsKernel<<<static_cast<unsigned>(count), kRowThreads, 0, stream>>>(src, dim, rows, dst);
  VLAKE_CUDA_RETURN(cudaGetLastError());
  return Status::Ok();
}

Status GatherRows(const MatrixView& src, const std::vector<int64_t>& rows, cudaStream_t stream,
                  AsyncBuffer<float>* dst) {
  const int64_t count = static_cast<int64_t>(rows.size());
  const size_t row_floats = static_cast<size_t>(src.dim);
  VLAKE_RETURN_IF_ERROR(dst->Allocate(static_cast<size_t>(count) * row_floats, stream));
  if (count == 0) return Status::Ok();
  if (src.memory == Memory::kDevice) {
    AsyncBuffer<int64_t> idx;
    VLAKE_RETURN_IF_ERROR(idx.Allocate(rows.size(), stream));
    // From pageable memory the copy is staged before the call returns, so `rows` may go.
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(idx.get(), rows.data(), rows.size() * sizeof(int64_t),
                                      cudaMemcpyHostToDevice, stream));
    return GatherRowsDevice(src.data, src.dim, idx.get(), count, dst->get(), stream);
  }
  // Host: gather chunks into a bounded host buffer; each pageable copy is staged by the driver
  // before cudaMemcpyAsync returns, so the buffer can be refilled right away.
  const int64_t chunk = RowsWithin(kStagingBytes, static_cast<int64_t>(row_floats * 4), count);
  std::vector<float> buf(static_cast<size_t>(chunk) * row_floats);
  for (int64_t begin = 0; begin < count; begin += chunk) {
    int64_t n = std::min(chunk, count - begin);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(buf.data() + static_cast<size_t>(i) * row_floats,
                  src.data + static_cast<size_t>(rows[begin + i]) * row_floats,
                  row_floats * sizeof(float));
    }
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(dst->get() + static_cast<size_t>(begin) * row_floats,
                                      buf.data(), static_cast<size_t>(n) * row_floats * 4,
                                      cudaMemcpyHostToDevice, stream));
  }
  return Status::Ok();
}

RowBatcher::~RowBatcher() {
  // Pinned staging and batch buffers must not be freed under an in-flight copy or kernel.
  if (copy_stream_.get() != nullptr) cudaStreamSynchronize(copy_stream_.get());
  if (stream_ != nullptr && owned_) cudaStreamSynchronize(stream_);
}

Status RowBatcher::Init(const MatrixView& view, int64_t max_rows, cudaStream_t stream,
                        RowTransform transform) {
  view_ = view;
  stream_ = stream;
  normalize_ = transform == RowTransform::kNormalize;
  owned_ = view.memory == Memory::kHost || normalize_;
  if (!owned_ || max_rows <= 0) return Status::Ok();
  const int64_t row_bytes = static_cast<int64_t>(view.dim) * 4;
  chunk_rows_ = RowsWithin(kStagingBytes, row_bytes, max_rows);
  VLAKE_RETURN_IF_ERROR(copy_stream_.Create());
  for (int i = 0; i < 2; ++i) {
    VLAKE_RETURN_IF_ERROR(staged_free_[i].Create());
    VLAKE_RETURN_IF_ERROR(batch_ready_[i].Create());
    VLAKE_RETURN_IF_ERROR(batch_used_[i].Create());
    if (view.memory == Memory::kHost) {
      VLAKE_RETURN_IF_ERROR(staging_[i].Allocate(static_cast<size_t>(chunk_rows_) * view.dim));
    }
    VLAKE_RETURN_IF_ERROR(batch_[i].Allocate(static_cast<size_t>(max_rows) * view.dim));
  }
  return Status::Ok();
}

Result<const float*> RowBatcher::Get(int64_t begin, int64_t rows) {
  const size_t dim = static_cast<size_t>(view_.dim);
  if (begin < 0 || rows < 0 || begin + rows > view_.rows) {
    return Status(Code::kInternal, "RowBatcher: rows out of range");
  }
  if (!owned_) return view_.data + static_cast<size_t>(begin) * dim;
  if (rows > static_cast<int64_t>(batch_[0].size() / dim)) {
    return Status(Code::kInternal, "RowBatcher: batch larger than announced");
  }
  double t0 = NowSeconds();
  // Everything the caller enqueued so far may use the previous batch: mark its end.
  if (previous_batch_ >= 0) {
    VLAKE_CUDA_RETURN(cudaEventRecord(batch_used_[previous_batch_].get(), stream_));
    used_recorded_[previous_batch_] = true;
  }
  const int slot = next_batch_;
  next_batch_ ^= 1;
  if (used_recorded_[slot]) {
    VLAKE_CUDA_RETURN(cudaStreamWaitEvent(copy_stream_.get(), batch_used_[slot].get(), 0));
  }
  float* dst = batch_[slot].get();
  if (view_.memory == Memory::kDevice) {
    VLAKE_CUDA_RETURN(cudaMemcpyAsync(dst, view_.data + static_cast<size_t>(begin) * dim,
                                      static_cast<size_t>(rows) * dim * sizeof(float),
                                      cudaMemcpyDeviceToDevice, copy_stream_.get()));
  } else {
    for (int64_t off = 0; off < rows; off += chunk_rows_) {
      const int64_t n = std::min(chunk_rows_, rows - off);
      const int c = next_chunk_;
      next_chunk_ ^= 1;
      VLAKE_CUDA_RETURN(cudaEventSynchronize(staged_free_[c].get()));
      const size_t bytes = static_cast<size_t>(n) * dim * sizeof(float);
      std::memcpy(staging_[c].get(), view_.data + static_cast<size_t>(begin + off) * dim, bytes);
      VLAKE_CUDA_RETURN(cudaMemcpyAsync(dst + static_cast<size_t>(off) * dim, staging_[c].get(),
                                        bytes, cudaMemcpyHostToDevice, copy_stream_.get()));
      VLAKE_CUDA_RETURN(cudaEventRecord(staged_free_[c].get(), copy_stream_.get()));
    }
  }
  if (normalize_) {
    VLAKE_RETURN_IF_ERROR(NormalizeRows(dst, rows, view_.dim, copy_stream_.get()));
  }
  VLAKE_CUDA_RETURN(cudaEventRecord(batch_ready_[slot].get(), copy_stream_.get()));
  VLAKE_CUDA_RETURN(cudaStreamWaitEvent(stream_, batch_ready_[slot].get(), 0));
  previous_batch_ = slot;
  h2d_seconds_ += NowSeconds() - t0;
  return static_cast<const float*>(dst);
}

}  // namespace vlake::gpu
