// The memory model and the checks of the CPU emulation of CUDA (cuda_emu.h), and the hooks
// tests use to make the emulated runtime fail. Defined in runtime_emu.cc.
//
// Memory is kept where a GPU would keep it, so that host code which would crash or read garbage
// on a GPU does so here too:
//   - device allocations (cudaMalloc, cudaMallocAsync) are mappings of their own that host code
//     cannot touch: PROT_NONE except while a kernel, a copy, a memset or an emulated library
//     call uses them. The allocation ends 256-byte aligned just below a guard page; the slack
//     before it and after its last byte are canaries checked after every launch and at free.
//     Fresh memory is filled with a garbage pattern (NaN-like and huge-value bytes,
//     alternating). A freed allocation stays inaccessible for a while (quarantine), so a
//     use after free faults instead of reading someone else's data.
//   - pinned (cudaHostAlloc) and registered (cudaHostRegister) host memory is ordinary host
//     memory that kernels may also address, as with unified addressing on a GPU.
//   - everything else is pageable host memory, which a kernel may not address: kernel pointer
//     arguments (and the pointer fields of aggregate arguments) are checked at launch.
// A SIGSEGV on a device mapping is explained (host access, overrun past the end, use after
// free, dynamic shared memory overrun, with the kernel, block and thread when inside a kernel)
// before the process aborts.
//
// Every misuse a GPU would not tolerate is a *violation*: printed to stderr with "EMU
// VIOLATION" and counted; the emulation test's listener fails any test that left one.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

enum class EmuSpace : uint8_t { kPageable, kDevice, kPinned, kRegistered };

// Where [p, p + bytes) lies. *whole (nullable) is set when the range is inside one allocation
// (always true for kPageable).
EmuSpace EmuSpaceOf(const void* p, size_t bytes, bool* whole = nullptr);

// Prints "EMU VIOLATION: ..." and counts it.
void EmuViolation(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// Violations since the last call (and resets the count).
int EmuTakeViolations();

// A kernel pointer argument: null, or inside (or one past the end of) device, pinned or
// registered memory; otherwise a violation naming the kernel and the argument.
void EmuCheckKernelPointer(const void* p, const char* kernel, int arg, int field);

// Device memory is accessible between Open and Close (nesting counted): kernels and emulated
// library calls. EmuDeviceScope does both.
void EmuOpenDeviceMemory();
void EmuCloseDeviceMemory();
struct EmuDeviceScope {
  EmuDeviceScope() { EmuOpenDeviceMemory(); }
  ~EmuDeviceScope() { EmuCloseDeviceMemory(); }
  EmuDeviceScope(const EmuDeviceScope&) = delete;
  EmuDeviceScope& operator=(const EmuDeviceScope&) = delete;
};

// Checks every live device allocation's canaries; a violation names `when`.
void EmuCheckCanaries(const char* when);

// The sticky-until-read error of the runtime (cudaGetLastError / cudaPeekAtLastError).
void EmuSetLastError(cudaError_t err);

// Fault injection. After `n` more successful allocations (cudaMalloc, cudaMallocAsync,
// cudaHostAlloc; n = 0: the next one), allocations fail with cudaErrorMemoryAllocation, once.
// -1 turns it off. EmuInjectedAllocationFailed says whether the injected failure happened.
void EmuFailAllocationAfter(long n);
bool EmuInjectedAllocationFailed();
// Likewise for kernel launches: the launch does not run and cudaGetLastError reports
// cudaErrorLaunchFailure.
void EmuFailLaunchAfter(long n);
bool EmuInjectedLaunchFailed();
// Consumes one launch of the countdown; true when this launch is to fail.
bool EmuTakeLaunchFailure();

// Live allocations (device + pinned + registered) and device bytes in use.
long EmuLiveAllocations();
size_t EmuDeviceBytesInUse();
// Emulated device capacity (cudaMemGetInfo's total; allocations past it fail).
constexpr size_t kEmuDeviceBytes = size_t{4} << 30;

// Dynamic shared memory of the running block: `bytes` (16-byte aligned) ending just below a
// guard page, poisoned at every block start.
void* EmuDynamicSharedBase(size_t bytes);
// Fills `bytes` at p with the block's poison pattern (alternating between blocks).
void EmuPoison(void* p, size_t bytes, unsigned salt);
