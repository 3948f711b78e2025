#include "rdma/ucx_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace vlake::rdma {
namespace {

// ---- UCX 1.13 packing constants (ucp/wireup/address.c, ucp/core/ucp_types.h) ----
constexpr uint8_t kVersionMask = 0x0f;  // low 4 bits of the first header byte
constexpr int kVersionV1 = 0;           // UCP_OBJECT_VERSION_V1
constexpr int kVersionV2 = 1;           // UCP_OBJECT_VERSION_V2
constexpr uint8_t kHeaderDebugInfo = 1 << 0;
constexpr uint8_t kHeaderWorkerUuid = 1 << 1;
constexpr uint8_t kHeaderClientId = 1 << 2;
constexpr uint8_t kHeaderAmOnly = 1 << 3;
constexpr uint8_t kNullResource = 0xff;  // an address without devices
constexpr uint8_t kFlagLast = 0x80;
constexpr uint8_t kFlagHasEpAddr = 0x40;  // in an interface address length byte
constexpr uint8_t kFlagNumPaths = 0x40;   // in a device address length byte
constexpr uint8_t kFlagSysDevice = 0x20;  // in a device address length byte
constexpr uint8_t kMdEmptyDevice = 0x80;  // in the md index byte
constexpr uint8_t kMdMaskV1 = 0x1f;       // md index bits, v1 (0x40/0x20: alloc/reg flags)
constexpr uint8_t kMdMaskV2 = 0x7f;
constexpr uint8_t kDeviceLenMask = 0x1f;
constexpr uint8_t kIfaceLenMask = 0x3f;
constexpr size_t kIfaceAttrBytesV1 = 16;  // ucp_address_packed_iface_attr_t
constexpr size_t kIfaceAttrBytesV2 = 8;   // ucp_address_v2_packed_iface_attr_t
constexpr size_t kMaxEntries = 128;       // UCP_MAX_RESOURCES
constexpr size_t kMaxEpAddrs = 6;         // UCP_MAX_LANES
// UCT device addresses (uct/tcp/tcp.h, uct/base/uct_iface.h).
constexpr uint8_t kTcpLoopback = 1 << 0;
constexpr uint64_t kLocalAddrNsFlag = uint64_t{1} << 63;
constexpr size_t kLocalAddrBytes = 8;     // uct_iface_local_addr_base_t
constexpr size_t kLocalAddrNsBytes = 16;  // uct_iface_local_addr_ns_t
constexpr uint8_t kAfInet = AF_INET;
constexpr uint8_t kAfInet6 = AF_INET6;
// ucp_rkey_pack: md map, memory type, then per md one length byte + rkey; optionally a sys_dev
// byte and 3-byte distances.
constexpr size_t kRkeyDistanceBytes = 3;
constexpr uint8_t kMaxMemoryType = 4;  // UCS_MEMORY_TYPE_ROCM_MANAGED, the last in 1.13

Status Invalid(std::string_view why) {
  return Error(Code::kInvalidRdmaToken, "x-amz-rdma-token: " + std::string(why));
}

// Bounds-checked reader; the first failure sticks.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool Peek(uint8_t* v) const {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    return true;
  }
  bool Le(size_t n, uint64_t* v) {
    if (in_.size() < n) return false;
    uint64_t r = 0;
    for (size_t i = 0; i < n; ++i) r |= uint64_t{static_cast<uint8_t>(in_[i])} << (8 * i);
    in_.remove_prefix(n);
    *v = r;
    return true;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (in_.size() < n) return false;
    *out = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }
  // A 7/5/6-bit length or index, extended by the next byte in v2 when all its bits are set.
  bool Extended(uint8_t mask, int version, uint8_t* v) {
    uint8_t b = 0;
    if (!U8(&b)) return false;
    *v = b & mask;
    if (version == kVersionV2 && *v == mask) return U8(v);
    return true;
  }
  size_t left() const { return in_.size(); }

 private:
  std::string_view in_;
};

