#include "s3/sigv2.h"

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "common/encoding.h"
#include "common/hash.h"

namespace vlake::s3 {
namespace {

// The query parameters S3 counts as part of the resource in SigV2. AWS's documented list plus
// the later sub-resources botocore's HmacV1Auth signs; any other parameter (prefix, marker,
// max-keys, AWSAccessKeyId, ...) is not signed.
constexpr std::string_view kSubresources[] = {
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
    "encryption",
    "ownershipControls",
    "publicAccessBlock",
    "intelligent-tiering",
};

bool IsSubresource(std::string_view name) {
  return std::find(std::begin(kSubresources), std::end(kSubresources), name) !=
         std::end(kSubresources);
}

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const std::string* FindHeader(std::span<const http::Header> headers, std::string_view lower) {
  for (const http::Header& h : headers) {
    if (EqualsIgnoreCase(h.name, lower)) return &h.value;
  }
  return nullptr;
}


// The decoded value of the first query parameter `name` ('+' literal), if present; a broken
// %-escape yields the raw bytes (which then simply fail to verify or parse).
std::optional<std::string> QueryParam(std::string_view raw_query, std::string_view name) {
  for (const RawQueryItem& item : SplitRawQuery(raw_query)) {
    if (item.name != name) continue;
    std::optional<std::string> decoded = UriDecode(item.value, PlusDecoding::kPlusLiteral);
    return decoded ? std::move(*decoded) : std::string(item.value);
  }
  return std::nullopt;
}

bool HasXAmzPresignParam(std::string_view raw_query) {
  for (const RawQueryItem& item : SplitRawQuery(raw_query)) {
    if (item.name == "X-Amz-Algorithm" || item.name == "X-Amz-Credential" ||
        item.name == "X-Amz-Signature") {
      return true;
    }
  }
  return false;
}

Status NoDate() {
  return Error(Code::kAccessDenied,
               "AWS authentication requires a valid Date or x-amz-date header");
}

// The request time of the header form, and the Date line of its string to sign.
Status RequestTime(const http::HttpRequest& req, int64_t* unix_s, std::string* date_line) {
  if (const std::string* amz_date = FindHeader(req.headers, "x-amz-date")) {
    std::optional<int64_t> t = ParseDateHeaderValue(*amz_date);
    if (!t) t = ParseAmzDate(TrimSpaces(*amz_date));
    if (!t) return NoDate();
    *unix_s = *t;
    date_line->clear();
    return Status::Ok();
  }
  const std::string* date = FindHeader(req.headers, "date");
  if (date == nullptr) return NoDate();
  std::optional<int64_t> t = ParseDateHeaderValue(*date);
  if (!t) return NoDate();
  *unix_s = *t;
  *date_line = std::string(TrimSpaces(*date));
  return Status::Ok();
}

// Lowercase names of the headers the signature covers: every x-amz-* header present, and the
// standard ones that have a line in the string to sign.
std::vector<std::string> CoveredHeaders(std::span<const http::Header> headers) {
  std::vector<std::string> names;
  for (const http::Header& h : headers) {
    std::string lower = AsciiLower(h.name);
    if (lower.starts_with("x-amz-") || lower == "content-md5" || lower == "content-type" ||
        lower == "date") {
      names.push_back(std::move(lower));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

}  // namespace

bool IsSigV2Request(const http::HttpRequest& req) {
  if (const std::string* authorization = FindHeader(req.headers, "authorization")) {
    return TrimSpaces(*authorization).starts_with(kSigV2Prefix);
  }
  if (HasXAmzPresignParam(req.query)) return false;
  for (const RawQueryItem& item : SplitRawQuery(req.query)) {
    if (item.name == "AWSAccessKeyId" || item.name == "Signature") return true;
  }
  return false;
}

std::string CanonicalResourceV2(std::string_view raw_path, std::string_view raw_query,
                                std::string_view virtual_host_bucket, SubresourceValues values) {
  std::string out;
  if (!virtual_host_bucket.empty()) out.append(1, '/').append(virtual_host_bucket);
  out.append(raw_path);
  std::vector<RawQueryItem> items = SplitRawQuery(raw_query);
  std::erase_if(items, [](const RawQueryItem& item) { return !IsSubresource(item.name); });
  if (items.empty()) return out;
  std::stable_sort(items.begin(), items.end(),
                   [](const RawQueryItem& a, const RawQueryItem& b) { return a.name < b.name; });
  char sep = '?';
  for (const RawQueryItem& item : items) {
    out.append(1, sep).append(item.name);
    sep = '&';
    if (!item.has_value) continue;
    out.append(1, '=');
    std::optional<std::string> decoded;
    if (values == SubresourceValues::kDecoded) {
      decoded = UriDecode(item.value, PlusDecoding::kPlusLiteral);
    }
    out.append(decoded ? std::string_view(*decoded) : item.value);
  }
  return out;
}

std::string CanonicalAmzHeadersV2(std::span<const http::Header> headers) {
  std::vector<std::pair<std::string, std::string_view>> amz;
  for (const http::Header& h : headers) {
    std::string lower = AsciiLower(h.name);
    if (lower.starts_with("x-amz-")) amz.emplace_back(std::move(lower), TrimSpaces(h.value));
  }
  std::stable_sort(amz.begin(), amz.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (size_t i = 0; i < amz.size(); ++i) {
    if (i > 0 && amz[i].first == amz[i - 1].first) {
      out.back() = ',';  // replaces the previous line's '\n'
    } else {
      out.append(amz[i].first).append(1, ':');
    }
    out.append(amz[i].second).append(1, '\n');
  }
  return out;
}

std::string StringToSignV2(std::string_view method, std::span<const http::Header> headers,
                           std::string_view date_line, std::string_view canonical_resource) {
  std::string out;
  out.reserve(128 + canonical_resource.size());
  out.append(method).append(1, '\n');
  const std::string* md5 = FindHeader(headers, "content-md5");
  if (md5 != nullptr) out.append(TrimSpaces(*md5));
  out.append(1, '\n');
  const std::string* type = FindHeader(headers, "content-type");
  if (type != nullptr) out.append(TrimSpaces(*type));
  out.append(1, '\n');
  out.append(date_line).append(1, '\n');
  out.append(CanonicalAmzHeadersV2(headers));
  out.append(canonical_resource);
  return out;
}

std::string SignatureV2(std::string_view secret, std::string_view string_to_sign) {
  return Base64Encode(HmacSha1(secret, string_to_sign));
}

Result<AuthResult> AuthenticateV2(const http::HttpRequest& req,
                                  std::string_view virtual_host_bucket,
                                  const SecretLookup& secret_for, const AuthOptions& opts) {
  AuthResult result;
  std::string access_key, signature, date_line;
  const std::string* authorization = FindHeader(req.headers, "authorization");
  const bool query_form = QueryParam(req.query, "AWSAccessKeyId").has_value() ||
                          QueryParam(req.query, "Signature").has_value();
  if (authorization != nullptr && (query_form || HasXAmzPresignParam(req.query))) {
    return Error(Code::kInvalidArgument,
                 "Only one auth mechanism allowed; only the Signature query parameter or the "
                 "Authorization header should be specified");
  }
  if (authorization != nullptr) {
    std::string_view value = TrimSpaces(*authorization);
    if (!value.starts_with(kSigV2Prefix)) {
      return Error(Code::kAuthorizationHeaderMalformed,
                   "the authorization header must start with \"AWS \"");
    }
    value.remove_prefix(kSigV2Prefix.size());
    value = TrimSpaces(value);
    size_t colon = value.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == value.size()) {
      return Error(Code::kAuthorizationHeaderMalformed,
                   "the authorization header must be \"AWS AccessKeyId:Signature\"");
    }
    access_key = std::string(value.substr(0, colon));
    signature = std::string(value.substr(colon + 1));
    VLAKE_RETURN_IF_ERROR(RequestTime(req, &result.request_unix_s, &date_line));
    if (std::abs(opts.now_unix_s - result.request_unix_s) > opts.max_skew_s) {
      return Error(Code::kRequestTimeTooSkewed,
                   "The difference between the request time and the current time is too large.");
    }
  } else {
    std::optional<std::string> key = QueryParam(req.query, "AWSAccessKeyId");
    std::optional<std::string> sig = QueryParam(req.query, "Signature");
    std::optional<std::string> expires = QueryParam(req.query, "Expires");
    if (!key || !sig || !expires || key->empty() || sig->empty()) {
      return Error(Code::kAccessDenied,
                   "Query-string authentication requires the Signature, Expires and "
                   "AWSAccessKeyId parameters");
    }
    std::optional<uint64_t> expires_s = ParseUint64(*expires);
    if (!expires_s || *expires_s > static_cast<uint64_t>(INT64_MAX)) {
      return Error(Code::kAccessDenied,
                   "Invalid date (should be seconds since epoch): " + std::string(*expires));
    }
    if (opts.now_unix_s > static_cast<int64_t>(*expires_s)) {
      return Error(Code::kAccessDenied, "Request has expired");
    }
    result.presigned = true;
    access_key = std::move(*key);
    signature = std::move(*sig);
    date_line = std::move(*expires);
    // The signing time is unknown; the nearest bound the URL states is its expiry.
    result.request_unix_s = std::min(opts.now_unix_s, static_cast<int64_t>(*expires_s));
  }

  if (const std::string* content_sha256 = FindHeader(req.headers, "x-amz-content-sha256")) {
    VLAKE_RETURN_IF_ERROR(ParseContentSha256(*content_sha256, &result));
    if (result.payload == PayloadMode::kStreamingSigned ||
        result.payload == PayloadMode::kStreamingSignedTrailer) {
      return Error(Code::kInvalidRequest,
                   "Signed aws-chunked payloads require AWS4-HMAC-SHA256 request signing");
    }
  }

  std::optional<std::string> secret = secret_for(access_key);
  if (!secret) {
    return Error(Code::kInvalidAccessKeyId,
                 "The AWS Access Key Id you provided does not exist in our records.");
  }
  // The resources a client may have signed for this request; the first is the spec's.
  std::vector<std::string> resources;
  for (SubresourceValues values : {SubresourceValues::kDecoded, SubresourceValues::kRaw}) {
    std::string resource = CanonicalResourceV2(req.path, req.query, virtual_host_bucket, values);
    // A signer that put a sub-resource value in the string to sign as it went on the wire (e.g.
    // a response-content-disposition with %-escapes) signed the same request.
    if (std::find(resources.begin(), resources.end(), resource) == resources.end()) {
      resources.push_back(std::move(resource));
    }
  }
  // botocore signs a path-style bucket request ("/bucket") as "/bucket/", as for virtual-host
  // style; both name the same bucket.
  const bool bare_bucket = virtual_host_bucket.empty() && req.path.size() > 1 &&
                           req.path.find('/', 1) == std::string::npos;
  if (bare_bucket) {
    for (size_t i = 0, n = resources.size(); i < n; ++i) {
      std::string slashed = resources[i];
      slashed.insert(req.path.size(), 1, '/');
      resources.push_back(std::move(slashed));
    }
  }
  auto matches_any_resource = [&](std::span<const http::Header> headers, std::string_view date) {
    for (const std::string& resource : resources) {
      std::string sts = StringToSignV2(req.method, headers, date, resource);
      if (ConstantTimeEquals(SignatureV2(*secret, sts), signature)) return true;
    }
    return false;
  };
  bool match = matches_any_resource(req.headers, date_line);
  // With x-amz-date, the spec's prose signs an empty Date line and x-amz-date among the amz
  // headers (botocore, s3cmd); AWS's own worked example instead puts the x-amz-date value on
  // the Date line and leaves it out of the amz headers. Both sign the same value.
  const std::string* amz_date = FindHeader(req.headers, "x-amz-date");
  if (!match && !result.presigned && amz_date != nullptr) {
    std::vector<http::Header> without;
    for (const http::Header& h : req.headers) {
      if (!EqualsIgnoreCase(h.name, "x-amz-date")) without.push_back(h);
    }
    match = matches_any_resource(without, TrimSpaces(*amz_date));
  }
  if (!match) {
    return Error(Code::kSignatureDoesNotMatch,
                 "The request signature we calculated does not match the signature you provided. "
                 "Check your key and signing method.");
  }
  result.access_key = std::move(access_key);
  result.signed_headers = CoveredHeaders(req.headers);
  result.seed_signature = std::move(signature);
  result.amz_date = FormatAmzDate(result.request_unix_s);
  return result;
}

}  // namespace vlake::s3
