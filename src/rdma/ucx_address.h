// Our own reading of the UCX blobs a vlake1 token carries (a packed worker address and a
// packed rkey), done before UCX sees them, and the rule that ties a worker address to the
// HTTP peer that sent the token.
//
// Why: ucp_ep_create() takes the worker address without a length and walks it unchecked (a
// truncated or forged address makes it read past the buffer), and it aborts the process on an
// address version it does not know (ucs_assertv_always). And whoever signs a request could
// otherwise make the server open an endpoint to any address: another host over tcp, or a
// process on the server's own host over shared memory.
//
// ParseUcxWorkerAddress() walks the layout UCX 1.13 packs (ucp/wireup/address.c, versions v1
// and v2, non-unified mode, which vlake's contexts use): header, worker uuid, optional client
// id and debug name, then devices (md index, device address, optional paths/sys device) each
// with interfaces (transport-name checksum, attributes, interface address, optional endpoint
// addresses). Every length is checked against the bytes left, counts against UCX's limits,
// and the walk must end exactly at the end. Transports are named by UCX's CRC-16 of their
// name; for tcp the device address holds the interface's IP address (or, on loopback, the
// host's system id), for the shared-memory transports the host's system id.
//
// CheckWorkerAddressPeer() then admits an address only when every endpoint UCX could open
// from it leads to the HTTP peer (docs/security.md, "Who the server connects to"):
// - tcp on an IP address: that address is the HTTP peer's, or the peer is on this host and the
//   address is one of this host's;
// - tcp on loopback and shared memory (posix, sysv, cma, knem, xpmem) naming this host's system
//   id: the HTTP peer is on this host (loopback or one of its addresses). Naming another
//   host's system id, UCX cannot reach them (its reachability check compares the same id);
// - self: reachable only to the server's own worker, whose random interface id the server
//   never publishes;
// - anything else (RDMA verbs, CUDA, unknown names): refused; a verbs device address names an
//   InfiniBand/RoCE port, which this check cannot yet tie to the peer's IP address.
//
// ValidatePackedRkey() checks the rkey's outer layout (UCX 1.13 ucp_rkey_pack: md map, memory
// type, one length-prefixed transport rkey per md in the map, optional trailing distance
// data), so that a truncated or inflated rkey fails here.
//
// Thread-safety: pure functions over values.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace vlake::rdma {

enum class UcxTransportKind : uint8_t {
  kTcp,
  kSharedMemory,  // posix, sysv, cma, knem, xpmem
  kSelf,
  kVerbs,  // rc/ud/dc over verbs or mlx5
  kOther,  // CUDA, ROCm, or a name vlake does not know
};

// An IPv4 (4 bytes) or IPv6 (16 bytes) address in network byte order.
struct IpAddress {
  std::string bytes;
  bool operator==(const IpAddress&) const = default;
  std::string ToString() const;
};
// "127.0.0.1", "::1", "127.0.0.1:80", "[::1]:80" (a peer name as http::HttpRequest::peer
// spells it); an IPv4-mapped IPv6 address becomes IPv4. nullopt when unparsable.
std::optional<IpAddress> ParseIpAddress(std::string_view text);
bool IsLoopback(const IpAddress& ip);

struct UcxAddressEntry {
  uint16_t transport_checksum = 0;  // ucs_crc16_string(transport name)
  UcxTransportKind kind = UcxTransportKind::kOther;
  std::string transport;  // the name when known ("tcp", "posix", ...), else ""
  // tcp: the interface address, or nullopt on loopback (then `system_id` is set).
  std::optional<IpAddress> ip;
  // tcp on loopback and shared memory: the host's UCX system id (namespace flag cleared).
  std::optional<uint64_t> system_id;
};

struct UcxWorkerAddress {
  int version = 1;  // UCX address format: 1 or 2
  uint64_t worker_uuid = 0;
  std::vector<UcxAddressEntry> entries;  // one per transport interface, in packed order
};

// kInvalidRdmaToken for anything that is not a well-formed UCX 1.13 worker address.
Result<UcxWorkerAddress> ParseUcxWorkerAddress(std::string_view packed);

// UCX's CRC-16 of a transport name (the checksum packed addresses carry).
uint16_t UcxTransportChecksum(std::string_view name);

// Who sent the HTTP request, and what "this host" is.
struct PeerScope {
  IpAddress peer;                         // the HTTP request's source address
  std::vector<IpAddress> host_addresses;  // this host's interface addresses (loopback too)
  std::vector<uint64_t> host_system_ids;  // UCX system ids of this host (from its own workers)
  bool PeerIsThisHost() const;
};

// kInvalidRdmaToken naming the first entry that leads elsewhere than the HTTP peer.
Status CheckWorkerAddressPeer(const UcxWorkerAddress& address, const PeerScope& scope);

// The system ids a (this host's own) worker address names, for PeerScope::host_system_ids.
std::vector<uint64_t> SystemIdsOf(const UcxWorkerAddress& address);

// This host's interface addresses (getifaddrs), loopback included.
std::vector<IpAddress> HostAddresses();

// kInvalidRdmaToken unless `packed` has the outer layout of a UCX 1.13 packed rkey.
Status ValidatePackedRkey(std::string_view packed);

}  // namespace vlake::rdma
