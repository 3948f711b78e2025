// The CUDA runtime functions the vlake kernels' host code calls, for the CPU emulation
// (cuda_emu.h), with the memory model of emu_runtime.h: device memory in mappings of its own
// that host code cannot touch, guard pages and canaries, checked copy directions, an emulated
// capacity, and fault injection for allocations and launches. Streams and events do nothing
// because every launch is synchronous. Linked only into gpu_emu_test, never with libcudart.
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <deque>
#include <map>
#include <string>

#include "gpu/device.h"
#include "gpu/emulation/cuda_emu.h"

// EmuSwitch (cuda_emu.h): System V x86-64, callee-saved rbp rbx r12-r15.
asm(R"(
  .text
  .globl EmuSwitch
  .type EmuSwitch, @function
EmuSwitch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size EmuSwitch, .-EmuSwitch
)");

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kAlign = 256;  // cudaMalloc's alignment
constexpr unsigned char kCanary = 0xFD;
constexpr size_t kQuarantineBytes = size_t{256} << 20;

size_t RoundUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

struct Allocation {
  uintptr_t map = 0;       // start of the mapping (device: data pages, then one guard page)
  size_t map_bytes = 0;
  uintptr_t ptr = 0;       // what the caller got
  size_t bytes = 0;        // what the caller asked for
  size_t data_bytes = 0;   // device: the accessible pages before the guard
  EmuSpace space = EmuSpace::kPageable;
};

struct State {
  std::map<uintptr_t, Allocation> live;  // by ptr
  std::deque<Allocation> quarantine;     // freed device mappings, PROT_NONE
  size_t quarantine_bytes = 0;
  size_t device_bytes = 0;
  int open = 0;
  int violations = 0;
  cudaError_t last_error = cudaSuccess;
  long fail_alloc_after = -1;
  bool alloc_failed = false;
  long fail_launch_after = -1;
  bool launch_failed = false;
  unsigned allocations = 0;
  uintptr_t dyn_map = 0;  // dynamic shared memory: kEmuSharedOptinMax rounded up, then a guard
  size_t dyn_bytes = 0;
};
State& S() {
  static State s;
  return s;
}

void Protect(const Allocation& a, int prot) {
  if (a.space == EmuSpace::kDevice && a.data_bytes > 0) {
    mprotect(reinterpret_cast<void*>(a.map), a.data_bytes, prot);
  }
}

// The allocation containing [p, p + n) at least in part, or nullptr.
const Allocation* Find(uintptr_t p, size_t n = 1) {
  auto& live = S().live;
  auto it = live.upper_bound(p);
  if (it == live.begin()) return nullptr;
  --it;
  const Allocation& a = it->second;
  // One past the end counts (an empty range at the end of an allocation).
  if (p < a.ptr + std::max<size_t>(a.bytes, 1) || (n == 0 && p == a.ptr + a.bytes)) return &a;
  return nullptr;
}

void Describe(uintptr_t addr, char* out, size_t cap) {
  State& s = S();
  for (const auto& [ptr, a] : s.live) {
    if (a.space != EmuSpace::kDevice) continue;
    if (addr >= a.map && addr < a.map + a.map_bytes) {
      if (addr >= a.map + a.data_bytes) {
        std::snprintf(out, cap, "%zu bytes past the end of a %zu-byte device allocation",
                      static_cast<size_t>(addr - (a.ptr + a.bytes)), a.bytes);
      } else if (addr < a.ptr) {
        std::snprintf(out, cap, "%zu bytes before a %zu-byte device allocation",
                      static_cast<size_t>(a.ptr - addr), a.bytes);
      } else {
        std::snprintf(out, cap,
                      "host code touched device memory (offset %zu of a %zu-byte allocation): "
                      "copy it with cudaMemcpy instead",
                      static_cast<size_t>(addr - a.ptr), a.bytes);
      }
      return;
    }
  }
  for (const Allocation& a : s.quarantine) {
    if (addr >= a.map && addr < a.map + a.map_bytes) {
      std::snprintf(out, cap, "use after free of a %zu-byte device allocation (offset %ld)",
                    a.bytes, static_cast<long>(addr) - static_cast<long>(a.ptr));
      return;
    }
  }
  if (s.dyn_map != 0 && addr >= s.dyn_map && addr < s.dyn_map + s.dyn_bytes + kPage) {
    std::snprintf(out, cap, "beyond the launch's dynamic shared memory");
    return;
  }
  std::snprintf(out, cap, "not emulated device memory (a plain crash)");
}

