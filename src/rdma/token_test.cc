#include "rdma/token.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "common/testing.h"
#include "rdma/replay_guard.h"

namespace vlake::rdma {
namespace {

UcxToken SampleToken() {
  UcxToken t;
  t.remote_addr = 0x7f0012345000;
  t.length = 5 * 1024 * 1024 + 1;
  for (int i = 0; i < 16; ++i) t.nonce[i] = static_cast<uint8_t>(i * 7);
  t.expires_unix_ms = 1795296030904;
  t.worker_address = std::string("\x01\x02worker-address\x00bytes", 22);
  t.rkey = "rkey";
  return t;
}

TEST(UcxTokenTest, RoundTrips) {
  UcxToken t = SampleToken();
  std::string text = EncodeUcxToken(t);
  ASSERT_TRUE(text.starts_with("vlake1:"));
  auto parsed = ParseToken(text);
  ASSERT_OK(parsed);
  const auto* u = std::get_if<UcxToken>(&*parsed);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->remote_addr, t.remote_addr);
  EXPECT_EQ(u->length, t.length);
  EXPECT_EQ(u->nonce, t.nonce);
  EXPECT_EQ(u->expires_unix_ms, t.expires_unix_ms);
  EXPECT_EQ(u->worker_address, t.worker_address);
  EXPECT_EQ(u->rkey, t.rkey);
  EXPECT_EQ(u->memory, MemoryKind::kHost);
}

TEST(UcxTokenTest, EveryTruncationAndEveryFlippedByteIsRefused) {
  std::string text = EncodeUcxToken(SampleToken());
  std::string record = *Base64Decode(text.substr(7));
  for (size_t n = 0; n < record.size(); ++n) {
    EXPECT_CODE(ParseToken("vlake1:" + Base64Encode(record.substr(0, n))), Code::kInvalidRdmaToken)
        << n;
  }
  for (size_t i = 0; i < record.size(); ++i) {
    std::string bad = record;
    bad[i] ^= 0x20;
    EXPECT_CODE(ParseToken("vlake1:" + Base64Encode(bad)), Code::kInvalidRdmaToken) << i;
  }
  EXPECT_CODE(ParseToken("vlake1:***"), Code::kInvalidRdmaToken);
  EXPECT_CODE(ParseToken(""), Code::kInvalidRdmaToken);
  EXPECT_CODE(ParseToken(std::string(5000, 'a')), Code::kInvalidRdmaToken);
  EXPECT_CODE(ParseToken("garbage"), Code::kInvalidRdmaToken);
}

TEST(UcxTokenTest, OtherVlakeVersionsAreAVariantNotAnError) {
  auto parsed = ParseToken("vlake2:AAAA");
  ASSERT_OK(parsed);
  EXPECT_TRUE(std::holds_alternative<UnknownVariantToken>(*parsed));
}

CudaIpcToken SampleIpcToken() {
  CudaIpcToken t;
  t.host_id = HostBootId();
  for (int i = 0; i < 16; ++i) t.device_uuid[i] = static_cast<uint8_t>(0xa0 + i);
  for (size_t i = 0; i < t.ipc_handle.size(); ++i) t.ipc_handle[i] = static_cast<uint8_t>(i * 3);
  t.offset = 4096;
  t.length = (3ull << 30) + 17;
  for (int i = 0; i < 16; ++i) t.nonce[i] = static_cast<uint8_t>(255 - i);
  t.expires_unix_ms = 1795296030904;
  return t;
}

TEST(CudaIpcTokenTest, RoundTripsAndGrantsItsLength) {
  CudaIpcToken t = SampleIpcToken();
  std::string text = EncodeCudaIpcToken(t);
  ASSERT_TRUE(text.starts_with("vlake-cuda-ipc1:"));
  ASSERT_OK_AND_ASSIGN(Token parsed, ParseToken(text));
  const auto* c = std::get_if<CudaIpcToken>(&parsed);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->host_id, t.host_id);
  EXPECT_EQ(c->device_uuid, t.device_uuid);
  EXPECT_EQ(c->ipc_handle, t.ipc_handle);
  EXPECT_EQ(c->offset, t.offset);
  EXPECT_EQ(c->length, t.length);
  EXPECT_EQ(c->nonce, t.nonce);
  EXPECT_EQ(c->expires_unix_ms, t.expires_unix_ms);
  auto grant = GrantOf(parsed);
  ASSERT_TRUE(grant.has_value());
  EXPECT_EQ(grant->length, t.length);
  EXPECT_EQ(grant->nonce, t.nonce);
  // Parsed-only variants grant nothing (the S3 layer declines them).
  EXPECT_FALSE(GrantOf(Token(UnknownVariantToken{"vlake9"})).has_value());
}

