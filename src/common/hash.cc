#include "common/hash.h"

#include <isa-l/crc.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <strings.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "common/status.h"

namespace vlake {
namespace {

EVP_MD_CTX* NewCtx(const EVP_MD* md) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  VLAKE_CHECK(ctx != nullptr);
  VLAKE_CHECK(EVP_DigestInit_ex(ctx, md, nullptr) == 1);
  return ctx;
}

std::string FinalCtx(void* p, const EVP_MD* md) {
  auto* ctx = static_cast<EVP_MD_CTX*>(p);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  VLAKE_CHECK(EVP_DigestFinal_ex(ctx, out, &len) == 1);
  VLAKE_CHECK(EVP_DigestInit_ex(ctx, md, nullptr) == 1);
  return std::string(reinterpret_cast<char*>(out), len);
}

// CRC-64/NVME: reflected polynomial 0x9a6c9329ac4bc9b5, init/xorout all ones.
struct Crc64Tables {
  std::array<std::array<uint64_t, 256>, 8> t{};
  Crc64Tables() {
    constexpr uint64_t kPoly = 0x9a6c9329ac4bc9b5ULL;
    for (int i = 0; i < 256; ++i) {
      uint64_t c = static_cast<uint64_t>(i);
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : (c >> 1);
      t[0][i] = c;
    }
    for (int i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
};
const Crc64Tables& Tables64() {
  static const Crc64Tables tables;
  return tables;
}

}  // namespace

Md5::Md5() : ctx_(NewCtx(EVP_md5())) {}
Md5::~Md5() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Md5::Update(const void* data, size_t len) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, len);
}
std::string Md5::Final() { return FinalCtx(ctx_, EVP_md5()); }

Sha256::Sha256() : ctx_(NewCtx(EVP_sha256())) {}
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::Update(const void* data, size_t len) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, len);
}
std::string Sha256::Final() { return FinalCtx(ctx_, EVP_sha256()); }

Sha1::Sha1() : ctx_(NewCtx(EVP_sha1())) {}
Sha1::~Sha1() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha1::Update(const void* data, size_t len) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, len);
}
std::string Sha1::Final() { return FinalCtx(ctx_, EVP_sha1()); }

std::string Md5Digest(std::string_view data) {
  Md5 h;
  h.Update(data);
  return h.Final();
}

std::string Sha256Digest(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Final();
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  VLAKE_CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
                   &len) != nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string HmacSha1(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  VLAKE_CHECK(HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), out,
                   &len) != nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

uint32_t Crc32Update(uint32_t crc, const void* data, size_t len) {
  return crc32_gzip_refl(crc, static_cast<const unsigned char*>(data), len);
}

uint32_t Crc32cUpdate(uint32_t crc, const void* data, size_t len) {
  // ISA-L's iSCSI routine takes and returns the raw register (the standard CRC32C pre- and
  // post-inverts it) and an int length: feed it at most 1 GiB at a time (a 3 GiB vector
  // column would otherwise wrap to a negative length).
  auto* p = const_cast<unsigned char*>(static_cast<const unsigned char*>(data));
  uint32_t reg = ~crc;
  while (len > 0) {
    size_t n = std::min<size_t>(len, size_t{1} << 30);
    reg = crc32_iscsi(p, static_cast<int>(n), reg);
    p += n;
    len -= n;
  }
  return ~reg;
}

namespace {

constexpr uint32_t kCrc32cPoly = 0x82f63b78;  // Castagnoli, reflected

// a * b modulo the CRC polynomial, both as reflected polynomials (bit 31 = x^0).
uint32_t MulModPoly(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t bit = 1u << 31; bit != 0; bit >>= 1) {
    if (a & bit) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kCrc32cPoly : b >> 1;  // b *= x
  }
  return product;
}

}  // namespace

uint32_t Crc32cShift(uint64_t len) {
  // x^(8 len) mod P by square-and-multiply over x^(2^k).
  uint32_t result = 1u << 31;  // x^0
  uint32_t power = 1u << 30;   // x^1, squared each round: x^(2^k)
  uint64_t bits = len * 8;     // len < 2^61 here (every buffer is)
  while (bits != 0) {
    if (bits & 1) result = MulModPoly(power, result);
    power = MulModPoly(power, power);
    bits >>= 1;
  }
  return result;
}

uint32_t Crc32cExtend(uint32_t crc_a, uint32_t shift_b, uint32_t crc_b) {
  // CRC(A || B) = CRC(A) * x^(8 |B|) + CRC(B): the pre/post inversions cancel out.
  return MulModPoly(shift_b, crc_a) ^ crc_b;
}

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  return Crc32cExtend(crc_a, Crc32cShift(len_b), crc_b);
}

