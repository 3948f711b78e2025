// CUDA implementation of device_memory.h.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/hash.h"
#include "gpu/cuda_util.cuh"
#include "gpu/device_memory.h"

namespace vlake::gpu {
namespace {

constexpr uint64_t kCrcBlockBytes = 64 << 10;
constexpr uint32_t kCrc32cPoly = 0x82f63b78;

// One thread per 64 KiB block (the last may be shorter): a byte-at-a-time table CRC with the
// table in shared memory. Throughput is far above what the checksum gates (a segment fetch),
// and each block's CRC is joined on the host.
__global__ void BlockCrc32c(const uint8_t* data, uint64_t bytes, uint64_t blocks, uint32_t* out) {
  __shared__ uint32_t table[256];
  for (uint32_t i = threadIdx.x; i < 256; i += blockDim.x) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kCrc32cPoly : c >> 1;
    table[i] = c;
  }
  __syncthreads();
  uint64_t b = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= blocks) return;
  uint64_t begin = b * kCrcBlockBytes;
  uint64_t end = begin + kCrcBlockBytes < bytes ? begin + kCrcBlockBytes : bytes;
  uint32_t crc = 0xffffffffu;
  uint64_t i = begin;
  // 8-byte loads where aligned (device allocations are 256-byte aligned, blocks 64 KiB).
  const bool aligned = (reinterpret_cast<uintptr_t>(data) & 7) == 0;
  if (aligned) {
    for (; i + 8 <= end; i += 8) {
      uint64_t w = *reinterpret_cast<const uint64_t*>(data + i);
      for (int k = 0; k < 8; ++k) {
        crc = (crc >> 8) ^ table[(crc ^ static_cast<uint32_t>(w >> (8 * k))) & 0xff];
      }
    }
  }
  for (; i < end; ++i) crc = (crc >> 8) ^ table[(crc ^ data[i]) & 0xff];
  out[b] = ~crc;
}

}  // namespace

Result<std::unique_ptr<DeviceBuffer>> DeviceBuffer::Allocate(uint64_t bytes) {
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  std::unique_ptr<DeviceBuffer> buf(new DeviceBuffer());
  if (bytes > 0) VLAKE_CUDA_RETURN(cudaMalloc(&buf->data_, bytes));
  buf->size_ = bytes;
  return Result<std::unique_ptr<DeviceBuffer>>(std::move(buf));
}

DeviceBuffer::~DeviceBuffer() {
  if (data_ != nullptr) cudaFree(data_);
}

Status DeviceBuffer::CopyToHost(uint64_t offset, void* host, uint64_t bytes) const {
  if (offset > size_ || bytes > size_ - offset) {
    return Status(Code::kInvalidArgument, "copy past the end of the device buffer");
  }
  VLAKE_CUDA_RETURN(
      cudaMemcpy(host, static_cast<char*>(data_) + offset, bytes, cudaMemcpyDeviceToHost));
  return Status::Ok();
}

Status DeviceBuffer::CopyFromHost(uint64_t offset, const void* host, uint64_t bytes) {
  if (offset > size_ || bytes > size_ - offset) {
    return Status(Code::kInvalidArgument, "copy past the end of the device buffer");
  }
  VLAKE_CUDA_RETURN(
      cudaMemcpy(static_cast<char*>(data_) + offset, host, bytes, cudaMemcpyHostToDevice));
  return Status::Ok();
}

Status CopyDeviceToHost(const void* device_ptr, void* host, uint64_t bytes) {
  VLAKE_CUDA_RETURN(cudaMemcpy(host, device_ptr, bytes, cudaMemcpyDeviceToHost));
  return Status::Ok();
}

Result<uint32_t> Crc32cOnDevice(const void* device_ptr, uint64_t bytes) {
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  if (bytes == 0) return uint32_t{0};
  const uint64_t blocks = (bytes + kCrcBlockBytes - 1) / kCrcBlockBytes;
  DeviceArray<uint32_t> crcs;
  VLAKE_RETURN_IF_ERROR(crcs.Allocate(blocks));
  Stream stream;
  VLAKE_RETURN_IF_ERROR(stream.Create());
  const int threads = 128;
  const uint64_t grid = (blocks + threads - 1) / threads;
  BlockCrc32c<<<static_cast<unsigned>(grid), threads, 0, stream.get()>>>(
      static_cast<const uint8_t*>(device_ptr), bytes, blocks, crcs.get());
  VLAKE_CUDA_RETURN(cudaGetLastError());
  std::vector<uint32_t> host(blocks);
  VLAKE_CUDA_RETURN(cudaMemcpyAsync(host.data(), crcs.get(), blocks * sizeof(uint32_t),
                                    cudaMemcpyDeviceToHost, stream.get()));
  VLAKE_RETURN_IF_ERROR(stream.Sync());
  const uint32_t shift = Crc32cShift(kCrcBlockBytes);
  uint32_t crc = host[0];
  for (uint64_t b = 1; b + 1 < blocks; ++b) crc = Crc32cExtend(crc, shift, host[b]);
  if (blocks > 1) {
    uint64_t last = bytes - (blocks - 1) * kCrcBlockBytes;
    crc = Crc32cCombine(crc, host[blocks - 1], last);
  }
  return crc;
}

Result<double> MeasureH2dBandwidth(uint64_t bytes, int repeats) {
  VLAKE_RETURN_IF_ERROR(RequireGpu());
  if (bytes == 0 || repeats < 1) return Status(Code::kInvalidArgument, "bytes and repeats > 0");
  PinnedArray<char> host;
  VLAKE_RETURN_IF_ERROR(host.Allocate(bytes));
  std::memset(host.get(), 1, bytes);
  DeviceArray<char> dev;
  VLAKE_RETURN_IF_ERROR(dev.Allocate(bytes));
  Stream stream;
  VLAKE_RETURN_IF_ERROR(stream.Create());
  Event start, stop;
  VLAKE_RETURN_IF_ERROR(start.Create(cudaEventDefault));
  VLAKE_RETURN_IF_ERROR(stop.Create(cudaEventDefault));
  double best = 0;
  for (int r = 0; r < repeats + 1; ++r) {  // the first copy warms up
    VLAKE_CUDA_RETURN(cudaEventRecord(start.get(), stream.get()));
    VLAKE_CUDA_RETURN(
        cudaMemcpyAsync(dev.get(), host.get(), bytes, cudaMemcpyHostToDevice, stream.get()));
    VLAKE_CUDA_RETURN(cudaEventRecord(stop.get(), stream.get()));
    VLAKE_CUDA_RETURN(cudaEventSynchronize(stop.get()));
    float ms = 0;
    VLAKE_CUDA_RETURN(cudaEventElapsedTime(&ms, start.get(), stop.get()));
    if (r > 0 && ms > 0) best = std::max(best, static_cast<double>(bytes) / (ms / 1e3));
  }
  return best;
}

}  // namespace vlake::gpu
