// Host helpers shared by the .cu files of src/gpu (k-means, brute force, IVF, CAGRA): a
// per-call GPU context, stream-ordered scratch buffers, the memory budget, row-major GEMM,
// row norms, row gathers and the batcher that streams a host matrix to the GPU through pinned
// buffers. Private to src/gpu; includes CUDA headers, so only .cu files (or .cc files compiled
// with the CUDA include path) may include it. Definitions in internal.cu.
//
// Thread-safety: each object belongs to one host thread at a time; the functions only enqueue
// work on the stream they are given.
//
// Ownership and ordering conventions used throughout src/gpu:
// - Scratch memory is an AsyncBuffer: allocated and freed stream-ordered (cudaMallocAsync), so
//   an early `return` on an error path frees it without a device-wide synchronization, and
//   the free happens after the work already enqueued that uses it. Declare the GpuContext (the
//   stream) before the buffers so that it outlives them.
// - Long-lived memory (DeviceIndex contents) is a DeviceArray (cuda_util.cuh).
// - Host memory a copy may still be reading (pinned staging) is owned by an object whose
//   destructor synchronizes the stream first (RowBatcher).
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "gpu/algorithms.h"
#include "gpu/cuda_util.cuh"
#include "vlake/status.h"

namespace vlake::gpu {

// Makes `device` current for the lifetime of the guard and restores the previous one, so a
// DeviceIndex uploaded to GPU n serves Search calls from any thread.
class DeviceGuard {
 public:
  DeviceGuard() = default;
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  Status Set(int device) {
    VLAKE_CUDA_RETURN(cudaGetDevice(&previous_));
    if (previous_ != device) {
      VLAKE_CUDA_RETURN(cudaSetDevice(device));
      changed_ = true;
    }
    return Status::Ok();
  }

 private:
  int previous_ = 0;
  bool changed_ = false;
};

// Device memory of `count` T allocated and freed in the order of `stream` (cudaMallocAsync /
// cudaFreeAsync from the device's default pool). The stream must outlive the buffer.
// Invariant: ptr_ == nullptr iff count_ == 0.
template <typename T>
class AsyncBuffer {
 public:
  AsyncBuffer() = default;
  ~AsyncBuffer() { Reset(); }
  AsyncBuffer(AsyncBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)),
        count_(std::exchange(o.count_, 0)),
        stream_(o.stream_) {}
  AsyncBuffer& operator=(AsyncBuffer&& o) noexcept {
    if (this != &o) {
      Reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
      stream_ = o.stream_;
    }
    return *this;
  }
  AsyncBuffer(const AsyncBuffer&) = delete;
  AsyncBuffer& operator=(const AsyncBuffer&) = delete;

  // Uninitialized; replaces (frees) any previous allocation.
  Status Allocate(size_t count, cudaStream_t stream) {
    Reset();
    stream_ = stream;
    if (count == 0) return Status::Ok();
    void* p = nullptr;
    VLAKE_CUDA_RETURN(cudaMallocAsync(&p, count * sizeof(T), stream));
    ptr_ = static_cast<T*>(p);
    count_ = count;
    return Status::Ok();
  }
  // Allocates (when smaller than `count`) and zero-fills the first `count` elements.
  Status AllocateZeroed(size_t count, cudaStream_t stream) {
    VLAKE_RETURN_IF_ERROR(Allocate(count, stream));
    if (count > 0) VLAKE_CUDA_RETURN(cudaMemsetAsync(ptr_, 0, count * sizeof(T), stream));
    return Status::Ok();
  }
  void Reset() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
    ptr_ = nullptr;
    count_ = 0;
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
  cudaStream_t stream_ = nullptr;
};

// What one public call works with: the current device, a stream and a cuBLAS handle on it.
// Destruction synchronizes the stream (work of a failed call must not outlive the buffers and
// host arrays it uses), then releases handle and stream.
class GpuContext {
 public:
  GpuContext() = default;
  ~GpuContext() {
    if (stream_.get() != nullptr) cudaStreamSynchronize(stream_.get());
  }
  GpuContext(const GpuContext&) = delete;
  GpuContext& operator=(const GpuContext&) = delete;

  // RequireGpu, then stream and handle on the current device.
  Status Init();
  // Like Init on `device`, which stays current until the context is destroyed.
  Status InitOn(int device);

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_.get(); }
  cublasHandle_t blas() const { return blas_.get(); }
  int multiprocessors() const { return sms_; }
  Status Sync() const { return stream_.Sync(); }

 private:
  DeviceGuard guard_;
  int device_ = 0;
  int sms_ = 1;
  Stream stream_;
  Blas blas_;
};

// Bytes of device memory one call may plan to use: 85% of the free memory, further capped by
// the environment variable VLAKE_GPU_MEMORY_BUDGET_BYTES when set (tests use it to force the
// streaming paths on a large GPU).
Result<int64_t> MemoryBudgetBytes();

// Wall clock for stats.
inline double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// InvalidArgument unless the view is a usable rows x dim matrix (rows >= 0, 1 <= dim <=
// kMaxDim, data non-null when rows > 0). `what` names it in the message.
Status CheckView(const MatrixView& view, const char* what);

// Row-major C (m x n, leading dimension ldc) = alpha * A * B^T + beta * C, with A m x d (lda)
// and B n x d (ldb) row-major, all in device memory; FP32 or TF32 tensor-core math. Every
// dimension and leading dimension must fit in int (cuBLAS's 32-bit API); callers tile.
Status GemmNT(cublasHandle_t blas, MathMode math, int64_t m, int64_t n, int64_t d, const float* a,
              int64_t lda, const float* b, int64_t ldb, float alpha, float beta, float* c,
              int64_t ldc);