struct KnownTransport {
  std::string_view name;
  UcxTransportKind kind;
};
constexpr KnownTransport kTransports[] = {
    {"tcp", UcxTransportKind::kTcp},           {"posix", UcxTransportKind::kSharedMemory},
    {"sysv", UcxTransportKind::kSharedMemory}, {"cma", UcxTransportKind::kSharedMemory},
    {"knem", UcxTransportKind::kSharedMemory}, {"xpmem", UcxTransportKind::kSharedMemory},
    {"self", UcxTransportKind::kSelf},         {"rc_verbs", UcxTransportKind::kVerbs},
    {"ud_verbs", UcxTransportKind::kVerbs},    {"rc_mlx5", UcxTransportKind::kVerbs},
    {"dc_mlx5", UcxTransportKind::kVerbs},     {"ud_mlx5", UcxTransportKind::kVerbs},
    {"cuda_copy", UcxTransportKind::kOther},   {"cuda_ipc", UcxTransportKind::kOther},
    {"gdr_copy", UcxTransportKind::kOther},    {"rocm_copy", UcxTransportKind::kOther},
    {"rocm_ipc", UcxTransportKind::kOther},
};

uint64_t LocalId(std::string_view bytes) {
  uint64_t id = 0;
  for (size_t i = 0; i < 8; ++i) id |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
  return id & ~kLocalAddrNsFlag;
}

// Reads what the device address says about where the transport leads.
Status DescribeDevice(std::string_view dev, UcxAddressEntry* e) {
  if (e->kind == UcxTransportKind::kTcp) {
    // flags, sa_family, then the IP address or, on loopback, a local address with namespace.
    if (dev.size() < 2) return Invalid("UCX tcp device address too short");
    const auto flags = static_cast<uint8_t>(dev[0]);
    const auto family = static_cast<uint8_t>(dev[1]);
    std::string_view rest = dev.substr(2);
    if (flags & ~kTcpLoopback) return Invalid("UCX tcp device address has unknown flags");
    if (flags & kTcpLoopback) {
      if (rest.size() != kLocalAddrNsBytes) return Invalid("UCX tcp loopback address size");
      e->system_id = LocalId(rest);
      return Status::Ok();
    }
    if (!((family == kAfInet && rest.size() == 4) || (family == kAfInet6 && rest.size() == 16))) {
      return Invalid("UCX tcp device address is not an IPv4/IPv6 address");
    }
    e->ip = IpAddress{std::string(rest)};
    return Status::Ok();
  }
  if (e->kind == UcxTransportKind::kSharedMemory) {
    if (dev.size() != kLocalAddrBytes && dev.size() != kLocalAddrNsBytes) {
      return Invalid("UCX shared-memory device address size");
    }
    e->system_id = LocalId(dev);
  }
  return Status::Ok();
}

bool Contains(const std::vector<IpAddress>& v, const IpAddress& ip) {
  return std::find(v.begin(), v.end(), ip) != v.end();
}

}  // namespace

uint16_t UcxTransportChecksum(std::string_view name) {
  // UCX's ucs_crc16 (CRC-16-CCITT, reflected, initial 0xffff, final complement).
  uint16_t crc = 0xffff;
  for (char ch : name) {
    crc ^= static_cast<uint8_t>(ch);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? 0x8408 : 0);
  }
  return static_cast<uint16_t>(~crc);
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (bytes.size() == 4) inet_ntop(AF_INET, bytes.data(), buf, sizeof(buf));
  if (bytes.size() == 16) inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
  return buf;
}

std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  std::string host(text);
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = host.substr(1, close - 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));  // IPv4 with a port
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) {
    return IpAddress{std::string(reinterpret_cast<char*>(buf), 4)};
  }
  if (inet_pton(AF_INET6, host.c_str(), buf) == 1) {
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(buf, kMapped, 12) == 0) {
      return IpAddress{std::string(reinterpret_cast<char*>(buf) + 12, 4)};
    }
    return IpAddress{std::string(reinterpret_cast<char*>(buf), 16)};
  }
  return std::nullopt;
}

bool IsLoopback(const IpAddress& ip) {
  if (ip.bytes.size() == 4) return static_cast<uint8_t>(ip.bytes[0]) == 127;
  if (ip.bytes.size() == 16) return ip.bytes == std::string(15, '\0') + '\x01';
  return false;
}

