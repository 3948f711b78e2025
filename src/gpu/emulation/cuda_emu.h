// CPU emulation of the CUDA execution model, for testing the LOGIC of the kernels in src/gpu
// (topk, internal, kmeans, brute_force, ivf, cagra) on machines without a GPU, strict enough to
// fail where a GPU would. It is NOT a GPU run:
//   - the threads of a block are cooperative fibers (own stacks, switched by EmuSwitch) in one
//     OS thread; blocks run one after another and a launch completes before it returns. There
//     is no real parallelism, so data races, missing fences and atomics' ordering are NOT
//     exercised. What is: barrier divergence (a thread that never reaches a __syncthreads /
//     warp intrinsic the others wait in aborts), code that relies on an order of threads or
//     blocks (odd launches run threads and blocks in reverse order), reads of shared memory
//     never written (static and dynamic shared memory are poisoned at every block start), and
//     warp shuffles reading exited lanes (they return poison);
//   - launches are checked as a GPU checks them (grid and block limits, dynamic shared memory
//     against the kernel's attribute, __launch_bounds__, static shared memory limits); a bad
//     launch does not run, is a violation, and cudaGetLastError reports it;
//   - memory is placed as on a GPU (emu_runtime.h): device memory is inaccessible to host code
//     outside kernels and copies, bounded by guard pages and canaries; kernel pointer arguments
//     must point at device, pinned or registered memory; copies are checked against their
//     cudaMemcpyKind; allocations and launches can be made to fail (fault injection);
//   - streams and events do nothing (every launch is synchronous); cuBLAS GEMM accumulates in
//     FP32, with the inputs rounded to TF32 on the TF32 path (cublas_emu.cc); cub's radix sort
//     is a host stable sort (cub_emu.h). There is no timing and nothing about performance.
// emu_transform.py rewrites the .cu files' launches into EmuLaunch(...) and their __shared__
// declarations into EmuShared / EmuDynamicShared; CMake compiles the result with the host
// compiler into gpu_emu_test (src/gpu/CMakeLists.txt).
#pragma once
#include <cuda_runtime.h>
#include <cublas_v2.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "gpu/emulation/emu_runtime.h"
#undef __device__
#undef __host__
#undef __global__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#undef __align__
#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
// Every __shared__ declaration of a .cu file is rewritten by emu_transform.py; one left over
// (in a header, which is not transformed) must not compile into a silent static.
#define __shared__ __shared___is_rewritten_by_emu_transform_py_only_in_cu_files
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __CUDACC__ 1
using std::isnan;
using std::fmin;

inline uint3 threadIdx;
inline uint3 blockIdx;
inline dim3 gridDim, blockDim;

#if !defined(__x86_64__)
#error "cuda_emu.h switches fibers with x86-64 assembly (runtime_emu.cc)"
#endif
// Saves the callee-saved registers on the current stack, stores the stack pointer in *save_sp
// and resumes the context whose stack pointer is new_sp (defined in runtime_emu.cc).
// swapcontext would also save the signal mask: a system call per switch, which made the
// emulation ~5x slower.
extern "C" void EmuSwitch(void** save_sp, void* new_sp);

// ---- limits of the emulated device (an sm_90 part) ----
constexpr unsigned kEmuMaxThreadsPerBlock = 1024;
constexpr size_t kEmuStaticSharedMax = 48 * 1024;
constexpr size_t kEmuSharedOptinMax = 232448;  // 227 KiB: sm_90's opt-in per block
constexpr int kEmuMultiprocessors = 4;

// Per kernel (by its function's address): what cudaFuncSetAttribute set and what launches saw.
struct EmuKernelInfo {
  int max_dynamic_smem = 48 * 1024;
  size_t static_smem = 0;          // largest static shared use seen in a block
  unsigned launch_bound = 0;       // __launch_bounds__ seen (0: none yet)
};
inline std::map<const void*, EmuKernelInfo>& EmuKernels() {
  static std::map<const void*, EmuKernelInfo> kernels;
  return kernels;
}

