// x-amz-rdma-token values: the two variants vlake understands.
//
// - vlake's UCX token ("vlake1:" + base64 of a little-endian record; docs/format/rdma-token.md):
//   names one region registered with UCX in the client process (worker address, remote
//   address, length, packed rkey) plus a per-request nonce and an expiry so that a captured
//   request cannot be replayed.
// - NVIDIA cuObject's DC token (81 lowercase-hex characters, colon-separated
//   `addr:size:rkey:lid:dctn:gid_present:gid`, optionally `:addr:size`): parsed and validated
//   so that such clients get a clean decline (x-amz-rdma-reply: 501) until a DC engine exists.
//
// Thread-safety: pure functions over values.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/status.h"

namespace vlake::rdma {

inline constexpr std::string_view kTokenHeader = "x-amz-rdma-token";
inline constexpr std::string_view kUcxTokenPrefix = "vlake1:";
inline constexpr uint8_t kUcxTokenVersion = 1;
// Largest token header accepted; UCX worker addresses with every transport are ~300 bytes.
inline constexpr size_t kMaxTokenChars = 4096;

enum class MemoryKind : uint8_t { kHost = 0, kCuda = 1 };

struct UcxToken {
  MemoryKind memory = MemoryKind::kHost;
  // The client allocated the region through UCX (shared memory when a shared-memory transport
  // is on): the server connects without peer-failure mode, which those transports lack, and
  // expects to map the region. A hint only; the server verifies the mapping itself.
  bool ucx_allocated = false;
  uint64_t remote_addr = 0;  // first byte of the client region, in the client's address space
  uint64_t length = 0;       // bytes the server may touch from remote_addr
  std::array<uint8_t, 16> nonce{};  // fresh per request; the server refuses a nonce seen before
  int64_t expires_unix_ms = 0;      // the server refuses the token after this instant
  std::string worker_address;       // ucp_worker_get_address() bytes
  std::string rkey;                 // ucp_rkey_pack() bytes
};

struct CuObjectToken {
  uint64_t addr = 0;
  uint32_t size = 0;
  uint32_t rkey = 0;
  uint16_t lid = 0;
  uint32_t dctn = 0;  // 24-bit DC target number
  bool gid_present = false;
  std::array<uint8_t, 16> gid{};
  std::optional<uint64_t> extra_addr;  // the optional second ":addr:size" pair
  std::optional<uint32_t> extra_size;
};

// A token of a vlake variant this build does not know (e.g. "vlake2:"): declined, not refused.
struct UnknownVariantToken {
  std::string prefix;
};

using Token = std::variant<UcxToken, CuObjectToken, UnknownVariantToken>;

// Parses a header value. kInvalidArgument (→ 400 InvalidRDMAToken) for anything malformed.
Result<Token> ParseToken(std::string_view header_value);
Result<UcxToken> ParseUcxToken(std::string_view header_value);
Result<CuObjectToken> ParseCuObjectToken(std::string_view header_value);

std::string EncodeUcxToken(const UcxToken& token);
std::string EncodeCuObjectToken(const CuObjectToken& token);

}  // namespace vlake::rdma
