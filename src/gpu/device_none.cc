// device.h for builds without CUDA (nvcc not found or VLAKE_WITH_CUDA=OFF).
#include "gpu/device.h"

namespace vlake::gpu {

bool BuiltWithCuda() { return false; }

Result<std::vector<DeviceInfo>> ListDevices() {
  return Status(Code::kUnavailable, "no GPU: this vlake was built without CUDA");
}

std::string CudaVersionNote() { return "built without CUDA"; }

}  // namespace vlake::gpu
