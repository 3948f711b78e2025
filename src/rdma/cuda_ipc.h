// The CUDA pieces of the data plane: exporting a device buffer as a CUDA IPC token (client),
// the engine that serves such tokens by copying object bytes from pinned host buffers straight
// into the client's GPU memory with the GPU's copy engine (server, same host), and the
// host->device copy target a staged GET hands its chunks to (client).
//
// Compiled from cuda_ipc.cu when the build has CUDA, else from cuda_ipc_none.cc, whose
// functions all return Code::kUnavailable ("no GPU: built without CUDA"); a CUDA build on a
// machine without a driver or GPU returns kUnavailable "no GPU: ..." at run time. This header
// never includes CUDA headers.
//
// Thread-safety: ExportCudaIpc and CreateCudaIpcEngine may be called from any thread; the
// engine is shared by connection threads (engine.h). A DeviceCopyTarget may be used from
// several threads as long as each slot is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "rdma/engine.h"
#include "rdma/token.h"

namespace vlake::rdma {

// A CUDA IPC token for [device_ptr, device_ptr + length) of memory from cudaMalloc in this
// process, with a fresh nonce, valid for ttl_ms. InvalidArgument when the pointer is not
// device memory or the range leaves its allocation.
Result<CudaIpcToken> ExportCudaIpc(const void* device_ptr, uint64_t length, int64_t ttl_ms);

struct CudaIpcEngineOptions {
  // Pinned host staging per transfer: file bytes are read into one buffer while the copy
  // engine drains the other.
  uint64_t staging_bytes = 8ull << 20;
};

// Serves CudaIpcToken from clients on this host (same boot id) whose device this process can
// see. kUnavailable without a usable GPU.
Result<std::unique_ptr<Engine>> CreateCudaIpcEngine(const CudaIpcEngineOptions& options = {});

// Host->device copies into [device_ptr, device_ptr + size) for staged GETs: one CUDA stream
// and event per slot. Pinning (cudaHostRegister) makes the copies true DMA that overlaps the
// next chunk's arrival; unpinned memory still works, synchronously.
class DeviceCopyTarget {
 public:
  static Result<std::unique_ptr<DeviceCopyTarget>> Create(void* device_ptr, uint64_t size_bytes,
                                                          int slots);
  virtual ~DeviceCopyTarget() = default;
  virtual uint64_t size() const = 0;
  virtual Status Pin(char* data, uint64_t size) = 0;
  virtual void Unpin(char* data) = 0;
  // Starts copying n bytes from src to device_ptr + dst_offset on the slot's stream.
  virtual Status CopyAsync(int slot, const char* src, uint64_t dst_offset, uint64_t n) = 0;
  // Waits for the copies issued on the slot.
  virtual Status Wait(int slot) = 0;
};

}  // namespace vlake::rdma
