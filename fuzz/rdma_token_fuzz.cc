// Fuzzes the x-amz-rdma-token parsers (src/rdma/token.h) and the checks the UCX engine runs
// on a token's worker address and rkey before UCX sees them (src/rdma/ucx_address.h).
//
// The input is parsed as a header value (any status is fine, crashes and sanitizer reports
// are not). To reach past base64 and the CRC, the input is also wrapped as a vlake1 record
// with a correct CRC32C, and as a vlake-cuda-ipc1 record (fixed size: the input padded or cut)
// with a correct CRC32C. Round-trip property: whatever parses re-encodes to a value that
// parses to the same token. Every UCX token that parses goes through the engine's admission
// checks (rkey layout, worker address walk, peer rule for a local and a remote peer); and the
// input itself, as worker address and as rkey of a token sent through the codec, does too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/encoding.h"
#include "common/hash.h"
#include "rdma/token.h"
#include "rdma/ucx_address.h"

namespace {

void CheckRoundTrip(const vlake::rdma::Token& token) {
  using namespace vlake::rdma;
  if (const auto* u = std::get_if<UcxToken>(&token)) {
    auto again = ParseUcxToken(EncodeUcxToken(*u));
    if (!again.ok() || again->remote_addr != u->remote_addr || again->length != u->length ||
        again->nonce != u->nonce || again->worker_address != u->worker_address ||
        again->rkey != u->rkey || again->ucx_allocated != u->ucx_allocated) {
      __builtin_trap();
    }
  } else if (const auto* g = std::get_if<CudaIpcToken>(&token)) {
    auto again = ParseCudaIpcToken(EncodeCudaIpcToken(*g));
    if (!again.ok() || again->ipc_handle != g->ipc_handle || again->offset != g->offset ||
        again->length != g->length || again->nonce != g->nonce || again->host_id != g->host_id ||
        again->device_uuid != g->device_uuid || again->expires_unix_ms != g->expires_unix_ms) {
      __builtin_trap();
    }
  } else if (const auto* c = std::get_if<CuObjectToken>(&token)) {
    auto again = ParseCuObjectToken(EncodeCuObjectToken(*c));
    if (!again.ok() || again->addr != c->addr || again->gid != c->gid ||
        again->extra_addr != c->extra_addr) {
      __builtin_trap();
    }
  }
}

// What UcxEngine::Open does first with a token (AdmitPeer); results are not checked, the
// walk must stay in bounds. A parsed address must describe no more than UCX's 128 interfaces
// and parse the same way twice.
void Admit(const vlake::rdma::UcxToken& t) {
  using namespace vlake::rdma;
  (void)ValidatePackedRkey(t.rkey);
  auto address = ParseUcxWorkerAddress(t.worker_address);
  if (!address.ok()) return;
  if (address->entries.size() > 128) __builtin_trap();
  auto again = ParseUcxWorkerAddress(t.worker_address);
  if (!again.ok() || again->entries.size() != address->entries.size()) __builtin_trap();
  PeerScope scope;
  scope.peer = *ParseIpAddress("127.0.0.1:9000");
  scope.host_addresses = {*ParseIpAddress("192.0.2.2")};
  scope.host_system_ids = SystemIdsOf(*address);
  (void)CheckWorkerAddressPeer(*address, scope);
  scope.peer = *ParseIpAddress("[2001:db8::7]:9000");
  (void)CheckWorkerAddressPeer(*address, scope);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlake;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = rdma::ParseToken(input);
  if (parsed.ok()) CheckRoundTrip(*parsed);
  if (parsed.ok() && std::holds_alternative<rdma::UcxToken>(*parsed)) {
    Admit(std::get<rdma::UcxToken>(*parsed));
  }

  // The input as a token's worker address and as its rkey, through the codec.
  if (!input.empty() && input.size() <= 2048) {
    rdma::UcxToken t;
    t.length = 4096;
    t.worker_address = std::string(input);
    t.rkey = std::string(input);
    auto through = rdma::ParseUcxToken(rdma::EncodeUcxToken(t));
    if (!through.ok() || through->worker_address != t.worker_address) __builtin_trap();
    Admit(*through);
  }

  std::string record(input);
  uint32_t crc = Crc32cUpdate(0, record.data(), record.size());
  for (int i = 0; i < 4; ++i) record.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  auto wrapped = rdma::ParseToken("vlake1:" + Base64Encode(record));
  if (wrapped.ok()) CheckRoundTrip(*wrapped);
  if (wrapped.ok() && std::holds_alternative<rdma::UcxToken>(*wrapped)) {
    Admit(std::get<rdma::UcxToken>(*wrapped));
  }

  constexpr size_t kIpcRecordBody = 4 + 16 + 16 + rdma::kCudaIpcHandleBytes + 8 + 8 + 16 + 8;
  std::string ipc(input.substr(0, kIpcRecordBody));
  ipc.resize(kIpcRecordBody, '\0');
  uint32_t ipc_crc = Crc32cUpdate(0, ipc.data(), ipc.size());
  for (int i = 0; i < 4; ++i) ipc.push_back(static_cast<char>((ipc_crc >> (8 * i)) & 0xff));
  auto ipc_parsed = rdma::ParseToken(std::string(rdma::kCudaIpcTokenPrefix) + Base64Encode(ipc));
  if (ipc_parsed.ok()) CheckRoundTrip(*ipc_parsed);
  return 0;
}
