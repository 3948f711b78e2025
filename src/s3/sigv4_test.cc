#include "s3/sigv4.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/encoding.h"
#include "common/hash.h"
#include "common/testing.h"
#include "s3/auth_testing.h"

namespace vlake::s3 {
namespace {

// AWS's published examples (S3 API reference, "Signature Calculations for the Authorization
// Header" and "Authenticating Requests: Using Query Parameters").
constexpr std::string_view kAwsAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kAwsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr int64_t kAwsExampleTime = 1369353600;  // 20130524T000000Z
constexpr std::string_view kAwsHost = "examplebucket.s3.amazonaws.com";
constexpr std::string_view kAwsScope = "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";

using ::vlake::s3::testing::MakeRequest;

std::string AuthHeader(std::string_view signed_headers, std::string_view signature) {
  return "AWS4-HMAC-SHA256 Credential=" + std::string(kAwsScope) +
         ",SignedHeaders=" + std::string(signed_headers) + ",Signature=" + std::string(signature);
}

SecretLookup AwsSecrets() {
  return [](std::string_view ak) -> std::optional<std::string> {
    if (ak == kAwsAccessKey) return std::string(kAwsSecret);
    return std::nullopt;
  };
}

AuthOptions At(int64_t now) { return AuthOptions{.now_unix_s = now}; }

// GET /test.txt with Range: the first single-chunk example.
http::HttpRequest AwsGetObject() {
  return MakeRequest(
      "GET", "/test.txt",
      {{"host", std::string(kAwsHost)},
       {"range", "bytes=0-9"},
       {"x-amz-content-sha256", std::string(kEmptySha256Hex)},
       {"x-amz-date", "20130524T000000Z"},
       {"authorization",
        AuthHeader("host;range;x-amz-content-sha256;x-amz-date",
                   "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")}});
}

TEST(SigV4AwsExamples, GetObject) {
  auto r = Authenticate(AwsGetObject(), AwsSecrets(), At(kAwsExampleTime));
  ASSERT_OK(r);
  EXPECT_FALSE(r->anonymous);
  EXPECT_FALSE(r->presigned);
  EXPECT_EQ(r->access_key, kAwsAccessKey);
  EXPECT_EQ(r->payload, PayloadMode::kHashed);
  EXPECT_EQ(r->payload_sha256_hex, kEmptySha256Hex);
  EXPECT_EQ(r->request_unix_s, kAwsExampleTime);
  EXPECT_EQ(r->scope.ToString(), "20130524/us-east-1/s3/aws4_request");
  EXPECT_TRUE(r->IsSignedHeader("range"));
  EXPECT_FALSE(r->IsSignedHeader("content-md5"));
}

TEST(SigV4AwsExamples, PutObjectWithDateAndDollarInKey) {
  const std::string payload_hash = HexEncode(Sha256Digest("Welcome to Amazon S3."));
  ASSERT_EQ(payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  std::vector<http::Header> headers = {
      {"host", std::string(kAwsHost)},
      {"date", "Fri, 24 May 2013 00:00:00 GMT"},
      {"x-amz-date", "20130524T000000Z"},
      {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
      {"x-amz-content-sha256", payload_hash},
      {"authorization",
       AuthHeader("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")}};
  // The key "test$file.text", as AWS encodes it and as a client leaving '$' bare sends it.
  for (std::string target : {"/test%24file.text", "/test$file.text"}) {
    auto r = Authenticate(MakeRequest("PUT", target, headers), AwsSecrets(), At(kAwsExampleTime));
    ASSERT_OK(r);
    EXPECT_EQ(r->payload, PayloadMode::kHashed);
    EXPECT_EQ(r->payload_sha256_hex, payload_hash);
  }
}

TEST(SigV4AwsExamples, GetBucketLifecycle) {
  auto req = MakeRequest(
      "GET", "/?lifecycle",
      {{"host", std::string(kAwsHost)},
       {"x-amz-date", "20130524T000000Z"},
       {"x-amz-content-sha256", std::string(kEmptySha256Hex)},
       {"authorization",
        AuthHeader("host;x-amz-content-sha256;x-amz-date",
                   "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")}});
  ASSERT_OK(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)));
}

TEST(SigV4AwsExamples, ListObjects) {
  auto req = MakeRequest(
      "GET", "/?max-keys=2&prefix=J",
      {{"host", std::string(kAwsHost)},
       {"x-amz-date", "20130524T000000Z"},
       {"x-amz-content-sha256", std::string(kEmptySha256Hex)},
       {"authorization",
        AuthHeader("host;x-amz-content-sha256;x-amz-date",
                   "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")}});
  ASSERT_OK(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)));
  // Parameter order on the wire does not matter.
  req.query = "prefix=J&max-keys=2";
  ASSERT_OK(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)));
}

