// x-amz-rdma-token values: the variants vlake understands.
//
// - vlake's UCX token ("vlake1:" + base64 of a little-endian record; docs/format/rdma-token.md):
//   names one region registered with UCX in the client process (worker address, remote
//   address, length, packed rkey) plus a per-request nonce and an expiry so that a captured
//   request cannot be replayed.
// - vlake's CUDA IPC token ("vlake-cuda-ipc1:" + base64; docs/format/rdma-token.md): names a
//   range of a CUDA device allocation in a client process on the same host (cudaIpcMemHandle_t
//   bytes, offset, length) plus the host's boot id, so that a server elsewhere declines it.
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
inline constexpr std::string_view kCudaIpcTokenPrefix = "vlake-cuda-ipc1:";
inline constexpr uint8_t kCudaIpcTokenVersion = 1;
inline constexpr size_t kCudaIpcHandleBytes = 64;  // sizeof(cudaIpcMemHandle_t)
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

struct CudaIpcToken {
  std::array<uint8_t, 16> host_id{};      // /proc/sys/kernel/random/boot_id of the client host
  std::array<uint8_t, 16> device_uuid{};  // cudaDeviceProp::uuid of the GPU holding the memory
  std::array<uint8_t, kCudaIpcHandleBytes> ipc_handle{};  // cudaIpcGetMemHandle() bytes
  uint64_t offset = 0;  // first byte of the region, from the start of the exported allocation
  uint64_t length = 0;  // bytes the server may write/read from offset
  std::array<uint8_t, 16> nonce{};
  int64_t expires_unix_ms = 0;
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

using Token = std::variant<UcxToken, CuObjectToken, UnknownVariantToken, CudaIpcToken>;

// What a served token grants and how it is admitted (replay guard): the region's length, its
// nonce and its expiry. nullopt for variants that are only parsed (cuObject, unknown).
struct TokenGrant {
  uint64_t length = 0;
  std::array<uint8_t, 16> nonce{};
  int64_t expires_unix_ms = 0;
};
std::optional<TokenGrant> GrantOf(const Token& token);

// Parses a header value. kInvalidArgument (→ 400 InvalidRDMAToken) for anything malformed.
Result<Token> ParseToken(std::string_view header_value);
Result<UcxToken> ParseUcxToken(std::string_view header_value);
Result<CuObjectToken> ParseCuObjectToken(std::string_view header_value);
Result<CudaIpcToken> ParseCudaIpcToken(std::string_view header_value);

std::string EncodeUcxToken(const UcxToken& token);
std::string EncodeCuObjectToken(const CuObjectToken& token);
std::string EncodeCudaIpcToken(const CudaIpcToken& token);

// This host's boot id (16 bytes of /proc/sys/kernel/random/boot_id), the "same host" proof of
// CUDA IPC tokens; all zeros if unreadable.
std::array<uint8_t, 16> HostBootId();

}  // namespace vlake::rdma
