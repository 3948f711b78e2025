#include "s3/names.h"

#include <gtest/gtest.h>

#include <string>

namespace vlake::s3 {
namespace {

TEST(BucketNameTest, AcceptsAndRejects) {
  for (const std::string& ok : {std::string("abc"), std::string("my-bucket.data"),
                                std::string("a1b"), std::string(63, 'a')}) {
    EXPECT_TRUE(ValidateBucketName(ok).ok()) << ok;
  }
  for (const char* bad : {"ab", "ABC", "-abc", "abc-", "a..b", "a.-b", "192.168.1.1", "xn--abc",
                          "bucket-s3alias", "a_b", "a b"}) {
    Status s = ValidateBucketName(bad);
    EXPECT_EQ(s.code(), Code::kInvalidBucketName) << bad;
  }
  EXPECT_EQ(ValidateBucketName(std::string(64, 'a')).code(), Code::kInvalidBucketName);
}

TEST(ObjectKeyTest, AllowsAnythingUtf8UpTo1024Bytes) {
  for (const char* ok : {"../../etc/passwd", "//x", "/lead",
                         "a\x01"
                         "b",
                         "\xc3\xa9t\xc3\xa9", "sp ace+plus%pct"}) {
    EXPECT_TRUE(ValidateObjectKey(ok).ok()) << ok;
  }
  EXPECT_TRUE(ValidateObjectKey(std::string(1024, 'k')).ok());
  EXPECT_EQ(ValidateObjectKey(std::string(1025, 'k')).code(), Code::kKeyTooLong);
  EXPECT_EQ(ValidateObjectKey("").code(), Code::kInvalidArgument);
  EXPECT_EQ(ValidateObjectKey("\xff").code(), Code::kInvalidArgument);
}

TEST(RangeTest, ResolvesForms) {
  ByteRange r;
  ASSERT_EQ(ResolveRange("bytes=0-9", 100, &r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.length, 10u);
  ASSERT_EQ(ResolveRange("bytes=90-", 100, &r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.first, 90u);
  EXPECT_EQ(r.length, 10u);
  ASSERT_EQ(ResolveRange("bytes=-10", 100, &r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.first, 90u);
  ASSERT_EQ(ResolveRange("bytes=-1000", 100, &r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.first, 0u);
  EXPECT_EQ(r.length, 100u);
  ASSERT_EQ(ResolveRange("bytes=50-1000", 100, &r), RangeOutcome::kSatisfiable);
  EXPECT_EQ(r.length, 50u);
}

TEST(RangeTest, UnsatisfiableAndIgnored) {
  ByteRange r;
  EXPECT_EQ(ResolveRange("bytes=100-", 100, &r), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ResolveRange("bytes=100-200", 100, &r), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ResolveRange("bytes=-0", 100, &r), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ResolveRange("bytes=0-", 0, &r), RangeOutcome::kUnsatisfiable);
  EXPECT_EQ(ResolveRange("bytes=5-1", 100, &r), RangeOutcome::kIgnore);
  EXPECT_EQ(ResolveRange("bytes=0-1,5-6", 100, &r), RangeOutcome::kIgnore);
  EXPECT_EQ(ResolveRange("items=0-1", 100, &r), RangeOutcome::kIgnore);
  EXPECT_EQ(ResolveRange("bytes=x-1", 100, &r), RangeOutcome::kIgnore);
  EXPECT_EQ(ResolveRange("bytes=99999999999999999999-", 100, &r), RangeOutcome::kIgnore);
}

}  // namespace
}  // namespace vlake::s3
