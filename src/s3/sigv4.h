// AWS Signature Version 4 for S3: request verification (server) and signing (client).
//
// Server side, Authenticate() checks one request signed in any of the ways S3 clients sign:
// the Authorization header, a presigned URL (X-Amz-* query parameters), and the seed
// signature of a streaming upload (the chunk and trailer signatures that follow are checked
// by AwsChunkedReader, aws_chunked.h, from the fields of AuthResult). It verifies the
// signature and the request time, and reports how the payload is protected; it does not read
// the body: a kHashed payload must be compared with the body by the caller.
//
// Client side, SignRequest() and PresignUrlQuery() produce what boto3 would send for the same
// request (the tests check both directions against AWS's published examples and botocore).
//
// Canonical forms follow S3, not the generic SigV4 of other AWS services: the path is not
// normalised ("//", "." and ".." stay), it is percent-decoded once and re-encoded in the AWS
// flavour (so a client that encodes a byte the AWS way or leaves it bare signs the same
// thing), and the query is decoded and re-encoded pair by pair, '+' being a literal plus.
//
// Thread-safety: all functions may be called concurrently. Derived signing keys are cached in
// a small process-wide cache guarded by mutexes (4 HMACs per request are a measurable share of
// small-object throughput). Ownership: results are values; the secret lookup callback is only
// called during Authenticate().
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/request.h"

namespace vlake::s3 {

inline constexpr std::string_view kSigV4Algorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
inline constexpr std::string_view kStreamingSignedPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
inline constexpr std::string_view kStreamingSignedPayloadTrailer =
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
inline constexpr std::string_view kStreamingUnsignedPayloadTrailer =
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
// Hex SHA-256 of the empty string: the payload hash of every body-less request.
inline constexpr std::string_view kEmptySha256Hex =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// The longest lifetime S3 grants a presigned URL (7 days).
inline constexpr int64_t kMaxPresignExpiresS = 604800;

// The credential scope "date/region/service/aws4_request".
struct SigningScope {
  std::string date;     // YYYYMMDD, the UTC day of the request time
  std::string region;   // any non-empty region name; vlake accepts every region
  std::string service;  // "s3" for every request vlake accepts
  std::string ToString() const;
};

// ---- Canonicalisation (pure; exposed for tests, the fuzzer and other signers) ----

// UriEncode(UriDecode(raw_path), kKeepSlash); a path with a broken %-escape is returned as is
// (it can only verify against a client that signed those exact bytes).
std::string CanonicalUri(std::string_view raw_path);
// Whether the X-Amz-Signature parameter takes part (it never does in a presigned request).
enum class SignatureParam { kKeep, kExclude };
// Pairs split on '&', decoded and re-encoded with UriEncode(kEncodeSlash), sorted by encoded
// key then value, joined "k=v&k2=v2"; a key without '=' gets an empty value.
std::string CanonicalQuery(std::string_view raw_query, SignatureParam signature_param);
// "name:value\n" for each of `signed_headers` (lowercase) in the given order; values of
// same-name headers joined with ',', each trimmed with inner whitespace runs collapsed to one
// space. Header names in `headers` are compared case-insensitively.
std::string CanonicalHeaders(std::span<const http::Header> headers,
                             std::span<const std::string> signed_headers);
// One item of a raw (still percent-encoded) query string: "name", "name=" or "name=value".
struct RawQueryItem {
  std::string_view name;
  bool has_value = false;  // an '=' followed the name
  std::string_view value;
};
// The items of `raw_query` in order, empty segments ("a&&b") skipped. Views into raw_query.
std::vector<RawQueryItem> SplitRawQuery(std::string_view raw_query);
// The six-line canonical request. `signed_headers` must be lowercase (and, per the spec,
// sorted; the order given is the order used).
std::string CanonicalRequest(std::string_view method, std::string_view canonical_uri,
                             std::string_view canonical_query,
                             std::span<const http::Header> headers,
                             std::span<const std::string> signed_headers,
                             std::string_view payload_hash);

// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request");
// 32 raw bytes. Uncached; see CachedSigningKey.
std::string DeriveSigningKey(std::string_view secret, const SigningScope& scope);
// DeriveSigningKey through the process-wide cache (keyed by secret and scope).
std::string CachedSigningKey(std::string_view secret, const SigningScope& scope);
// "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(canonical_request)>".
std::string StringToSign(std::string_view amz_date, const SigningScope& scope,
                         std::string_view canonical_request);
// Lowercase hex HMAC-SHA256(signing_key, string_to_sign).
std::string SignatureHex(std::string_view signing_key, std::string_view string_to_sign);
// Signature of one aws-chunked chunk ("AWS4-HMAC-SHA256-PAYLOAD" string to sign), chained
// from `previous_signature_hex` (the seed signature for the first chunk).
std::string ChunkSignature(std::string_view signing_key, std::string_view amz_date,
                           const SigningScope& scope, std::string_view previous_signature_hex,
                           std::string_view chunk_sha256_hex);
// Signature of the trailer block ("AWS4-HMAC-SHA256-TRAILER"), chained from the signature of
// the final zero-length chunk; `trailer_sha256_hex` hashes the lines "name:value\n".
std::string TrailerSignature(std::string_view signing_key, std::string_view amz_date,
                             const SigningScope& scope, std::string_view previous_signature_hex,
                             std::string_view trailer_sha256_hex);
// Equal-length comparison whose time does not depend on where the inputs differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// ---- Verification ----

// How the request body is protected, from x-amz-content-sha256.
enum class PayloadMode {
  kUnsigned,                  // "UNSIGNED-PAYLOAD" (and presigned requests without the header)
  kHashed,                    // a hex SHA-256 the caller must compare with the body
  kStreamingSigned,           // "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
  kStreamingSignedTrailer,    // "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
  kStreamingUnsignedTrailer,  // "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
};

struct AuthOptions {
  int64_t now_unix_s = 0;    // the server's clock
  int64_t max_skew_s = 900;  // S3 allows 15 minutes either way
};

struct AuthResult {
  // No Authorization header and no presign parameters: the caller decides whether the
  // operation is open to anyone. Only `payload` (from x-amz-content-sha256 when present) is
  // filled then.
  bool anonymous = false;
  bool presigned = false;
  std::string access_key;
  // Lowercase names the signature covers, as the client listed them (e.g. to require that
  // x-amz-rdma-token was signed).
  std::vector<std::string> signed_headers;
  PayloadMode payload = PayloadMode::kUnsigned;
  std::string payload_sha256_hex;  // kHashed only: lowercase hex the body must hash to
  int64_t request_unix_s = 0;      // the signed request time
  // What the aws-chunked decoder chains from (filled for every signed request).
  std::string signing_key;     // 32 raw bytes
  std::string seed_signature;  // lowercase hex signature of the request itself
  std::string amz_date;        // "20130524T000000Z"
  SigningScope scope;

