// CPU emulation of the CUDA execution model, for testing the LOGIC of the kernels in src/gpu
// (topk, internal, kmeans, brute_force, ivf) on machines without a GPU. It is NOT a GPU run:
//   - the threads of a block are cooperative fibers (own stacks, switched by EmuSwitch) in one OS thread; blocks run one
//     after another and a launch completes before it returns. There is no real parallelism, so
//     data races, missing fences and atomics' ordering are NOT exercised; barrier divergence
//     (a thread that never reaches a __syncthreads / warp shuffle the others wait in) is
//     detected and aborts;
//   - __syncthreads and __shfl_xor_sync are barriers that switch fibers; __shared__ variables
//     are statics, dynamic shared memory is a NaN-filled host buffer;
//   - "device" memory is host memory and streams/events do nothing (stubs.cc); cuBLAS GEMM is a
//     host loop in double; there is no timing and nothing about performance is measured.
// emu_transform.py rewrites the .cu files' launches into EmuLaunch(...); CMake compiles the
// result with the host compiler into gpu_emu_test (src/gpu/CMakeLists.txt).
#pragma once
#include <cuda_runtime.h>
#include <cublas_v2.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>
#undef __device__
#undef __host__
#undef __global__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)
#define __CUDACC__ 1
using std::isnan;
using std::fmin;

inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 gridDim, blockDim;

#if !defined(__x86_64__)
#error "cuda_emu.h switches fibers with x86-64 assembly (stubs.cc)"
#endif
// Saves the callee-saved registers on the current stack, stores the stack pointer in *save_sp
// and resumes the context whose stack pointer is new_sp (defined in stubs.cc). swapcontext
// would also save the signal mask: a system call per switch, which made the emulation ~5x slower.
extern "C" void EmuSwitch(void** save_sp, void* new_sp);

struct EmuFiber {
  void* sp = nullptr;
  bool done = false;
  int wait = 0;  // 0 none, 1 block barrier, 2 warp barrier
  unsigned long long gen = 0;
};
struct EmuBlock {
  void* sched_sp = nullptr;
  std::vector<EmuFiber> f;
  unsigned cur = 0;
  unsigned T = 0;
  unsigned long long bgen = 0;
  unsigned bcount = 0;
  std::vector<unsigned long long> wgen;
  std::vector<unsigned> wcount;
  std::function<void()> body;
};
inline EmuBlock* g_blk = nullptr;
inline unsigned EmuActive(unsigned lo, unsigned hi) {
  unsigned n = 0;
  for (unsigned t = lo; t < hi; ++t) n += !g_blk->f[t].done;
  return n;
}
inline void EmuYield() { EmuSwitch(&g_blk->f[g_blk->cur].sp, g_blk->sched_sp); }
inline void __syncthreads() {
  EmuBlock& b = *g_blk;
  unsigned long long my = b.bgen;
  if (++b.bcount == EmuActive(0, b.T)) {
    b.bcount = 0;
    ++b.bgen;
    return;
  }
  b.f[b.cur].wait = 1;
  b.f[b.cur].gen = my;
  EmuYield();
}
inline void EmuWarpSync() {
  EmuBlock& b = *g_blk;
  unsigned w = b.cur / 32;
  unsigned long long my = b.wgen[w];
  if (++b.wcount[w] == EmuActive(w * 32, std::min(b.T, w * 32 + 32))) {
    b.wcount[w] = 0;
    ++b.wgen[w];
    return;
  }
  b.f[b.cur].wait = 2;
  b.f[b.cur].gen = my;
  EmuYield();
}
inline unsigned long long g_xchg[1024];
template <class T>
T __shfl_xor_sync(unsigned, T v, int o, int = 32) {
  static_assert(sizeof(T) <= 8);
  unsigned t = threadIdx.x;
  unsigned long long bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  g_xchg[t] = bits;
  EmuWarpSync();
  T r;
  std::memcpy(&r, &g_xchg[t ^ o], sizeof(T));
  EmuWarpSync();
  return r;
}
template <class T> T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <class A, class B> auto min(A a, B b) { return a < b ? a : b; }
template <class A, class B> auto max(A a, B b) { return a > b ? a : b; }
inline std::vector<float> g_dyn_smem;

inline void EmuEntry() {
  EmuBlock& b = *g_blk;
  b.body();
  b.f[b.cur].done = true;
  // A finished thread may complete barriers others wait on.
  if (b.bcount > 0 && b.bcount == EmuActive(0, b.T)) { b.bcount = 0; ++b.bgen; }
  unsigned w = b.cur / 32;
  if (b.wcount[w] > 0 && b.wcount[w] == EmuActive(w * 32, std::min(b.T, w * 32 + 32))) {
    b.wcount[w] = 0;
    ++b.wgen[w];
  }
  EmuSwitch(&b.f[b.cur].sp, b.sched_sp);  // never resumed
}

template <class... P, class... A>
void EmuLaunch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t, A... args) {
  gridDim = grid;
  blockDim = block;
  const unsigned T = block.x;
  const unsigned long long blocks = (unsigned long long)grid.x * grid.y;
  g_dyn_smem.assign(smem / 4 + 1, std::nanf(""));
  constexpr size_t kStack = 256 * 1024;
  EmuBlock b;
  b.T = T;
  b.f.resize(T);
  // Fiber stacks are reused across launches: allocating them per launch (mmap + page faults)
  // dominated the run time of small launches.
  static std::vector<std::unique_ptr<char[]>> stacks;
  while (stacks.size() < T) stacks.emplace_back(new char[kStack]);
  b.wgen.assign((T + 31) / 32, 0);
  b.wcount.assign((T + 31) / 32, 0);
  b.body = [&] { k(args...); };
  g_blk = &b;
  for (unsigned long long blk = 0; blk < blocks; ++blk) {
    blockIdx = {unsigned(blk % grid.x), unsigned(blk / grid.x), 0};
    b.bgen = 0;
    b.bcount = 0;
    std::fill(b.wgen.begin(), b.wgen.end(), 0);
    std::fill(b.wcount.begin(), b.wcount.end(), 0);
    for (unsigned t = 0; t < T; ++t) {
      EmuFiber& f = b.f[t];
      f.done = false;
      f.wait = 0;
      // A fresh stack as EmuSwitch leaves it: six zeroed registers, then EmuEntry as the
      // return address, entered with the stack aligned as after a call.
      auto top = reinterpret_cast<uintptr_t>(stacks[t].get() + kStack) & ~uintptr_t{15};
      void** sp = reinterpret_cast<void**>(top);
      *--sp = nullptr;
      *--sp = reinterpret_cast<void*>(&EmuEntry);
      for (int r = 0; r < 6; ++r) *--sp = nullptr;
      f.sp = sp;
    }
    unsigned left = T;
    while (left > 0) {
      bool progress = false;
      for (unsigned t = 0; t < T; ++t) {
        EmuFiber& f = b.f[t];
        if (f.done) continue;
        if (f.wait == 1 && b.bgen == f.gen) continue;
        if (f.wait == 2 && b.wgen[t / 32] == f.gen) continue;
        f.wait = 0;
        b.cur = t;
        threadIdx = {t, 0, 0};
        EmuSwitch(&b.sched_sp, f.sp);
        progress = true;
        if (f.done) --left;
      }
      if (!progress) {
        std::fprintf(stderr, "EMU DEADLOCK: barrier divergence in block %llu\n", blk);
        std::abort();
      }
    }
  }
  g_blk = nullptr;
}
template <class T> cudaError_t cudaFuncSetAttribute(T*, cudaFuncAttribute, int) { return cudaSuccess; }
