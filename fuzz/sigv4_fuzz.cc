// Fuzzes SigV4 verification and canonicalisation (src/s3/sigv4.h).
//
// The input is split on '\n' into: path, query, Authorization value, x-amz-date,
// x-amz-content-sha256, Date, and then "name:value" header lines. It is fed to Authenticate()
// as is (any status is fine, crashes and sanitizer reports are not), and, as a round-trip
// property, the same path/query/headers are signed with SignRequest() and must then verify.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