struct EmuFiber {
  void* sp = nullptr;
  bool done = false;
  int wait = 0;  // 0 none, 1 block barrier, 2 warp barrier
  unsigned long long gen = 0;
};
struct EmuSharedSite {
  const void* tag;
  size_t offset;
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
  const char* kernel = "";
  EmuKernelInfo* info = nullptr;
  unsigned salt = 0;               // picks the poison pattern of this block
  std::vector<EmuSharedSite> sites;  // static shared variables placed in this block
  size_t static_used = 0;
  bool bound_reported = false;
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
// A warp intrinsic's mask: the emulation supports the full mask of the warp's lanes (lanes that
// exited may be named, as CUDA allows); anything else is a violation.
inline void EmuCheckWarpMask(unsigned mask, const char* what) {
  EmuBlock& b = *g_blk;
  const unsigned w = b.cur / 32;
  const unsigned lanes = std::min(32u, b.T - w * 32);
  const unsigned need = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
  if ((mask & need) != need) {
    EmuViolation("%s in kernel %s: mask %#x does not name every lane of the warp (%u lanes); "
                 "partial masks are not emulated", what, b.kernel, mask, lanes);
  }
}
inline unsigned long long g_xchg[kEmuMaxThreadsPerBlock];
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int o, int width = 32) {
  static_assert(sizeof(T) <= 8);
  EmuCheckWarpMask(mask, "__shfl_xor_sync");
  const unsigned t = g_blk->cur;
  unsigned long long bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  g_xchg[t] = bits;
  EmuWarpSync();
  const unsigned lane = t % 32;
  unsigned src_lane = lane ^ static_cast<unsigned>(o);
  // Outside the caller's width-segment: the caller's own value.
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
    EmuViolation("__shfl_xor_sync in kernel %s: width %d is not a power of two <= 32",
                 g_blk->kernel, width);
  } else if (src_lane / width != lane / width) {
    src_lane = lane;
  }
  const unsigned src = (t - lane) + src_lane;
  T r;
  if (src >= g_blk->T || g_blk->f[src].done) {
    // Reading an exited (or absent) lane is undefined on a GPU: poison.
    unsigned long long junk = 0;
    EmuPoison(&junk, sizeof(junk), g_blk->salt);
    std::memcpy(&r, &junk, sizeof(T));
  } else {
    std::memcpy(&r, &g_xchg[src], sizeof(T));
  }
  EmuWarpSync();
  return r;
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  EmuCheckWarpMask(mask, "__ballot_sync");
  const unsigned t = g_blk->cur;
  g_xchg[t] = predicate != 0;
  EmuWarpSync();
  const unsigned base = t - t % 32;
  unsigned r = 0;
  for (unsigned l = 0; l < 32 && base + l < g_blk->T; ++l) {
    if (!g_blk->f[base + l].done && g_xchg[base + l] != 0) r |= 1u << l;
  }
  EmuWarpSync();
  return r & mask;
}
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
template <class T> T __ldg(const T* p) { return *p; }
template <class T> T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <class T> T atomicOr(T* p, T v) { T old = *p; *p = old | v; return old; }
template <class T> T atomicAnd(T* p, T v) { T old = *p; *p = old & v; return old; }
template <class T> T atomicMin(T* p, T v) { T old = *p; *p = v < old ? v : old; return old; }
template <class T> T atomicMax(T* p, T v) { T old = *p; *p = v > old ? v : old; return old; }
template <class T> T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <class T> T atomicCAS(T* p, T compare, T v) {
  T old = *p;
  if (old == compare) *p = v;
  return old;
}
template <class A, class B> auto min(A a, B b) { return a < b ? a : b; }
template <class A, class B> auto max(A a, B b) { return a > b ? a : b; }

// `__launch_bounds__(max_threads)` of a kernel, checked by its first thread of every launch
// (emu_transform.py inserts the call at the top of the kernel's body).
inline void EmuLaunchBounds(unsigned max_threads, unsigned = 0) {
  EmuBlock& b = *g_blk;
  if (b.info != nullptr) b.info->launch_bound = max_threads;
  if (b.T > max_threads && !b.bound_reported) {
    b.bound_reported = true;
    EmuViolation("kernel %s launched with %u threads per block, above its __launch_bounds__(%u)"
                 " (a GPU refuses the launch: too many resources requested)",
                 b.kernel, b.T, max_threads);
  }
}