Result<UcxWorkerAddress> ParseUcxWorkerAddress(std::string_view packed) {
  Reader r(packed);
  UcxWorkerAddress out;
  uint8_t header = 0, flags = 0;
  if (!r.U8(&header)) return Invalid("empty UCX worker address");
  const int version = header & kVersionMask;
  if (version == kVersionV1) {
    flags = header >> 4;
  } else if (version == kVersionV2) {
    if ((header & ~kVersionMask) != 0) return Invalid("UCX worker address header");
    if (!r.U8(&flags)) return Invalid("UCX worker address truncated");
  } else {
    return Invalid("UCX worker address of an unknown version");
  }
  out.version = version + 1;
  if (flags & ~(kHeaderDebugInfo | kHeaderWorkerUuid | kHeaderClientId | kHeaderAmOnly)) {
    return Invalid("UCX worker address has unknown header flags");
  }
  // A worker address (ucp_worker_get_address) always carries the worker uuid; v1 readers
  // assume it, so an address without the flag would be read differently by UCX and by us.
  if (!(flags & kHeaderWorkerUuid)) return Invalid("UCX worker address without worker id");
  uint64_t skip = 0;
  if (!r.Le(8, &out.worker_uuid)) return Invalid("UCX worker address truncated");
  if ((flags & kHeaderClientId) && !r.Le(8, &skip)) return Invalid("UCX worker address truncated");
  if (flags & kHeaderDebugInfo) {
    uint8_t n = 0;
    std::string_view name;
    if (!r.U8(&n) || !r.Bytes(n, &name)) return Invalid("UCX worker address truncated");
  }
  uint8_t first = 0;
  if (!r.Peek(&first)) return Invalid("UCX worker address truncated");
  if (first == kNullResource) return Invalid("UCX worker address names no transport");

  const size_t attr_bytes = version == kVersionV1 ? kIfaceAttrBytesV1 : kIfaceAttrBytesV2;
  bool last_device = false;
  while (!last_device) {
    uint8_t md_byte = 0, md_index = 0, len_byte = 0, dev_len = 0, u8 = 0;
    if (!r.Peek(&md_byte) ||
        !r.Extended(version == kVersionV1 ? kMdMaskV1 : kMdMaskV2, version, &md_index) ||
        !r.Peek(&len_byte) || !r.Extended(kDeviceLenMask, version, &dev_len)) {
      return Invalid("UCX worker address truncated");
    }
    const bool empty_device = md_byte & kMdEmptyDevice;
    last_device = len_byte & kFlagLast;
    if ((len_byte & kFlagNumPaths) && !r.U8(&u8)) return Invalid("UCX worker address truncated");
    if ((len_byte & kFlagSysDevice) && !r.U8(&u8)) return Invalid("UCX worker address truncated");
    std::string_view device;
    if (!r.Bytes(dev_len, &device)) return Invalid("UCX worker address truncated");
    bool last_iface = empty_device;
    while (!last_iface) {
      if (out.entries.size() >= kMaxEntries) return Invalid("UCX worker address: too many");
      UcxAddressEntry e;
      uint64_t csum = 0;
      std::string_view attrs, iface;
      uint8_t iface_len_byte = 0, iface_len = 0;
      if (!r.Le(2, &csum) || !r.Bytes(attr_bytes, &attrs) || !r.Peek(&iface_len_byte) ||
          !r.Extended(kIfaceLenMask, version, &iface_len) || !r.Bytes(iface_len, &iface)) {
        return Invalid("UCX worker address truncated");
      }
      last_iface = iface_len_byte & kFlagLast;
      if (iface_len_byte & kFlagHasEpAddr) {
        // Endpoint addresses: length, bytes, lane byte whose top bit ends the list.
        bool last_ep = false;
        for (size_t n = 0; !last_ep; ++n) {
          uint8_t ep_len = 0, lane = 0;
          std::string_view ep;
          if (n >= kMaxEpAddrs) return Invalid("UCX worker address: too many endpoints");
          if (!r.U8(&ep_len) || !r.Bytes(ep_len, &ep) || !r.U8(&lane)) {
            return Invalid("UCX worker address truncated");
          }
          last_ep = lane & kFlagLast;
        }
      }
      e.transport_checksum = static_cast<uint16_t>(csum);
      for (const KnownTransport& t : kTransports) {
        if (UcxTransportChecksum(t.name) == e.transport_checksum) {
          e.kind = t.kind;
          e.transport = std::string(t.name);
        }
      }
      VLAKE_RETURN_IF_ERROR(DescribeDevice(device, &e));
      out.entries.push_back(std::move(e));
    }
  }
  if (r.left() != 0) return Invalid("UCX worker address has trailing bytes");
  return out;
}

