// Validation of bucket names and object keys, and the byte-range grammar of GET requests.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/status.h"

namespace vlake::s3 {

// S3 general-purpose bucket rules: 3-63 chars of [a-z0-9.-], starting and ending with a letter
// or digit, no "..", not an IPv4 address, no "xn--" prefix, no "-s3alias"/"--ol-s3" suffix.
Status ValidateBucketName(std::string_view name);

// Keys: 1..1024 bytes of valid UTF-8. Everything else is allowed ("../", "//", leading "/",
// control characters); keys never become file names.
Status ValidateObjectKey(std::string_view key);

// A resolved, satisfiable byte range [first, first + length).
struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};

enum class RangeOutcome {
  kIgnore,         // no header, or a header we must ignore (syntax error, multiple ranges)
  kSatisfiable,    // *out is set
  kUnsatisfiable,  // answer 416 InvalidRange
};

// Parses a Range header value against an object of `size` bytes: "bytes=a-b", "bytes=a-",
// "bytes=-n". Per RFC 9110 an invalid header is ignored; S3 serves one range only, so a
// multi-range request is ignored too (full object).
RangeOutcome ResolveRange(std::string_view header, uint64_t size, ByteRange* out);

}  // namespace vlake::s3