// A static `__shared__ T name;` of the running block (one per declaration site `tag`, shared by
// the block's threads), poisoned when the block first reaches it.
alignas(64) inline unsigned char g_static_smem[kEmuStaticSharedMax];
template <class T>
T& EmuShared(const void* tag) {
  EmuBlock& b = *g_blk;
  for (const EmuSharedSite& s : b.sites) {
    if (s.tag == tag) return *reinterpret_cast<T*>(g_static_smem + s.offset);
  }
  const size_t align = std::max<size_t>(alignof(T), 16);
  const size_t offset = (b.static_used + align - 1) / align * align;
  if (offset + sizeof(T) > kEmuStaticSharedMax) {
    EmuViolation("kernel %s: static shared memory above %zu bytes (a GPU refuses to compile it)",
                 b.kernel, kEmuStaticSharedMax);
    std::abort();
  }
  b.static_used = offset + sizeof(T);
  b.sites.push_back({tag, offset});
  EmuPoison(g_static_smem + offset, sizeof(T), b.salt);
  return *reinterpret_cast<T*>(g_static_smem + offset);
}
// `extern __shared__ T name[];`: the launch's dynamic shared memory.
inline void* g_dyn_smem = nullptr;
inline void* EmuDynamicShared() { return g_dyn_smem; }

// ---- kernel argument checks: pointers, and the pointer fields of aggregate arguments ----
struct EmuAnyField {
  template <class T> operator T() const;
};
template <class T, class... A>
constexpr size_t EmuFieldCount() {
  if constexpr (requires { T{A{}..., EmuAnyField{}}; }) {
    return EmuFieldCount<T, A..., EmuAnyField>();
  } else {
    return sizeof...(A);
  }
}
template <class F>
void EmuCheckField(const F& f, const char* kernel, int arg, int field) {
  if constexpr (std::is_pointer_v<F>) {
    EmuCheckKernelPointer(reinterpret_cast<const void*>(f), kernel, arg, field);
  }
}
#define EMU_BIND(N, ...)                                                        \
  else if constexpr (n == N) {                                                  \
    const auto& [__VA_ARGS__] = v;                                              \
    int i = 0;                                                                  \
    std::apply([&](const auto&... f) { (EmuCheckField(f, kernel, arg, i++), ...); }, \
               std::tie(__VA_ARGS__));                                          \
  }
template <class A>
void EmuCheckArg(const A& v, const char* kernel, int arg) {
  if constexpr (std::is_pointer_v<A>) {
    EmuCheckKernelPointer(reinterpret_cast<const void*>(v), kernel, arg, -1);
  } else if constexpr (std::is_class_v<A> && std::is_aggregate_v<A>) {
    constexpr size_t n = EmuFieldCount<A>();
    if constexpr (n == 0) {
    }
  EMU_BIND(1, f0)
  EMU_BIND(2, f0,f1)
  EMU_BIND(3, f0,f1,f2)
  EMU_BIND(4, f0,f1,f2,f3)
  EMU_BIND(5, f0,f1,f2,f3,f4)
  EMU_BIND(6, f0,f1,f2,f3,f4,f5)
  EMU_BIND(7, f0,f1,f2,f3,f4,f5,f6)
  EMU_BIND(8, f0,f1,f2,f3,f4,f5,f6,f7)
  EMU_BIND(9, f0,f1,f2,f3,f4,f5,f6,f7,f8)
  EMU_BIND(10, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9)
  EMU_BIND(11, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10)
  EMU_BIND(12, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11)
  EMU_BIND(13, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12)
  EMU_BIND(14, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13)
  EMU_BIND(15, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14)
  EMU_BIND(16, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14,f15)
  EMU_BIND(17, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14,f15,f16)
  EMU_BIND(18, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14,f15,f16,f17)
  EMU_BIND(19, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14,f15,f16,f17,f18)
  EMU_BIND(20, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14,f15,f16,f17,f18,f19)
  EMU_BIND(21, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14,f15,f16,f17,f18,f19,f20)
  EMU_BIND(22, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14,f15,f16,f17,f18,f19,f20,f21)
  EMU_BIND(23, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14,f15,f16,f17,f18,f19,f20,f21,f22)
  EMU_BIND(24, f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,f12,f13,f14,f15,f16,f17,f18,f19,f20,f21,f22,f23)
    else {
      static_assert(n <= 24, "EmuCheckArg: extend EMU_BIND for aggregates above 24 fields");
    }
  }
}
#undef EMU_BIND

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

// Why a GPU would refuse this launch (nullptr: it would not).
inline const char* EmuLaunchProblem(dim3 grid, dim3 block, size_t smem, const EmuKernelInfo& k) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) return "a grid dimension is 0";
  if (grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) return "grid above the limits";
  if (block.x == 0 || block.y == 0 || block.z == 0) return "a block dimension is 0";
  if (block.x > 1024 || block.y > 1024 || block.z > 64 ||
      static_cast<unsigned long long>(block.x) * block.y * block.z > kEmuMaxThreadsPerBlock) {
    return "more than 1024 threads per block";
  }
  if (smem > static_cast<size_t>(k.max_dynamic_smem)) {
    return "dynamic shared memory above the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize";
  }
  if (k.launch_bound != 0 && block.x * block.y * block.z > k.launch_bound) {
    return "more threads per block than the kernel's __launch_bounds__";
  }
  return nullptr;
}

