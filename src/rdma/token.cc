#include "rdma/token.h"

#include <cstdio>
#include <cstring>

#include "common/encoding.h"
#include "common/hash.h"

namespace vlake::rdma {
namespace {

// Fixed part of the UCX token record (docs/format/rdma-token.md), before the two
// variable-length fields and the trailing CRC32C.
constexpr size_t kFixedBytes = 4 + 8 + 8 + 16 + 8;
constexpr size_t kMaxFieldBytes = 2048;

Status Invalid(std::string_view why) {
  return Error(Code::kInvalidRdmaToken, "x-amz-rdma-token: " + std::string(why));
}

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return !s.empty();
}

uint64_t HexValue(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) v = (v << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  return v;
}

std::string FixedHex(uint64_t v, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(digits, '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[i] = kDigits[v & 15];
  return s;
}

}  // namespace

std::string EncodeUcxToken(const UcxToken& token) {
  std::string rec;
  rec.reserve(kFixedBytes + 4 + token.worker_address.size() + token.rkey.size() + 4);
  PutLe(&rec, kUcxTokenVersion, 1);
  PutLe(&rec, static_cast<uint8_t>(token.memory), 1);
  PutLe(&rec, token.ucx_allocated ? 1 : 0, 2);  // flags
  PutLe(&rec, token.remote_addr, 8);
  PutLe(&rec, token.length, 8);
  rec.append(reinterpret_cast<const char*>(token.nonce.data()), token.nonce.size());
  PutLe(&rec, static_cast<uint64_t>(token.expires_unix_ms), 8);
  PutLe(&rec, token.worker_address.size(), 2);
  rec += token.worker_address;
  PutLe(&rec, token.rkey.size(), 2);
  rec += token.rkey;
  PutLe(&rec, Crc32cUpdate(0, rec.data(), rec.size()), 4);
  return std::string(kUcxTokenPrefix) + Base64Encode(rec);
}

Result<UcxToken> ParseUcxToken(std::string_view value) {
  if (!value.starts_with(kUcxTokenPrefix)) return Invalid("not a vlake1 token");
  auto rec = Base64Decode(value.substr(kUcxTokenPrefix.size()));
  if (!rec) return Invalid("not valid base64");
  const std::string& r = *rec;
  if (r.size() < kFixedBytes + 2 + 2 + 4) return Invalid("record too short");
  uint32_t crc = static_cast<uint32_t>(GetLe(r.data() + r.size() - 4, 4));
  if (crc != Crc32cUpdate(0, r.data(), r.size() - 4)) return Invalid("checksum mismatch");
  const char* p = r.data();
  if (static_cast<uint8_t>(p[0]) != kUcxTokenVersion) return Invalid("unsupported version");
  UcxToken t;
  uint8_t memory = static_cast<uint8_t>(p[1]);
  if (memory > static_cast<uint8_t>(MemoryKind::kCuda)) return Invalid("unknown memory kind");
  t.memory = static_cast<MemoryKind>(memory);
  uint64_t flags = GetLe(p + 2, 2);
  if (flags & ~uint64_t{1}) return Invalid("unknown flags set");
  t.ucx_allocated = (flags & 1) != 0;
  t.remote_addr = GetLe(p + 4, 8);
  t.length = GetLe(p + 12, 8);
  std::memcpy(t.nonce.data(), p + 20, 16);
  t.expires_unix_ms = static_cast<int64_t>(GetLe(p + 36, 8));
  size_t pos = kFixedBytes;
  size_t end = r.size() - 4;
  auto field = [&](std::string* out) -> Status {
    if (end - pos < 2) return Invalid("record truncated");
    size_t n = GetLe(p + pos, 2);
    pos += 2;
    if (n == 0 || n > kMaxFieldBytes || end - pos < n) return Invalid("bad field length");
    out->assign(p + pos, n);
    pos += n;
    return Status::Ok();
  };
  VLAKE_RETURN_IF_ERROR(field(&t.worker_address));
  VLAKE_RETURN_IF_ERROR(field(&t.rkey));
  if (pos != end) return Invalid("trailing bytes");
  if (t.remote_addr + t.length < t.remote_addr) return Invalid("region wraps around");
  return t;
}

// CUDA IPC token record: version, 3 reserved bytes, host id, device uuid, IPC handle, offset,
// length, nonce, expiry, CRC32C.
constexpr size_t kCudaIpcRecordBytes = 4 + 16 + 16 + kCudaIpcHandleBytes + 8 + 8 + 16 + 8 + 4;

std::string EncodeCudaIpcToken(const CudaIpcToken& t) {
  std::string rec;
  rec.reserve(kCudaIpcRecordBytes);
  PutLe(&rec, kCudaIpcTokenVersion, 1);
  PutLe(&rec, 0, 3);  // reserved
  auto bytes = [&](const auto& a) {
    rec.append(reinterpret_cast<const char*>(a.data()), a.size());
  };
  bytes(t.host_id);
  bytes(t.device_uuid);
  bytes(t.ipc_handle);
  PutLe(&rec, t.offset, 8);
  PutLe(&rec, t.length, 8);
  bytes(t.nonce);
  PutLe(&rec, static_cast<uint64_t>(t.expires_unix_ms), 8);
  PutLe(&rec, Crc32cUpdate(0, rec.data(), rec.size()), 4);
  return std::string(kCudaIpcTokenPrefix) + Base64Encode(rec);
}

Result<CudaIpcToken> ParseCudaIpcToken(std::string_view value) {
  if (!value.starts_with(kCudaIpcTokenPrefix)) return Invalid("not a vlake-cuda-ipc1 token");
  auto rec = Base64Decode(value.substr(kCudaIpcTokenPrefix.size()));
  if (!rec) return Invalid("not valid base64");
  const std::string& r = *rec;
  if (r.size() != kCudaIpcRecordBytes) return Invalid("CUDA IPC record has the wrong size");
  uint32_t crc = static_cast<uint32_t>(GetLe(r.data() + r.size() - 4, 4));
  if (crc != Crc32cUpdate(0, r.data(), r.size() - 4)) return Invalid("checksum mismatch");
  const char* p = r.data();
  if (static_cast<uint8_t>(p[0]) != kCudaIpcTokenVersion) return Invalid("unsupported version");
  if (GetLe(p + 1, 3) != 0) return Invalid("reserved bytes must be 0");
  CudaIpcToken t;
  size_t pos = 4;
  auto bytes = [&](auto& a) {
    std::memcpy(a.data(), p + pos, a.size());
    pos += a.size();
  };
  bytes(t.host_id);
  bytes(t.device_uuid);
  bytes(t.ipc_handle);
  t.offset = GetLe(p + pos, 8);
  t.length = GetLe(p + pos + 8, 8);
  pos += 16;
  bytes(t.nonce);
  t.expires_unix_ms = static_cast<int64_t>(GetLe(p + pos, 8));
  if (t.offset + t.length < t.offset) return Invalid("region wraps around");
  return t;
}

std::optional<TokenGrant> GrantOf(const Token& token) {
  if (const auto* u = std::get_if<UcxToken>(&token)) {
    return TokenGrant{u->length, u->nonce, u->expires_unix_ms};
  }
  if (const auto* c = std::get_if<CudaIpcToken>(&token)) {
    return TokenGrant{c->length, c->nonce, c->expires_unix_ms};
  }
  return std::nullopt;
}

std::array<uint8_t, 16> HostBootId() {
  std::array<uint8_t, 16> id{};
  FILE* f = std::fopen("/proc/sys/kernel/random/boot_id", "r");
  if (f == nullptr) return id;
  char line[64] = {};
  bool got = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  if (!got) return id;
  std::string hex;
  for (char* c = line; *c != 0; ++c) {
    if (IsLowerHex(std::string_view(c, 1))) hex.push_back(*c);
  }
  if (hex.size() != 32) return id;
  for (size_t i = 0; i < 16; ++i) id[i] = static_cast<uint8_t>(HexValue(hex.substr(2 * i, 2)));
  return id;
}

std::string EncodeCuObjectToken(const CuObjectToken& t) {
  std::string gid = HexEncode(std::string_view(reinterpret_cast<const char*>(t.gid.data()), 16));
  std::string s = FixedHex(t.addr, 16) + ":" + FixedHex(t.size, 8) + ":" + FixedHex(t.rkey, 8) +
                  ":" + FixedHex(t.lid, 4) + ":" + FixedHex(t.dctn, 6) + ":" +
                  (t.gid_present ? "1" : "0") + ":" + gid;
  if (t.extra_addr && t.extra_size) {
    s += ":" + FixedHex(*t.extra_addr, 16) + ":" + FixedHex(*t.extra_size, 8);
  }
  return s;
}

Result<CuObjectToken> ParseCuObjectToken(std::string_view value) {
  static constexpr int kWidths[] = {16, 8, 8, 4, 6, 1, 32, 16, 8};
  std::string_view fields[9];
  int count = 0;
  while (true) {
    if (count == 9) return Invalid("too many fields in a cuObject token");
    size_t colon = value.find(':');
    fields[count++] = value.substr(0, colon);
    if (colon == std::string_view::npos) break;
    value.remove_prefix(colon + 1);
  }
  if (count != 7 && count != 9) return Invalid("a cuObject token has 7 or 9 fields");
  for (int i = 0; i < count; ++i) {
    if (fields[i].size() != static_cast<size_t>(kWidths[i]) || !IsLowerHex(fields[i])) {
      return Invalid("cuObject token field " + std::to_string(i + 1) + " must be " +
                     std::to_string(kWidths[i]) + " lowercase hex digits");
    }
  }
  CuObjectToken t;
  t.addr = HexValue(fields[0]);
  t.size = static_cast<uint32_t>(HexValue(fields[1]));
  t.rkey = static_cast<uint32_t>(HexValue(fields[2]));
  t.lid = static_cast<uint16_t>(HexValue(fields[3]));
  t.dctn = static_cast<uint32_t>(HexValue(fields[4]));
  if (fields[5] != "0" && fields[5] != "1") return Invalid("gid_present must be 0 or 1");
  t.gid_present = fields[5] == "1";
  std::string gid = *HexDecode(fields[6]);  // 32 lowercase hex digits, checked above
  std::memcpy(t.gid.data(), gid.data(), t.gid.size());
  if (count == 9) {
    t.extra_addr = HexValue(fields[7]);
    t.extra_size = static_cast<uint32_t>(HexValue(fields[8]));
  }
  return t;
}

Result<Token> ParseToken(std::string_view value) {
  if (value.empty()) return Invalid("empty");
  if (value.size() > kMaxTokenChars) return Invalid("too long");
  if (value.starts_with(kUcxTokenPrefix)) {
    VLAKE_ASSIGN_OR_RETURN(UcxToken t, ParseUcxToken(value));
    return Token(std::move(t));
  }
  if (value.starts_with(kCudaIpcTokenPrefix)) {
    VLAKE_ASSIGN_OR_RETURN(CudaIpcToken t, ParseCudaIpcToken(value));
    return Token(std::move(t));
  }
  // "vlakeN:" for another N: a variant of ours this build does not serve.
  if (value.starts_with("vlake")) {
    size_t colon = value.find(':');
    std::string_view tag = value.substr(0, colon);
    bool digits = tag.size() > 5 && colon != std::string_view::npos;
    for (char c : tag.substr(5)) digits = digits && c >= '0' && c <= '9';
    if (digits) return Token(UnknownVariantToken{std::string(tag)});
  }
  VLAKE_ASSIGN_OR_RETURN(CuObjectToken t, ParseCuObjectToken(value));
  return Token(std::move(t));
}

}  // namespace vlake::rdma
