// Fuzzes SigV4 and SigV2 verification and canonicalisation (src/s3/sigv4.h, src/s3/sigv2.h).
//
// The input is split on '\n' into: path, query, Authorization value, x-amz-date,
// x-amz-content-sha256, Date, and then "name:value" header lines. It is fed to Authenticate()
// and AuthenticateV2() (path and virtual-host style) as is (any status is fine, crashes and
// sanitizer reports are not), and, as round-trip properties, the same path/query/headers are
// signed with SignRequest() (SigV4) and with SignatureV2() over StringToSignV2() (SigV2, header
// and query form) and must then verify.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/encoding.h"
#include "s3/sigv2.h"
#include "s3/sigv4.h"

namespace {

std::vector<std::string_view> SplitLines(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    size_t nl = s.find('\n');
    out.push_back(s.substr(0, nl));
    if (nl == std::string_view::npos) break;
    s = s.substr(nl + 1);
  }
  return out;
}

std::optional<std::string> Secret(std::string_view access_key) {
  if (access_key == "unknown") return std::nullopt;
  return std::string("fuzz-secret");
}

bool IsTokenName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vlake;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines = SplitLines(input);
  lines.resize(std::max<size_t>(lines.size(), 6));
  const int64_t now = 1369353600;

  http::HttpRequest req;
  req.method = "PUT";
  req.path = std::string(lines[0]);
  req.query = std::string(lines[1]);
  req.headers.push_back({"host", "fuzz.example"});
  if (!lines[2].empty()) req.headers.push_back({"authorization", std::string(lines[2])});
  if (!lines[3].empty()) req.headers.push_back({"x-amz-date", std::string(lines[3])});
  if (!lines[4].empty()) req.headers.push_back({"x-amz-content-sha256", std::string(lines[4])});
  if (!lines[5].empty()) req.headers.push_back({"date", std::string(lines[5])});
  std::vector<http::Header> extra;
  for (size_t i = 6; i < lines.size(); ++i) {
    size_t colon = lines[i].find(':');
    if (colon == std::string_view::npos) continue;
    extra.push_back(
        {std::string(lines[i].substr(0, colon)), std::string(lines[i].substr(colon + 1))});
    req.headers.push_back(extra.back());
  }
  auto result = s3::Authenticate(req, Secret, s3::AuthOptions{.now_unix_s = now});
  (void)result;
  (void)s3::IsSigV2Request(req);
  (void)s3::AuthenticateV2(req, "", Secret, s3::AuthOptions{.now_unix_s = now});
  (void)s3::AuthenticateV2(req, "fuzz", Secret, s3::AuthOptions{.now_unix_s = now});
  (void)s3::CanonicalResourceV2(req.path, req.query, "fuzz", s3::SubresourceValues::kDecoded);

  // SigV2 round trip (header form): sign what is there with a fresh Date and it must verify.
  // Requests whose query SigV2 authentication reads are left out (they change its meaning),
  // and so are x-amz-content-sha256 values SigV2 refuses (bad or chained streaming).
  if (req.query.find("AWSAccessKeyId") == std::string::npos &&
      req.query.find("Signature") == std::string::npos &&
      req.query.find("X-Amz-") == std::string::npos) {
    http::HttpRequest v2 = req;
    std::erase_if(v2.headers, [](const http::Header& h) {
      return EqualsIgnoreCase(h.name, "authorization") || EqualsIgnoreCase(h.name, "date") ||
             EqualsIgnoreCase(h.name, "x-amz-date");
    });
    const std::string date = "Fri, 24 May 2013 00:00:00 GMT";
    v2.headers.push_back({"date", date});
    for (std::string_view vhost : {"", "fuzz"}) {
      std::string sts = s3::StringToSignV2(
          "PUT", v2.headers, date,
          s3::CanonicalResourceV2(v2.path, v2.query, vhost, s3::SubresourceValues::kDecoded));
      http::HttpRequest signed_v2 = v2;
      signed_v2.headers.push_back(
          {"authorization", "AWS AKFUZZ:" + s3::SignatureV2("fuzz-secret", sts)});
      auto verified_v2 =
          s3::AuthenticateV2(signed_v2, vhost, Secret, s3::AuthOptions{.now_unix_s = now});
      if (!verified_v2.ok() && verified_v2.error().code() != Code::kInvalidArgument &&
          verified_v2.error().code() != Code::kInvalidRequest) {
        __builtin_trap();
      }
    }
  }
  (void)s3::CanonicalUri(req.path);
  (void)s3::CanonicalQuery(req.query, s3::SignatureParam::kExclude);

  // Round trip: whatever we sign must verify (header names restricted to what a signer emits).
  if (req.query.find("X-Amz-") != std::string::npos ||
      req.query.find("Signature") != std::string::npos) {
    return 0;
  }
  std::vector<http::Header> headers = {{"host", "fuzz.example"}};
  for (const http::Header& h : extra) {
    if (IsTokenName(h.name)) headers.push_back(h);
  }
  s3::SignRequest({.method = "PUT",
                   .raw_path = req.path,
                   .raw_query = req.query,
                   .payload_hash = s3::kUnsignedPayload,
                   .now_unix_s = now},
                  {"AKFUZZ", "fuzz-secret"}, &headers);
  http::HttpRequest signed_req;
  signed_req.method = "PUT";
  signed_req.path = req.path;
  signed_req.query = req.query;
  signed_req.headers = headers;
  auto verified = s3::Authenticate(signed_req, Secret, s3::AuthOptions{.now_unix_s = now});
  if (!verified.ok()) __builtin_trap();
  return 0;
}
