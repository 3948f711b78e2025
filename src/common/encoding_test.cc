#include "common/encoding.h"

#include <gtest/gtest.h>

namespace vlake {
namespace {

TEST(EncodingTest, Base64RoundTripAndStrictness) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    auto d = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(Base64Decode("Zm9").has_value());
  EXPECT_FALSE(Base64Decode("Zm9=v").has_value());
  EXPECT_FALSE(Base64Decode("Z===").has_value());
  EXPECT_FALSE(Base64Decode("Zm9*").has_value());
}

TEST(EncodingTest, UriEncodeAwsStyle) {
  EXPECT_EQ(UriEncode("a b/c~d*e", SlashEncoding::kKeepSlash), "a%20b/c~d%2Ae");
  EXPECT_EQ(UriEncode("a/b", SlashEncoding::kEncodeSlash), "a%2Fb");
  EXPECT_EQ(UriEncode("\xc3\xa9", SlashEncoding::kEncodeSlash), "%C3%A9");
  EXPECT_EQ(*UriDecode("a%2Fb+c", PlusDecoding::kPlusLiteral), "a/b+c");
  EXPECT_EQ(*UriDecode("a+c", PlusDecoding::kPlusIsSpace), "a c");
  EXPECT_FALSE(UriDecode("%2", PlusDecoding::kPlusLiteral).has_value());
  EXPECT_FALSE(UriDecode("%zz", PlusDecoding::kPlusLiteral).has_value());
}

TEST(EncodingTest, FormPairs) {
  auto pairs = ParseFormPairs("a=1&&b=two+words%21&flag");
  ASSERT_TRUE(pairs.has_value());
  ASSERT_EQ(pairs->size(), 3u);
  EXPECT_EQ((*pairs)[1].second, "two words!");
  EXPECT_EQ((*pairs)[2].first, "flag");
  EXPECT_EQ((*pairs)[2].second, "");
  EXPECT_FALSE(ParseFormPairs("a=%zz").has_value());
}

TEST(EncodingTest, Dates) {
  EXPECT_EQ(FormatAmzDate(1369353600), "20130524T000000Z");
  EXPECT_EQ(ParseAmzDate("20130524T000000Z"), 1369353600);
  EXPECT_FALSE(ParseAmzDate("20130524T000000").has_value());
  EXPECT_EQ(FormatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(ParseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(ParseHttpDate("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_FALSE(ParseHttpDate("yesterday").has_value());
  EXPECT_EQ(FormatIso8601Ms(1369353600123), "2013-05-24T00:00:00.123Z");
}

TEST(EncodingTest, ParseUint64RejectsJunk) {
  EXPECT_EQ(ParseUint64("0"), 0u);
  EXPECT_EQ(ParseUint64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseUint64("18446744073709551616").has_value());
  EXPECT_FALSE(ParseUint64("+1").has_value());
  EXPECT_FALSE(ParseUint64("").has_value());
  EXPECT_FALSE(ParseUint64("1 ").has_value());
}

TEST(EncodingTest, ParseInt64RejectsJunk) {
  EXPECT_EQ(ParseInt64("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(ParseInt64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(ParseInt64("-1"), -1);
  EXPECT_FALSE(ParseInt64("9223372036854775808").has_value());
  EXPECT_FALSE(ParseInt64("+1").has_value());
  EXPECT_FALSE(ParseInt64("").has_value());
  EXPECT_FALSE(ParseInt64("1 ").has_value());
  EXPECT_FALSE(ParseInt64("-").has_value());
}

TEST(EncodingTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain/../key"));
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
}

}  // namespace
}  // namespace vlake