bool PeerScope::PeerIsThisHost() const {
  return IsLoopback(peer) || Contains(host_addresses, peer);
}

Status CheckWorkerAddressPeer(const UcxWorkerAddress& address, const PeerScope& scope) {
  const bool local_peer = scope.PeerIsThisHost();
  auto this_host_id = [&](uint64_t id) {
    return std::find(scope.host_system_ids.begin(), scope.host_system_ids.end(), id) !=
           scope.host_system_ids.end();
  };
  for (const UcxAddressEntry& e : address.entries) {
    switch (e.kind) {
      case UcxTransportKind::kTcp:
        if (e.ip) {
          if (*e.ip == scope.peer) break;
          if (local_peer && (IsLoopback(*e.ip) || Contains(scope.host_addresses, *e.ip))) break;
          return Invalid("the worker address names tcp " + e.ip->ToString() +
                         ", not the address the request came from (" + scope.peer.ToString() + ")");
        }
        [[fallthrough]];
      case UcxTransportKind::kSharedMemory:
        // Naming another host's id, UCX cannot reach it; naming this host's, the request must
        // come from this host.
        if (e.system_id && this_host_id(*e.system_id) && !local_peer) {
          return Invalid("the worker address names " + e.transport +
                         " on this host, but the request came from " + scope.peer.ToString());
        }
        break;
      case UcxTransportKind::kSelf:
        break;
      case UcxTransportKind::kVerbs:
        return Invalid("the worker address names RDMA verbs (" + e.transport +
                       "), which this server cannot tie to the request's source address");
      case UcxTransportKind::kOther:
        return Invalid("the worker address names a transport this server does not admit" +
                       (e.transport.empty() ? std::string() : " (" + e.transport + ")"));
    }
  }
  return Status::Ok();
}

std::vector<uint64_t> SystemIdsOf(const UcxWorkerAddress& address) {
  std::vector<uint64_t> ids;
  for (const UcxAddressEntry& e : address.entries) {
    if (e.system_id && std::find(ids.begin(), ids.end(), *e.system_id) == ids.end()) {
      ids.push_back(*e.system_id);
    }
  }
  return ids;
}

std::vector<IpAddress> HostAddresses() {
  std::vector<IpAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* it = list; it != nullptr; it = it->ifa_next) {
    if (it->ifa_addr == nullptr) continue;
    if (it->ifa_addr->sa_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
      out.push_back(IpAddress{std::string(reinterpret_cast<const char*>(&a->sin_addr), 4)});
    } else if (it->ifa_addr->sa_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(it->ifa_addr);
      out.push_back(IpAddress{std::string(reinterpret_cast<const char*>(&a->sin6_addr), 16)});
    }
  }
  freeifaddrs(list);
  return out;
}

Status ValidatePackedRkey(std::string_view packed) {
  Reader r(packed);
  uint64_t md_map = 0;
  uint8_t mem_type = 0;
  if (!r.Le(8, &md_map) || !r.U8(&mem_type)) return Invalid("packed rkey truncated");
  if (md_map == 0) return Invalid("packed rkey names no memory domain");
  if (mem_type > kMaxMemoryType) return Invalid("packed rkey has an unknown memory type");
  for (uint64_t m = md_map; m != 0; m &= m - 1) {
    uint8_t n = 0;
    std::string_view tl_rkey;
    if (!r.U8(&n) || !r.Bytes(n, &tl_rkey)) return Invalid("packed rkey truncated");
  }
  // Optional: the memory's system device, then one distance per device.
  if (r.left() != 0 && (r.left() - 1) % kRkeyDistanceBytes != 0) {
    return Invalid("packed rkey has trailing bytes");
  }
  return Status::Ok();
}

}  // namespace vlake::rdma