inline unsigned long long g_emu_launches = 0;

template <class... P, class... A>
void EmuLaunch(const char* name, void (*k)(P...), dim3 grid, dim3 block, size_t smem,
               cudaStream_t, A... args) {
  EmuKernelInfo& info = EmuKernels()[reinterpret_cast<const void*>(k)];
  if (const char* problem = EmuLaunchProblem(grid, block, smem, info)) {
    EmuViolation("launch of kernel %s <<<(%u,%u,%u), (%u,%u,%u), %zu>>> refused: %s", name,
                 grid.x, grid.y, grid.z, block.x, block.y, block.z, smem, problem);
    EmuSetLastError(cudaErrorInvalidConfiguration);
    return;
  }
  if (block.y != 1 || block.z != 1) {
    EmuViolation("kernel %s: blocks of more than one dimension are not emulated", name);
    EmuSetLastError(cudaErrorInvalidConfiguration);
    return;
  }
  if (EmuTakeLaunchFailure()) {
    EmuSetLastError(cudaErrorLaunchFailure);
    return;
  }
  {
    int i = 0;
    (EmuCheckArg(args, name, i++), ...);
  }
  const unsigned long long launch = g_emu_launches++;
  const bool reverse = (launch & 1) != 0;
  gridDim = grid;
  blockDim = block;
  const unsigned T = block.x;
  const unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
  constexpr size_t kStack = 256 * 1024;
  EmuBlock b;
  b.T = T;
  b.kernel = name;
  b.info = &info;
  b.f.resize(T);
  // Fiber stacks are reused across launches: allocating them per launch (mmap + page faults)
  // dominated the run time of small launches.
  static std::vector<std::unique_ptr<char[]>> stacks;
  while (stacks.size() < T) stacks.emplace_back(new char[kStack]);
  b.wgen.assign((T + 31) / 32, 0);
  b.wcount.assign((T + 31) / 32, 0);
  b.body = [&] { k(args...); };
  EmuDeviceScope device_memory;
  g_blk = &b;
  for (unsigned long long i = 0; i < blocks; ++i) {
    const unsigned long long blk = reverse ? blocks - 1 - i : i;
    blockIdx = {unsigned(blk % grid.x), unsigned(blk / grid.x % grid.y),
                unsigned(blk / grid.x / grid.y)};
    b.bgen = 0;
    b.bcount = 0;
    b.salt = static_cast<unsigned>(launch + blk);
    b.sites.clear();
    b.static_used = 0;
    g_dyn_smem = EmuDynamicSharedBase(smem);
    EmuPoison(g_dyn_smem, smem, b.salt);
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
      for (unsigned j = 0; j < T; ++j) {
        const unsigned t = reverse ? T - 1 - j : j;
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
        std::fprintf(stderr, "EMU DEADLOCK: barrier divergence in kernel %s, block %llu\n",
                     name, blk);
        std::abort();
      }
    }
    info.static_smem = std::max(info.static_smem, b.static_used);
    if (b.static_used + smem > kEmuSharedOptinMax) {
      EmuViolation("kernel %s: %zu bytes of static + %zu of dynamic shared memory exceed the "
                   "%zu a block may have", name, b.static_used, smem, kEmuSharedOptinMax);
    }
  }
  g_blk = nullptr;
  g_dyn_smem = nullptr;
  EmuCheckCanaries(name);
}

// cudaFuncSetAttribute over a kernel pointer (cuda_runtime.h declares it for nvcc only; its
// templates for cudaFuncGetAttributes and the occupancy call forward to the C functions of
// runtime_emu.cc).
template <class T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
  EmuKernelInfo& info = EmuKernels()[reinterpret_cast<const void*>(kernel)];
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (value < 0 || static_cast<size_t>(value) + info.static_smem > kEmuSharedOptinMax) {
      EmuSetLastError(cudaErrorInvalidValue);
      return cudaErrorInvalidValue;
    }
    info.max_dynamic_smem = value;
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  EmuViolation("cudaFuncSetAttribute: attribute %d is not emulated", static_cast<int>(attr));
  return cudaErrorInvalidValue;
}
template <class T>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, T* kernel) {
  return cudaFuncGetAttributes(a, reinterpret_cast<const void*>(kernel));
}
