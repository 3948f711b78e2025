// Runs everywhere: without a GPU (or without CUDA) the answer must be a clean kUnavailable,
// never a crash; with one, the properties must be sane. Label gpu.
#include "gpu/device.h"

#include <gtest/gtest.h>

#include "common/testing.h"

namespace vlake::gpu {
namespace {

TEST(GpuDevice, ListsDevicesOrSaysWhyNot) {
  Result<std::vector<DeviceInfo>> devices = ListDevices();
  if (!devices.ok()) {
    EXPECT_CODE(devices.status(), Code::kUnavailable);
    EXPECT_NE(devices.status().message().find("no GPU"), std::string::npos);
    GTEST_SKIP() << devices.status().message() << " (" << CudaVersionNote() << ")";
  }
  ASSERT_FALSE(devices->empty());
  for (const DeviceInfo& d : *devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.compute_major, 7);
    EXPECT_GT(d.memory_bytes, 1ull << 30);
    EXPECT_GT(d.multiprocessors, 0);
  }
}

TEST(GpuDevice, VersionNoteNeverFails) {
  EXPECT_FALSE(CudaVersionNote().empty());
  if (!BuiltWithCuda()) {
    EXPECT_EQ(CudaVersionNote(), "built without CUDA");
  }
}

}  // namespace
}  // namespace vlake::gpu