  bool IsSignedHeader(std::string_view lower_name) const;
};

// Interprets an x-amz-content-sha256 value into out->payload (and payload_sha256_hex);
// kInvalidArgument for a value that is none of the accepted forms. Shared with SigV2.
Status ParseContentSha256(std::string_view value, AuthResult* out);
// The time a Date header names: HTTP dates plus the RFC 2822 numeric-zone form
// "Fri, 24 May 2013 00:00:00 -0000" that botocore signs. Shared with SigV2.
std::optional<int64_t> ParseDateHeaderValue(std::string_view value);

// Returns the secret of an access key, or nullopt when the key is unknown.
using SecretLookup = std::function<std::optional<std::string>(std::string_view access_key)>;

// Verifies the signature of `req`. Errors:
// - kAuthorizationHeaderMalformed: unparsable Authorization header or presign parameters
//   (bad X-Amz-Expires, missing X-Amz-Credential, ...), wrong scope date/service/terminator,
//   host not signed; the message says what is wrong.
// - kInvalidRequest: missing x-amz-content-sha256 (header auth), SigV2 requests (those are
//   verified by AuthenticateV2, sigv2.h; the service picks one with IsSigV2Request).
// - kInvalidArgument: an x-amz-content-sha256 value that is none of the accepted forms, or
//   both header and query authentication.
// - kAccessDenied: no usable date, presigned URL expired or not valid yet, unsupported
//   algorithm.
// - kInvalidAccessKeyId, kRequestTimeTooSkewed, kSignatureDoesNotMatch.
Result<AuthResult> Authenticate(const http::HttpRequest& req, const SecretLookup& secret_for,
                                const AuthOptions& opts);

// ---- Signing (clients, the load generator, tests) ----

struct Credentials {
  std::string access_key;
  std::string secret_key;
};

struct SignParams {
  std::string_view method;        // "GET", "PUT", ...
  std::string_view raw_path;      // as it goes on the wire (already percent-encoded)
  std::string_view raw_query;     // as it goes on the wire, without '?'; may be empty
  std::string_view payload_hash;  // hex sha256, kUnsignedPayload or a STREAMING-* value
  std::string_view region = "us-east-1";
  std::string_view service = "s3";
  int64_t now_unix_s = 0;
};

// Sets x-amz-date and x-amz-content-sha256 (replacing earlier values) and appends
// authorization to `headers`, signing every header present except hop-by-hop and volatile
// ones (user-agent, expect, connection, transfer-encoding, ...). `headers` must already hold
// `host`. Header names are lowercased. Returns the signature (hex): the seed of a streaming
// upload.
std::string SignRequest(const SignParams& params, const Credentials& credentials,
                        std::vector<http::Header>* headers);

struct PresignParams {
  std::string_view method;     // "GET", "PUT", ...
  std::string_view raw_path;   // as it goes on the wire
  std::string_view raw_query;  // other parameters already in the URL (may be empty)
  std::string_view host;       // the Host header value the request will carry
  std::string_view region = "us-east-1";
  std::string_view service = "s3";
  int64_t now_unix_s = 0;
  int64_t expires_s = 3600;  // 1..kMaxPresignExpiresS
};

// The full query string of a presigned URL: `raw_query` (when not empty) followed by the
// X-Amz-Algorithm ... X-Amz-Signature parameters, signing only `host` and UNSIGNED-PAYLOAD.
std::string PresignUrlQuery(const PresignParams& params, const Credentials& credentials);

}  // namespace vlake::s3
