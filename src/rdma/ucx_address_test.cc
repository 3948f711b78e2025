// Our reading of UCX worker addresses and rkeys (ucx_address.h), against blobs the installed
// UCX (1.13) packs for each transport here, and against corrupted and forged ones.
#include "rdma/ucx_address.h"

#include <gtest/gtest.h>

#include <random>

#include "common/testing.h"
#include "rdma/token.h"
#include "rdma/ucx_client.h"

namespace vlake::rdma {
namespace {

struct Blobs {
  std::string worker_address;
  std::string rkey;
};

// A real worker address and rkey from a client plane over `transports`.
Blobs RealBlobs(const std::string& transports) {
  auto plane = ClientPlane::Create({transports});
  EXPECT_OK(plane);
  if (!plane.ok()) return {};
  auto region = (*plane)->Allocate(1 << 16);
  EXPECT_OK(region);
  if (!region.ok()) return {};
  auto text = (*plane)->MakeToken(**region, 0, 1 << 16, 60'000);
  EXPECT_OK(text);
  auto token = ParseUcxToken(*text);
  EXPECT_OK(token);
  return {token->worker_address, token->rkey};
}

IpAddress Ip(std::string_view text) { return *ParseIpAddress(text); }

TEST(UcxAddress, TransportChecksumIsUcxCrc16) {
  // ucs_crc16_string("") is the complement of the initial value.
  EXPECT_EQ(UcxTransportChecksum(""), 0x0000);
  EXPECT_NE(UcxTransportChecksum("tcp"), UcxTransportChecksum("posix"));
}

TEST(UcxAddress, RealAddressesParse) {
  for (std::string transports : {"tcp", "posix", "sysv", "cma", "shm", "tcp,posix,sysv,cma"}) {
    SCOPED_TRACE(transports);
    Blobs b = RealBlobs(transports);
    auto parsed = ParseUcxWorkerAddress(b.worker_address);
    ASSERT_OK(parsed);
    ASSERT_FALSE(parsed->entries.empty());
    bool tcp = false, shm = false;
    for (const UcxAddressEntry& e : parsed->entries) {
      // Every transport UCX packs here is one vlake knows by name.
      EXPECT_FALSE(e.transport.empty()) << std::hex << e.transport_checksum;
      if (e.kind == UcxTransportKind::kTcp) {
        tcp = true;
        EXPECT_TRUE(e.ip.has_value() || e.system_id.has_value());
      }
      if (e.kind == UcxTransportKind::kSharedMemory) {
        shm = true;
        EXPECT_TRUE(e.system_id.has_value());
      }
    }
    EXPECT_EQ(tcp, transports.find("tcp") != std::string::npos);
    EXPECT_EQ(shm, transports.find("tcp") != 0 || transports.size() > 3);
    EXPECT_OK(ValidatePackedRkey(b.rkey));
  }
}

TEST(UcxAddress, TcpAddressesAreThisHostsAndSharedMemoryIdsAgree) {
  std::vector<IpAddress> host = HostAddresses();
  auto tcp = ParseUcxWorkerAddress(RealBlobs("tcp").worker_address);
  ASSERT_OK(tcp);
  for (const UcxAddressEntry& e : tcp->entries) {
    if (e.ip) {
      EXPECT_NE(std::find(host.begin(), host.end(), *e.ip), host.end()) << e.ip->ToString();
    }
  }
  auto a = ParseUcxWorkerAddress(RealBlobs("posix,sysv,cma").worker_address);
  auto b = ParseUcxWorkerAddress(RealBlobs("posix").worker_address);
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(SystemIdsOf(*a).size(), 1u);
  EXPECT_EQ(SystemIdsOf(*a), SystemIdsOf(*b));
}

// Every truncation must fail; every flipped byte must either fail or still parse within the
// bytes given (run under ASan to see an out-of-bounds read).
TEST(UcxAddress, CorruptedAddressesAndRkeysFailCleanly) {
  Blobs b = RealBlobs("tcp,posix,sysv,cma");
  for (size_t n = 0; n < b.worker_address.size(); ++n) {
    EXPECT_CODE(ParseUcxWorkerAddress(b.worker_address.substr(0, n)), Code::kInvalidRdmaToken) << n;
  }
  EXPECT_CODE(ParseUcxWorkerAddress(b.worker_address + "x"), Code::kInvalidRdmaToken);
  for (size_t i = 0; i < b.worker_address.size(); ++i) {
    for (uint8_t mask : {0x01, 0x20, 0x40, 0x80, 0xff}) {
      std::string bad = b.worker_address;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      auto r = ParseUcxWorkerAddress(bad);
      if (!r.ok()) {
        EXPECT_EQ(r.error().code(), Code::kInvalidRdmaToken);
      }
    }
  }
  for (size_t n = 0; n < 9; ++n) {
    EXPECT_CODE(ValidatePackedRkey(b.rkey.substr(0, n)), Code::kInvalidRdmaToken) << n;
  }
  // A truncated last transport rkey.
  EXPECT_CODE(ValidatePackedRkey(b.rkey.substr(0, b.rkey.size() - 1)), Code::kInvalidRdmaToken);
  std::string no_md = b.rkey;
  for (int i = 0; i < 8; ++i) no_md[i] = 0;
  EXPECT_CODE(ValidatePackedRkey(no_md), Code::kInvalidRdmaToken);
  std::string cuda = b.rkey;
  cuda[8] = 7;
  EXPECT_CODE(ValidatePackedRkey(cuda), Code::kInvalidRdmaToken);
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 96, '\0');
    for (char& c : junk) c = static_cast<char>(rng() % 3 == 0 ? rng() & 0xff : rng() % 4);
    auto r = ParseUcxWorkerAddress(junk);
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), Code::kInvalidRdmaToken);
    }
    Status s = ValidatePackedRkey(junk);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), Code::kInvalidRdmaToken);
    }
  }
}

