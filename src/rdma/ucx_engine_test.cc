// The UCX engine and client plane in one process (two workers, real UCX transports): the
// end-to-end tests through the S3 server live in tests/integration.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "common/encoding.h"
#include "common/fd.h"
#include "common/testing.h"
#include "rdma/ucx_client.h"
#include "rdma/ucx_engine.h"

namespace vlake::rdma {
namespace {

// The HTTP peer of every request here: this host (the client plane runs in-process).
constexpr std::string_view kLocalPeer = "127.0.0.1:40000";

struct Param {
  const char* transports;
  bool allocate;
};

class UcxEngineTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    UcxEngineOptions options;
    options.chunk_bytes = 256 << 10;  // several chunks even for small objects
    options.stall_timeout_ms = 5000;
    auto engine = CreateUcxEngine(options);
    ASSERT_OK(engine);
    engine_ = std::move(*engine);
    auto plane = ClientPlane::Create({GetParam().transports});
    ASSERT_OK(plane);
    plane_ = std::move(*plane);
  }

  std::unique_ptr<Region> NewRegion(uint64_t size) {
    if (GetParam().allocate) {
      auto r = plane_->Allocate(size);
      EXPECT_OK(r);
      return r.ok() ? std::move(*r) : nullptr;
    }
    owned_.emplace_back(new char[size]);
    auto r = plane_->Register(owned_.back().get(), size);
    EXPECT_OK(r);
    return r.ok() ? std::move(*r) : nullptr;
  }

  Result<std::unique_ptr<Transfer>> Open(const std::string& text) {
    VLAKE_ASSIGN_OR_RETURN(Token token, ParseToken(text));
    return engine_->Open(token, kLocalPeer, nullptr);
  }

  UniqueFd WriteFile(const std::string& data) {
    std::string path = dir_.path() + "/obj";
    std::ofstream(path, std::ios::binary) << data;
    return UniqueFd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  }

  testing::TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ClientPlane> plane_;
  std::vector<std::unique_ptr<char[]>> owned_;
};

TEST_P(UcxEngineTest, WritesFileBytesIntoTheRegion) {
  for (uint64_t size : {uint64_t{1}, uint64_t{4096}, uint64_t{(5 << 20) + 1}}) {
    std::string data = testing::RandomData(size, size);
    UniqueFd fd = WriteFile(data);
    auto region = NewRegion(size + 100);
    ASSERT_NE(region, nullptr);
    std::memset(region->data(), 0x5a, region->size());
    auto token = plane_->MakeToken(*region, 100, size);
    ASSERT_OK(token);
    auto transfer = Open(*token);
    ASSERT_OK(transfer);
    ASSERT_OK((*transfer)->WriteFromFile(fd.get(), 0, 0, size));
    ASSERT_OK((*transfer)->Flush());
    EXPECT_EQ(std::string(region->data() + 100, size), data) << size;
    EXPECT_EQ(region->data()[99], 0x5a);  // nothing before the token's range
  }
}

TEST_P(UcxEngineTest, ReadsRegionBytes) {
  uint64_t size = (3 << 20) + 17;
  auto region = NewRegion(size);
  ASSERT_NE(region, nullptr);
  std::string data = testing::RandomData(size, 7);
  std::memcpy(region->data(), data.data(), size);
  auto token = plane_->MakeToken(*region, 0, size);
  ASSERT_OK(token);
  auto transfer = Open(*token);
  ASSERT_OK(transfer);
  std::string got(size, '\0');
  ASSERT_OK((*transfer)->ReadInto(0, got.data(), 1000));
  ASSERT_OK((*transfer)->ReadInto(1000, got.data() + 1000, size - 1000));
  EXPECT_EQ(got, data);
}