void OnSegv(int sig, siginfo_t* info, void*) {
  char what[256];
  Describe(reinterpret_cast<uintptr_t>(info->si_addr), what, sizeof what);
  char msg[640];
  int n;
  if (g_blk != nullptr) {
    n = std::snprintf(msg, sizeof msg,
                      "EMU FAULT at %p in kernel %s, block (%u,%u,%u), thread %u: %s\n",
                      info->si_addr, g_blk->kernel, blockIdx.x, blockIdx.y, blockIdx.z,
                      g_blk->cur, what);
  } else {
    n = std::snprintf(msg, sizeof msg, "EMU FAULT at %p in host code: %s\n", info->si_addr, what);
  }
  if (n > 0) (void)!write(2, msg, static_cast<size_t>(std::min<int>(n, sizeof msg - 1)));
  signal(sig, SIG_DFL);
  raise(sig);
}

void InstallHandler() {
  static bool done = false;
  if (done) return;
  done = true;
  static std::vector<char> alt(1 << 16);
  stack_t st{};
  st.ss_sp = alt.data();
  st.ss_size = alt.size();
  sigaltstack(&st, nullptr);
  struct sigaction sa{};
  sa.sa_sigaction = OnSegv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
}

// One step of a fault-injection countdown (-1: off): true, once, when it reaches zero.
bool Countdown(long* after, bool* fired) {
  if (*after < 0) return false;
  if ((*after)-- == 0) {
    *fired = true;
    return true;
  }
  return false;
}

bool TakeAllocationFailure() { return Countdown(&S().fail_alloc_after, &S().alloc_failed); }

cudaError_t Fail(cudaError_t err) {
  S().last_error = err;
  return err;
}

