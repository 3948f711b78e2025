// `vlake gpu info`: what the GPU module sees (devices, or why there are none).
#include <cstdio>
#include <cstring>

#include "apps/vlake/commands.h"
#include "gpu/device.h"

namespace vlake::app {

int RunGpu(int argc, char** argv) {
  if (argc < 1 || std::strcmp(argv[0], "info") != 0) {
    std::fputs("Usage: vlake gpu info    list CUDA devices (or say why there are none)\n",
               argc >= 1 && !std::strcmp(argv[0], "--help") ? stdout : stderr);
    return argc >= 1 && !std::strcmp(argv[0], "--help") ? 0 : 2;
  }
  std::printf("%s\n", gpu::CudaVersionNote().c_str());
  auto devices = gpu::ListDevices();
  if (!devices.ok()) {
    std::printf("%s\n", devices.status().message().c_str());
    return 1;
  }
  for (const gpu::DeviceInfo& d : *devices) {
    std::printf("gpu %d: %s, compute %d.%d, %d SMs, %.1f GiB\n", d.index, d.name.c_str(),
                d.compute_major, d.compute_minor, d.multiprocessors,
                d.memory_bytes / (1024.0 * 1024 * 1024));
  }
  return 0;
}

}  // namespace vlake::app
