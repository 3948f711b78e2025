// Runs everywhere: without a GPU (or without CUDA) the answer must be a clean kUnavailable,
// never a crash; with one, the properties must be sane, and the device-memory helpers
// (device_memory.h) must copy and checksum exactly. Label gpu.
#include "gpu/device.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/hash.h"
#include "common/testing.h"
#include "gpu/device_memory.h"

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

// The device-memory helpers (device_memory.h): host<->device copies round-trip, copies past
// the end are refused, and the CRC32C computed on the GPU equals common/hash.h's on the host
// for lengths around the 64 KiB block edges and from an unaligned start (as a segment column
// lands at any offset of the fetched object). Small enough for compute-sanitizer.
TEST(GpuDeviceMemory, CopiesRoundTripAndCrc32cMatchesTheHost) {
  if (!ListDevices().ok()) GTEST_SKIP() << ListDevices().status().message();
  constexpr uint64_t kBlock = 64 << 10;
  const std::string data = testing::RandomData(3 * kBlock + 4099, 11);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<DeviceBuffer> buf, DeviceBuffer::Allocate(data.size()));
  ASSERT_OK(buf->CopyFromHost(0, data.data(), data.size()));
  std::string back(data.size(), '\0');
  ASSERT_OK(buf->CopyToHost(0, back.data(), back.size()));
  EXPECT_TRUE(back == data);
  EXPECT_CODE(buf->CopyToHost(1, back.data(), back.size()), Code::kInvalidArgument);
  EXPECT_CODE(buf->CopyFromHost(data.size() + 1, data.data(), 0), Code::kInvalidArgument);
  const auto* base = static_cast<const char*>(buf->data());
  for (uint64_t offset : {uint64_t{0}, uint64_t{3}}) {
    for (uint64_t n : {uint64_t{0}, uint64_t{1}, kBlock - 1, kBlock, kBlock + 1, 3 * kBlock + 17,
                       data.size() - offset}) {
      SCOPED_TRACE("offset " + std::to_string(offset) + " bytes " + std::to_string(n));
      ASSERT_OK_AND_ASSIGN(uint32_t crc, Crc32cOnDevice(base + offset, n));
      EXPECT_EQ(crc, Crc32cUpdate(0, data.data() + offset, n));
    }
  }
}

}  // namespace
}  // namespace vlake::gpu
