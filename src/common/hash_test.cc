#include "common/hash.h"

#include <gtest/gtest.h>

#include <string>

#include "common/encoding.h"

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
}

TEST(HashTest, AlgorithmNames) {
  EXPECT_EQ(ParseChecksumAlgorithm("crc64nvme"), ChecksumAlgorithm::kCrc64Nvme);
  EXPECT_EQ(ParseChecksumAlgorithm("CRC32C"), ChecksumAlgorithm::kCrc32c);
  EXPECT_FALSE(ParseChecksumAlgorithm("md5").has_value());
}

}  // namespace
}  // namespace vlake
