#include "common/hash.h"

#include <gtest/gtest.h>

#include <string>

#include "common/encoding.h"
#include "common/testing.h"

namespace vlake {
namespace {

constexpr std::string_view kCheck = "123456789";

TEST(HashTest, CrcCheckValues) {
  // The standard "check" values of each CRC's catalogue entry.
  EXPECT_EQ(Crc32Update(0, kCheck.data(), kCheck.size()), 0xCBF43926u);
  EXPECT_EQ(Crc32cUpdate(0, kCheck.data(), kCheck.size()), 0xE3069283u);
  EXPECT_EQ(Crc64NvmeUpdate(0, kCheck.data(), kCheck.size()), 0xAE8B14860A799888ull);
}

TEST(HashTest, CrcIncrementalMatchesOneShot) {
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  for (auto alg :
       {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
        ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256}) {
    Checksummer c(alg);
    for (size_t off = 0; off < data.size(); off += 777) {
      c.Update(data.data() + off, std::min<size_t>(777, data.size() - off));
    }
    EXPECT_EQ(c.Final(), ComputeChecksum(alg, data)) << ChecksumAlgorithmName(alg);
  }
}

// Blocks checksummed separately (as the GPU does) join into the checksum of the whole.
TEST(HashTest, Crc32cCombineMatchesOneShot) {
  std::string data = ::vlake::testing::RandomData(100'003, 77);
  uint32_t whole = Crc32cUpdate(0, data.data(), data.size());
  for (size_t split : {size_t{0}, size_t{1}, size_t{4096}, size_t{65536}, data.size()}) {
    uint32_t a = Crc32cUpdate(0, data.data(), split);
    uint32_t b = Crc32cUpdate(0, data.data() + split, data.size() - split);
    EXPECT_EQ(Crc32cCombine(a, b, data.size() - split), whole) << split;
  }
  // Many equal blocks joined with one precomputed shift, the last block shorter.
  const size_t block = 4096;
  const uint32_t shift = Crc32cShift(block);
  uint32_t joined = Crc32cUpdate(0, data.data(), block);
  size_t at = block;
  for (; at + block <= data.size(); at += block) {
    joined = Crc32cExtend(joined, shift, Crc32cUpdate(0, data.data() + at, block));
  }
  joined =
      Crc32cCombine(joined, Crc32cUpdate(0, data.data() + at, data.size() - at), data.size() - at);
  EXPECT_EQ(joined, whole);
}

TEST(HashTest, KnownDigests) {
  EXPECT_EQ(HexEncode(Md5Digest("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(HexEncode(Sha256Digest("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  // boto3 sends x-amz-checksum-crc32 "AAAAAA==" for an empty body.
  EXPECT_EQ(Base64Encode(ComputeChecksum(ChecksumAlgorithm::kCrc32, "")), "AAAAAA==");
  EXPECT_EQ(Base64Encode(ComputeChecksum(ChecksumAlgorithm::kCrc32, "hello world")), "DUoRhQ==");
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // RFC 2202 test case 2 (HMAC-SHA1, SigV2).
  EXPECT_EQ(HexEncode(HmacSha1("Jefe", "what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

TEST(HashTest, AlgorithmNames) {
  EXPECT_EQ(ParseChecksumAlgorithm("crc64nvme"), ChecksumAlgorithm::kCrc64Nvme);
  EXPECT_EQ(ParseChecksumAlgorithm("CRC32C"), ChecksumAlgorithm::kCrc32c);
  EXPECT_FALSE(ParseChecksumAlgorithm("md5").has_value());
}

}  // namespace
}  // namespace vlake