TEST_P(UcxEngineTest, NeverGoesOutsideTheTokenRange) {
  auto region = NewRegion(8192);
  ASSERT_NE(region, nullptr);
  auto token = plane_->MakeToken(*region, 0, 4096);
  ASSERT_OK(token);
  auto transfer = Open(*token);
  ASSERT_OK(transfer);
  UniqueFd fd = WriteFile(std::string(8192, 'x'));
  EXPECT_CODE((*transfer)->WriteFromFile(fd.get(), 0, 0, 4097), Code::kInvalidRdmaToken);
  EXPECT_CODE((*transfer)->WriteFromFile(fd.get(), 0, 4096, 1), Code::kInvalidRdmaToken);
  char buf[16];
  EXPECT_CODE((*transfer)->ReadInto(UINT64_MAX - 2, buf, 8), Code::kInvalidRdmaToken);
}

TEST_P(UcxEngineTest, ReusesTheCachedEndpointAcrossTransfers) {
  auto region = NewRegion(1 << 20);
  ASSERT_NE(region, nullptr);
  std::string data = testing::RandomData(1 << 20, 3);
  UniqueFd fd = WriteFile(data);
  for (int i = 0; i < 20; ++i) {
    auto token = plane_->MakeToken(*region, 0, 1 << 20);
    ASSERT_OK(token);
    auto transfer = Open(*token);
    ASSERT_OK(transfer);
    ASSERT_OK((*transfer)->WriteFromFile(fd.get(), 0, 0, 1 << 20));
    ASSERT_OK((*transfer)->Flush());
  }
  EXPECT_EQ(std::string(region->data(), 1 << 20), data);
}

TEST_P(UcxEngineTest, CancellationStopsTheTransfer) {
  uint64_t size = 4 << 20;
  auto region = NewRegion(size);
  ASSERT_NE(region, nullptr);
  std::memset(region->data(), 0, size);
  UniqueFd fd = WriteFile(std::string(size, 'y'));
  auto token = plane_->MakeToken(*region, 0, size);
  ASSERT_OK(token);
  auto parsed = ParseToken(*token);
  ASSERT_OK(parsed);
  auto transfer =
      engine_->Open(*parsed, kLocalPeer, [] { return Error(Code::kCancelled, "peer left"); });
  ASSERT_OK(transfer);
  EXPECT_CODE((*transfer)->WriteFromFile(fd.get(), 0, 0, size), Code::kCancelled);
}

INSTANTIATE_TEST_SUITE_P(Transports, UcxEngineTest,
                         ::testing::Values(Param{"shm", true}, Param{"shm", false},
                                           Param{"tcp", true}, Param{"tcp", false}),
                         [](const ::testing::TestParamInfo<Param>& p) {
                           return std::string(p.param.transports) +
                                  (p.param.allocate ? "Allocated" : "Registered");
                         });

// A forged address must not reach memory outside the segment the rkey names.
// Shared-memory segments of this process at least `min_bytes` long (client's and server's
// attachments both show up: they are one process here).
int SysvSegmentsAtLeast(uint64_t min_bytes) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) {
    if (line.find("SYSV") == std::string::npos) continue;
    uint64_t lo = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
    uint64_t hi = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
    if (hi - lo >= min_bytes) ++n;
  }
  return n;
}

// Regression: the server's rkey cache kept every freed client segment attached (and so
// allocated) until it aged out of a 16-entry LRU: 3.6 GiB of freed 512 MiB segments.
TEST(UcxEngineCacheTest, FreedSegmentsDoNotStayAttachedBeyondTheByteBound) {
  UcxEngineOptions options;
  options.max_mapped_bytes_per_endpoint = 6 << 20;
  auto engine = CreateUcxEngine(options);
  ASSERT_OK(engine);
  auto plane = ClientPlane::Create({"shm"});
  ASSERT_OK(plane);
  testing::TempDir dir;
  std::string data = testing::RandomData(4 << 20, 5);
  std::string path = dir.path() + "/obj";
  std::ofstream(path, std::ios::binary) << data;
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  const int before = SysvSegmentsAtLeast(4 << 20);
  for (int i = 0; i < 8; ++i) {
    auto region = (*plane)->Allocate(4 << 20);
    ASSERT_OK(region);
    auto token = (*plane)->MakeToken(**region, 0, 4 << 20);
    ASSERT_OK(token);
    auto parsed = ParseToken(*token);
    ASSERT_OK(parsed);
    auto transfer = (*engine)->Open(*parsed, kLocalPeer, nullptr);
    ASSERT_OK(transfer);
    ASSERT_OK((*transfer)->WriteFromFile(fd.get(), 0, 0, 4 << 20));
    ASSERT_OK((*transfer)->Flush());
    ASSERT_EQ(std::string((*region)->data(), 4 << 20), data);
  }  // each region is freed by the client here
  // Only the newest segment may stay attached on the server side (4 MiB fits, 8 MiB not).
  EXPECT_LE(SysvSegmentsAtLeast(4 << 20) - before, 1);
}