TEST(UcxAddress, HeadersUcxWouldAbortOnAreRefused) {
  std::string a = RealBlobs("tcp").worker_address;
  ASSERT_OK(ParseUcxWorkerAddress(a));
  for (int version = 2; version < 16; ++version) {
    std::string bad = a;
    bad[0] = static_cast<char>((bad[0] & 0xf0) | version);
    EXPECT_CODE(ParseUcxWorkerAddress(bad), Code::kInvalidRdmaToken) << version;
  }
  std::string no_uuid = a;
  no_uuid[0] = static_cast<char>(no_uuid[0] & ~0x20);  // v1: flags in the high nibble
  EXPECT_CODE(ParseUcxWorkerAddress(no_uuid), Code::kInvalidRdmaToken);
  EXPECT_CODE(ParseUcxWorkerAddress(std::string("\x20", 1) + std::string(8, '\0') + "\xff"),
              Code::kInvalidRdmaToken);  // no transports at all
  EXPECT_CODE(ParseUcxWorkerAddress(""), Code::kInvalidRdmaToken);
}

TEST(UcxAddress, PeerParsing) {
  EXPECT_EQ(ParseIpAddress("127.0.0.1:5000")->ToString(), "127.0.0.1");
  EXPECT_EQ(ParseIpAddress("[::1]:5000")->ToString(), "::1");
  EXPECT_EQ(ParseIpAddress("[::ffff:10.1.2.3]:80")->ToString(), "10.1.2.3");
  EXPECT_EQ(ParseIpAddress("10.1.2.3")->ToString(), "10.1.2.3");
  EXPECT_FALSE(ParseIpAddress("").has_value());
  EXPECT_FALSE(ParseIpAddress("?:0").has_value());
  EXPECT_FALSE(ParseIpAddress("[::1").has_value());
  EXPECT_TRUE(IsLoopback(Ip("127.3.4.5")));
  EXPECT_TRUE(IsLoopback(Ip("::1")));
  EXPECT_FALSE(IsLoopback(Ip("10.0.0.1")));
}

// The rule that ties an address to the HTTP peer, with this host's real addresses.
TEST(UcxAddress, PeerRule) {
  auto tcp = ParseUcxWorkerAddress(RealBlobs("tcp").worker_address);
  auto shm = ParseUcxWorkerAddress(RealBlobs("posix,sysv,cma").worker_address);
  ASSERT_OK(tcp);
  ASSERT_OK(shm);
  PeerScope local;
  local.peer = Ip("127.0.0.1");
  local.host_addresses = HostAddresses();
  local.host_system_ids = SystemIdsOf(*shm);
  EXPECT_OK(CheckWorkerAddressPeer(*tcp, local));
  EXPECT_OK(CheckWorkerAddressPeer(*shm, local));

  // A peer elsewhere may not have the server connect to this host's shared memory, nor to the
  // tcp addresses of another machine (here: this host's own addresses).
  PeerScope remote = local;
  remote.peer = Ip("192.0.2.7");
  EXPECT_CODE(CheckWorkerAddressPeer(*shm, remote), Code::kInvalidRdmaToken);
  bool has_ip = false;
  for (const UcxAddressEntry& e : tcp->entries) has_ip = has_ip || e.ip.has_value();
  if (has_ip) {
    EXPECT_CODE(CheckWorkerAddressPeer(*tcp, remote), Code::kInvalidRdmaToken);
  }

  // A tcp address that is the peer's own passes; one naming a third machine does not.
  UcxWorkerAddress synthetic;
  UcxAddressEntry e;
  e.kind = UcxTransportKind::kTcp;
  e.transport = "tcp";
  e.ip = Ip("192.0.2.7");
  synthetic.entries.push_back(e);
  EXPECT_OK(CheckWorkerAddressPeer(synthetic, remote));
  synthetic.entries[0].ip = Ip("198.51.100.9");
  EXPECT_CODE(CheckWorkerAddressPeer(synthetic, remote), Code::kInvalidRdmaToken);
  EXPECT_CODE(CheckWorkerAddressPeer(synthetic, local), Code::kInvalidRdmaToken);
  // Shared memory of another host is unreachable for UCX: harmless from anyone.
  UcxWorkerAddress other_host;
  UcxAddressEntry s;
  s.kind = UcxTransportKind::kSharedMemory;
  s.transport = "posix";
  s.system_id = 0x1234;
  other_host.entries.push_back(s);
  EXPECT_OK(CheckWorkerAddressPeer(other_host, remote));
  // Verbs and unknown transports are refused whoever asks.
  UcxWorkerAddress verbs;
  UcxAddressEntry v;
  v.kind = UcxTransportKind::kVerbs;
  v.transport = "rc_mlx5";
  verbs.entries.push_back(v);
  EXPECT_CODE(CheckWorkerAddressPeer(verbs, local), Code::kInvalidRdmaToken);
  verbs.entries[0].kind = UcxTransportKind::kOther;
  EXPECT_CODE(CheckWorkerAddressPeer(verbs, local), Code::kInvalidRdmaToken);
}

}  // namespace
}  // namespace vlake::rdma