constexpr std::string_view kAwsPresignQuery =
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-"
    "east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-"
    "SignedHeaders=host&X-Amz-Signature="
    "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

TEST(SigV4AwsExamples, PresignedGet) {
  auto req = MakeRequest("GET", "/test.txt?" + std::string(kAwsPresignQuery),
                         {{"host", std::string(kAwsHost)}});
  auto r = Authenticate(req, AwsSecrets(), At(kAwsExampleTime + 3600));
  ASSERT_OK(r);
  EXPECT_TRUE(r->presigned);
  EXPECT_EQ(r->payload, PayloadMode::kUnsigned);
  EXPECT_EQ(r->access_key, kAwsAccessKey);

  PresignParams p{.method = "GET",
                  .raw_path = "/test.txt",
                  .host = kAwsHost,
                  .now_unix_s = kAwsExampleTime,
                  .expires_s = 86400};
  EXPECT_EQ(PresignUrlQuery(p, {std::string(kAwsAccessKey), std::string(kAwsSecret)}),
            kAwsPresignQuery);
}

// The seed of the multiple-chunk example (its chunks are checked in aws_chunked_test.cc).
TEST(SigV4AwsExamples, StreamingSeedSignature) {
  auto req = MakeRequest(
      "PUT", "/examplebucket/chunkObject.txt",
      {{"host", "s3.amazonaws.com"},
       {"x-amz-date", "20130524T000000Z"},
       {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
       {"x-amz-content-sha256", std::string(kStreamingSignedPayload)},
       {"content-encoding", "aws-chunked"},
       {"x-amz-decoded-content-length", "66560"},
       {"content-length", "66824"},
       {"authorization",
        AuthHeader("content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-"
                   "decoded-content-length;x-amz-storage-class",
                   "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")}});
  auto r = Authenticate(req, AwsSecrets(), At(kAwsExampleTime));
  ASSERT_OK(r);
  EXPECT_EQ(r->payload, PayloadMode::kStreamingSigned);
  EXPECT_EQ(r->seed_signature, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
  EXPECT_EQ(r->amz_date, "20130524T000000Z");
  EXPECT_EQ(r->signing_key, DeriveSigningKey(kAwsSecret, r->scope));
}

// The generic SigV4 example (IAM ListUsers), through the pure functions.
TEST(SigV4AwsExamples, IamPureFunctions) {
  SigningScope scope{"20150830", "us-east-1", "iam"};
  std::vector<http::Header> headers = {
      {"host", "iam.amazonaws.com"},
      {"content-type", "application/x-www-form-urlencoded; charset=utf-8"},
      {"x-amz-date", "20150830T123600Z"}};
  std::vector<std::string> signed_headers = {"content-type", "host", "x-amz-date"};
  std::string cr =
      CanonicalRequest("GET", CanonicalUri("/"),
                       CanonicalQuery("Version=2010-05-08&Action=ListUsers", SignatureParam::kKeep),
                       headers, signed_headers, kEmptySha256Hex);
  EXPECT_EQ(HexEncode(Sha256Digest(cr)),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  std::string key = DeriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", scope);
  EXPECT_EQ(HexEncode(key), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
  EXPECT_EQ(SignatureHex(key, StringToSign("20150830T123600Z", scope, cr)),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

// Requests captured from botocore 1.43 (boto3 client, fixed clock, path-style endpoint).
constexpr int64_t kBotoTime = 1704164645;  // 20240102T030405Z
SecretLookup BotoSecrets() {
  return [](std::string_view ak) -> std::optional<std::string> {
    if (ak == "AKIDEXAMPLE") return std::string("secret/+key");
    return std::nullopt;
  };
}

TEST(SigV4Botocore, PutObjectKeyWithEveryAwkwardCharacter) {
  auto req = MakeRequest(
      "PUT", "/bkt/dir/%C3%BC%20%C3%B1%2B~%21%27%28%29%2A%25%26%3D%3B%3A%40%24%2C%5B%5Dx.txt",
      {{"host", "127.0.0.1:9000"},
       {"user-agent", "Boto3/1.43.11"},
       {"expect", "100-continue"},
       {"x-amz-checksum-crc32", "DUoRhQ=="},
       {"x-amz-sdk-checksum-algorithm", "CRC32"},
       {"x-amz-date", "20240102T030405Z"},
       {"x-amz-content-sha256", "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"},
       {"authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-sdk-"
        "checksum-algorithm, "
        "Signature=6a7b3520a4a3fd1670f0f48e93d5ae253e9f2d8da9161576c4c46ded8e5c6a82"},
       {"content-length", "11"}});
  auto r = Authenticate(req, BotoSecrets(), At(kBotoTime));
  ASSERT_OK(r);
  EXPECT_EQ(r->payload_sha256_hex, HexEncode(Sha256Digest("hello world")));
}

TEST(SigV4Botocore, ListObjectsV2WithEncodedQuery) {
  auto req = MakeRequest(
      "GET", "/bkt?list-type=2&prefix=a%20b%2F%C3%BC&delimiter=%2F&max-keys=7&encoding-type=url",
      {{"host", "127.0.0.1:9000"},
       {"x-amz-date", "20240102T030405Z"},
       {"x-amz-content-sha256", std::string(kEmptySha256Hex)},
       {"authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
        "Signature=66fd733da151f787964de146a46202288fc3f878825dd895daa0ab4074f38500"}});
  ASSERT_OK(Authenticate(req, BotoSecrets(), At(kBotoTime)));
}

TEST(SigV4Botocore, DotSegmentsAreNotNormalised) {
  auto req =
      MakeRequest("GET", "/bkt/a//./../b%20c",
                  {{"host", "127.0.0.1:9000"},
                   {"x-amz-checksum-mode", "ENABLED"},
                   {"x-amz-date", "20240102T030405Z"},
                   {"x-amz-content-sha256", std::string(kEmptySha256Hex)},
                   {"authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/s3/aws4_request, "
                    "SignedHeaders=host;x-amz-checksum-mode;x-amz-content-sha256;x-amz-date, "
                    "Signature=3e6fc4b4781e8094ce1e486f38f12c151d9722272becc7fac9c0120fbe9a756e"}});
  ASSERT_OK(Authenticate(req, BotoSecrets(), At(kBotoTime)));
  EXPECT_EQ(CanonicalUri("/bkt/a//./../b%20c"), "/bkt/a//./../b%20c");
}

TEST(SigV4Botocore, StreamingUnsignedTrailerSeed) {
  auto req = MakeRequest(
      "PUT", "/bkt/dir/%C3%BC%20%C3%B1%2B~%21%27%28%29%2A%25%26%3D%3B%3A%40%24%2C%5B%5Dx.txt",
      {{"host", "127.0.0.1:9000"},
       {"expect", "100-continue"},
       {"transfer-encoding", "chunked"},
       {"content-encoding", "aws-chunked"},
       {"x-amz-trailer", "x-amz-checksum-crc32"},
       {"x-amz-decoded-content-length", "37"},
       {"x-amz-sdk-checksum-algorithm", "CRC32"},
       {"x-amz-date", "20240102T030405Z"},
       {"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
       {"authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240102/us-east-1/s3/aws4_request, "
        "SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-"
        "content-length;x-amz-sdk-checksum-algorithm;x-amz-trailer, "
        "Signature=d1f220499ff1ef28dbab7d016b544492cba3345e312076360ce51b836d70f19a"}});
  auto r = Authenticate(req, BotoSecrets(), At(kBotoTime));
  ASSERT_OK(r);
  EXPECT_EQ(r->payload, PayloadMode::kStreamingUnsignedTrailer);
  EXPECT_TRUE(r->IsSignedHeader("x-amz-trailer"));
}

// botocore drops x-amz-date when a Date header is present and signs the Date instead, which
// it rewrites in the RFC 2822 form with a numeric zone.
TEST(SigV4Botocore, DateHeaderOnly) {
  auto req = MakeRequest(
      "PUT", "/test%24file.text",
      {{"host", std::string(kAwsHost)},
       {"date", "Fri, 24 May 2013 00:00:00 -0000"},
       {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
       {"x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"},
       {"authorization",
        AuthHeader("date;host;x-amz-content-sha256;x-amz-storage-class",
                   "537a8c565f27da249b46cd0a32fad1134b73cc392327172d2b3958c4d26c34ca")}});
  auto r = Authenticate(req, AwsSecrets(), At(kAwsExampleTime));
  ASSERT_OK(r);
  EXPECT_EQ(r->amz_date, "20130524T000000Z");
}

// ---- Canonicalisation details ----

TEST(SigV4Canonical, Query) {
  EXPECT_EQ(CanonicalQuery("", SignatureParam::kKeep), "");
  EXPECT_EQ(CanonicalQuery("uploads", SignatureParam::kKeep), "uploads=");
  EXPECT_EQ(CanonicalQuery("b=2&a=1&a=0", SignatureParam::kKeep), "a=0&a=1&b=2");
  // '+' is literal; bare reserved characters are encoded; "%7E" decodes to '~'.
  EXPECT_EQ(CanonicalQuery("k=a+b&p=x/y%7E&e=%3d", SignatureParam::kKeep),
            "e=%3D&k=a%2Bb&p=x%2Fy~");
  EXPECT_EQ(CanonicalQuery("a=1&X-Amz-Signature=ff", SignatureParam::kExclude), "a=1");
  EXPECT_EQ(CanonicalQuery("a=1&&b", SignatureParam::kKeep), "a=1&b=");
}

TEST(SigV4Canonical, UriAndHeaders) {
  EXPECT_EQ(CanonicalUri("/b/k%2bx+y z"), "/b/k%2Bx%2By%20z");
  EXPECT_EQ(CanonicalUri("/b/%E2%82%AC"), "/b/%E2%82%AC");
  EXPECT_EQ(CanonicalUri("/b/%zz"), "/b/%zz");  // broken escape: kept verbatim
  std::vector<http::Header> headers = {{"x-a", "  one   two  "}, {"x-b", "1"}, {"x-a", "three"}};
  std::vector<std::string> names = {"x-a", "x-b", "x-missing"};
  EXPECT_EQ(CanonicalHeaders(headers, names), "x-a:one two,three\nx-b:1\nx-missing:\n");
}

// ---- Negative cases ----

http::HttpRequest WithAuthorization(std::string value) {
  http::HttpRequest req = AwsGetObject();
  for (auto& h : req.headers) {
    if (h.name == "authorization") h.value = std::move(value);
  }
  return req;
}

TEST(SigV4Reject, MalformedAuthorizationHeaders) {
  const std::string sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
  const std::string cred = "Credential=" + std::string(kAwsScope);
  const std::string sh = "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date";
  // Tolerated: extra spaces, any order.
  ASSERT_OK(Authenticate(
      WithAuthorization("AWS4-HMAC-SHA256   Signature=" + sig + " ,  " + sh + ",   " + cred),
      AwsSecrets(), At(kAwsExampleTime)));
  const std::vector<std::string> malformed = {
      "AWS4-HMAC-SHA256",
      "AWS4-HMAC-SHA256 " + cred + "," + sh,
      "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=" + sig + "," + cred,
      "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=" + sig + ",Foo=bar",
      "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=" + sig + ",",
      "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=" + sig.substr(1),
      "AWS4-HMAC-SHA256 " + cred + "," + sh + ",Signature=" + std::string(64, 'g'),
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3," + sh +
          ",Signature=" + sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/ec2/aws4_request," + sh +
          ",Signature=" + sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws5_request," + sh +
          ",Signature=" + sig,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/2013052x/us-east-1/s3/aws4_request," + sh +
          ",Signature=" + sig,
      "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request," + sh + ",Signature=" + sig,
      "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=,Signature=" + sig,
      "AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host;;range,Signature=" + sig,
      "AWS4-HMAC-SHA256 " + cred + " " + sh + " Signature=" + sig,
      "AWS4-HMAC-SHA256X " + cred + "," + sh + ",Signature=" + sig,
      "Bearer abc",
      "",
  };
  for (const std::string& value : malformed) {
    SCOPED_TRACE(value);
    EXPECT_CODE(Authenticate(WithAuthorization(value), AwsSecrets(), At(kAwsExampleTime)),
                Code::kAuthorizationHeaderMalformed);
  }
  EXPECT_CODE(
      Authenticate(WithAuthorization("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="),
                   AwsSecrets(), At(kAwsExampleTime)),
      Code::kInvalidRequest);
}

TEST(SigV4Reject, CredentialsAndTime) {
  auto wrong_secret = [](std::string_view) -> std::optional<std::string> { return "nope"; };
  EXPECT_CODE(Authenticate(AwsGetObject(), wrong_secret, At(kAwsExampleTime)),
              Code::kSignatureDoesNotMatch);
  auto no_keys = [](std::string_view) -> std::optional<std::string> { return std::nullopt; };
  EXPECT_CODE(Authenticate(AwsGetObject(), no_keys, At(kAwsExampleTime)),
              Code::kInvalidAccessKeyId);
  ASSERT_OK(Authenticate(AwsGetObject(), AwsSecrets(), At(kAwsExampleTime + 900)));
  ASSERT_OK(Authenticate(AwsGetObject(), AwsSecrets(), At(kAwsExampleTime - 900)));
  EXPECT_CODE(Authenticate(AwsGetObject(), AwsSecrets(), At(kAwsExampleTime + 901)),
              Code::kRequestTimeTooSkewed);
  EXPECT_CODE(Authenticate(AwsGetObject(), AwsSecrets(), At(kAwsExampleTime - 901)),
              Code::kRequestTimeTooSkewed);
}

TEST(SigV4Reject, MissingOrBadHeaders) {
  auto without = [](std::string_view name) {
    http::HttpRequest req = AwsGetObject();
    std::erase_if(req.headers, [&](const http::Header& h) { return h.name == name; });
    return req;
  };
  EXPECT_CODE(Authenticate(without("x-amz-content-sha256"), AwsSecrets(), At(kAwsExampleTime)),
              Code::kInvalidRequest);
  EXPECT_CODE(Authenticate(without("x-amz-date"), AwsSecrets(), At(kAwsExampleTime)),
              Code::kAccessDenied);
  http::HttpRequest req = AwsGetObject();
  req.headers[2].value = "SOMETHING-ELSE";  // x-amz-content-sha256
  EXPECT_CODE(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)), Code::kInvalidArgument);
  req = AwsGetObject();
  req.headers[3].value = "20130525T000000Z";  // x-amz-date on another day than the scope
  EXPECT_CODE(Authenticate(req, AwsSecrets(), At(kAwsExampleTime + 86400)),
              Code::kAuthorizationHeaderMalformed);
  req = AwsGetObject();
  req.headers[3].value = "2013-05-24";
  EXPECT_CODE(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)), Code::kAccessDenied);
}

TEST(SigV4Reject, HostMustBeSigned) {
  SigningScope scope{"20130524", "us-east-1", "s3"};
  std::vector<http::Header> headers = {{"host", std::string(kAwsHost)},
                                       {"x-amz-content-sha256", std::string(kEmptySha256Hex)},
                                       {"x-amz-date", "20130524T000000Z"}};
  std::vector<std::string> signed_headers = {"x-amz-content-sha256", "x-amz-date"};
  std::string sig = SignatureHex(
      DeriveSigningKey(kAwsSecret, scope),
      StringToSign("20130524T000000Z", scope,
                   CanonicalRequest("GET", "/k", "", headers, signed_headers, kEmptySha256Hex)));
  headers.push_back({"authorization", AuthHeader("x-amz-content-sha256;x-amz-date", sig)});
  EXPECT_CODE(Authenticate(MakeRequest("GET", "/k", headers), AwsSecrets(), At(kAwsExampleTime)),
              Code::kAuthorizationHeaderMalformed);
}

TEST(SigV4Reject, Tampering) {
  http::HttpRequest req = AwsGetObject();
  req.headers[1].value = "bytes=0-10";  // signed range
  EXPECT_CODE(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)), Code::kSignatureDoesNotMatch);
  req = AwsGetObject();
  req.path = "/test.txT";
  EXPECT_CODE(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)), Code::kSignatureDoesNotMatch);
  req = AwsGetObject();
  req.query = "versionId=1";
  EXPECT_CODE(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)), Code::kSignatureDoesNotMatch);
  req = AwsGetObject();
  req.method = "DELETE";
  EXPECT_CODE(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)), Code::kSignatureDoesNotMatch);
  // An unsigned header may be added freely.
  req = AwsGetObject();
  req.headers.push_back({"x-unsigned", "1"});
  ASSERT_OK(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)));
  // A second value for a signed header changes its canonical form.
  req.headers.push_back({"range", "bytes=5-6"});
  EXPECT_CODE(Authenticate(req, AwsSecrets(), At(kAwsExampleTime)), Code::kSignatureDoesNotMatch);
}

