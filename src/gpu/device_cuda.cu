// CUDA implementation of device.h (compiled only when nvcc is found).
#include <cuda_runtime.h>

#include "gpu/cuda_util.cuh"
#include "gpu/device.h"

namespace vlake::gpu {

bool BuiltWithCuda() { return true; }

Result<std::vector<DeviceInfo>> ListDevices() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls report their own
    return Status(Code::kUnavailable, "no GPU: " + CudaStatus("cudaGetDeviceCount", err).message());
  }
  if (count == 0) return Status(Code::kUnavailable, "no GPU: no CUDA device found");
  std::vector<DeviceInfo> out;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    err = cudaGetDeviceProperties(&prop, i);
    if (err != cudaSuccess) return CudaStatus("cudaGetDeviceProperties", err);
    DeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.compute_major = prop.major;
    d.compute_minor = prop.minor;
    d.memory_bytes = prop.totalGlobalMem;
    d.multiprocessors = prop.multiProcessorCount;
    out.push_back(d);
  }
  return out;
}

std::string CudaVersionNote() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  auto fmt = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
  return "CUDA runtime " + fmt(runtime) +
         (driver > 0 ? ", driver " + fmt(driver) : std::string(", no CUDA driver"));
}

}  // namespace vlake::gpu
