// GPU memory for host code that must not include CUDA headers (the vector database's index
// jobs, the benchmarks): an owning device buffer, a CRC32C over device bytes (segment columns
// fetched straight into GPU memory are verified where they landed), and the pinned
// host->device copy bandwidth the direct GPU GET is measured against.
//
// Without CUDA or a GPU every call returns Code::kUnavailable "no GPU: ...".
// Thread-safety: a DeviceBuffer is owned by one thread at a time; the functions are
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>

#include "vlake/status.h"

namespace vlake::gpu {

class DeviceBuffer {
 public:
  // cudaMalloc of `bytes` on the current device.
  static Result<std::unique_ptr<DeviceBuffer>> Allocate(uint64_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  uint64_t size() const { return size_; }
  Status CopyToHost(uint64_t offset, void* host, uint64_t bytes) const;
  Status CopyFromHost(uint64_t offset, const void* host, uint64_t bytes);

 private:
  DeviceBuffer() = default;
  void* data_ = nullptr;
  uint64_t size_ = 0;
};

// Copies `bytes` from device memory to host memory (synchronous).
Status CopyDeviceToHost(const void* device_ptr, void* host, uint64_t bytes);

// CRC32C (Castagnoli, as common/hash.h) of `bytes` of device memory: 64 KiB blocks in
// parallel on the GPU, joined on the host with Crc32cExtend.
Result<uint32_t> Crc32cOnDevice(const void* device_ptr, uint64_t bytes);

// Pinned host -> device cudaMemcpy bandwidth in bytes/s for one copy of `bytes`, best of
// `repeats`.
Result<double> MeasureH2dBandwidth(uint64_t bytes, int repeats = 5);

}  // namespace vlake::gpu
