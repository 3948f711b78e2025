#include "s3/names.h"

#include "common/encoding.h"

namespace vlake::s3 {
namespace {
bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool LooksLikeIpv4(std::string_view s) {
  int dots = 0;
  for (char c : s) {
    if (c == '.')
      ++dots;
    else if (c < '0' || c > '9')
      return false;
  }
  return dots == 3;
}
}  // namespace

Status ValidateBucketName(std::string_view name) {
  auto bad = [&](const char* why) {
    return Error(Code::kInvalidBucketName,
                 std::string("The specified bucket is not valid: ") + why);
  };
  if (name.size() < 3 || name.size() > 63) return bad("length must be 3 to 63");
  for (char c : name) {
    if (!IsLowerAlnum(c) && c != '.' && c != '-') return bad("only a-z, 0-9, '.' and '-'");
  }
  if (!IsLowerAlnum(name.front()) || !IsLowerAlnum(name.back())) {
    return bad("must start and end with a letter or digit");
  }
  if (name.find("..") != std::string_view::npos || name.find(".-") != std::string_view::npos ||
      name.find("-.") != std::string_view::npos) {
    return bad("adjacent periods or period-hyphen");
  }
  if (LooksLikeIpv4(name)) return bad("must not look like an IP address");
  if (name.starts_with("xn--") || name.starts_with("sthree-")) return bad("reserved prefix");
  if (name.ends_with("-s3alias") || name.ends_with("--ol-s3")) return bad("reserved suffix");
  return Status::Ok();
}

Status ValidateObjectKey(std::string_view key) {
  if (key.empty()) return Error(Code::kInvalidArgument, "Object key must not be empty");
  if (key.size() > 1024) return Error(Code::kKeyTooLong, "Your key is too long");
  if (!IsValidUtf8(key)) return Error(Code::kInvalidArgument, "Object key is not valid UTF-8");
  return Status::Ok();
}

RangeOutcome ResolveRange(std::string_view header, uint64_t size, ByteRange* out) {
  header = TrimWhitespace(header);
  if (!header.starts_with("bytes=")) return RangeOutcome::kIgnore;
  std::string_view spec = TrimWhitespace(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return RangeOutcome::kIgnore;
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeOutcome::kIgnore;
  std::string_view a = TrimWhitespace(spec.substr(0, dash));
  std::string_view b = TrimWhitespace(spec.substr(dash + 1));
  if (a.empty()) {  // suffix: last n bytes
    auto n = ParseUint64(b);
    if (!n) return RangeOutcome::kIgnore;
    if (*n == 0 || size == 0) return RangeOutcome::kUnsatisfiable;
    uint64_t len = *n < size ? *n : size;
    *out = {size - len, len};
    return RangeOutcome::kSatisfiable;
  }
  auto first = ParseUint64(a);
  if (!first) return RangeOutcome::kIgnore;
  uint64_t last;
  if (b.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else {
    auto l = ParseUint64(b);
    if (!l || *l < *first) return RangeOutcome::kIgnore;
    last = *l < size ? *l : size - 1;
  }
  if (*first >= size) return RangeOutcome::kUnsatisfiable;
  *out = {*first, last - *first + 1};
  return RangeOutcome::kSatisfiable;
}

}  // namespace vlake::s3