uint64_t Crc64NvmeUpdate(uint64_t crc, const void* data, size_t len) {
  const auto& t = Tables64().t;
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t c = ~crc;
  while (len >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c ^= w;
    c = t[7][c & 0xff] ^ t[6][(c >> 8) & 0xff] ^ t[5][(c >> 16) & 0xff] ^ t[4][(c >> 24) & 0xff] ^
        t[3][(c >> 32) & 0xff] ^ t[2][(c >> 40) & 0xff] ^ t[1][(c >> 48) & 0xff] ^ t[0][c >> 56];
    p += 8;
    len -= 8;
  }
  while (len--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
  return ~c;
}

std::optional<ChecksumAlgorithm> ParseChecksumAlgorithm(std::string_view name) {
  auto eq = [&](const char* s) {
    return name.size() == std::strlen(s) && strncasecmp(name.data(), s, name.size()) == 0;
  };
  if (eq("CRC32")) return ChecksumAlgorithm::kCrc32;
  if (eq("CRC32C")) return ChecksumAlgorithm::kCrc32c;
  if (eq("CRC64NVME")) return ChecksumAlgorithm::kCrc64Nvme;
  if (eq("SHA1")) return ChecksumAlgorithm::kSha1;
  if (eq("SHA256")) return ChecksumAlgorithm::kSha256;
  return std::nullopt;
}

std::string_view ChecksumAlgorithmName(ChecksumAlgorithm alg) {
  switch (alg) {
    case ChecksumAlgorithm::kCrc32:
      return "CRC32";
    case ChecksumAlgorithm::kCrc32c:
      return "CRC32C";
    case ChecksumAlgorithm::kCrc64Nvme:
      return "CRC64NVME";
    case ChecksumAlgorithm::kSha1:
      return "SHA1";
    case ChecksumAlgorithm::kSha256:
      return "SHA256";
  }
  return "";
}

std::string_view ChecksumHeaderName(ChecksumAlgorithm alg) {
  switch (alg) {
    case ChecksumAlgorithm::kCrc32:
      return "x-amz-checksum-crc32";
    case ChecksumAlgorithm::kCrc32c:
      return "x-amz-checksum-crc32c";
    case ChecksumAlgorithm::kCrc64Nvme:
      return "x-amz-checksum-crc64nvme";
    case ChecksumAlgorithm::kSha1:
      return "x-amz-checksum-sha1";
    case ChecksumAlgorithm::kSha256:
      return "x-amz-checksum-sha256";
  }
  return "";
}

size_t ChecksumSize(ChecksumAlgorithm alg) {
  switch (alg) {
    case ChecksumAlgorithm::kCrc32:
    case ChecksumAlgorithm::kCrc32c:
      return 4;
    case ChecksumAlgorithm::kCrc64Nvme:
      return 8;
    case ChecksumAlgorithm::kSha1:
      return 20;
    case ChecksumAlgorithm::kSha256:
      return 32;
  }
  return 0;
}

Checksummer::Checksummer(ChecksumAlgorithm alg) : alg_(alg) {
  if (alg == ChecksumAlgorithm::kSha1) sha1_ = std::make_unique<Sha1>();
  if (alg == ChecksumAlgorithm::kSha256) sha256_ = std::make_unique<Sha256>();
}
Checksummer::~Checksummer() = default;

void Checksummer::Update(const void* data, size_t len) {
  switch (alg_) {
    case ChecksumAlgorithm::kCrc32:
      crc_ = Crc32Update(static_cast<uint32_t>(crc_), data, len);
      break;
    case ChecksumAlgorithm::kCrc32c:
      crc_ = Crc32cUpdate(static_cast<uint32_t>(crc_), data, len);
      break;
    case ChecksumAlgorithm::kCrc64Nvme:
      crc_ = Crc64NvmeUpdate(crc_, data, len);
      break;
    case ChecksumAlgorithm::kSha1:
      sha1_->Update(data, len);
      break;
    case ChecksumAlgorithm::kSha256:
      sha256_->Update(data, len);
      break;
  }
}

std::string Checksummer::Final() {
  if (sha1_) return sha1_->Final();
  if (sha256_) return sha256_->Final();
  size_t n = ChecksumSize(alg_);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<char>((crc_ >> (8 * (n - 1 - i))) & 0xff);
  }
  crc_ = 0;
  return out;
}

std::string ComputeChecksum(ChecksumAlgorithm alg, std::string_view data) {
  Checksummer c(alg);
  c.Update(data.data(), data.size());
  return c.Final();
}

}  // namespace vlake
