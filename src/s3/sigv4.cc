#include "s3/sigv4.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "common/encoding.h"
#include "common/hash.h"

namespace vlake::s3 {
namespace {

constexpr std::string_view kTerminator = "aws4_request";

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool IsHex(std::string_view s, size_t len) {
  return s.size() == len && std::all_of(s.begin(), s.end(), IsHexDigit);
}

// Python's str.split() whitespace, which botocore uses to canonicalise header values.
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

// Trims and collapses every whitespace run to one space.
void AppendTrimAll(std::string_view value, std::string* out) {
  bool pending_space = false;
  bool any = false;
  for (char c : value) {
    if (IsSpace(c)) {
      pending_space = any;
      continue;
    }
    if (pending_space) *out += ' ';
    pending_space = false;
    any = true;
    *out += c;
  }
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const std::string* FindHeader(const http::HttpRequest& req, std::string_view lower_name) {
  for (const http::Header& h : req.headers) {
    if (EqualsIgnoreCase(h.name, lower_name)) return &h.value;
  }
  return nullptr;
}

// Decodes a query key or value ('+' literal); broken escapes are kept as raw bytes so that the
// canonical form still exists (and then only matches a client that signed those bytes).
std::string DecodeOrRaw(std::string_view s) {
  std::optional<std::string> decoded = UriDecode(s, PlusDecoding::kPlusLiteral);
  return decoded ? std::move(*decoded) : std::string(s);
}

Status Malformed(std::string message) {
  return Error(Code::kAuthorizationHeaderMalformed, std::move(message));
}

Status MechanismNotSupported() {
  return Error(Code::kInvalidRequest,
               "The authorization mechanism you have provided is not supported. Please use "
               "AWS4-HMAC-SHA256.");
}

// Parses "AK/20130524/us-east-1/s3/aws4_request" (the access key may itself contain '/').
Status ParseCredential(std::string_view credential, std::string* access_key, SigningScope* scope) {
  std::array<std::string_view, 4> tail;
  std::string_view rest = credential;
  for (int i = 3; i >= 0; --i) {
    size_t slash = rest.rfind('/');
    if (slash == std::string_view::npos) {
      return Malformed(
          "the Credential is malformed; expected \"<YOUR-AKID>/YYYYMMDD/REGION/"
          "SERVICE/aws4_request\"");
    }
    tail[i] = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  if (rest.empty()) return Malformed("the Credential has an empty access key id");
  const std::string_view date = tail[0], region = tail[1], service = tail[2];
  if (date.size() != 8 ||
      !std::all_of(date.begin(), date.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Malformed("the Credential date '" + std::string(date) + "' is not YYYYMMDD");
  }
  if (region.empty()) return Malformed("the Credential has an empty region");
  if (service != "s3") {
    return Malformed("incorrect service '" + std::string(service) +
                     "' in the Credential; this endpoint belongs to 's3'");
  }
  if (tail[3] != kTerminator) {
    return Malformed("incorrect terminal '" + std::string(tail[3]) +
                     "' in the Credential; expected 'aws4_request'");
  }
  *access_key = std::string(rest);
  scope->date = std::string(date);
  scope->region = std::string(region);
  scope->service = std::string(service);
  return Status::Ok();
}

Status ParseSignedHeaders(std::string_view list, std::vector<std::string>* out) {
  out->clear();
  if (list.empty()) return Malformed("SignedHeaders is empty");
  while (true) {
    size_t semi = list.find(';');
    std::string_view name = list.substr(0, semi);
    if (name.empty() || std::any_of(name.begin(), name.end(), [](char c) {
          return IsSpace(c) || c == ':' || c == ',' || static_cast<unsigned char>(c) < 0x20;
        })) {
      return Malformed("SignedHeaders holds an invalid header name");
    }
    out->push_back(AsciiLower(name));
    if (semi == std::string_view::npos) break;
    list = list.substr(semi + 1);
  }
  return Status::Ok();
}

// HTTP dates, plus the RFC 2822 numeric-zone form "Fri, 24 May 2013 00:00:00 -0000" that
// botocore (email.utils.formatdate) puts in the Date header it signs.
std::optional<int64_t> ParseDateHeader(std::string_view value) {
  value = TrimSpaces(value);
  if (std::optional<int64_t> t = ParseHttpDate(value)) return t;
  if (value.size() != 31 || (value[26] != '+' && value[26] != '-')) return std::nullopt;
  std::string_view zone = value.substr(27);
  if (!std::all_of(zone.begin(), zone.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::optional<int64_t> t = ParseHttpDate(std::string(value.substr(0, 26)) + "GMT");
  if (!t) return std::nullopt;
  int64_t offset_s = ((zone[0] - '0') * 10 + (zone[1] - '0')) * 3600 +
                     ((zone[2] - '0') * 10 + (zone[3] - '0')) * 60;
  return value[26] == '+' ? *t - offset_s : *t + offset_s;
}

bool Contains(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Interprets x-amz-content-sha256.
Status ParsePayloadHash(std::string_view value, AuthResult* out) {
  if (value == kUnsignedPayload) {
    out->payload = PayloadMode::kUnsigned;
  } else if (value == kStreamingSignedPayload) {
    out->payload = PayloadMode::kStreamingSigned;
  } else if (value == kStreamingSignedPayloadTrailer) {
    out->payload = PayloadMode::kStreamingSignedTrailer;
  } else if (value == kStreamingUnsignedPayloadTrailer) {
    out->payload = PayloadMode::kStreamingUnsignedTrailer;
  } else if (IsHex(value, 64)) {
    out->payload = PayloadMode::kHashed;
    out->payload_sha256_hex = AsciiLower(value);
  } else {
    return Error(Code::kInvalidArgument,
                 "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                 "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
                 "STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value");
  }
  return Status::Ok();
}

// The parts of a request the signature is checked against, whichever way it was signed.
struct SignedParts {
  std::string access_key;
  SigningScope scope;
  std::vector<std::string> signed_headers;
  std::string signature;  // lowercase hex
  std::string amz_date;
  int64_t request_unix_s = 0;
  std::string_view payload_hash;  // the literal last line of the canonical request
};

// Parses "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
Status ParseAuthorizationHeader(std::string_view value, SignedParts* parts) {
  value = TrimSpaces(value);
  if (value.starts_with("AWS ") || value.starts_with("AWS4-ECDSA-P256-SHA256")) {
    return MechanismNotSupported();
  }
  if (!value.starts_with(kSigV4Algorithm) || value.size() == kSigV4Algorithm.size() ||
      (value[kSigV4Algorithm.size()] != ' ' && value[kSigV4Algorithm.size()] != '\t')) {
    return Malformed("the authorization header must start with \"AWS4-HMAC-SHA256 \"");
  }
  std::string_view rest = value.substr(kSigV4Algorithm.size());
  std::optional<std::string_view> credential, signed_headers, signature;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view part = TrimSpaces(rest.substr(0, comma));
    if (part.empty()) return Malformed("the authorization header has an empty component");
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      return Malformed("the authorization header component '" + std::string(part) +
                       "' is not of the form key=value");
    }
    std::string_view key = TrimSpaces(part.substr(0, eq));
    std::string_view val = TrimSpaces(part.substr(eq + 1));
    std::optional<std::string_view>* slot = nullptr;
    if (key == "Credential") {
      slot = &credential;
    } else if (key == "SignedHeaders") {
      slot = &signed_headers;
    } else if (key == "Signature") {
      slot = &signature;
    } else {
      return Malformed("unknown authorization header component '" + std::string(key) + "'");
    }
    if (slot->has_value()) {
      return Malformed("duplicate authorization header component '" + std::string(key) + "'");
    }
    *slot = val;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!credential) return Malformed("the authorization header is missing Credential");
  if (!signed_headers) return Malformed("the authorization header is missing SignedHeaders");
  if (!signature) return Malformed("the authorization header is missing Signature");
  VLAKE_RETURN_IF_ERROR(ParseCredential(*credential, &parts->access_key, &parts->scope));
  VLAKE_RETURN_IF_ERROR(ParseSignedHeaders(*signed_headers, &parts->signed_headers));
  if (!IsHex(*signature, 64)) return Malformed("the Signature must be 64 hex digits");
  parts->signature = AsciiLower(*signature);
  return Status::Ok();
}

// The X-Amz-* presign parameters, decoded.
struct PresignQuery {
  std::optional<std::string> algorithm, credential, date, expires, signed_headers, signature;
  bool v2 = false;  // AWSAccessKeyId + Signature: a SigV2 presigned URL
  bool Any() const { return algorithm || credential || signature; }
};

Result<PresignQuery> ParsePresignQuery(std::string_view raw_query) {
  PresignQuery q;
  bool v2_key = false, v2_signature = false;
  for (auto [raw_key, has_value, raw_value] : SplitRawQuery(raw_query)) {
    if (raw_key == "AWSAccessKeyId") v2_key = true;
    if (raw_key == "Signature") v2_signature = true;
    if (!raw_key.starts_with("X-Amz-")) continue;
    std::optional<std::string>* slot = nullptr;
    if (raw_key == "X-Amz-Algorithm") {
      slot = &q.algorithm;
    } else if (raw_key == "X-Amz-Credential") {
      slot = &q.credential;
    } else if (raw_key == "X-Amz-Date") {
      slot = &q.date;
    } else if (raw_key == "X-Amz-Expires") {
      slot = &q.expires;
    } else if (raw_key == "X-Amz-SignedHeaders") {
      slot = &q.signed_headers;
    } else if (raw_key == "X-Amz-Signature") {
      slot = &q.signature;
    } else {
      continue;
    }
    if (slot->has_value()) {
      return Malformed("duplicate query parameter " + std::string(raw_key));
    }
    *slot = DecodeOrRaw(raw_value);
  }
  q.v2 = v2_key && v2_signature;
  return q;
}

Status ParsePresignParts(const PresignQuery& q, const AuthOptions& opts, SignedParts* parts) {
  if (*q.algorithm != kSigV4Algorithm) {
    if (*q.algorithm == "AWS4-ECDSA-P256-SHA256") return MechanismNotSupported();
    return Malformed("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
  }
  if (!q.credential || !q.date || !q.expires || !q.signed_headers || !q.signature) {
    return Malformed(
        "query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
        "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters");
  }
  VLAKE_RETURN_IF_ERROR(ParseCredential(*q.credential, &parts->access_key, &parts->scope));
  VLAKE_RETURN_IF_ERROR(ParseSignedHeaders(*q.signed_headers, &parts->signed_headers));
  if (!IsHex(*q.signature, 64)) return Malformed("X-Amz-Signature must be 64 hex digits");
  parts->signature = AsciiLower(*q.signature);
  std::optional<int64_t> t = ParseAmzDate(*q.date);
  if (!t)
    return Malformed("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
  std::optional<uint64_t> expires = ParseUint64(*q.expires);
  if (!expires || *expires < 1 || *expires > static_cast<uint64_t>(kMaxPresignExpiresS)) {
    return Malformed("X-Amz-Expires must be between 1 and 604800 seconds (one week)");
  }
  parts->amz_date = *q.date;
  parts->request_unix_s = *t;
  if (*t - opts.now_unix_s > opts.max_skew_s) {
    return Error(Code::kAccessDenied, "Request is not valid yet");
  }
  if (opts.now_unix_s > *t + static_cast<int64_t>(*expires)) {
    return Error(Code::kAccessDenied, "Request has expired");
  }
  return Status::Ok();
}

// Fixed-size sharded map from secret+scope to the derived key. A full shard is simply
// cleared: the working set is a handful of (key, day, region) triples.
class SigningKeyCache {
 public:
  std::string Get(std::string_view secret, const SigningScope& scope) {
    std::string cache_key;
    cache_key.reserve(secret.size() + scope.date.size() + scope.region.size() +
                      scope.service.size() + 3);
    cache_key.append(secret).append(1, '\0').append(scope.date).append(1, '\0');
    cache_key.append(scope.region).append(1, '\0').append(scope.service);
    Shard& shard = shards_[std::hash<std::string>{}(cache_key) % kShards];
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      auto it = shard.keys.find(cache_key);
      if (it != shard.keys.end()) return it->second;
    }
    std::string key = DeriveSigningKey(secret, scope);
    std::lock_guard<std::mutex> lock(shard.mu);
    if (shard.keys.size() >= kMaxPerShard) shard.keys.clear();
    shard.keys.emplace(std::move(cache_key), key);
    return key;
  }

 private:
  static constexpr size_t kShards = 16;
  static constexpr size_t kMaxPerShard = 64;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::string> keys;
  };
  std::array<Shard, kShards> shards_;
};

SigningKeyCache& KeyCache() {
  static SigningKeyCache* cache = new SigningKeyCache();  // never destroyed: no exit-order race
  return *cache;
}

// Headers a signer leaves out: they are rewritten by proxies or are not end-to-end.
bool IsUnsignedHeader(std::string_view lower_name) {
  static constexpr std::array<std::string_view, 10> kSkip = {
      "authorization",     "user-agent", "expect",
      "connection",        "keep-alive", "te",
      "transfer-encoding", "upgrade",    "proxy-authorization",
      "x-amzn-trace-id"};
  return std::find(kSkip.begin(), kSkip.end(), lower_name) != kSkip.end();
}

}  // namespace

std::string SigningScope::ToString() const {
  std::string s;
  s.reserve(date.size() + region.size() + service.size() + kTerminator.size() + 3);
  s.append(date).append(1, '/').append(region).append(1, '/').append(service).append(1, '/');
  s.append(kTerminator);
  return s;
}

std::vector<RawQueryItem> SplitRawQuery(std::string_view raw_query) {
  std::vector<RawQueryItem> items;
  while (!raw_query.empty()) {
    size_t amp = raw_query.find('&');
    std::string_view part = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      items.push_back({part, false, {}});
    } else {
      items.push_back({part.substr(0, eq), true, part.substr(eq + 1)});
    }
  }
  return items;
}

std::string CanonicalUri(std::string_view raw_path) {
  std::optional<std::string> decoded = UriDecode(raw_path, PlusDecoding::kPlusLiteral);
  if (!decoded) return std::string(raw_path);
  return UriEncode(*decoded, SlashEncoding::kKeepSlash);
}

std::string CanonicalQuery(std::string_view raw_query, SignatureParam signature_param) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (auto [raw_key, has_value, raw_value] : SplitRawQuery(raw_query)) {
    if (signature_param == SignatureParam::kExclude && raw_key == "X-Amz-Signature") continue;
    pairs.emplace_back(UriEncode(DecodeOrRaw(raw_key), SlashEncoding::kEncodeSlash),
                       UriEncode(DecodeOrRaw(raw_value), SlashEncoding::kEncodeSlash));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [key, value] : pairs) {
    if (!out.empty()) out += '&';
    out.append(key).append(1, '=').append(value);
  }
  return out;
}

std::string CanonicalHeaders(std::span<const http::Header> headers,
                             std::span<const std::string> signed_headers) {
  std::string out;
  for (const std::string& name : signed_headers) {
    out.append(name).append(1, ':');
    bool first = true;
    for (const http::Header& h : headers) {
      if (!EqualsIgnoreCase(h.name, name)) continue;
      if (!first) out += ',';
      first = false;
      AppendTrimAll(h.value, &out);
    }
    out += '\n';
  }
  return out;
}

std::string CanonicalRequest(std::string_view method, std::string_view canonical_uri,
                             std::string_view canonical_query,
                             std::span<const http::Header> headers,
                             std::span<const std::string> signed_headers,
                             std::string_view payload_hash) {
  std::string out;
  out.reserve(256);
  out.append(method).append(1, '\n');
  out.append(canonical_uri).append(1, '\n');
  out.append(canonical_query).append(1, '\n');
  out.append(CanonicalHeaders(headers, signed_headers)).append(1, '\n');
  for (size_t i = 0; i < signed_headers.size(); ++i) {
    if (i > 0) out += ';';
    out.append(signed_headers[i]);
  }
  out.append(1, '\n').append(payload_hash);
  return out;
}

std::string DeriveSigningKey(std::string_view secret, const SigningScope& scope) {
  std::string k = "AWS4";
  k.append(secret);
  k = HmacSha256(k, scope.date);
  k = HmacSha256(k, scope.region);
  k = HmacSha256(k, scope.service);
  return HmacSha256(k, kTerminator);
}

std::string CachedSigningKey(std::string_view secret, const SigningScope& scope) {
  return KeyCache().Get(secret, scope);
}

std::string StringToSign(std::string_view amz_date, const SigningScope& scope,
                         std::string_view canonical_request) {
  std::string out;
  out.reserve(160);
  out.append(kSigV4Algorithm).append(1, '\n');
  out.append(amz_date).append(1, '\n');
  out.append(scope.ToString()).append(1, '\n');
  out.append(HexEncode(Sha256Digest(canonical_request)));
  return out;
}

std::string SignatureHex(std::string_view signing_key, std::string_view string_to_sign) {
  return HexEncode(HmacSha256(signing_key, string_to_sign));
}

std::string ChunkSignature(std::string_view signing_key, std::string_view amz_date,
                           const SigningScope& scope, std::string_view previous_signature_hex,
                           std::string_view chunk_sha256_hex) {
  std::string sts;
  sts.reserve(320);
  sts.append("AWS4-HMAC-SHA256-PAYLOAD\n").append(amz_date).append(1, '\n');
  sts.append(scope.ToString()).append(1, '\n');
  sts.append(previous_signature_hex).append(1, '\n');
  sts.append(kEmptySha256Hex).append(1, '\n');
  sts.append(chunk_sha256_hex);
  return SignatureHex(signing_key, sts);
}

std::string TrailerSignature(std::string_view signing_key, std::string_view amz_date,
                             const SigningScope& scope, std::string_view previous_signature_hex,
                             std::string_view trailer_sha256_hex) {
  std::string sts;
  sts.reserve(256);
  sts.append("AWS4-HMAC-SHA256-TRAILER\n").append(amz_date).append(1, '\n');
  sts.append(scope.ToString()).append(1, '\n');
  sts.append(previous_signature_hex).append(1, '\n');
  sts.append(trailer_sha256_hex);
  return SignatureHex(signing_key, sts);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Status ParseContentSha256(std::string_view value, AuthResult* out) {
  return ParsePayloadHash(value, out);
}

std::optional<int64_t> ParseDateHeaderValue(std::string_view value) {
  return ParseDateHeader(value);
}

bool AuthResult::IsSignedHeader(std::string_view lower_name) const {
  return Contains(signed_headers, lower_name);
}

Result<AuthResult> Authenticate(const http::HttpRequest& req, const SecretLookup& secret_for,
                                const AuthOptions& opts) {
  AuthResult result;
  const std::string* authorization = FindHeader(req, "authorization");
  const std::string* content_sha256 = FindHeader(req, "x-amz-content-sha256");
  VLAKE_ASSIGN_OR_RETURN(PresignQuery presign, ParsePresignQuery(req.query));

  if (authorization != nullptr && presign.Any()) {
    return Error(Code::kInvalidArgument,
                 "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or "
                 "the Authorization header should be specified");
  }
  if (authorization == nullptr && !presign.Any()) {
    // A SigV2 presigned URL must not pass for an anonymous request.
    if (presign.v2) return MechanismNotSupported();
    result.anonymous = true;
    if (content_sha256 != nullptr)
      VLAKE_RETURN_IF_ERROR(ParsePayloadHash(*content_sha256, &result));
    return result;
  }

  SignedParts parts;
  if (authorization != nullptr) {
    VLAKE_RETURN_IF_ERROR(ParseAuthorizationHeader(*authorization, &parts));
    if (content_sha256 == nullptr) {
      return Error(Code::kInvalidRequest,
                   "Missing required header for this request: x-amz-content-sha256");
    }
    parts.payload_hash = *content_sha256;
    if (const std::string* amz_date = FindHeader(req, "x-amz-date")) {
      std::optional<int64_t> t = ParseAmzDate(*amz_date);
      if (!t) {
        return Error(Code::kAccessDenied,
                     "AWS authentication requires a valid Date or x-amz-date header");
      }
      parts.amz_date = *amz_date;
      parts.request_unix_s = *t;
    } else if (const std::string* date = FindHeader(req, "date")) {
      std::optional<int64_t> t = ParseDateHeader(*date);
      if (!t) {
        return Error(Code::kAccessDenied,
                     "AWS authentication requires a valid Date or x-amz-date header");
      }
      parts.amz_date = FormatAmzDate(*t);
      parts.request_unix_s = *t;
    } else {
      return Error(Code::kAccessDenied,
                   "AWS authentication requires a valid Date or x-amz-date header");
    }
    if (std::abs(opts.now_unix_s - parts.request_unix_s) > opts.max_skew_s) {
      return Error(Code::kRequestTimeTooSkewed,
                   "The difference between the request time and the current time is too large.");
    }
  } else {
    if (!presign.algorithm) {
      return Malformed("query-string authentication requires the X-Amz-Algorithm parameter");
    }
    result.presigned = true;
    VLAKE_RETURN_IF_ERROR(ParsePresignParts(presign, opts, &parts));
    parts.payload_hash =
        content_sha256 != nullptr ? std::string_view(*content_sha256) : kUnsignedPayload;
  }
  VLAKE_RETURN_IF_ERROR(ParsePayloadHash(parts.payload_hash, &result));
  if (parts.scope.date != std::string_view(parts.amz_date).substr(0, 8)) {
    return Malformed("Invalid credential date \"" + parts.scope.date +
                     "\". This date is not the same as X-Amz-Date: \"" +
                     parts.amz_date.substr(0, 8) + "\".");
  }
  if (!Contains(parts.signed_headers, "host")) {
    return Malformed("'host' must be a signed header");
  }

  std::optional<std::string> secret = secret_for(parts.access_key);
  if (!secret) {
    return Error(Code::kInvalidAccessKeyId,
                 "The AWS Access Key Id you provided does not exist in our records.");
  }
  std::string signing_key = CachedSigningKey(*secret, parts.scope);
  const std::string canonical_query = CanonicalQuery(
      req.query, result.presigned ? SignatureParam::kExclude : SignatureParam::kKeep);
  auto signature_for = [&](std::string_view canonical_uri) {
    std::string canonical_request =
        CanonicalRequest(req.method, canonical_uri, canonical_query, req.headers,
                         parts.signed_headers, parts.payload_hash);
    return SignatureHex(signing_key, StringToSign(parts.amz_date, parts.scope, canonical_request));
  };
  std::string canonical_uri = CanonicalUri(req.path);
  bool match = ConstantTimeEquals(signature_for(canonical_uri), parts.signature);
  // A client that encodes some byte differently from AWS (e.g. '%2F' inside a key, or '!'
  // left bare) may have signed its path verbatim; the signature still covers exactly the bytes
  // the server will interpret, so accepting it is safe.
  if (!match && canonical_uri != req.path) {
    match = ConstantTimeEquals(signature_for(req.path), parts.signature);
  }
  if (!match) {
    return Error(Code::kSignatureDoesNotMatch,
                 "The request signature we calculated does not match the signature you provided. "
                 "Check your key and signing method.");
  }

  result.access_key = std::move(parts.access_key);
  result.signed_headers = std::move(parts.signed_headers);
  result.request_unix_s = parts.request_unix_s;
  result.signing_key = std::move(signing_key);
  result.seed_signature = std::move(parts.signature);
  result.amz_date = std::move(parts.amz_date);
  result.scope = std::move(parts.scope);
  return result;
}

std::string SignRequest(const SignParams& params, const Credentials& credentials,
                        std::vector<http::Header>* headers) {
  const std::string amz_date = FormatAmzDate(params.now_unix_s);
  std::erase_if(*headers, [](const http::Header& h) {
    return EqualsIgnoreCase(h.name, "x-amz-date") ||
           EqualsIgnoreCase(h.name, "x-amz-content-sha256") ||
           EqualsIgnoreCase(h.name, "authorization");
  });
  for (http::Header& h : *headers) h.name = AsciiLower(h.name);
  headers->push_back({"x-amz-date", amz_date});
  headers->push_back({"x-amz-content-sha256", std::string(params.payload_hash)});

  std::vector<std::string> signed_headers;
  for (const http::Header& h : *headers) {
    if (!IsUnsignedHeader(h.name)) signed_headers.push_back(h.name);
  }
  std::sort(signed_headers.begin(), signed_headers.end());
  signed_headers.erase(std::unique(signed_headers.begin(), signed_headers.end()),
                       signed_headers.end());

  SigningScope scope{amz_date.substr(0, 8), std::string(params.region),
                     std::string(params.service)};
  std::string canonical_request =
      CanonicalRequest(params.method, CanonicalUri(params.raw_path),
                       CanonicalQuery(params.raw_query, SignatureParam::kKeep), *headers,
                       signed_headers, params.payload_hash);
  std::string signature = SignatureHex(CachedSigningKey(credentials.secret_key, scope),
                                       StringToSign(amz_date, scope, canonical_request));

  std::string authorization(kSigV4Algorithm);
  authorization.append(" Credential=").append(credentials.access_key).append(1, '/');
  authorization.append(scope.ToString()).append(", SignedHeaders=");
  for (size_t i = 0; i < signed_headers.size(); ++i) {
    if (i > 0) authorization += ';';
    authorization.append(signed_headers[i]);
  }
  authorization.append(", Signature=").append(signature);
  headers->push_back({"authorization", std::move(authorization)});
  return signature;
}

std::string PresignUrlQuery(const PresignParams& params, const Credentials& credentials) {
  const std::string amz_date = FormatAmzDate(params.now_unix_s);
  SigningScope scope{amz_date.substr(0, 8), std::string(params.region),
                     std::string(params.service)};
  std::string query(params.raw_query);
  if (!query.empty()) query += '&';
  query.append("X-Amz-Algorithm=").append(kSigV4Algorithm);
  query.append("&X-Amz-Credential=")
      .append(
          UriEncode(credentials.access_key + "/" + scope.ToString(), SlashEncoding::kEncodeSlash));
  query.append("&X-Amz-Date=").append(amz_date);
  query.append("&X-Amz-Expires=").append(std::to_string(params.expires_s));
  query.append("&X-Amz-SignedHeaders=host");

  const std::vector<http::Header> headers = {{"host", std::string(params.host)}};
  const std::vector<std::string> signed_headers = {"host"};
  std::string canonical_request = CanonicalRequest(params.method, CanonicalUri(params.raw_path),
                                                   CanonicalQuery(query, SignatureParam::kKeep),
                                                   headers, signed_headers, kUnsignedPayload);
  query.append("&X-Amz-Signature=")
      .append(SignatureHex(CachedSigningKey(credentials.secret_key, scope),
                           StringToSign(amz_date, scope, canonical_request)));
  return query;
}

}  // namespace vlake::s3
