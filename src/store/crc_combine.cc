#include "store/crc_combine.h"

#include "common/status.h"

namespace vlake::store {
namespace {

// A reflected CRC's parameters. In the reflected representation the coefficient of x^0 sits
// in the top bit (bit width-1) and x^(width-1) in bit 0; multiplying by x is a right shift,
// folding the polynomial back in when a bit drops off the bottom.
struct CrcSpec {
  int width;
  uint64_t poly;  // reflected generator without the x^width term
};

CrcSpec SpecOf(ChecksumAlgorithm algorithm) {
  switch (algorithm) {
    case ChecksumAlgorithm::kCrc32:
      return {32, 0xedb88320ull};
    case ChecksumAlgorithm::kCrc32c:
      return {32, 0x82f63b78ull};
    case ChecksumAlgorithm::kCrc64Nvme:
      return {64, 0x9a6c9329ac4bc9b5ull};
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256:
      break;
  }
  VLAKE_CHECK(false && "not a combinable CRC");
  return {0, 0};
}

uint64_t TopBit(const CrcSpec& s) { return uint64_t{1} << (s.width - 1); }

uint64_t TimesX(const CrcSpec& s, uint64_t v) { return (v & 1) ? (v >> 1) ^ s.poly : v >> 1; }

// a * b mod P. Walks a's coefficients from x^0 upwards, adding b * x^i for each set one.
uint64_t MulMod(const CrcSpec& s, uint64_t a, uint64_t b) {
  uint64_t product = 0;
  for (uint64_t bit = TopBit(s); bit != 0 && a != 0; bit >>= 1) {
    if (a & bit) {
      product ^= b;
      a ^= bit;
    }
    b = TimesX(s, b);
  }
  return product;
}

// x^(8 * n_bytes) mod P by square-and-multiply over the bits of the exponent.
uint64_t XPowBytes(const CrcSpec& s, uint64_t n_bytes) {
  uint64_t result = TopBit(s);                                     // x^0
  uint64_t square = TimesX(s, TopBit(s));                          // x^1, squared below to x^(2^k)
  for (int k = 0; k < 3; ++k) square = MulMod(s, square, square);  // x^8: one byte
  while (n_bytes != 0) {
    if (n_bytes & 1) result = MulMod(s, result, square);
    square = MulMod(s, square, square);
    n_bytes >>= 1;
  }
  return result;
}

}  // namespace

bool IsCombinableCrc(ChecksumAlgorithm algorithm) {
  return algorithm == ChecksumAlgorithm::kCrc32 || algorithm == ChecksumAlgorithm::kCrc32c ||
         algorithm == ChecksumAlgorithm::kCrc64Nvme;
}

uint64_t CrcCombine(ChecksumAlgorithm algorithm, uint64_t crc_a, uint64_t crc_b, uint64_t len_b) {
  CrcSpec s = SpecOf(algorithm);
  return MulMod(s, XPowBytes(s, len_b), crc_a) ^ crc_b;
}

std::optional<uint64_t> CrcFromDigest(ChecksumAlgorithm algorithm, std::string_view raw) {
  if (!IsCombinableCrc(algorithm) || raw.size() != ChecksumSize(algorithm)) return std::nullopt;
  uint64_t v = 0;
  for (char c : raw) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

std::string CrcToDigest(ChecksumAlgorithm algorithm, uint64_t crc) {
  size_t n = ChecksumSize(algorithm);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[n - 1 - i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  return out;
}

}  // namespace vlake::store
