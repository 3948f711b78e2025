// AWS Signature Version 2 for S3 (the legacy "AWS AccessKeyId:Signature" scheme): request
// verification on the server, and the string-to-sign/signature functions a signer needs.
//
// Two forms are accepted, as S3 accepted them:
// - header: `Authorization: AWS <AccessKeyId>:<Signature>`, the request time from Date (or
//   x-amz-date, which then empties the Date line of the string to sign), at most
//   AuthOptions::max_skew_s away from the server clock;
// - query ("presigned"): `AWSAccessKeyId`, `Signature` and `Expires` (absolute Unix seconds,
//   which takes the place of Date in the string to sign); refused once Expires has passed.
//
// StringToSign = Verb \n Content-MD5 \n Content-Type \n Date-or-Expires \n
//                CanonicalizedAmzHeaders CanonicalizedResource
// Signature    = base64(HMAC-SHA1(secret, StringToSign)), compared in constant time.
//
// SigV2 signs no payload hash: the body is treated as unsigned (PayloadMode::kUnsigned), unless
// the client sent x-amz-content-sha256, which is then itself signed (an x-amz-* header) and
// honoured like SigV4's; the chained aws-chunked modes need a SigV4 seed and are refused.
// Content-MD5, when present, is signed and is verified against the body by the payload code.
// Every x-amz-* header is covered by the signature, so AuthResult::signed_headers lists them all
// (the direct data path requires x-amz-rdma-token to be signed).
//
// Thread-safety: pure functions; the secret lookup is only called during AuthenticateV2().
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "http/request.h"
#include "s3/sigv4.h"

namespace vlake::s3 {

inline constexpr std::string_view kSigV2Prefix = "AWS ";

// Whether `req` carries SigV2 credentials: an Authorization header starting with "AWS ", or
// the AWSAccessKeyId or Signature query parameter without any X-Amz-* presign parameter.
// Requests that are not SigV2 (SigV4, anonymous, mixed) go to Authenticate() (sigv4.h), which
// rejects the mixed forms.
bool IsSigV2Request(const http::HttpRequest& req);

// CanonicalizedResource: "/" + `virtual_host_bucket` when the bucket came from the Host header
// (empty for path style), then the path exactly as on the wire, then "?" and the S3
// sub-resources (acl, uploadId, partNumber, versionId, response-* overrides, ...) present in
// the query, sorted by name, each "name" or "name=value" as sent (values percent-decoded when
// `values` is kDecoded, as botocore signs them; kRaw keeps the wire bytes, as some older
// signers do).
enum class SubresourceValues { kDecoded, kRaw };
std::string CanonicalResourceV2(std::string_view raw_path, std::string_view raw_query,
                                std::string_view virtual_host_bucket, SubresourceValues values);

// CanonicalizedAmzHeaders: each x-amz-* header lowercased, sorted by name, same-name values
// trimmed and joined with ',', one "name:value\n" line per name.
std::string CanonicalAmzHeadersV2(std::span<const http::Header> headers);

// The whole string to sign. `date_line` is the Date header value, "" when x-amz-date is present,
// or the Expires value of a presigned request.
std::string StringToSignV2(std::string_view method, std::span<const http::Header> headers,
                           std::string_view date_line, std::string_view canonical_resource);

// base64(HMAC-SHA1(secret, string_to_sign)): 28 characters.
std::string SignatureV2(std::string_view secret, std::string_view string_to_sign);

// Verifies a request for which IsSigV2Request() holds. `virtual_host_bucket` is the bucket the
// service took from the Host header (empty for path-style requests). Errors:
// - kAccessDenied: no usable Date/x-amz-date (header form); a missing or unparsable
//   AWSAccessKeyId/Signature/Expires (query form); "Request has expired".
// - kInvalidArgument: both header and query credentials.
// - kAuthorizationHeaderMalformed: "AWS" header not of the form "AWS AccessKeyId:Signature".
// - kInvalidRequest: an aws-chunked signed payload mode (needs SigV4).
// - kInvalidAccessKeyId, kRequestTimeTooSkewed (header form), kSignatureDoesNotMatch.
Result<AuthResult> AuthenticateV2(const http::HttpRequest& req,
                                  std::string_view virtual_host_bucket,
                                  const SecretLookup& secret_for, const AuthOptions& opts);

}  // namespace vlake::s3