cudaError_t DeviceAlloc(void** p, size_t n) {
  InstallHandler();
  State& s = S();
  if (p == nullptr) return Fail(cudaErrorInvalidValue);
  *p = nullptr;
  if (TakeAllocationFailure() || n > kEmuDeviceBytes - s.device_bytes) {
    return Fail(cudaErrorMemoryAllocation);
  }
  Allocation a;
  a.space = EmuSpace::kDevice;
  a.bytes = n;
  const size_t rounded = RoundUp(std::max<size_t>(n, 1), kAlign);
  a.data_bytes = RoundUp(rounded, kPage);
  a.map_bytes = a.data_bytes + kPage;
  void* m = mmap(nullptr, a.map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
                 MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return Fail(cudaErrorMemoryAllocation);
  a.map = reinterpret_cast<uintptr_t>(m);
  a.ptr = a.map + a.data_bytes - rounded;
  // Canaries before and after; garbage in between (alternating patterns between allocations).
  std::memset(m, kCanary, a.ptr - a.map);
  EmuPoison(reinterpret_cast<void*>(a.ptr), n, s.allocations++);
  std::memset(reinterpret_cast<void*>(a.ptr + n), kCanary, rounded - n);
  mprotect(reinterpret_cast<void*>(a.map + a.data_bytes), kPage, PROT_NONE);
  if (s.open == 0) Protect(a, PROT_NONE);
  s.device_bytes += n;
  s.live[a.ptr] = a;
  *p = reinterpret_cast<void*>(a.ptr);
  return cudaSuccess;
}

bool CanariesIntact(const Allocation& a) {
  const auto* pre = reinterpret_cast<const unsigned char*>(a.map);
  for (uintptr_t i = 0; i < a.ptr - a.map; ++i) {
    if (pre[i] != kCanary) return false;
  }
  const auto* post = reinterpret_cast<const unsigned char*>(a.ptr + a.bytes);
  const size_t slack = RoundUp(std::max<size_t>(a.bytes, 1), kAlign) - a.bytes;
  for (size_t i = 0; i < slack; ++i) {
    if (post[i] != kCanary) return false;
  }
  return true;
}

cudaError_t DeviceFree(void* p, const char* what) {
  if (p == nullptr) return cudaSuccess;
  State& s = S();
  auto it = s.live.find(reinterpret_cast<uintptr_t>(p));
  if (it == s.live.end() || it->second.space != EmuSpace::kDevice) {
    EmuViolation("%s(%p): not the start of a live device allocation", what, p);
    return Fail(cudaErrorInvalidValue);
  }
  Allocation a = it->second;
  s.live.erase(it);
  s.device_bytes -= a.bytes;
  Protect(a, PROT_READ);
  if (!CanariesIntact(a)) {
    EmuViolation("%s: a kernel or copy wrote outside the %zu-byte allocation %p", what, a.bytes,
                 p);
  }
  mprotect(reinterpret_cast<void*>(a.map), a.map_bytes, PROT_NONE);
  s.quarantine.push_back(a);
  s.quarantine_bytes += a.map_bytes;
  while (s.quarantine_bytes > kQuarantineBytes) {
    const Allocation& old = s.quarantine.front();
    munmap(reinterpret_cast<void*>(old.map), old.map_bytes);
    s.quarantine_bytes -= old.map_bytes;
    s.quarantine.pop_front();
  }
  return cudaSuccess;
}

// Pinned or registered host memory: ordinary memory that kernels may address too.
void AddHostRange(EmuSpace space, void* p, size_t n) {
  Allocation a;
  a.space = space;
  a.ptr = reinterpret_cast<uintptr_t>(p);
  a.bytes = n;
  S().live[a.ptr] = a;
}

cudaError_t HostAlloc(void** p, size_t n) {
  State& s = S();
  if (p == nullptr) return Fail(cudaErrorInvalidValue);
  *p = nullptr;
  if (TakeAllocationFailure()) return Fail(cudaErrorMemoryAllocation);
  void* m = std::malloc(n ? n : 1);
  if (m == nullptr) return Fail(cudaErrorMemoryAllocation);
  EmuPoison(m, n, s.allocations++);
  AddHostRange(EmuSpace::kPinned, m, n);
  *p = m;
  return cudaSuccess;
}

// Opens the device allocations of a copy's or memset's ranges for the call (when not open).
class RangeAccess {
 public:
  void Add(const void* p, size_t n) {
    const Allocation* a = Find(reinterpret_cast<uintptr_t>(p), n);
    if (a != nullptr && a->space == EmuSpace::kDevice && S().open == 0) {
      Protect(*a, PROT_READ | PROT_WRITE);
      opened_.push_back(a);
    }
  }
  ~RangeAccess() {
    for (const Allocation* a : opened_) Protect(*a, PROT_NONE);
  }

 private:
  std::vector<const Allocation*> opened_;
};

const char* SpaceName(EmuSpace s) {
  switch (s) {
    case EmuSpace::kDevice: return "device";
    case EmuSpace::kPinned: return "pinned host";
    case EmuSpace::kRegistered: return "registered host";
    case EmuSpace::kPageable: break;
  }
  return "pageable host";
}

// Checks one side of a copy: `device` says whether the kind names device memory there.
bool CheckSide(const char* call, const char* side, const void* p, size_t n, bool device,
               cudaMemcpyKind kind) {
  if (n == 0) return true;
  if (p == nullptr) {
    EmuViolation("%s: null %s pointer", call, side);
    return false;
  }
  bool whole = false;
  const EmuSpace space = EmuSpaceOf(p, n, &whole);
  if (kind == cudaMemcpyDefault) {
    if (space == EmuSpace::kDevice && !whole) {
      EmuViolation("%s: %s range of %zu bytes runs past its device allocation", call, side, n);
      return false;
    }
    return true;
  }
  if (device != (space == EmuSpace::kDevice)) {
    EmuViolation("%s: kind %d says the %s is %s memory, but %p is %s memory", call,
                 static_cast<int>(kind), side, device ? "device" : "host", p, SpaceName(space));
    return false;
  }
  if (device && !whole) {
    EmuViolation("%s: %s range of %zu bytes runs past its device allocation", call, side, n);
    return false;
  }
  return true;
}

cudaError_t Copy(const char* call, void* d, const void* src, size_t n, cudaMemcpyKind kind,
                 size_t dst_span, size_t src_span, size_t rows, size_t width, size_t dpitch,
                 size_t spitch) {
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) {
    EmuViolation("%s: invalid kind %d", call, static_cast<int>(kind));
    return Fail(cudaErrorInvalidMemcpyDirection);
  }
  if (n == 0) return cudaSuccess;
  if (!CheckSide(call, "destination", d, dst_span, dst_dev, kind) ||
      !CheckSide(call, "source", src, src_span, src_dev, kind)) {
    return Fail(cudaErrorInvalidValue);
  }
  RangeAccess access;
  access.Add(d, dst_span);
  access.Add(src, src_span);
  for (size_t r = 0; r < rows; ++r) {
    std::memmove(static_cast<char*>(d) + r * dpitch, static_cast<const char*>(src) + r * spitch,
                 width);
  }
  return cudaSuccess;
}

}  // namespace