TEST(CudaIpcTokenTest, EveryTruncationAndEveryFlippedByteIsRefused) {
  std::string text = EncodeCudaIpcToken(SampleIpcToken());
  const std::string prefix(kCudaIpcTokenPrefix);
  std::string record = *Base64Decode(text.substr(prefix.size()));
  for (size_t n = 0; n < record.size(); ++n) {
    EXPECT_CODE(ParseToken(prefix + Base64Encode(record.substr(0, n))), Code::kInvalidRdmaToken)
        << n;
  }
  for (size_t i = 0; i < record.size(); ++i) {
    std::string bad = record;
    bad[i] ^= 0x04;
    EXPECT_CODE(ParseToken(prefix + Base64Encode(bad)), Code::kInvalidRdmaToken) << i;
  }
  EXPECT_CODE(ParseToken(prefix + Base64Encode(record + "x")), Code::kInvalidRdmaToken);
  CudaIpcToken wraps = SampleIpcToken();
  wraps.offset = ~uint64_t{0} - 10;
  EXPECT_CODE(ParseToken(EncodeCudaIpcToken(wraps)), Code::kInvalidRdmaToken);
}

TEST(CudaIpcTokenTest, BootIdIsReadable) {
  // Linux always has one; an all-zero id would make every host look the same.
  std::array<uint8_t, 16> zero{};
  EXPECT_NE(HostBootId(), zero);
}

constexpr char kCuObject[] =
    "00007f3a2c000000:00100000:0001a2b3:0001:00abcd:1:fe800000000000000202c9fffe0a0b0c";

TEST(CuObjectTokenTest, ParsesSevenAndNineFields) {
  ASSERT_EQ(std::string(kCuObject).size(), 81u);
  auto parsed = ParseToken(kCuObject);
  ASSERT_OK(parsed);
  const auto* c = std::get_if<CuObjectToken>(&*parsed);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->addr, 0x00007f3a2c000000u);
  EXPECT_EQ(c->size, 0x00100000u);
  EXPECT_EQ(c->rkey, 0x0001a2b3u);
  EXPECT_EQ(c->lid, 1);
  EXPECT_EQ(c->dctn, 0xabcdu);
  EXPECT_TRUE(c->gid_present);
  EXPECT_EQ(c->gid[0], 0xfe);
  EXPECT_EQ(EncodeCuObjectToken(*c), kCuObject);
  std::string nine = std::string(kCuObject) + ":00007f3a2d000000:00000800";
  auto parsed9 = ParseCuObjectToken(nine);
  ASSERT_OK(parsed9);
  EXPECT_EQ(parsed9->extra_addr, 0x00007f3a2d000000u);
  EXPECT_EQ(parsed9->extra_size, 0x800u);
  EXPECT_EQ(EncodeCuObjectToken(*parsed9), nine);
}

TEST(CuObjectTokenTest, RefusesMalformed) {
  std::string good = kCuObject;
  std::string upper = good;
  upper[3] = 'F';
  EXPECT_CODE(ParseToken(upper), Code::kInvalidRdmaToken);
  EXPECT_CODE(ParseToken(good.substr(0, 80)), Code::kInvalidRdmaToken);
  EXPECT_CODE(ParseToken(good + ":00"), Code::kInvalidRdmaToken);  // 8 fields
  EXPECT_CODE(ParseToken(good + ":00007f3a2d000000:00000800:00"), Code::kInvalidRdmaToken);
  std::string gid = good;
  gid[good.find(":1:") + 1] = '2';
  EXPECT_CODE(ParseToken(gid), Code::kInvalidRdmaToken);
  std::string g = good;
  g[0] = 'g';
  EXPECT_CODE(ParseToken(g), Code::kInvalidRdmaToken);
}

TEST(ReplayGuardTest, RefusesReuseExpiryAndFarFuture) {
  ReplayGuard guard(3, 60'000);
  std::array<uint8_t, 16> a{}, b{}, c{}, d{};
  a[0] = 1;
  b[0] = 2;
  c[0] = 3;
  d[0] = 4;
  ASSERT_OK(guard.Admit(a, 2000, 1000));
  EXPECT_CODE(guard.Admit(a, 2000, 1000), Code::kInvalidRdmaToken);
  EXPECT_CODE(guard.Admit(b, 1000, 1000), Code::kInvalidRdmaToken);     // expired
  EXPECT_CODE(guard.Admit(b, 100'000, 1000), Code::kInvalidRdmaToken);  // too far ahead
  ASSERT_OK(guard.Admit(b, 3000, 1000));
  ASSERT_OK(guard.Admit(c, 3000, 1000));
  EXPECT_CODE(guard.Admit(d, 3000, 1000), Code::kUnavailable);  // full: never forget a live one
  ASSERT_OK(guard.Admit(d, 5000, 2500));                        // a's entry expired and was purged
  EXPECT_EQ(guard.size(), 3u);
}

}  // namespace
}  // namespace vlake::rdma
