// The cuBLAS functions the vlake kernels' host code calls, for the CPU emulation (cuda_emu.h).
// cublasGemmEx (FP32 data) accumulates in FP32 as the GPU does, in plain k order; with
// CUBLAS_COMPUTE_32F_FAST_TF32 each input is first rounded to TF32 (10 mantissa bits, round to
// nearest, ties away from zero: the conversion of the tensor cores' cvt.rna.tf32.f32), so code
// that would lose accuracy on TF32 tensor cores loses it here too. The matrices must be inside
// device allocations (emu_runtime.h); anything else is a violation.
#include <cublas_v2.h>

#include <cstdint>
#include <cstring>

#include "gpu/emulation/emu_runtime.h"

namespace {

float RoundToTf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;  // Inf, NaN
  u += 0x1000u;  // half of the 13 dropped bits: nearest, ties away from zero
  u &= 0xffffe000u;
  std::memcpy(&x, &u, 4);
  return x;
}

bool InDevice(const void* p, size_t bytes, const char* what) {
  bool whole = false;
  if (EmuSpaceOf(p, bytes, &whole) != EmuSpace::kDevice || !whole) {
    EmuViolation("cublasGemmEx: matrix %s (%p, %zu bytes) is not inside one device allocation",
                 what, p, bytes);
    return false;
  }
  return true;
}

}  // namespace

extern "C" {
cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
  *h = reinterpret_cast<cublasHandle_t>(new int(0));
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
  delete reinterpret_cast<int*>(h);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void* alpha, const void* A, cudaDataType atype,
                            int lda, const void* B, cudaDataType btype, int ldb, const void* beta,
                            void* C, cudaDataType ctype, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (atype != CUDA_R_32F || btype != CUDA_R_32F || ctype != CUDA_R_32F ||
      (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32)) {
    EmuViolation("cublasGemmEx: only FP32 data with FP32 or TF32 compute is emulated");
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const int a_rows = ta == CUBLAS_OP_N ? m : k, a_cols = ta == CUBLAS_OP_N ? k : m;
  const int b_rows = tb == CUBLAS_OP_N ? k : n, b_cols = tb == CUBLAS_OP_N ? n : k;
  if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) ||
      ldc < (m > 1 ? m : 1)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  auto span = [](int rows, int cols, int ld) {
    return cols == 0 ? size_t{0}
                     : (static_cast<size_t>(cols - 1) * ld + static_cast<size_t>(rows)) * 4;
  };
  if ((k > 0 && (!InDevice(A, span(a_rows, a_cols, lda), "A") ||
                 !InDevice(B, span(b_rows, b_cols, ldb), "B"))) ||
      !InDevice(C, span(m, n, ldc), "C")) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const bool tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  const float* a = static_cast<const float*>(A);
  const float* b = static_cast<const float*>(B);
  float* c = static_cast<float*>(C);
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  EmuDeviceScope open;
  for (int j = 0; j < n; ++j) {
    for (int i = 0; i < m; ++i) {
      float acc = 0;
      for (int l = 0; l < k; ++l) {
        float av = ta == CUBLAS_OP_N ? a[i + static_cast<size_t>(l) * lda]
                                     : a[l + static_cast<size_t>(i) * lda];
        float bv = tb == CUBLAS_OP_N ? b[l + static_cast<size_t>(j) * ldb]
                                     : b[j + static_cast<size_t>(l) * ldb];
        if (tf32) {
          av = RoundToTf32(av);
          bv = RoundToTf32(bv);
        }
        acc += av * bv;
      }
      float& out = c[i + static_cast<size_t>(j) * ldc];
      // beta == 0: C is not read (it may hold garbage), as cuBLAS documents.
      out = be != 0 ? al * acc + be * out : al * acc;
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}
}
