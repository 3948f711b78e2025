// device.h for builds without CUDA (nvcc not found or VLAKE_WITH_CUDA=OFF).
#include "gpu/device.h"
#include "gpu/device_memory.h"

namespace vlake::gpu {

bool BuiltWithCuda() { return false; }

Result<std::vector<DeviceInfo>> ListDevices() {
  return Status(Code::kUnavailable, "no GPU: this vlake was built without CUDA");
}

std::string CudaVersionNote() { return "built without CUDA"; }

namespace {
Status NoCuda() { return Status(Code::kUnavailable, "no GPU: this vlake was built without CUDA"); }
}  // namespace

Result<std::unique_ptr<DeviceBuffer>> DeviceBuffer::Allocate(uint64_t) { return NoCuda(); }
DeviceBuffer::~DeviceBuffer() = default;
Status DeviceBuffer::CopyToHost(uint64_t, void*, uint64_t) const { return NoCuda(); }
Status DeviceBuffer::CopyFromHost(uint64_t, const void*, uint64_t) { return NoCuda(); }
Status CopyDeviceToHost(const void*, void*, uint64_t) { return NoCuda(); }
Result<uint32_t> Crc32cOnDevice(const void*, uint64_t) { return NoCuda(); }
Result<double> MeasureH2dBandwidth(uint64_t, int) { return NoCuda(); }

}  // namespace vlake::gpu
