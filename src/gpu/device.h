// GPU discovery. The gpu module is optional twice over: compiled only when CMake finds nvcc
// (VLAKE_WITH_CUDA, on by default), and at run time a build with CUDA on a machine without a
// GPU or driver reports that as a Status instead of failing to start (the CUDA runtime is
// linked statically; the driver is looked up when first used). This header never includes
// CUDA headers, so every module can include it.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vlake/status.h"

namespace vlake::gpu {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;  // 9.0 = Hopper (H100/H200)
  int compute_minor = 0;
  uint64_t memory_bytes = 0;
  int multiprocessors = 0;
};

// True when this binary was compiled with CUDA.
bool BuiltWithCuda();

// CUDA devices this process can use. Code::kUnavailable with the reason ("built without
// CUDA", "no CUDA driver", "no GPU") when there are none.
Result<std::vector<DeviceInfo>> ListDevices();

// "CUDA runtime 13.0, driver 13.0" or why not.
std::string CudaVersionNote();

}  // namespace vlake::gpu
