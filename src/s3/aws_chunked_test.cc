#include "s3/aws_chunked.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/testing.h"

namespace vlake::s3 {
namespace {

// The multiple-chunk example of the S3 API reference ("Signature Calculations for the
// Authorization Header: Transferring Payload in Multiple Chunks"); seed and chunk signatures
// cross-checked with an independent Python implementation.
constexpr std::string_view kSeed =
    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

AwsChunkedConfig AwsExampleConfig(AwsChunkedMode mode = AwsChunkedMode::kSigned) {
  AwsChunkedConfig c;
  c.mode = mode;
  c.scope = {"20130524", "us-east-1", "s3"};
  c.signing_key = DeriveSigningKey("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", c.scope);
  c.amz_date = "20130524T000000Z";
  c.seed_signature = std::string(kSeed);
  return c;
}

AwsChunkedConfig Unsigned() {
  AwsChunkedConfig c;
  c.mode = AwsChunkedMode::kUnsignedTrailer;
  return c;
}

std::string AwsExampleBody() {
  return EncodeAwsChunked(std::string(66560, 'a'), 65536, AwsExampleConfig());
}

TEST(AwsChunkedAwsExample, EncodesTheDocumentedSignatures) {
  std::string body = AwsExampleBody();
  EXPECT_EQ(body.size(), 66824u);  // the example's Content-Length
  EXPECT_TRUE(
      body.starts_with("10000;chunk-signature="
                       "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"));
  EXPECT_NE(body.find("\r\n400;chunk-signature="
                      "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"),
            std::string::npos);
  EXPECT_TRUE(body.ends_with(
      "\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
      "\r\n\r\n"));
}

TEST(AwsChunkedAwsExample, DecodesWithEveryReadSize) {
  const std::string body = AwsExampleBody();
  AwsChunkedConfig config = AwsExampleConfig();
  config.decoded_length = 66560;
  for (size_t read_size : {size_t{1}, size_t{7}, size_t{4096}, size_t{65536}, size_t{1 << 20}}) {
    SCOPED_TRACE(read_size);
    auto decoded = DecodeAwsChunked(body, config, read_size);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, std::string(66560, 'a'));
  }
}

TEST(AwsChunkedAwsExample, FlippedSignatureOrDataIsRejected) {
  const std::string body = AwsExampleBody();
  // One hex digit of each of the three signatures, then one data byte of each chunk.
  for (std::string_view sig : {"ad80c730", "0055627c", "b6c6ea8a"}) {
    std::string bad = body;
    bad[bad.find(sig)] = sig[0] == 'a' ? 'b' : 'a';
    EXPECT_CODE(DecodeAwsChunked(bad, AwsExampleConfig()), Code::kSignatureDoesNotMatch);
  }
  for (size_t offset : {size_t{88}, size_t{88 + 65535}, body.size() - 89}) {
    std::string bad = body;
    ASSERT_EQ(bad[offset], 'a');
    bad[offset] = 'b';
    EXPECT_CODE(DecodeAwsChunked(bad, AwsExampleConfig()), Code::kSignatureDoesNotMatch);
  }
  // A wrong key or seed fails the first chunk.
  AwsChunkedConfig wrong_seed = AwsExampleConfig();
  wrong_seed.seed_signature[0] = '5';
  EXPECT_CODE(DecodeAwsChunked(body, wrong_seed), Code::kSignatureDoesNotMatch);
}

// A reader that hands out one byte per call: every framing boundary straddles reads.
class TrickleReader final : public http::BodyReader {
 public:
  explicit TrickleReader(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(char* buf, size_t n) override {
    if (pos_ == data_.size() || n == 0) return size_t{0};
    buf[0] = data_[pos_++];
    return size_t{1};
  }
  std::optional<uint64_t> Length() const override { return std::nullopt; }

 private:
  std::string data_;
  size_t pos_ = 0;
};

TEST(AwsChunkedReader, OneByteInnerReads) {
  TrickleReader inner(AwsExampleBody());
  AwsChunkedReader reader(inner, AwsExampleConfig());
  std::string out;
  char buf[70000];
  while (true) {
    auto got = reader.Read(buf, sizeof(buf));
    ASSERT_OK(got);
    if (*got == 0) break;
    out.append(buf, *got);
  }
  EXPECT_EQ(out, std::string(66560, 'a'));
  // Reads after the end keep answering 0.
  auto again = reader.Read(buf, 1);
  ASSERT_OK(again);
  EXPECT_EQ(*again, 0u);
}

TEST(AwsChunkedReader, LastBytesOfABadChunkAreNeverReturned) {
  AwsChunkedConfig config = AwsExampleConfig();
  std::string body = EncodeAwsChunked(std::string(100, 'x'), 100, config);
  body[body.find("\r\n") + 2 + 99] = 'y';  // the chunk's last byte
  http::StringBodyReader inner(body);
  AwsChunkedReader reader(inner, config);
  char buf[1000];
  auto first = reader.Read(buf, sizeof(buf));
  EXPECT_CODE(first, Code::kSignatureDoesNotMatch);
  // Errors are sticky.
  EXPECT_CODE(reader.Read(buf, sizeof(buf)), Code::kSignatureDoesNotMatch);
}

// Bytes botocore 1.43 sends for put_object(Body=b"hello world, aws-chunked via botocore") over
// https (AwsChunkedWrapper, STREAMING-UNSIGNED-PAYLOAD-TRAILER, CRC32 trailer).
constexpr std::string_view kBotocoreUnsignedTrailerBody =
    "25\r\nhello world, aws-chunked via botocore\r\n0\r\nx-amz-checksum-crc32:RGdYAA==\r\n\r\n";

TEST(AwsChunkedUnsignedTrailer, BotocoreBytes) {
  AwsChunkedConfig config = Unsigned();
  config.decoded_length = 37;
  for (size_t read_size : {size_t{1}, size_t{5}, size_t{4096}}) {
    std::vector<http::Header> trailers;
    auto decoded = DecodeAwsChunked(kBotocoreUnsignedTrailerBody, config, read_size, &trailers);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, "hello world, aws-chunked via botocore");
    ASSERT_EQ(trailers.size(), 1u);
    EXPECT_EQ(trailers[0].name, "x-amz-checksum-crc32");
    EXPECT_EQ(trailers[0].value, "RGdYAA==");
    EXPECT_EQ(Base64Encode(ComputeChecksum(ChecksumAlgorithm::kCrc32, *decoded)), "RGdYAA==");
  }
  // Our encoder produces the same bytes.
  std::vector<http::Header> trailer = {{"x-amz-checksum-crc32", "RGdYAA=="}};
  EXPECT_EQ(EncodeAwsChunked("hello world, aws-chunked via botocore", 1 << 20, Unsigned(), trailer),
            kBotocoreUnsignedTrailerBody);
}

TEST(AwsChunkedUnsignedTrailer, LenientEndings) {
  struct Case {
    std::string body;
    size_t trailers;
  };
  const std::vector<Case> cases = {
      {"3\r\nabc\r\n0\r\n\r\n", 0},                                       // no trailers
      {"3\r\nabc\r\n0\r\n", 0},                                           // final CRLF missing
      {"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n", 1},          // final CRLF missing
      {"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==", 1},              // last line unterminated
      {"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n\r\n", 1},  // one stray CRLF
      {"3;chunk-signature=" + std::string(64, '0') + "\r\nabc\r\n0\r\n\r\n", 0},
      {"3;foo=bar\r\nabc\r\n0\r\n X-Amz-Checksum-CRC32 :  AAAAAA==  \r\n\r\n", 1},
      {"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\n\r\n\r\n", 1},  // minio-go framing
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    std::vector<http::Header> trailers;
    auto decoded = DecodeAwsChunked(c.body, Unsigned(), 2, &trailers);
    ASSERT_OK(decoded);
    EXPECT_EQ(*decoded, "abc");
    ASSERT_EQ(trailers.size(), c.trailers);
    if (c.trailers == 1) {
      EXPECT_EQ(trailers[0].name, "x-amz-checksum-crc32");
      EXPECT_EQ(trailers[0].value, "AAAAAA==");
    }
  }
}

TEST(AwsChunkedSignedTrailer, IndependentVector) {
  // Generated by a separate Python implementation of the AWS streaming-trailer algorithm from
  // the AWS example's key and seed.
  const std::string expected =
      "a;chunk-signature=ce7ccb555370deaa376c6785edf52bd7fee8ef2d4ff0c1cdc992ded62009cece\r\n"
      "signed tra\r\n"
      "a;chunk-signature=81645702fccac6a4f3fbf65096221b7f22f384feb4484e79e12aff18a83de77b\r\n"
      "iler paylo\r\n"
      "2;chunk-signature=cfb1c67cfc236164adf3f0a00b1057b62258977f1fbbd30737d611f84d7f6008\r\n"
      "ad\r\n"
      "0;chunk-signature=5614582e5e919fe4da61877bcf87f6c9056060649c018ccaf2303b8d469ca9b5\r\n"
      "x-amz-checksum-crc32:8vgXyw==\r\n"
      "x-amz-trailer-signature:b7aa9c5e9b91fd683eded1675f9ec379bb1ba216f233a0f85caf4d58ad9161cd"
      "\r\n\r\n";
  const AwsChunkedConfig config = AwsExampleConfig(AwsChunkedMode::kSignedTrailer);
  std::vector<http::Header> trailer = {{"x-amz-checksum-crc32", "8vgXyw=="}};
  EXPECT_EQ(EncodeAwsChunked("signed trailer payload", 10, config, trailer), expected);
  EXPECT_EQ(Base64Encode(ComputeChecksum(ChecksumAlgorithm::kCrc32, "signed trailer payload")),
            "8vgXyw==");

  std::vector<http::Header> trailers;
  auto decoded = DecodeAwsChunked(expected, config, 3, &trailers);
  ASSERT_OK(decoded);
  EXPECT_EQ(*decoded, "signed trailer payload");
  ASSERT_EQ(trailers.size(), 1u);
  EXPECT_EQ(trailers[0].value, "8vgXyw==");

  // minio-go's framing of the same trailer: LF-terminated line, blank line, signature.
  std::string minio_go = expected;
  minio_go.replace(minio_go.find("8vgXyw==\r\n"), 10, "8vgXyw==\n\r\n");
  ASSERT_OK(DecodeAwsChunked(minio_go, config, 1));

  std::string tampered = expected;
  tampered.replace(tampered.find("8vgXyw=="), 8, "AAAAAA==");
  EXPECT_CODE(DecodeAwsChunked(tampered, config), Code::kSignatureDoesNotMatch);
  std::string bad_sig = expected;
  bad_sig[bad_sig.find("b7aa9c5e")] = 'c';
  EXPECT_CODE(DecodeAwsChunked(bad_sig, config), Code::kSignatureDoesNotMatch);
  std::string missing = expected;
  missing.erase(missing.find("x-amz-trailer-signature"), 24 + 64 + 2);
  EXPECT_CODE(DecodeAwsChunked(missing, config), Code::kMalformedTrailer);
  std::string extra_trailer = expected;
  extra_trailer.insert(extra_trailer.find("x-amz-trailer-signature"), "x-amz-meta-x:1\r\n");
  EXPECT_CODE(DecodeAwsChunked(extra_trailer, config), Code::kSignatureDoesNotMatch);
}

TEST(AwsChunkedSigned, TrailersAreRefusedWithoutTrailerMode) {
  AwsChunkedConfig config = AwsExampleConfig();
  std::string body = EncodeAwsChunked("abc", 10, config);
  body.insert(body.size() - 2, "x-amz-checksum-crc32:AAAAAA==\r\n");
  EXPECT_CODE(DecodeAwsChunked(body, config), Code::kMalformedTrailer);
  // Unsigned chunks in a signed upload.
  EXPECT_CODE(DecodeAwsChunked("3\r\nabc\r\n0\r\n\r\n", config), Code::kInvalidRequest);
  EXPECT_CODE(DecodeAwsChunked("3;chunk-signature=12\r\nabc\r\n0\r\n\r\n", config),
              Code::kInvalidRequest);
}

TEST(AwsChunkedReader, DecodedLengthMustMatch) {
  std::string body = "3\r\nabc\r\n0\r\n\r\n";
  AwsChunkedConfig config = Unsigned();
  config.decoded_length = 4;
  EXPECT_CODE(DecodeAwsChunked(body, config), Code::kIncompleteBody);
  config.decoded_length = 2;
  EXPECT_CODE(DecodeAwsChunked(body, config), Code::kInvalidRequest);
  config.decoded_length = 3;
  ASSERT_OK(DecodeAwsChunked(body, config));
}

TEST(AwsChunkedReader, MalformedInputs) {
  struct Case {
    std::string name;
    std::string body;
    Code code;
  };
  std::string long_trailers = "0\r\n";
  for (int i = 0; i < 400; ++i)
    long_trailers += "x-amz-meta-" + std::to_string(i) + ":" + std::string(40, 'v') + "\r\n";
  const std::vector<Case> cases = {
      {"empty", "", Code::kIncompleteBody},
      {"bad hex", "zz\r\nabc\r\n0\r\n\r\n", Code::kInvalidRequest},
      {"sign before size", ";chunk-signature=x\r\n", Code::kInvalidRequest},
      {"space after size", "3 \r\nabc\r\n0\r\n\r\n", Code::kInvalidRequest},
      {"missing CRLF after data", "3\r\nabcX0\r\n\r\n", Code::kInvalidRequest},
      {"LF only after data", "3\r\nabc\n0\r\n\r\n", Code::kInvalidRequest},
      {"bare LF line end", "3\nabc\r\n0\r\n\r\n", Code::kInvalidRequest},
      {"CR inside line", "3\r;x\r\nabc\r\n0\r\n\r\n", Code::kInvalidRequest},
      {"truncated in data", "5\r\nabc", Code::kIncompleteBody},
      {"truncated after data", "3\r\nabc", Code::kIncompleteBody},
      {"truncated after CR", "3\r\nabc\r", Code::kIncompleteBody},
      {"truncated size line", "3", Code::kIncompleteBody},
      {"no final chunk", "3\r\nabc\r\n", Code::kIncompleteBody},
      {"oversized line", "1;" + std::string(5000, 'x') + "\r\nabc", Code::kInvalidRequest},
      {"size overflow", "10000000000000000\r\n", Code::kInvalidRequest},
      {"huge chunk, truncated", "ffffffffffffffff\r\n", Code::kIncompleteBody},
      {"extra bytes after end", "3\r\nabc\r\n0\r\n\r\nXYZ", Code::kInvalidRequest},
      {"too many stray CRLFs", "3\r\nabc\r\n0\r\n\r\n\r\n\r\n", Code::kInvalidRequest},
      {"trailer without colon", "0\r\nnocolon\r\n\r\n", Code::kMalformedTrailer},
      {"trailer empty name", "0\r\n:v\r\n\r\n", Code::kMalformedTrailer},
      {"trailers too large", long_trailers + "\r\n", Code::kMalformedTrailer},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    for (size_t read_size : {size_t{1}, size_t{4096}}) {
      EXPECT_CODE(DecodeAwsChunked(c.body, Unsigned(), read_size), c.code);
    }
  }
  // A huge declared chunk against a known decoded length fails before any data is read.
  AwsChunkedConfig config = Unsigned();
  config.decoded_length = 10;
  EXPECT_CODE(DecodeAwsChunked("ffffffffffffffff\r\n", config), Code::kInvalidRequest);
}

TEST(AwsChunkedReader, ConfigFromAuthResult) {
  AuthResult auth;
  auth.payload = PayloadMode::kHashed;
  EXPECT_CODE(AwsChunkedConfigFor(auth, std::nullopt), Code::kInvalidArgument);
  auth.anonymous = true;
  auth.payload = PayloadMode::kStreamingSigned;
  EXPECT_CODE(AwsChunkedConfigFor(auth, std::nullopt), Code::kInvalidArgument);
  auth.payload = PayloadMode::kStreamingUnsignedTrailer;
  auto config = AwsChunkedConfigFor(auth, 5);
  ASSERT_OK(config);
  EXPECT_EQ(config->mode, AwsChunkedMode::kUnsignedTrailer);
  EXPECT_EQ(config->decoded_length, 5u);
}

}  // namespace
}  // namespace vlake::s3
