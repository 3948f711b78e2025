// Digests and checksums used by the S3 surface and the store.
//
// - Md5, Sha1, Sha256, HmacSha256: OpenSSL, incremental.
// - Crc32 (IEEE, reflected), Crc32c (Castagnoli), Crc64Nvme: the x-amz-checksum-* family.
//   CRC32/CRC32C use ISA-L (PCLMUL/SSE4.2); CRC64/NVME has no ISA-L routine in 2.30 and uses
//   a slicing-by-8 table.
// - ChecksumAlgorithm + Checksummer: one incremental object for whichever algorithm a request
//   names, producing the raw digest (base64 it for the wire).
//
// Thread-safety: hasher objects are not shared; free functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace vlake {

class Md5 {
 public:
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  std::string Final();  // 16 raw bytes; the object is reset afterwards

 private:
  void* ctx_;
};

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  std::string Final();  // 32 raw bytes; the object is reset afterwards

 private:
  void* ctx_;
};

class Sha1 {
 public:
  Sha1();
  ~Sha1();
  Sha1(const Sha1&) = delete;
  Sha1& operator=(const Sha1&) = delete;
  void Update(const void* data, size_t len);
  std::string Final();  // 20 raw bytes

 private:
  void* ctx_;
};

std::string Md5Digest(std::string_view data);
std::string Sha256Digest(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // 32 raw bytes
// SigV2 (legacy S3 request signing) only; SHA-1 is not used for anything new.
std::string HmacSha1(std::string_view key, std::string_view data);  // 20 raw bytes

uint32_t Crc32Update(uint32_t crc, const void* data, size_t len);   // start with 0
uint32_t Crc32cUpdate(uint32_t crc, const void* data, size_t len);  // start with 0
// CRC32C of A || B from CRC32C(A), CRC32C(B) and |B| (blocks checksummed in parallel, e.g. on
// a GPU, then joined). Crc32cShift(|B|) depends on the length only: compute it once for many
// equal blocks and join with Crc32cExtend.
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
uint32_t Crc32cShift(uint64_t len_b);
uint32_t Crc32cExtend(uint32_t crc_a, uint32_t shift_b, uint32_t crc_b);
uint64_t Crc64NvmeUpdate(uint64_t crc, const void* data, size_t len);  // start with 0

enum class ChecksumAlgorithm { kCrc32, kCrc32c, kCrc64Nvme, kSha1, kSha256 };

// "CRC32" -> kCrc32 etc. (case-insensitive); nullopt when unknown.
std::optional<ChecksumAlgorithm> ParseChecksumAlgorithm(std::string_view name);
std::string_view ChecksumAlgorithmName(ChecksumAlgorithm alg);  // "CRC32", "CRC64NVME", ...
// "x-amz-checksum-crc32", ... (lowercase header name).
std::string_view ChecksumHeaderName(ChecksumAlgorithm alg);
// Raw digest length in bytes (4, 4, 8, 20, 32).
size_t ChecksumSize(ChecksumAlgorithm alg);

class Checksummer {
 public:
  explicit Checksummer(ChecksumAlgorithm alg);
  ~Checksummer();
  Checksummer(const Checksummer&) = delete;
  Checksummer& operator=(const Checksummer&) = delete;
  ChecksumAlgorithm algorithm() const { return alg_; }
  void Update(const void* data, size_t len);
  std::string Final();  // raw digest, big-endian for CRCs

 private:
  ChecksumAlgorithm alg_;
  uint64_t crc_ = 0;
  std::unique_ptr<Sha1> sha1_;
  std::unique_ptr<Sha256> sha256_;
};

// Convenience: one-shot checksum, raw bytes.
std::string ComputeChecksum(ChecksumAlgorithm alg, std::string_view data);

}  // namespace vlake