// ---- emu_runtime.h ----

EmuSpace EmuSpaceOf(const void* p, size_t bytes, bool* whole) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  const Allocation* a = Find(u, bytes);
  if (a == nullptr) {
    if (whole != nullptr) *whole = true;
    return EmuSpace::kPageable;
  }
  if (whole != nullptr) *whole = u >= a->ptr && u + bytes <= a->ptr + a->bytes;
  return a->space;
}

void EmuViolation(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "EMU VIOLATION: %s\n", buf);
  ++S().violations;
}

int EmuTakeViolations() {
  int n = S().violations;
  S().violations = 0;
  return n;
}

void EmuCheckKernelPointer(const void* p, const char* kernel, int arg, int field) {
  if (p == nullptr) return;
  const Allocation* a = Find(reinterpret_cast<uintptr_t>(p), 0);
  if (a != nullptr) return;
  // The pointer may point just past an allocation's end (an empty range), checked above.
  if (field < 0) {
    EmuViolation("kernel %s argument %d (%p) is not device, pinned or registered memory: a GPU "
                 "cannot address pageable host memory", kernel, arg, p);
  } else {
    EmuViolation("kernel %s argument %d, field %d (%p) is not device, pinned or registered "
                 "memory: a GPU cannot address pageable host memory", kernel, arg, field, p);
  }
}

void EmuOpenDeviceMemory() {
  State& s = S();
  if (s.open++ == 0) {
    for (const auto& [ptr, a] : s.live) Protect(a, PROT_READ | PROT_WRITE);
  }
}

void EmuCloseDeviceMemory() {
  State& s = S();
  if (--s.open == 0) {
    for (const auto& [ptr, a] : s.live) Protect(a, PROT_NONE);
  }
}

void EmuCheckCanaries(const char* when) {
  State& s = S();
  EmuDeviceScope open;
  for (const auto& [ptr, a] : s.live) {
    if (a.space == EmuSpace::kDevice && !CanariesIntact(a)) {
      EmuViolation("after %s: memory outside the %zu-byte device allocation %p was written",
                   when, a.bytes, reinterpret_cast<void*>(a.ptr));
      // Restore them so one overrun is reported once.
      std::memset(reinterpret_cast<void*>(a.map), kCanary, a.ptr - a.map);
      const size_t slack = RoundUp(std::max<size_t>(a.bytes, 1), kAlign) - a.bytes;
      std::memset(reinterpret_cast<void*>(a.ptr + a.bytes), kCanary, slack);
    }
  }
}

void EmuSetLastError(cudaError_t err) { S().last_error = err; }

void EmuFailAllocationAfter(long n) {
  S().fail_alloc_after = n;
  S().alloc_failed = false;
}
bool EmuInjectedAllocationFailed() { return S().alloc_failed; }
void EmuFailLaunchAfter(long n) {
  S().fail_launch_after = n;
  S().launch_failed = false;
}
bool EmuInjectedLaunchFailed() { return S().launch_failed; }
bool EmuTakeLaunchFailure() { return Countdown(&S().fail_launch_after, &S().launch_failed); }