TEST(UcxEngineSecurityTest, RefusesAddressesOutsideTheMappedSegment) {
  auto engine = CreateUcxEngine({});
  ASSERT_OK(engine);
  auto plane = ClientPlane::Create({"shm"});
  ASSERT_OK(plane);
  auto region = (*plane)->Allocate(1 << 20);
  ASSERT_OK(region);
  auto victim = (*plane)->Allocate(1 << 20);
  ASSERT_OK(victim);
  auto good = (*plane)->MakeToken(**region, 0, 1 << 20);
  ASSERT_OK(good);
  auto parsed = ParseUcxToken(*good);
  ASSERT_OK(parsed);
  // Accepted once so that the segment is mapped and cached.
  ASSERT_OK((*engine)->Open(Token(*parsed), kLocalPeer, nullptr));
  for (int64_t delta : {int64_t{-4096}, int64_t{1 << 20}, int64_t{64 << 20}}) {
    UcxToken forged = *parsed;
    forged.remote_addr += static_cast<uint64_t>(delta);
    forged.length = 4096;
    EXPECT_CODE((*engine)->Open(Token(forged), kLocalPeer, nullptr), Code::kInvalidRdmaToken)
        << delta;
  }
  UcxToken longer = *parsed;
  longer.length = (1 << 20) + 1;
  EXPECT_CODE((*engine)->Open(Token(longer), kLocalPeer, nullptr), Code::kInvalidRdmaToken);
  // Pointing this rkey at the other region of the same client is refused too.
  UcxToken cross = *parsed;
  cross.remote_addr = reinterpret_cast<uintptr_t>((*victim)->data());
  cross.length = 4096;
  EXPECT_CODE((*engine)->Open(Token(cross), kLocalPeer, nullptr), Code::kInvalidRdmaToken);
}

// A worker address on this host is served only to a request from this host, also when the
// endpoint and the mapped segment are already cached from an earlier local request.
TEST(UcxEngineSecurityTest, RefusesThisHostsWorkersToRemotePeers) {
  for (const char* transports : {"shm", "tcp"}) {
    SCOPED_TRACE(transports);
    auto engine = CreateUcxEngine({});
    ASSERT_OK(engine);
    auto plane = ClientPlane::Create({transports});
    ASSERT_OK(plane);
    auto region = (*plane)->Allocate(1 << 16);
    ASSERT_OK(region);
    auto text = (*plane)->MakeToken(**region, 0, 1 << 16);
    ASSERT_OK(text);
    auto token = ParseToken(*text);
    ASSERT_OK(token);
    ASSERT_OK((*engine)->Open(*token, kLocalPeer, nullptr));
    for (std::string_view remote : {"192.0.2.7:5000", "[2001:db8::1]:443"}) {
      EXPECT_CODE((*engine)->Open(*token, remote, nullptr), Code::kInvalidRdmaToken) << remote;
    }
    EXPECT_CODE((*engine)->Open(*token, "", nullptr), Code::kInvalidRdmaToken);
    ASSERT_OK((*engine)->Open(*token, "[::1]:40000", nullptr));
  }
}

}  // namespace
}  // namespace vlake::rdma