// out[i] = ||x_i||^2 for rows x dim row-major device x.
Status RowSquaredNorms(const float* x, int64_t rows, int dim, float* out, cudaStream_t stream);

// Scales each row of x to unit length in place (zero rows stay zero), with the arithmetic of
// vector::NormalizedCopy (COSINE data is normalized the way the CPU engine does it).
Status NormalizeRows(float* x, int64_t rows, int dim, cudaStream_t stream);

// dst[i] = src[rows[i]] (device src, dst and rows; count rows of dim floats).
Status GatherRowsDevice(const float* src, int dim, const int64_t* rows, int64_t count, float* dst,
                        cudaStream_t stream);

// The rows `rows` (host indices, any order) of `src` (host or device) as a count x dim device
// matrix in `dst` (allocated here): a device gather, or a host gather uploaded in one copy.
Status GatherRows(const MatrixView& src, const std::vector<int64_t>& rows, cudaStream_t stream,
                  AsyncBuffer<float>* dst);

// What RowBatcher does to each batch on the device.
enum class RowTransform : uint8_t {
  kNone,
  kNormalize,  // unit-length rows (NormalizeRows): COSINE builders on caller data
};

// Streams consecutive row ranges of a matrix to the device. For a device matrix without a
// transform, Get returns a pointer into it. Otherwise the rows are copied into one of two
// device batch buffers (double buffering) on a copy stream of its own: host rows through two
// pinned staging chunks, so the CPU memcpy of the next chunk, the DMA and the caller's kernels
// on the previous batch overlap; the transform runs on the copy stream too; the caller's stream
// waits for the batch with an event, never the host.
//
// The pointer from Get stays valid for work the caller enqueues on `stream` until the second
// Get after it (the buffer is then refilled after that work, in stream order).
class RowBatcher {
 public:
  RowBatcher() = default;
  ~RowBatcher();
  RowBatcher(const RowBatcher&) = delete;
  RowBatcher& operator=(const RowBatcher&) = delete;

  // max_rows: the largest `rows` Get will be asked for.
  Status Init(const MatrixView& view, int64_t max_rows, cudaStream_t stream,
              RowTransform transform = RowTransform::kNone);
  // Rows [begin, begin + rows) on the device.
  Result<const float*> Get(int64_t begin, int64_t rows);
  // True when Get copies (host rows, or a transform).
  bool owned() const { return owned_; }
  // Host seconds spent staging and issuing copies (h2d_seconds of BuildStats).
  double h2d_seconds() const { return h2d_seconds_; }

 private:
  MatrixView view_;
  cudaStream_t stream_ = nullptr;
  bool normalize_ = false;
  bool owned_ = false;
  Stream copy_stream_;
  Event staged_free_[2];  // staging chunk i may be overwritten
  Event batch_ready_[2];  // device batch buffer i holds its rows
  Event batch_used_[2];   // the caller's work on device batch buffer i is done
  bool used_recorded_[2] = {false, false};
  PinnedArray<float> staging_[2];
  DeviceArray<float> batch_[2];
  int64_t chunk_rows_ = 0;
  int next_chunk_ = 0;
  int next_batch_ = 0;
  int previous_batch_ = -1;
  double h2d_seconds_ = 0;
};

// ---- k-means building blocks (kmeans.cu) ----

// Nearest centroid (KMeansPredict's rule: min L2, or max inner product for kIP/kCosine; ties to
// the smaller centroid) of `rows` device rows x, into device `labels`. centroid_norms: the
// centroids' squared norms (RowSquaredNorms). Tiles the GEMM so that its output stays within a
// quarter of `budget` bytes.
Status AssignNearest(const GpuContext& ctx, vector::Metric metric, MathMode math, const float* x,
                     int64_t rows, int dim, const float* centroids, const float* centroid_norms,
                     int k, int32_t* labels, int64_t budget);

// KMeansPredict on ctx with device centroids and an explicit batch size; host data is streamed
// in batch_rows batches. Adds host staging seconds to *h2d_seconds (nullable).
Status PredictLabels(const GpuContext& ctx, vector::Metric metric, const float* centroids, int k,
                     const MatrixView& data, MathMode math, int64_t batch_rows, int32_t* labels,
                     double* h2d_seconds);

// Whether the rows handed to a COSINE builder are unit length already (a normalized copy the
// caller made) or must be normalized where they are read.
enum class RowScale : uint8_t { kAsGiven, kUnitLength };

// KMeansFit on ctx, leaving the k x dim centroids on the device (allocated into *centroids).
// stats (nullable) gets iterations, gemm_flops and inertia added/set, not seconds.
Status FitCentroids(const GpuContext& ctx, const KMeansParams& params, vector::Metric metric,
                    const MatrixView& data, RowScale scale, AsyncBuffer<float>* centroids,
                    KMeansStats* stats, double* h2d_seconds);

// Largest batch of rows (at least 1, at most `rows`) such that batch * bytes_per_row <= bytes.
inline int64_t RowsWithin(int64_t bytes, int64_t bytes_per_row, int64_t rows) {
  int64_t b = bytes_per_row > 0 ? bytes / bytes_per_row : rows;
  if (b < 1) b = 1;
  return b < rows ? b : rows;
}

inline int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace vlake::gpu