long EmuLiveAllocations() { return static_cast<long>(S().live.size()); }
size_t EmuDeviceBytesInUse() { return S().device_bytes; }

void* EmuDynamicSharedBase(size_t bytes) {
  State& s = S();
  if (s.dyn_map == 0) {
    InstallHandler();
    s.dyn_bytes = RoundUp(kEmuSharedOptinMax, kPage);
    void* m = mmap(nullptr, s.dyn_bytes + kPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    s.dyn_map = reinterpret_cast<uintptr_t>(m);
    mprotect(reinterpret_cast<void*>(s.dyn_map + s.dyn_bytes), kPage, PROT_NONE);
  }
  return reinterpret_cast<void*>(s.dyn_map + s.dyn_bytes - RoundUp(bytes, 16));
}

void EmuPoison(void* p, size_t bytes, unsigned salt) {
  // 0xFF: NaN as float, -1 as an integer; 0x7F: 3.4e38 as float, a huge positive integer.
  std::memset(p, (salt & 1) != 0 ? 0x7F : 0xFF, bytes);
}

// ---- the CUDA runtime ----

extern "C" {
cudaError_t cudaGetDeviceCount(int* c) { *c = 1; return cudaSuccess; }
cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : Fail(cudaErrorInvalidDevice); }
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int device) {
  if (device != 0) return Fail(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *v = kEmuMultiprocessors; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = static_cast<int>(kEmuSharedOptinMax); break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = static_cast<int>(kEmuStaticSharedMax); break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *v = 233472; break;
    case cudaDevAttrMaxThreadsPerBlock: *v = 1024; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *v = 2048; break;
    case cudaDevAttrWarpSize: *v = 32; break;
    case cudaDevAttrComputeCapabilityMajor: *v = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *v = 0; break;
    case cudaDevAttrMaxGridDimX: *v = 2147483647; break;
    case cudaDevAttrMaxGridDimY: case cudaDevAttrMaxGridDimZ: *v = 65535; break;
    default:
      EmuViolation("cudaDeviceGetAttribute: attribute %d is not emulated", static_cast<int>(attr));
      return Fail(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t n) { return DeviceAlloc(p, n); }
cudaError_t cudaFree(void* p) { return DeviceFree(p, "cudaFree"); }
cudaError_t cudaMallocAsync(void** p, size_t n, cudaStream_t) { return DeviceAlloc(p, n); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return DeviceFree(p, "cudaFreeAsync"); }
cudaError_t cudaHostAlloc(void** p, size_t n, unsigned) { return HostAlloc(p, n); }
cudaError_t cudaMallocHost(void** p, size_t n) { return HostAlloc(p, n); }
cudaError_t cudaFreeHost(void* p) {
  if (p == nullptr) return cudaSuccess;
  State& s = S();
  auto it = s.live.find(reinterpret_cast<uintptr_t>(p));
  if (it == s.live.end() || it->second.space != EmuSpace::kPinned) {
    EmuViolation("cudaFreeHost(%p): not the start of a cudaHostAlloc allocation", p);
    return Fail(cudaErrorInvalidValue);
  }
  s.live.erase(it);
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaHostRegister(void* p, size_t n, unsigned) {
  if (p == nullptr || n == 0) return Fail(cudaErrorInvalidValue);
  if (EmuSpaceOf(p, n) != EmuSpace::kPageable) return Fail(cudaErrorHostMemoryAlreadyRegistered);
  AddHostRange(EmuSpace::kRegistered, p, n);
  return cudaSuccess;
}
cudaError_t cudaHostUnregister(void* p) {
  State& s = S();
  auto it = s.live.find(reinterpret_cast<uintptr_t>(p));
  if (it == s.live.end() || it->second.space != EmuSpace::kRegistered) {
    EmuViolation("cudaHostUnregister(%p): not the start of a registered range", p);
    return Fail(cudaErrorHostMemoryNotRegistered);
  }
  s.live.erase(it);
  return cudaSuccess;
}
cudaError_t cudaHostGetDevicePointer(void** d, void* p, unsigned flags) {
  const EmuSpace space = EmuSpaceOf(p, 1);
  if (flags != 0 || (space != EmuSpace::kPinned && space != EmuSpace::kRegistered)) {
    EmuViolation("cudaHostGetDevicePointer(%p): not pinned or registered host memory", p);
    return Fail(cudaErrorInvalidValue);
  }
  *d = p;  // unified addressing: the same address on the device
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  cudaError_t e = S().last_error;
  S().last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return S().last_error; }
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory (emulated)";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulated)";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument (emulated)";
    case cudaErrorInvalidValue: return "invalid argument (emulated)";
    default: return "error (emulated)";
  }
}
const char* cudaGetErrorName(cudaError_t e) { return cudaGetErrorString(e); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) { *s = reinterpret_cast<cudaStream_t>(new int(0)); return cudaSuccess; }
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) { delete reinterpret_cast<int*>(s); return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { *e = reinterpret_cast<cudaEvent_t>(new int(0)); return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete reinterpret_cast<int*>(e); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) { *ms = 1.0f; return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind kind, cudaStream_t) {
  return Copy("cudaMemcpyAsync", d, s, n, kind, n, n, 1, n, 0, 0);
}
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind kind) {
  return Copy("cudaMemcpy", d, s, n, kind, n, n, 1, n, 0, 0);
}
cudaError_t cudaMemcpy2DAsync(void* d, size_t dp, const void* s, size_t sp, size_t w, size_t h,
                              cudaMemcpyKind kind, cudaStream_t) {
  if (h == 0 || w == 0) return cudaSuccess;
  if (w > dp || w > sp) {
    EmuViolation("cudaMemcpy2DAsync: width %zu above a pitch (%zu, %zu)", w, dp, sp);
    return Fail(cudaErrorInvalidPitchValue);
  }
  return Copy("cudaMemcpy2DAsync", d, s, w * h, kind, (h - 1) * dp + w, (h - 1) * sp + w, h, w,
              dp, sp);
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  if (n == 0) return cudaSuccess;
  bool whole = false;
  if (EmuSpaceOf(p, n, &whole) != EmuSpace::kDevice || !whole) {
    EmuViolation("cudaMemsetAsync(%p, %zu bytes): not inside one device allocation", p, n);
    return Fail(cudaErrorInvalidValue);
  }
  RangeAccess access;
  access.Add(p, n);
  std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int v, size_t n) { return cudaMemsetAsync(p, v, n, nullptr); }
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, const void* kernel) {
  const EmuKernelInfo& info = EmuKernels()[kernel];
  *a = cudaFuncAttributes{};
  a->sharedSizeBytes = info.static_smem;
  a->maxThreadsPerBlock = info.launch_bound != 0 ? static_cast<int>(info.launch_bound) : 1024;
  a->maxDynamicSharedSizeBytes = info.max_dynamic_smem;
  a->numRegs = 32;
  a->ptxVersion = 90;
  a->binaryVersion = 90;
  return cudaSuccess;
}
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* blocks, const void* kernel,
                                                                   int threads, size_t smem,
                                                                   unsigned) {
  const EmuKernelInfo& info = EmuKernels()[kernel];
  if (threads <= 0 || threads > 1024) return Fail(cudaErrorInvalidValue);
  const size_t per_block = info.static_smem + smem;
  int n = std::min(2048 / threads, 32);
  if (per_block > 0) n = std::min<int>(n, static_cast<int>(233472 / per_block));
  *blocks = n;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t* f, size_t* t) {
  *t = kEmuDeviceBytes;
  *f = kEmuDeviceBytes - S().device_bytes;
  return cudaSuccess;
}
}

namespace vlake::gpu {
bool BuiltWithCuda() { return true; }
std::string CudaVersionNote() { return "CUDA emulation on the CPU (no GPU)"; }
Result<std::vector<DeviceInfo>> ListDevices() {
  DeviceInfo d;
  d.name = "CPU emulation of an sm_90 device";
  d.compute_major = 9;
  d.memory_bytes = kEmuDeviceBytes;
  d.multiprocessors = kEmuMultiprocessors;
  return std::vector<DeviceInfo>{d};
}
}  // namespace vlake::gpu