TEST(SigV4Reject, Presigned) {
  auto presigned = [](std::string query) {
    return MakeRequest("GET", "/test.txt?" + query, {{"host", std::string(kAwsHost)}});
  };
  const std::string q(kAwsPresignQuery);
  EXPECT_CODE(Authenticate(presigned(q), AwsSecrets(), At(kAwsExampleTime + 86401)),
              Code::kAccessDenied);
  ASSERT_OK(Authenticate(presigned(q), AwsSecrets(), At(kAwsExampleTime + 86400)));
  EXPECT_CODE(Authenticate(presigned(q), AwsSecrets(), At(kAwsExampleTime - 901)),
              Code::kAccessDenied);
  auto replace = [&](std::string_view from, std::string_view to) {
    std::string out = q;
    out.replace(out.find(from), from.size(), to);
    return out;
  };
  EXPECT_CODE(Authenticate(presigned(replace("Expires=86400", "Expires=86401")), AwsSecrets(),
                           At(kAwsExampleTime)),
              Code::kSignatureDoesNotMatch);
  EXPECT_CODE(Authenticate(presigned(q + "&extra=1"), AwsSecrets(), At(kAwsExampleTime)),
              Code::kSignatureDoesNotMatch);
  for (std::string_view bad : {"Expires=0", "Expires=604801", "Expires=-1", "Expires=x"}) {
    EXPECT_CODE(
        Authenticate(presigned(replace("Expires=86400", bad)), AwsSecrets(), At(kAwsExampleTime)),
        Code::kAuthorizationHeaderMalformed);
  }
  EXPECT_CODE(Authenticate(presigned(replace("X-Amz-Credential", "X-Amz-Credentials")),
                           AwsSecrets(), At(kAwsExampleTime)),
              Code::kAuthorizationHeaderMalformed);
  EXPECT_CODE(Authenticate(presigned(replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1")), AwsSecrets(),
                           At(kAwsExampleTime)),
              Code::kAuthorizationHeaderMalformed);
  EXPECT_CODE(Authenticate(presigned(q + "&X-Amz-Date=20130524T000000Z"), AwsSecrets(),
                           At(kAwsExampleTime)),
              Code::kAuthorizationHeaderMalformed);
  auto both = presigned(q);
  both.headers.push_back({"authorization", AuthHeader("host", std::string(64, 'a'))});
  EXPECT_CODE(Authenticate(both, AwsSecrets(), At(kAwsExampleTime)), Code::kInvalidArgument);
  // A signature parameter without the algorithm is not an anonymous request.
  EXPECT_CODE(Authenticate(presigned("X-Amz-Signature=" + std::string(64, 'a')), AwsSecrets(),
                           At(kAwsExampleTime)),
              Code::kAuthorizationHeaderMalformed);
  // SigV2 presigned URLs are refused here rather than treated as anonymous (the service sends
  // them to AuthenticateV2, sigv2.h).
  EXPECT_CODE(Authenticate(presigned("AWSAccessKeyId=AK&Expires=1&Signature=abc"), AwsSecrets(),
                           At(kAwsExampleTime)),
              Code::kInvalidRequest);
}

TEST(SigV4Anonymous, NoCredentialsAtAll) {
  auto r = Authenticate(MakeRequest("GET", "/b/k?versionId=3", {{"host", "h"}}), AwsSecrets(),
                        At(kAwsExampleTime));
  ASSERT_OK(r);
  EXPECT_TRUE(r->anonymous);
  EXPECT_EQ(r->payload, PayloadMode::kUnsigned);
  r = Authenticate(
      MakeRequest("PUT", "/b/k",
                  {{"host", "h"}, {"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"}}),
      AwsSecrets(), At(kAwsExampleTime));
  ASSERT_OK(r);
  EXPECT_TRUE(r->anonymous);
  EXPECT_EQ(r->payload, PayloadMode::kStreamingUnsignedTrailer);
}

// ---- Round trips through SignRequest ----

TEST(SigV4RoundTrip, SignThenAuthenticate) {
  const Credentials creds{"vlake-ak", "vlake secret/with+odd=chars"};
  auto secrets = [&](std::string_view ak) -> std::optional<std::string> {
    if (ak == creds.access_key) return creds.secret_key;
    return std::nullopt;
  };
  const int64_t now = 1767225600;  // 2026-01-01
  // Every awkward key byte, encoded the AWS way.
  const std::string key = "dir/ü ñ+~!'()*%&=;:@$,[]x\x01.txt";
  const std::string path = "/bucket/" + UriEncode(key, SlashEncoding::kKeepSlash);
  const std::string query = "partNumber=3&uploadId=abc%2B%2F%3D";
  std::vector<http::Header> headers = {
      {"Host", "127.0.0.1:9000"},        {"content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="},
      {"x-amz-rdma-token", "00ff:abcd"}, {"x-amz-meta-note", "  spaced    out  "},
      {"user-agent", "vlake-test"},      {"expect", "100-continue"}};
  std::string seed = SignRequest({.method = "PUT",
                                  .raw_path = path,
                                  .raw_query = query,
                                  .payload_hash = kUnsignedPayload,
                                  .region = "eu-west-3",
                                  .now_unix_s = now},
                                 creds, &headers);
  auto req = MakeRequest("PUT", path + "?" + query, headers);
  auto r = Authenticate(req, secrets, At(now + 5));
  ASSERT_OK(r);
  EXPECT_EQ(r->seed_signature, seed);
  EXPECT_EQ(r->scope.region, "eu-west-3");
  EXPECT_EQ(r->payload, PayloadMode::kUnsigned);
  EXPECT_TRUE(r->IsSignedHeader("x-amz-rdma-token"));
  EXPECT_TRUE(r->IsSignedHeader("content-md5"));
  EXPECT_FALSE(r->IsSignedHeader("user-agent"));
  EXPECT_FALSE(r->IsSignedHeader("expect"));

  // Flipping one byte of any signed header value is detected.
  for (size_t i = 0; i < req.headers.size(); ++i) {
    if (!r->IsSignedHeader(AsciiLower(req.headers[i].name))) continue;
    http::HttpRequest bad = req;
    bad.headers[i].value.back() ^= 1;
    SCOPED_TRACE(bad.headers[i].name);
    auto rejected = Authenticate(bad, secrets, At(now + 5));
    ASSERT_FALSE(rejected.ok());
    // x-amz-date and x-amz-content-sha256 also fail their own format checks.
    EXPECT_TRUE(rejected.error().code() == Code::kSignatureDoesNotMatch ||
                rejected.error().code() == Code::kAccessDenied ||
                rejected.error().code() == Code::kInvalidArgument)
        << rejected.error().ToString();
  }
  // Collapsed whitespace is not a change.
  http::HttpRequest respaced = req;
  for (auto& h : respaced.headers) {
    if (h.name == "x-amz-meta-note") h.value = "spaced out";
  }
  ASSERT_OK(Authenticate(respaced, secrets, At(now + 5)));
  // A client that leaves sub-delimiters bare in the path and signs the AWS canonical form.
  http::HttpRequest bare = req;
  bare.path = "/bucket/dir/%C3%BC%20%C3%B1+~!'()*%25&=;:@$,[]x%01.txt";
  ASSERT_OK(Authenticate(bare, secrets, At(now + 5)));
}

TEST(SigV4RoundTrip, PresignThenAuthenticate) {
  const Credentials creds{"ak", "sk"};
  auto secrets = [&](std::string_view) -> std::optional<std::string> { return creds.secret_key; };
  const int64_t now = 1767225600;
  std::string query = PresignUrlQuery({.method = "PUT",
                                       .raw_path = "/b/a%20b",
                                       .raw_query = "partNumber=1&uploadId=u",
                                       .host = "localhost:9000",
                                       .now_unix_s = now,
                                       .expires_s = 60},
                                      creds);
  auto req = MakeRequest("PUT", "/b/a%20b?" + query, {{"host", "localhost:9000"}});
  ASSERT_OK(Authenticate(req, secrets, At(now + 60)));
  EXPECT_CODE(Authenticate(req, secrets, At(now + 61)), Code::kAccessDenied);
  req.method = "GET";
  EXPECT_CODE(Authenticate(req, secrets, At(now)), Code::kSignatureDoesNotMatch);
}

TEST(SigV4SigningKeyCache, ConcurrentLookupsAgreeWithDerivation) {
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        SigningScope scope{"2026010" + std::to_string(i % 9 + 1), "r" + std::to_string(i % 7),
                           "s3"};
        std::string secret = "secret" + std::to_string((i + t) % 50);
        if (CachedSigningKey(secret, scope) != DeriveSigningKey(secret, scope)) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace vlake::s3
