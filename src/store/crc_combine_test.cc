#include "store/crc_combine.h"

#include <gtest/gtest.h>

#include "store/test_util.h"

namespace vlake::store {
namespace {

uint64_t Crc(ChecksumAlgorithm alg, std::string_view data) {
  return *CrcFromDigest(alg, ComputeChecksum(alg, data));
}

constexpr ChecksumAlgorithm kCrcs[] = {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c,
                                       ChecksumAlgorithm::kCrc64Nvme};

TEST(CrcCombineTest, MatchesCrcOfConcatenation) {
  std::string data = testing::RandomData(70001, 1);
  for (ChecksumAlgorithm alg : kCrcs) {
    for (size_t split :
         {size_t{0}, size_t{1}, size_t{7}, size_t{4096}, size_t{70000}, size_t{70001}}) {
      std::string_view a(data.data(), split);
      std::string_view b(data.data() + split, data.size() - split);
      EXPECT_EQ(CrcCombine(alg, Crc(alg, a), Crc(alg, b), b.size()), Crc(alg, data))
          << ChecksumAlgorithmName(alg) << " split " << split;
    }
  }
}

TEST(CrcCombineTest, FoldsManyParts) {
  // The way CompleteMultipartUpload uses it: left to right over unequal parts.
  std::string data = testing::RandomData(200000, 2);
  const size_t sizes[] = {65536, 1, 100000, 3, 34460};
  for (ChecksumAlgorithm alg : kCrcs) {
    uint64_t crc = 0;
    size_t off = 0;
    for (size_t i = 0; i < std::size(sizes); ++i) {
      uint64_t part = Crc(alg, std::string_view(data).substr(off, sizes[i]));
      crc = i == 0 ? part : CrcCombine(alg, crc, part, sizes[i]);
      off += sizes[i];
    }
    ASSERT_EQ(off, data.size());
    EXPECT_EQ(crc, Crc(alg, data)) << ChecksumAlgorithmName(alg);
  }
}

TEST(CrcCombineTest, DigestRoundTrip) {
  EXPECT_EQ(CrcToDigest(ChecksumAlgorithm::kCrc32, 0x01020304), std::string("\x01\x02\x03\x04"));
  EXPECT_EQ(*CrcFromDigest(ChecksumAlgorithm::kCrc64Nvme,
                           CrcToDigest(ChecksumAlgorithm::kCrc64Nvme, 0x8877665544332211ull)),
            0x8877665544332211ull);
  EXPECT_FALSE(CrcFromDigest(ChecksumAlgorithm::kCrc32, "abc").has_value());
  EXPECT_FALSE(CrcFromDigest(ChecksumAlgorithm::kSha1, std::string(20, 'x')).has_value());
  EXPECT_FALSE(IsCombinableCrc(ChecksumAlgorithm::kSha256));
}

}  // namespace
}  // namespace vlake::store
