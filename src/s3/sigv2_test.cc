#include "s3/sigv2.h"

#include <gtest/gtest.h>

#include "common/encoding.h"
#include "common/testing.h"
#include "s3/auth_testing.h"

namespace vlake::s3 {
namespace {

// AWS's published SigV2 examples (S3 Developer Guide, "Signing and authenticating REST
// requests"): the johnsmith bucket, the example key pair, and the signatures AWS lists.
constexpr std::string_view kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

using ::vlake::s3::testing::MakeRequest;

SecretLookup Secrets() {
  return [](std::string_view ak) -> std::optional<std::string> {
    if (ak == kAccessKey) return std::string(kSecret);
    return std::nullopt;
  };
}

AuthOptions At(int64_t now) { return AuthOptions{.now_unix_s = now}; }

int64_t TimeOf(std::string_view http_date) { return *ParseDateHeaderValue(http_date); }

std::string Auth(std::string_view signature) {
  return "AWS " + std::string(kAccessKey) + ":" + std::string(signature);
}

// GET /photos/puppy.jpg, virtual-host style.
http::HttpRequest ObjectGet(std::string_view signature = "bWq2s1WEIj+Ydj0vQ697zp+IXMU=") {
  return MakeRequest("GET", "/photos/puppy.jpg",
                     {{"Host", "johnsmith.s3.amazonaws.com"},
                      {"Date", "Tue, 27 Mar 2007 19:36:42 +0000"},
                      {"Authorization", Auth(signature)}});
}

TEST(SigV2, AwsExampleObjectGet) {
  http::HttpRequest req = ObjectGet();
  EXPECT_EQ(StringToSignV2(
                "GET", req.headers, "Tue, 27 Mar 2007 19:36:42 +0000",
                CanonicalResourceV2(req.path, req.query, "johnsmith", SubresourceValues::kDecoded)),
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg");
  auto r =
      AuthenticateV2(req, "johnsmith", Secrets(), At(TimeOf("Tue, 27 Mar 2007 19:36:42 +0000")));
  ASSERT_OK(r);
  EXPECT_EQ(r->access_key, kAccessKey);
  EXPECT_FALSE(r->presigned);
  EXPECT_EQ(r->payload, PayloadMode::kUnsigned);
  EXPECT_TRUE(IsSigV2Request(req));
}

TEST(SigV2, AwsExampleObjectPut) {
  auto req = MakeRequest("PUT", "/photos/puppy.jpg",
                         {{"Content-Type", "image/jpeg"},
                          {"Content-Length", "94328"},
                          {"Host", "johnsmith.s3.amazonaws.com"},
                          {"Date", "Tue, 27 Mar 2007 21:15:45 +0000"},
                          {"Authorization", Auth("MyyxeRY7whkBe+bq8fHCL/2kKUg=")}});
  ASSERT_OK(
      AuthenticateV2(req, "johnsmith", Secrets(), At(TimeOf("Tue, 27 Mar 2007 21:15:45 +0000"))));
}

TEST(SigV2, AwsExampleListIgnoresNonSubresourceParameters) {
  auto req = MakeRequest("GET", "/?prefix=photos&max-keys=50&marker=puppy",
                         {{"User-Agent", "Mozilla/5.0"},
                          {"Host", "johnsmith.s3.amazonaws.com"},
                          {"Date", "Tue, 27 Mar 2007 19:42:41 +0000"},
                          {"Authorization", Auth("htDYFYduRNen8P9ZfE/s9SuKy0U=")}});
  EXPECT_EQ(CanonicalResourceV2(req.path, req.query, "johnsmith", SubresourceValues::kDecoded),
            "/johnsmith/");
  ASSERT_OK(
      AuthenticateV2(req, "johnsmith", Secrets(), At(TimeOf("Tue, 27 Mar 2007 19:42:41 +0000"))));
}

TEST(SigV2, AwsExampleFetchAclSubresource) {
  auto req = MakeRequest("GET", "/?acl",
                         {{"Host", "johnsmith.s3.amazonaws.com"},
                          {"Date", "Tue, 27 Mar 2007 19:44:46 +0000"},
                          {"Authorization", Auth("c2WLPFtWHVgbEmeEG93a4cG37dM=")}});
  EXPECT_EQ(CanonicalResourceV2(req.path, req.query, "johnsmith", SubresourceValues::kDecoded),
            "/johnsmith/?acl");
  ASSERT_OK(
      AuthenticateV2(req, "johnsmith", Secrets(), At(TimeOf("Tue, 27 Mar 2007 19:44:46 +0000"))));
}

TEST(SigV2, AwsExampleDeletePathStyleWithAmzDate) {
  auto req = MakeRequest("DELETE", "/johnsmith/photos/puppy.jpg",
                         {{"User-Agent", "dotnet"},
                          {"Host", "s3.amazonaws.com"},
                          {"Date", "Tue, 27 Mar 2007 21:20:27 +0000"},
                          {"x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"},
                          {"Authorization", Auth("lx3byBScXR6KzyMaifNkardMwNk=")}});
  // x-amz-date empties the Date line and is signed among the amz headers.
  EXPECT_EQ(StringToSignV2("DELETE", req.headers, "", "/johnsmith/photos/puppy.jpg"),
            "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n"
            "/johnsmith/photos/puppy.jpg");
  // AWS's worked example signs the other accepted form: the x-amz-date value on the Date line.
  auto r = AuthenticateV2(req, "", Secrets(), At(TimeOf("Tue, 27 Mar 2007 21:20:26 +0000")));
  ASSERT_OK(r);
  EXPECT_TRUE(r->IsSignedHeader("x-amz-date"));
  // The form botocore and s3cmd sign.
  req.headers.back().value = Auth(SignatureV2(
      kSecret, StringToSignV2("DELETE", req.headers, "", "/johnsmith/photos/puppy.jpg")));
  ASSERT_OK(AuthenticateV2(req, "", Secrets(), At(TimeOf("Tue, 27 Mar 2007 21:20:26 +0000"))));
  // The request time is x-amz-date's, not Date's.
  EXPECT_CODE(AuthenticateV2(req, "", Secrets(), At(TimeOf("Tue, 27 Mar 2007 21:35:27 +0000"))),
              Code::kRequestTimeTooSkewed);
  // A different x-amz-date breaks both forms.
  req.headers[3].value = "Tue, 27 Mar 2007 21:20:25 +0000";
  EXPECT_CODE(AuthenticateV2(req, "", Secrets(), At(TimeOf("Tue, 27 Mar 2007 21:20:26 +0000"))),
              Code::kSignatureDoesNotMatch);
}

TEST(SigV2, AwsExampleListAllBuckets) {
  auto req = MakeRequest("GET", "/",
                         {{"Host", "s3.amazonaws.com"},
                          {"Date", "Wed, 28 Mar 2007 01:29:59 +0000"},
                          {"Authorization", Auth("qGdzdERIC03wnaRNKh6OqZehG9s=")}});
  ASSERT_OK(AuthenticateV2(req, "", Secrets(), At(TimeOf("Wed, 28 Mar 2007 01:29:59 +0000"))));
}

TEST(SigV2, AwsExampleUnicodeKeysSignedAsOnTheWire) {
  auto req = MakeRequest("GET", "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
                         {{"Host", "s3.amazonaws.com"},
                          {"Date", "Wed, 28 Mar 2007 01:49:49 +0000"},
                          {"Authorization", Auth("DNEZGsoieTZ92F3bUfSPQcbGmlM=")}});
  ASSERT_OK(AuthenticateV2(req, "", Secrets(), At(TimeOf("Wed, 28 Mar 2007 01:49:49 +0000"))));
}

TEST(SigV2, AwsExampleUploadAmzHeadersCanonicalised) {
  // The documented upload: repeated x-amz-meta-reviewedby values are joined with ','; names
  // are lowercased and sorted; Content-MD5 and Content-Type take their lines.
  std::vector<http::Header> headers = {{"Host", "static.johnsmith.net:8080"},
                                       {"Date", "Tue, 27 Mar 2007 21:06:08 +0000"},
                                       {"x-amz-acl", "public-read"},
                                       {"content-type", "application/x-download"},
                                       {"Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="},
                                       {"X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"},
                                       {"X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"},
                                       {"X-Amz-Meta-FileChecksum", "0x02661779"},
                                       {"X-Amz-Meta-ChecksumAlgorithm", "crc32"},
                                       {"Content-Disposition", "attachment; filename=database.dat"},
                                       {"Content-Encoding", "gzip"},
                                       {"Content-Length", "5913339"}};
  std::string sts = StringToSignV2("PUT", headers, "Tue, 27 Mar 2007 21:06:08 +0000",
                                   "/static.johnsmith.net/db-backup.dat.gz");
  EXPECT_EQ(sts,
            "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\n"
            "Tue, 27 Mar 2007 21:06:08 +0000\nx-amz-acl:public-read\n"
            "x-amz-meta-checksumalgorithm:crc32\nx-amz-meta-filechecksum:0x02661779\n"
            "x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n"
            "/static.johnsmith.net/db-backup.dat.gz");
  EXPECT_EQ(SignatureV2(kSecret, sts), "ilyl83RwaSoYIEdixDQcA4OnAnc=");
}

TEST(SigV2, AwsExampleQueryStringAuthentication) {
  auto req = MakeRequest(
      "GET",
      "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature="
      "NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D",
      {{"Host", "johnsmith.s3.amazonaws.com"}});
  EXPECT_TRUE(IsSigV2Request(req));
  auto r = AuthenticateV2(req, "johnsmith", Secrets(), At(1175139620));
  ASSERT_OK(r);
  EXPECT_TRUE(r->presigned);
  EXPECT_CODE(AuthenticateV2(req, "johnsmith", Secrets(), At(1175139621)), Code::kAccessDenied);
  // A presigned URL carries no clock skew limit of its own: only Expires counts.
  ASSERT_OK(AuthenticateV2(req, "johnsmith", Secrets(), At(1175139620 - 86400 * 30)));
  // Same URL, path style: the resource is the same "/johnsmith/photos/puppy.jpg".
  auto path_style = req;
  path_style.path = "/johnsmith/photos/puppy.jpg";
  ASSERT_OK(AuthenticateV2(path_style, "", Secrets(), At(1175139620)));
}

TEST(SigV2, SubresourcesSortedAndOthersIgnored) {
  EXPECT_EQ(CanonicalResourceV2("/b/k", "uploadId=a%2Fb&partNumber=3&foo=1&x-id=UploadPart", "",
                                SubresourceValues::kDecoded),
            "/b/k?partNumber=3&uploadId=a/b");
  EXPECT_EQ(CanonicalResourceV2("/b/k", "uploadId=a%2Fb&partNumber=3", "", SubresourceValues::kRaw),
            "/b/k?partNumber=3&uploadId=a%2Fb");
  EXPECT_EQ(CanonicalResourceV2("/k", "versioning&response-content-type=text%2Fplain", "b",
                                SubresourceValues::kDecoded),
            "/b/k?response-content-type=text/plain&versioning");
  EXPECT_EQ(CanonicalResourceV2("/k", "acl=", "b", SubresourceValues::kDecoded), "/b/k?acl=");
  EXPECT_EQ(CanonicalResourceV2("/", "", "", SubresourceValues::kDecoded), "/");
}

// botocore (HmacV1Auth) signs path-style bucket requests with a trailing slash.
TEST(SigV2, PathStyleBucketSignedWithTrailingSlash) {
  const int64_t t = 1700000000;
  for (std::string_view signed_resource : {"/bucket", "/bucket/"}) {
    SCOPED_TRACE(signed_resource);
    std::vector<http::Header> headers = {{"host", "h"}, {"date", FormatHttpDate(t)}};
    std::string sts = StringToSignV2("PUT", headers, FormatHttpDate(t), signed_resource);
    headers.push_back({"authorization", Auth(SignatureV2(kSecret, sts))});
    ASSERT_OK(AuthenticateV2(MakeRequest("PUT", "/bucket", headers), "", Secrets(), At(t)));
    // Not for a key: "/bucket/k" and "/bucket/k/" are different objects.
    auto key = MakeRequest("PUT", "/bucket/k", headers);
    EXPECT_CODE(AuthenticateV2(key, "", Secrets(), At(t)), Code::kSignatureDoesNotMatch);
  }
  std::vector<http::Header> headers = {{"host", "h"}, {"date", FormatHttpDate(t)}};
  std::string sts = StringToSignV2("PUT", headers, FormatHttpDate(t), "/bucket/k/");
  headers.push_back({"authorization", Auth(SignatureV2(kSecret, sts))});
  EXPECT_CODE(AuthenticateV2(MakeRequest("PUT", "/bucket/k", headers), "", Secrets(), At(t)),
              Code::kSignatureDoesNotMatch);
}

TEST(SigV2, AmzHeadersTrimmedSortedJoined) {
  std::vector<http::Header> headers = {{"X-Amz-Meta-B", "  two "},
                                       {"x-amz-meta-a", "one"},
                                       {"x-amz-meta-b", "three"},
                                       {"content-type", "x"},
                                       {"x-amzfoo", "no"}};
  EXPECT_EQ(CanonicalAmzHeadersV2(headers), "x-amz-meta-a:one\nx-amz-meta-b:two,three\n");
  EXPECT_EQ(CanonicalAmzHeadersV2({}), "");
}

TEST(SigV2, Detection) {
  EXPECT_FALSE(IsSigV2Request(MakeRequest("GET", "/b/k", {{"host", "h"}})));
  EXPECT_FALSE(IsSigV2Request(
      MakeRequest("GET", "/b/k", {{"authorization", "AWS4-HMAC-SHA256 Credential=x"}})));
  EXPECT_TRUE(IsSigV2Request(MakeRequest("GET", "/b/k?Signature=x", {})));
  EXPECT_TRUE(IsSigV2Request(MakeRequest("GET", "/b/k?AWSAccessKeyId=x", {})));
  // Mixed with SigV4 presign parameters: SigV4 decides (and rejects the mix).
  EXPECT_FALSE(IsSigV2Request(
      MakeRequest("GET", "/b/k?AWSAccessKeyId=x&Signature=y&X-Amz-Algorithm=z", {})));
  // Authenticate() (SigV4) keeps refusing SigV2 rather than treating it as anonymous.
  EXPECT_CODE(Authenticate(ObjectGet(), Secrets(), At(TimeOf("Tue, 27 Mar 2007 19:36:42 +0000"))),
              Code::kInvalidRequest);
}

TEST(SigV2, WrongSignatureUnknownKeySkewAndDate) {
  const int64_t t = TimeOf("Tue, 27 Mar 2007 19:36:42 +0000");
  EXPECT_CODE(
      AuthenticateV2(ObjectGet("bWq2s1WEIj+Ydj0vQ697zp+IXMV="), "johnsmith", Secrets(), At(t)),
      Code::kSignatureDoesNotMatch);
  // Right signature, wrong bucket (path-style resource differs).
  EXPECT_CODE(AuthenticateV2(ObjectGet(), "", Secrets(), At(t)), Code::kSignatureDoesNotMatch);
  EXPECT_CODE(AuthenticateV2(ObjectGet(), "johnsmith", Secrets(), At(t + 901)),
              Code::kRequestTimeTooSkewed);
  EXPECT_CODE(AuthenticateV2(ObjectGet(), "johnsmith", Secrets(), At(t - 901)),
              Code::kRequestTimeTooSkewed);
  ASSERT_OK(AuthenticateV2(ObjectGet(), "johnsmith", Secrets(), At(t + 900)));
  auto unknown = ObjectGet();
  unknown.headers.back().value = "AWS AKIDUNKNOWN:bWq2s1WEIj+Ydj0vQ697zp+IXMU=";
  EXPECT_CODE(AuthenticateV2(unknown, "johnsmith", Secrets(), At(t)), Code::kInvalidAccessKeyId);
  auto no_date = ObjectGet();
  no_date.headers.erase(no_date.headers.begin() + 1);
  EXPECT_CODE(AuthenticateV2(no_date, "johnsmith", Secrets(), At(t)), Code::kAccessDenied);
  auto bad_date = ObjectGet();
  bad_date.headers[1].value = "yesterday";
  EXPECT_CODE(AuthenticateV2(bad_date, "johnsmith", Secrets(), At(t)), Code::kAccessDenied);
  // Any change to a signed part breaks it.
  auto typed = ObjectGet();
  typed.headers.push_back({"Content-Type", "text/plain"});
  EXPECT_CODE(AuthenticateV2(typed, "johnsmith", Secrets(), At(t)), Code::kSignatureDoesNotMatch);
  auto amz = ObjectGet();
  amz.headers.push_back({"x-amz-rdma-token", "t"});
  EXPECT_CODE(AuthenticateV2(amz, "johnsmith", Secrets(), At(t)), Code::kSignatureDoesNotMatch);
  auto sub = ObjectGet();
  sub.query = "versionId=1";
  EXPECT_CODE(AuthenticateV2(sub, "johnsmith", Secrets(), At(t)), Code::kSignatureDoesNotMatch);
  // Non-sub-resource parameters are not signed (as in S3).
  auto other = ObjectGet();
  other.query = "x-id=GetObject";
  ASSERT_OK(AuthenticateV2(other, "johnsmith", Secrets(), At(t)));
}

TEST(SigV2, MalformedCredentialsRejected) {
  const int64_t t = TimeOf("Tue, 27 Mar 2007 19:36:42 +0000");
  for (std::string value : {"AWS ", "AWS AKIAIOSFODNN7EXAMPLE", "AWS :sig", "AWS AK:", "AWS  :"}) {
    SCOPED_TRACE(value);
    auto req = ObjectGet();
    req.headers.back().value = value;
    EXPECT_CODE(AuthenticateV2(req, "johnsmith", Secrets(), At(t)),
                Code::kAuthorizationHeaderMalformed);
  }
  const std::string base = "/photos/puppy.jpg?";
  for (std::string query :
       {"AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=x", "Signature=x&Expires=1175139620",
        "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620",
        "AWSAccessKeyId=&Signature=x&Expires=1175139620",
        "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=x&Expires=-5",
        "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=x&Expires=99999999999999999999",
        "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=x&Expires=soon"}) {
    SCOPED_TRACE(query);
    auto req = MakeRequest("GET", base + query, {{"Host", "johnsmith.s3.amazonaws.com"}});
    EXPECT_TRUE(IsSigV2Request(req));
    EXPECT_CODE(AuthenticateV2(req, "johnsmith", Secrets(), At(1175139000)), Code::kAccessDenied);
  }
  // Header and query credentials together.
  auto both = ObjectGet();
  both.query = "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=x";
  EXPECT_CODE(AuthenticateV2(both, "johnsmith", Secrets(), At(t)), Code::kInvalidArgument);
  // Streaming signed payloads need a SigV4 seed signature.
  auto streaming = ObjectGet();
  streaming.headers.push_back({"x-amz-content-sha256", std::string(kStreamingSignedPayload)});
  EXPECT_CODE(AuthenticateV2(streaming, "johnsmith", Secrets(), At(t)), Code::kInvalidRequest);
  auto bad_hash = ObjectGet();
  bad_hash.headers.push_back({"x-amz-content-sha256", "nothex"});
  EXPECT_CODE(AuthenticateV2(bad_hash, "johnsmith", Secrets(), At(t)), Code::kInvalidArgument);
}

TEST(SigV2, SignedContentSha256IsHonoured) {
  const int64_t t = 1700000000;
  std::vector<http::Header> headers = {{"host", "h"},
                                       {"date", FormatHttpDate(t)},
                                       {"x-amz-content-sha256", std::string(kEmptySha256Hex)}};
  std::string sts = StringToSignV2("PUT", headers, FormatHttpDate(t), "/b/k");
  headers.push_back({"authorization", Auth(SignatureV2(kSecret, sts))});
  auto r = AuthenticateV2(MakeRequest("PUT", "/b/k", headers), "", Secrets(), At(t));
  ASSERT_OK(r);
  EXPECT_EQ(r->payload, PayloadMode::kHashed);
  EXPECT_EQ(r->payload_sha256_hex, kEmptySha256Hex);
}

}  // namespace
}  // namespace vlake::s3
