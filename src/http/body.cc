#include "http/body.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace vlake::http {

const std::vector<Header>& BodyReader::Trailers() const {
  static const std::vector<Header> kNone;
  return kNone;
}

Result<std::string> ReadAll(BodyReader& body, size_t limit_bytes) {
  std::string out;
  if (std::optional<uint64_t> len = body.Length()) {
    if (*len > limit_bytes) {
      return Error(Code::kEntityTooLarge, "body of " + std::to_string(*len) + " bytes exceeds " +
                                              std::to_string(limit_bytes));
    }
    out.resize(*len);
    size_t used = 0;
    while (used < out.size()) {
      VLAKE_ASSIGN_OR_RETURN(size_t n, body.Read(out.data() + used, out.size() - used));
      if (n == 0) return Error(Code::kIncompleteBody, "body ended before its length");
      used += n;
    }
    // Confirms the end so that a chunked reader has consumed its trailers.
    char probe;
    VLAKE_ASSIGN_OR_RETURN(size_t extra, body.Read(&probe, 1));
    if (extra != 0) return Error(Code::kInternal, "body longer than its declared length");
    return out;
  }
  // Unknown length: grow geometrically and read straight into the string's spare room.
  constexpr size_t kStepBytes = 64 * 1024;
  // One byte past the limit is enough to tell "too large" from "exactly the limit".
  const size_t hard_cap = limit_bytes == SIZE_MAX ? limit_bytes : limit_bytes + 1;
  size_t used = 0;
  while (true) {
    if (used == out.size()) {
      out.resize(std::min(hard_cap, std::max(out.size() * 2, used + kStepBytes)));
    }
    VLAKE_ASSIGN_OR_RETURN(size_t n, body.Read(out.data() + used, out.size() - used));
    if (n == 0) break;
    used += n;
    if (used > limit_bytes) {
      return Error(Code::kEntityTooLarge, "body exceeds " + std::to_string(limit_bytes) + " bytes");
    }
  }
  out.resize(used);
  return out;
}

Result<size_t> StringBodyReader::Read(char* buf, size_t n) {
  size_t k = std::min(n, data_.size() - pos_);
  std::memcpy(buf, data_.data() + pos_, k);
  pos_ += k;
  return k;
}

}  // namespace vlake::http
