// Private to src/gpu (.cu files only): the conversions of CUDA runtime and cuBLAS errors into
// Status (the one place each foreign error source is converted, style #2) and move-only RAII
// handles for device memory, pinned host memory, streams, events and cuBLAS handles.
//
// Thread-safety: handles are owned by one thread at a time; the CUDA calls they wrap are
// thread-safe.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <utility>

#include "vlake/status.h"

namespace vlake::gpu {

inline Status CudaStatus(const char* what, cudaError_t err) {
  Code code = err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver ||
                      err == cudaErrorInitializationError
                  ? Code::kUnavailable
                  : Code::kInternal;
  return Status(code, std::string(what) + ": " + cudaGetErrorString(err));
}

inline Status CublasStatus(const char* what, cublasStatus_t st) {
  Code code = Code::kInternal;
  return Status(code,
                std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(st)));
}

#define VLAKE_CUDA_RETURN(call)                                                                  \
  do {                                                                                           \
    cudaError_t vlake_cuda_err_ = (call);                                                        \
    if (vlake_cuda_err_ != cudaSuccess) return ::vlake::gpu::CudaStatus(#call, vlake_cuda_err_); \
  } while (0)

#define VLAKE_CUBLAS_RETURN(call)                                 \
  do {                                                            \
    cublasStatus_t vlake_cublas_st_ = (call);                     \
    if (vlake_cublas_st_ != CUBLAS_STATUS_SUCCESS)                \
      return ::vlake::gpu::CublasStatus(#call, vlake_cublas_st_); \
  } while (0)

// Where a CudaArray lives: device memory (cudaMalloc) or page-locked host memory
// (cudaHostAlloc: the source/target of truly asynchronous copies).
struct DeviceMemory {
  static cudaError_t Alloc(void** p, size_t bytes) { return cudaMalloc(p, bytes); }
  static void Free(void* p) { cudaFree(p); }
};
struct PinnedMemory {
  static cudaError_t Alloc(void** p, size_t bytes) {
    return cudaHostAlloc(p, bytes, cudaHostAllocDefault);
  }
  static void Free(void* p) { cudaFreeHost(p); }
};

// `count` T in Space's memory, move-only. Invariant: ptr_ == nullptr iff count_ == 0.
template <typename T, typename Space>
class CudaArray {
 public:
  CudaArray() = default;
  ~CudaArray() { Reset(); }
  CudaArray(CudaArray&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  CudaArray& operator=(CudaArray&& o) noexcept {
    if (this != &o) {
      Reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  CudaArray(const CudaArray&) = delete;
  CudaArray& operator=(const CudaArray&) = delete;

  // Allocates (uninitialized); kInternal "out of memory" when the GPU / pinned pool is full.
  Status Allocate(size_t count) {
    Reset();
    if (count == 0) return Status::Ok();
    void* p = nullptr;
    VLAKE_CUDA_RETURN(Space::Alloc(&p, count * sizeof(T)));
    ptr_ = static_cast<T*>(p);
    count_ = count;
    return Status::Ok();
  }
  void Reset() {
    if (ptr_ != nullptr) Space::Free(ptr_);
    ptr_ = nullptr;
    count_ = 0;
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }
  size_t bytes() const { return count_ * sizeof(T); }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

template <typename T>
using DeviceArray = CudaArray<T, DeviceMemory>;
template <typename T>
using PinnedArray = CudaArray<T, PinnedMemory>;

class Stream {
 public:
  Stream() = default;
  ~Stream() {
    if (s_ != nullptr) cudaStreamDestroy(s_);
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Status Create() {
    VLAKE_CUDA_RETURN(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    return Status::Ok();
  }
  cudaStream_t get() const { return s_; }
  Status Sync() const {
    VLAKE_CUDA_RETURN(cudaStreamSynchronize(s_));
    return Status::Ok();
  }

 private:
  cudaStream_t s_ = nullptr;
};

class Event {
 public:
  Event() = default;
  ~Event() {
    if (e_ != nullptr) cudaEventDestroy(e_);
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Status Create(unsigned flags = cudaEventDisableTiming) {
    VLAKE_CUDA_RETURN(cudaEventCreateWithFlags(&e_, flags));
    return Status::Ok();
  }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_ = nullptr;
};

// A cuBLAS handle bound to a stream, with the math mode set per call site.
class Blas {
 public:
  Blas() = default;
  ~Blas() {
    if (h_ != nullptr) cublasDestroy(h_);
  }
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  Status Create(cudaStream_t stream) {
    VLAKE_CUBLAS_RETURN(cublasCreate(&h_));
    VLAKE_CUBLAS_RETURN(cublasSetStream(h_, stream));
    return Status::Ok();
  }
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

// Status::Ok() when a GPU is usable, else kUnavailable "no GPU: ..." (same wording as
// ListDevices).
inline Status RequireGpu() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return Status(Code::kUnavailable, std::string("no GPU: ") + cudaGetErrorString(err));
  }
  if (count == 0) return Status(Code::kUnavailable, "no GPU: no CUDA device found");
  return Status::Ok();
}

}  // namespace vlake::gpu
